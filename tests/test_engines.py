"""The engine readers in real tools: the Godot 3 project run headless (godot3-server), the Godot 4
reader through gdtoolkit's parser, and the Unity C# reader plus the C# in docs/engines.md compiled
with mono's mcs against stubs of the Unity types they use.

``scripts/install-engines.sh`` installs godot3-server and mono-mcs (CI runs it from ``.ci/run``);
without them these tests skip and say why.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from digitalhuman.lipsync.weights import viseme_weights
from digitalhuman.persona import load_persona_doc
from digitalhuman.pipeline import PersonaPipeline
from digitalhuman.voice.visemes import VISEMES

REPO = Path(__file__).resolve().parents[1]
ENGINE = REPO / "samples" / "engine"
GODOT3 = shutil.which("godot3-server")
MCS = shutil.which("mcs")
INSTALL = "install it with `bash scripts/install-engines.sh`"
LINES = ["Welcome back, traveller.", "The mines are cursed; leave now, before the bell rings."]


@pytest.fixture(scope="module")
def persona(tiny_weights, tmp_path_factory):
    folder = tmp_path_factory.mktemp("godot") / "npc"
    PersonaPipeline.from_pretrained(tiny_weights)(seed=12, lines=LINES).save(folder)
    return folder


def run_godot(persona_dir: Path, line: int, home: Path) -> dict:
    home.mkdir(parents=True, exist_ok=True)
    res = subprocess.run([GODOT3, "--path", str(ENGINE / "godot3"), "--", f"--persona={persona_dir}",
                          f"--line={line}"], capture_output=True, text=True, timeout=180,
                         env={**os.environ, "HOME": str(home), "XDG_DATA_HOME": str(home)})
    out = [ln for ln in res.stdout.splitlines() if ln.startswith("DH_RESULT ")]
    assert out, f"no result from Godot (exit {res.returncode}):\n{res.stdout[-2000:]}\n{res.stderr[-2000:]}"
    assert res.returncode == 0, res.stderr[-2000:]
    return json.loads(out[-1][len("DH_RESULT "):])


@pytest.mark.skipif(GODOT3 is None, reason=f"godot3-server is not installed; {INSTALL}")
@pytest.mark.parametrize("line", [0, 1])
def test_godot3_plays_the_line_and_drives_weights(persona, tmp_path, line):
    doc = load_persona_doc(persona)
    ln = doc.lines[line]
    track = [v.model_dump() for v in ln.visemes]
    r = run_godot(persona, line, tmp_path / "home")
    assert r["error"] == ""
    assert abs(r["stream_length"] - ln.duration_s) < 0.001  # the WAV it decoded is the line's

    def as_vec(w: dict) -> np.ndarray:
        return np.array([w[name] for name in VISEMES])

    # at the middle of every segment, the loudest shape is the track's viseme and the weights sum to 1
    mids = r["midpoints"]
    assert len(mids) == len(track)
    for m, seg in zip(mids, track):
        w = as_vec(m["w"])
        assert m["viseme"] == seg["viseme"] and abs(w.sum() - 1) < 1e-4 and w.min() >= 0
        assert VISEMES[int(np.argmax(w))] == seg["viseme"], (m["t"], m["w"])
    # Godot's numbers are the Python model's (digitalhuman/lipsync/weights.py)
    want = viseme_weights(track, np.array([m["t"] for m in mids]))
    assert np.abs(np.stack([as_vec(m["w"]) for m in mids]) - want).max() < 1e-4

    # while the WAV plays: the playback clock moves through the line and no frame over-drives the mouth
    frames = r["frames"]
    times = np.array([f["t"] for f in frames])
    assert len(frames) >= 20 and np.all(np.diff(times) >= 0) and times[-1] > 0.8 * ln.duration_s
    sums = np.array([as_vec(f["w"]).sum() for f in frames])
    assert sums.max() <= 1 + 1e-4 and sums.min() >= 1 - 1e-4
    assert len({VISEMES[int(np.argmax(as_vec(f["w"])))] for f in frames}) >= 4  # the mouth really moves


@pytest.mark.skipif(GODOT3 is None, reason=f"godot3-server is not installed; {INSTALL}")
def test_godot3_refuses_an_unsafe_audio_name(persona, tmp_path):
    bad = tmp_path / "bad"
    shutil.copytree(persona, bad)
    doc = json.loads((bad / "persona.json").read_text())
    doc["lines"][0]["audio"] = "../npc/voice_00.wav"
    (bad / "persona.json").write_text(json.dumps(doc))
    res = subprocess.run([GODOT3, "--path", str(ENGINE / "godot3"), "--", f"--persona={bad}", "--line=0"],
                         capture_output=True, text=True, timeout=120, env={**os.environ, "HOME": str(tmp_path)})
    out = [ln for ln in res.stdout.splitlines() if ln.startswith("DH_RESULT ")]
    assert out and "unsafe" in json.loads(out[-1][len("DH_RESULT "):])["error"] and res.returncode != 0


def test_godot4_reader_parses():
    parser = pytest.importorskip("gdtoolkit.parser").parser
    code = (ENGINE / "persona_lipsync.gd").read_text()
    assert parser.parse(code) is not None
    assert "@export" in code and "LEAD := 0.08" in code and "LAG := 0.05" in code
    with pytest.raises(Exception):  # the parser does refuse broken GDScript
        parser.parse(code.replace("func weights_at(t: float)", "func weights_at(t: float"))


def csharp_blocks(markdown: str) -> list[str]:
    return re.findall(r"```csharp\n(.*?)```", markdown, flags=re.S)


@pytest.mark.skipif(MCS is None, reason=f"mono-mcs is not installed; {INSTALL}")
def test_unity_reader_and_docs_sketch_compile(tmp_path):
    blocks = csharp_blocks((REPO / "docs" / "engines.md").read_text())
    assert len(blocks) >= 2
    sources = [ENGINE / "PersonaLipSync.cs", ENGINE / "unity_stubs" / "UnityEngine.cs"]
    for i, block in enumerate(blocks):
        path = tmp_path / f"engines_md_{i}.cs"
        path.write_text(block)
        sources.append(path)
    res = subprocess.run([MCS, "-target:library", "-warnaserror-", f"-out:{tmp_path / 'readers.dll'}",
                          *map(str, sources)], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stdout + res.stderr
    # and a wrong call, like the old sketch's Cond(0.7f, 35f, 2), does not compile
    bad = tmp_path / "bad.cs"
    bad.write_text("static class Bad { static float[] F() { return PersonaFace.Cond(0.7f, 35f, 2); } }\n")
    res = subprocess.run([MCS, "-target:library", f"-out:{tmp_path / 'bad.dll'}", *map(str, sources), str(bad)],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode != 0 and "Cond" in res.stdout + res.stderr
