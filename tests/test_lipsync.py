"""Word timings, co-articulated weights and the lip-sync files (oculus, arkit, vrm, rhubarb), and
streaming: chunks whose joined PCM is the WAV's, with absolute viseme times."""

from __future__ import annotations

import csv
import io
import json
import math

import numpy as np
import pytest
import soundfile as sf

from digitalhuman.cli import main
from digitalhuman.lipsync import EXTENSIONS, mapping_doc, parse_formats
from digitalhuman.lipsync.weights import (ARKIT_EXTRA, ARKIT_NAMES, FPS, VISEME_RHUBARB, VRM_PRESETS, frame_count,
                                          viseme_weights)
from digitalhuman.persona import SCHEMA_VERSION, load_persona_doc, parse_persona_json, pcm16
from digitalhuman.pipeline import PersonaPipeline
from digitalhuman.voice.stream import FIRST_CHUNK_SYMBOLS, PHRASE_HEAD_MIN, plan_chunks
from digitalhuman.voice.text import WORD_BREAK, phonemize
from digitalhuman.voice.visemes import VISEMES

LINES = ["The mines have been closed since the third of May, and nobody goes there now.",
         "Welcome back, traveller."]
THREE = ("The old mill by the river has been closed for twenty years. Bring me three barrels of salted fish "
         "before the winter comes, and I will pay you well. Go now.")


@pytest.fixture(scope="module")
def pipe(tiny_weights):
    return PersonaPipeline.from_pretrained(tiny_weights)


@pytest.fixture(scope="module")
def folder(tiny_weights, tmp_path_factory):
    out = tmp_path_factory.mktemp("ls") / "npc"
    argv = ["--weights", str(tiny_weights), "create", "--seed", "5", "--lipsync", "all", "--out", str(out)]
    for line in LINES:
        argv += ["--say", line]
    assert main(argv) == 0
    return out


# ------------------------------------------------------------------------------------------- words
def test_phonemize_word_spans_cover_the_words():
    (chunk,) = phonemize("Well met, stranger.")
    assert [w for w, _, _ in chunk.words] == ["Well", "met", "stranger"]
    for _, a, b in chunk.words:
        syms = chunk.symbols[a:b]
        assert syms and WORD_BREAK not in syms and syms[-1] not in ",.?!;:"
    assert chunk.symbols[chunk.words[1][2]] == ","  # the break's mark is outside the word


def test_word_timings_in_persona_json(folder):
    doc = load_persona_doc(folder)
    assert doc.schema_version == SCHEMA_VERSION == 3
    for line in doc.lines:
        words = line.words
        spoken = [w.word.lower().strip(",.") for w in words]
        assert spoken == [w.lower().strip(",.") for w in line.text.split()], spoken
        for w in words:
            assert 0 <= w.t_start < w.t_end <= line.duration_s
        assert all(a.t_end <= b.t_start for a, b in zip(words, words[1:]))


def test_schema_1_persona_json_still_loads(folder):
    data = json.loads((folder / "persona.json").read_text())
    data["schema_version"] = 1
    for line in data["lines"]:
        del line["words"], line["lipsync"]
    doc = parse_persona_json(json.dumps(data))
    assert doc.schema_version == 1 and doc.lines[0].words == [] and doc.lines[0].lipsync == {}


def test_lipsync_file_names_must_be_plain(folder):
    data = json.loads((folder / "persona.json").read_text())
    data["lines"][0]["lipsync"]["arkit"] = "../x.csv"
    with pytest.raises(ValueError, match="unsafe"):
        parse_persona_json(json.dumps(data))


# ----------------------------------------------------------------------------------- weights model
def test_weights_sum_to_one_and_the_track_leads_at_each_midpoint():
    track = [{"t_start": 0.0, "t_end": 0.1, "viseme": "sil"}, {"t_start": 0.1, "t_end": 0.12, "viseme": "aa"},
             {"t_start": 0.12, "t_end": 0.13, "viseme": "DD"}, {"t_start": 0.13, "t_end": 0.3, "viseme": "aa"},
             {"t_start": 0.3, "t_end": 0.5, "viseme": "sil"}]
    t = np.linspace(0, 0.5, 501)
    w = viseme_weights(track, t)
    assert np.allclose(w.sum(1), 1.0) and (w >= 0).all()
    for seg in track:  # even the 10 ms DD between two aa
        mid = viseme_weights(track, np.array([(seg["t_start"] + seg["t_end"]) / 2]))[0]
        assert VISEMES[int(np.argmax(mid))] == seg["viseme"]
    # co-articulated, not switched: aa is already rising 40 ms before it starts
    assert 0 < viseme_weights(track, np.array([0.06]))[0][VISEMES.index("aa")] < 1


