"""The full persona path (face + voice + visemes) with tiny random models and the real Kokoro voice."""

import hashlib
import subprocess
import sys

import numpy as np
import pytest

from digitalhuman.cli import main
from digitalhuman.persona import VISEMES, load_persona_doc
from digitalhuman.pipeline import PersonaPipeline


def test_persona_with_lines_and_say(tiny_weights, tmp_path):
    pipe = PersonaPipeline.from_pretrained(tiny_weights)
    p = pipe(seed=5, gender="female", age=40, lines=["Hello there, traveller.", "The mines are cursed."])
    assert len(p.lines) == 2 and p.voice["female"] == 1.0 and p.voice["child"] == 0 and p.traits["accent"] in ("us", "gb")
    for line in p.lines:
        assert line.sample_rate == 24000 and line.audio.dtype == np.float32 and 0.5 < line.duration_s < 5
        assert np.abs(line.audio).max() <= 1.0
        v = line.visemes
        assert v[0]["t_start"] == 0 and abs(v[-1]["t_end"] - line.duration_s) < 0.002
        assert all(a["t_end"] == b["t_start"] for a, b in zip(v, v[1:]))
        assert {x["viseme"] for x in v} <= set(VISEMES) and len({x["viseme"] for x in v}) > 4
    p.save(tmp_path / "p")
    doc = load_persona_doc(tmp_path / "p")
    assert [ln.audio for ln in doc.lines] == ["voice_00.wav", "voice_01.wav"]
    # saying a line again (from the saved file) gives the same audio as at creation
    again = pipe.say(doc, "The mines are cursed.")
    assert again.wav_bytes() == (tmp_path / "p" / "voice_01.wav").read_bytes()
    # a different persona has a different voice
    q = pipe(seed=6, gender="male", age=40, voice=True)
    assert q.voice["female"] == 0.0 and q.voice["s00"] != p.voice["s00"]
    assert not np.array_equal(pipe.say(q, "The mines are cursed.").audio[:4000], p.lines[1].audio[:4000])


def test_same_persona_same_bytes_in_two_processes(tiny_weights, tmp_path):
    argv = ["--weights", str(tiny_weights), "create", "--seed", "77", "--say", "Good morning, 3 apples!"]
    assert main(argv + ["--out", str(tmp_path / "a")]) == 0
    r = subprocess.run([sys.executable, "-m", "digitalhuman", *argv, "--out", str(tmp_path / "b")],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr

    def digest(d):
        return {f.name: hashlib.sha256(f.read_bytes()).hexdigest() for f in sorted(d.iterdir())}

    assert digest(tmp_path / "a") == digest(tmp_path / "b")


def test_say_command(tiny_weights, tmp_path, capsys):
    assert main(["--weights", str(tiny_weights), "create", "--seed", "8", "--out", str(tmp_path / "p")]) == 0
    out = tmp_path / "hi.wav"
    assert main(["--weights", str(tiny_weights), "say", "--persona", str(tmp_path / "p"), "--text", "Hi there.",
                 "--out", str(out)]) == 0
    import soundfile as sf

    audio, sr = sf.read(out)
    assert sr == 24000 and len(audio) > 0.3 * sr
    assert (tmp_path / "hi.visemes.json").is_file()


def test_a_model_left_unloaded_is_named_as_such(tiny_weights):
    from digitalhuman.pipeline import ModelNotAvailable, PersonaPipeline

    no_face = PersonaPipeline.from_pretrained(tiny_weights, face=False)
    with pytest.raises(ModelNotAvailable, match=r"face model was not loaded \(from_pretrained\(face=False\)\)"):
        no_face(3)
    assert no_face(3, face=False, lines=["Hi."]).lines  # what was loaded still works
    no_voice = PersonaPipeline.from_pretrained(tiny_weights, voice=False)
    with pytest.raises(ModelNotAvailable, match="voice model was not loaded"):
        no_voice(3, lines=["Hi."])