def test_parse_formats():
    assert parse_formats("vrm,arkit") == ("arkit", "vrm")
    assert parse_formats("all") == ("oculus", "arkit", "vrm", "rhubarb")
    with pytest.raises(ValueError, match="oculus, arkit, vrm, rhubarb"):
        parse_formats("arkit,blender")


def test_cli_refuses_unknown_format(tiny_weights, tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["--weights", str(tiny_weights), "create", "--seed", "1", "--lipsync", "maya", "--out", str(tmp_path)])
    assert "choose from oculus, arkit, vrm, rhubarb" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------- files
def _lines(folder):
    doc = load_persona_doc(folder)
    for line in doc.lines:
        assert set(line.lipsync) == {"oculus", "arkit", "vrm", "rhubarb"}
        stem = line.audio[:-4]
        assert line.lipsync == {f: f"{stem}.{ext}" for f, ext in EXTENSIONS.items()}
        yield line


def test_oculus_frames(folder):
    for line in _lines(folder):
        doc = json.loads((folder / line.lipsync["oculus"]).read_text())
        frames = np.array(doc["frames"])
        assert doc["fps"] == FPS and doc["visemes"] == list(VISEMES)
        assert frames.shape == (math.ceil(60 * line.duration_s), 15) == (frame_count(line.duration_s), 15)
        assert (frames >= 0).all() and (frames.sum(1) <= 1.0 + 1e-12).all() and frames.sum(1).min() > 0.99
        assert doc["segments"] == [v.model_dump() for v in line.visemes]
        for seg in line.visemes:  # the loudest shape at each segment's middle frame is the track's
            i = round((seg.t_start + seg.t_end) / 2 * FPS)
            if seg.t_start <= i / FPS <= seg.t_end and i < len(frames):
                assert VISEMES[int(np.argmax(frames[i]))] == seg.viseme


def test_arkit_csv_live_link_face_layout(folder):
    for line in _lines(folder):
        rows = list(csv.reader(io.StringIO((folder / line.lipsync["arkit"]).read_text())))
        header, body = rows[0], rows[1:]
        assert header == ["Timecode", "BlendShapeCount", *ARKIT_NAMES, *ARKIT_EXTRA] and len(ARKIT_NAMES) == 52
        assert len(body) == math.ceil(60 * line.duration_s)
        for i, row in enumerate(body):
            assert len(row) == len(header)
            hh, mm, ss, ff = row[0].split(".")[0].split(":")
            assert int(hh) * 3600 + int(mm) * 60 + int(ss) == i // 60 and int(ff) == i % 60
            assert row[1] == "61"
            values = np.array(row[2:], float)
            assert ((values >= 0) & (values <= 1)).all()
        jaw = np.array([float(r[2 + ARKIT_NAMES.index("JawOpen")]) for r in body])
        assert jaw.max() > 0.3 and jaw[-1] == 0  # the mouth moves while speaking, rests at the end
        eyes = np.array([[float(x) for x in r[2:16]] for r in body])
        assert not eyes.any()  # only mouth and jaw are driven


def test_vrm_frames(folder):
    for line in _lines(folder):
        doc = json.loads((folder / line.lipsync["vrm"]).read_text())
        assert doc["fps"] == 60 and doc["presets"] == list(VRM_PRESETS) == ["aa", "ih", "ou", "ee", "oh"]
        assert len(doc["frames"]) == math.ceil(60 * line.duration_s)
        values = np.array([[f[p] for p in VRM_PRESETS] for f in doc["frames"]])
        assert ((values >= 0) & (values <= 1)).all() and values.sum(1).max() <= 1.0
        assert values[:, 0].max() > 0.5  # "aa" in "The mines ..." / "back"


def test_rhubarb_tsv(folder):
    for line in _lines(folder):
        rows = [r.split("\t") for r in (folder / line.lipsync["rhubarb"]).read_text().splitlines()]
        times = [float(t) for t, _ in rows]
        shapes = [s for _, s in rows]
        assert times[0] == 0 and times == sorted(times) and len(set(times)) == len(times)
        assert set(shapes) <= set("ABCDEFGHX") and len(set(shapes)) >= 4
        assert all(a != b for a, b in zip(shapes, shapes[1:]))
        # the mouth rests (X) from the start of the closing silence to the end of the audio
        assert shapes[-1] == "X" and line.visemes[-1].viseme == "sil" and times[-1] == line.visemes[-1].t_start
        assert times[-1] < line.duration_s
        # each change point is the shape of the track's segment starting there
        for t, s in rows[:-1]:
            seg = next(v for v in line.visemes if abs(v.t_start - float(t)) < 1e-9)
            assert VISEME_RHUBARB[seg.viseme] == s


def test_say_writes_lipsync_beside_the_wav(folder, tiny_weights, tmp_path):
    out = tmp_path / "hello.wav"
    assert main(["--weights", str(tiny_weights), "say", "--persona", str(folder), "--text", "Hello there.",
                 "--out", str(out), "--lipsync", "arkit,rhubarb"]) == 0
    doc = json.loads((tmp_path / "hello.visemes.json").read_text())
    assert doc["lipsync"] == {"arkit": "hello.arkit.csv", "rhubarb": "hello.rhubarb.tsv"}
    assert [w["word"] for w in doc["words"]] == ["Hello", "there"]
    assert (tmp_path / "hello.arkit.csv").is_file() and (tmp_path / "hello.rhubarb.tsv").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hello.arkit.csv", "hello.rhubarb.tsv", "hello.visemes.json",
                                                          "hello.wav"]


def test_mapping_doc_is_json():
    doc = json.loads(json.dumps(mapping_doc()))
    assert doc["visemes"] == list(VISEMES) and len(doc["arkit"]["names"]) == 52


# --------------------------------------------------------------------------------------- streaming
def test_plan_first_chunk_short():
    plan = plan_chunks(phonemize(THREE))
    assert len(plan[0][0].symbols) <= FIRST_CHUNK_SYMBOLS and len(plan) >= 4
    assert [new for _, new in plan].count(True) == 3  # three sentences
    # no sound lost or reordered
    assert [s for c, _ in plan for s in c.symbols if s != WORD_BREAK] == \
        [s for c in phonemize(THREE) for s in c.symbols if s != WORD_BREAK]


def test_plan_first_phrase_is_its_own_chunk():
    """A first sentence with a phrase mark early on is cut there (the first sound comes sooner),
    a too-short phrase ("Oh,") is not cut off alone, and a short sentence without one stays whole."""
    def texts(line):
        return [" ".join(w[0] for w in c.words) for c, _ in plan_chunks(phonemize(line))]

    assert texts("Welcome back, friend. The mines are cursed.")[:2] == ["Welcome back", "friend"]
    assert texts("Oh, yes, I remember the old mill by the water.")[0] == "Oh yes"
    assert texts("Have you seen my brother? He left.") == ["Have you seen my brother", "He left"]
    # no mark: before a word that opens a phrase, not inside one (Whisper misheard such seams)
    assert texts("I only sell potions to adventurers who survived.")[0] == "I only sell potions"
    assert texts("We need 40 more arrows before the raiders return at dawn.")[0] == "We need forty more arrows"
    assert not texts("That sword will cost you 250 gold coins and a copper.")[0].endswith("hundred")
    assert len(plan_chunks(phonemize("Welcome back, friend."))[0][0].symbols) >= PHRASE_HEAD_MIN


def test_stream_joins_to_the_wav_exactly(pipe):
    p = pipe(seed=11, gender="female")
    chunks = list(pipe.stream(p, THREE))
    line = pipe.say(p, THREE)
    wav, _ = sf.read(io.BytesIO(line.wav_bytes()), dtype="int16")
    joined = np.concatenate([pcm16(c.audio) for c in chunks])
    assert joined.tobytes() == wav.tobytes()
    assert len(chunks) >= 4 and len(chunks[0].audio) < 0.35 * len(wav)
    assert [c.start for c in chunks] == line.chunk_starts
    visemes = [v for c in chunks for v in c.visemes]
    assert visemes[0]["t_start"] == 0 and all(a["t_end"] == b["t_start"] for a, b in zip(visemes, visemes[1:]))
    assert all(v["t_end"] > v["t_start"] for v in visemes)
    assert abs(visemes[-1]["t_end"] - line.duration_s) < 0.001
    for c in chunks:  # each chunk's visemes lie within its own audio
        assert abs(c.visemes[0]["t_start"] - c.t_start) < 0.001 and abs(c.visemes[-1]["t_end"] - c.end / c.sample_rate) < 0.001
    words = [w for c in chunks for w in c.words]
    assert [w[0] for w in words] == [w["word"] for w in line.words]
    # the same request again: the same chunks
    again = list(pipe.stream(p, THREE))
    assert all(a.audio.tobytes() == b.audio.tobytes() and a.visemes == b.visemes for a, b in zip(chunks, again))
