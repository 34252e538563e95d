"""The CLI's edges: nothing overwritten without --overwrite, mistakes answered before any model
loads, no silent clamps, --shard auto under schedulers, a short `info`, licence metadata."""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from pathlib import Path

import numpy as np
import pytest

from digitalhuman import __version__
from digitalhuman.batch import auto_shard
from digitalhuman.cli import main
from digitalhuman.persona import PersonaError, SpokenLine
from digitalhuman.pipeline import PersonaPipeline

REPO = Path(__file__).resolve().parents[1]


def tree(root: Path) -> dict[str, tuple[bytes, int]]:
    """Every file under ``root``: bytes and modification time (ns)."""
    return {str(p.relative_to(root)): (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(root.rglob("*"))
            if p.is_file()}


def one_error(capsys, code: int, expected: str) -> str:
    err = capsys.readouterr().err
    assert code == 1 and expected in err and err.count("\n") == 1 and "Traceback" not in err, (code, err)
    return err


# ----------------------------------------------------------------------------------- overwriting
def test_create_refuses_an_existing_persona_unless_overwrite(tmp_path, tiny_weights, capsys):
    w = ["--weights", str(tiny_weights)]
    out = tmp_path / "npc"
    assert main(w + ["create", "--seed", "1", "--say", "Hello there.", "--say", "Go away.", "--out", str(out)]) == 0
    before = tree(out)
    assert {"voice_00.wav", "voice_01.wav", "face.png", "persona.json"} == set(before)
    capsys.readouterr()
    one_error(capsys, main(w + ["create", "--seed", "2", "--out", str(out)]), "add --overwrite")
    assert tree(out) == before  # bytes and times: untouched
    one_error(capsys, main(w + ["blend", "--a", "1", "--b", "2", "--out", str(out)]), "add --overwrite")
    assert tree(out) == before
    assert main(w + ["create", "--seed", "2", "--overwrite", "--out", str(out)]) == 0
    after = tree(out)
    assert set(after) == {"face.png", "persona.json"}  # replaced whole: the old lines are gone with it
    assert json.loads(after["persona.json"][0])["seed"] == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["npc"]  # no temporary folder left behind
    # --overwrite replaces personas only, never a folder of other files
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep")
    one_error(capsys, main(w + ["create", "--seed", "2", "--overwrite", "--out", str(tmp_path / "mine")]),
              "not a persona folder")
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep"


def test_say_refuses_an_existing_file_unless_overwrite(tmp_path, tiny_weights, capsys):
    w = ["--weights", str(tiny_weights)]
    assert main(w + ["create", "--seed", "3", "--out", str(tmp_path / "p")]) == 0
    wav = tmp_path / "hello.wav"
    wav.write_bytes(b"someone else's file")
    capsys.readouterr()
    one_error(capsys, main(w + ["say", "--persona", str(tmp_path / "p"), "--text", "Hi.", "--out", str(wav)]),
              "add --overwrite")
    assert wav.read_bytes() == b"someone else's file" and not (tmp_path / "hello.visemes.json").exists()
    assert main(w + ["say", "--persona", str(tmp_path / "p"), "--text", "Hi.", "--out", str(wav), "--overwrite"]) == 0
    assert wav.read_bytes()[:4] == b"RIFF" and json.loads((tmp_path / "hello.visemes.json").read_text())["text"] == "Hi."


def test_spoken_line_saves_itself(tmp_path):
    line = SpokenLine("Hi.", np.linspace(-0.5, 0.5, 2205, dtype=np.float32), 22050,
                      [{"t_start": 0.0, "t_end": 0.1, "viseme": "sil"}])
    path = line.save(tmp_path / "sub" / "hi.wav")
    assert path.read_bytes() == line.wav_bytes()
    doc = json.loads((tmp_path / "sub" / "hi.visemes.json").read_text())
    assert doc == {"text": "Hi.", "sample_rate": 22050, "duration_s": 0.1, "visemes": line.visemes,
                   "words": line.words, "lipsync": {}}
    with pytest.raises(PersonaError, match="exists"):
        line.save(path)
    line.save(path, overwrite=True)
    with pytest.raises(PersonaError, match="wav"):
        line.save(tmp_path / "hi.mp3")
    with pytest.raises(PersonaError, match="folder"):
        line.save(tmp_path / "sub")
    line.save(tmp_path / "only.wav", visemes=False)
    assert not (tmp_path / "only.visemes.json").exists()
    assert sorted(p.name for p in (tmp_path / "sub").iterdir()) == ["hi.visemes.json", "hi.wav"]  # no temp files


# ------------------------------------------------------------------------- errors before loading
@pytest.fixture
def no_models(monkeypatch):
    """from_pretrained fails the test if it loads a face or voice model; returns its calls (none expected)."""
    calls = []
    real = PersonaPipeline.from_pretrained.__func__

    def guarded(cls, path=None, **kw):
        calls.append(kw)
        assert kw.get("face") is False and kw.get("voice") is False, f"models loaded for a cheap error: {kw}"
        return real(cls, path, **kw)

    monkeypatch.setattr(PersonaPipeline, "from_pretrained", classmethod(guarded))
    return calls


def test_cheap_errors_come_before_any_model(tmp_path, tiny_weights, no_models, capsys):
    w = ["--weights", str(tiny_weights)]
    (tmp_path / "afile").write_text("x")
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "f.txt").write_text("mine")
    (tmp_path / "p").mkdir()
    (tmp_path / "p" / "persona.json").write_text("{}")  # say reads it after the --out checks pass
    (tmp_path / "notimage.png").write_text("not an image")
    (tmp_path / "notwav.wav").write_text("not audio")
    t = str(tmp_path)
    cases = [
        (["create", "--seed", "1", "--out", f"{t}/afile"], "exists and is not a folder"),
        (["create", "--seed", "1", "--out", f"{t}/afile/sub"], "is not a folder"),
        (["create", "--seed", "1", "--out", f"{t}/junk"], "not a persona folder"),
        (["batch", "--seeds", "0-1", "--out", f"{t}/junk"], "not a previous batch"),
        (["batch", "--seeds", "0-1", "--out", f"{t}/afile"], "not a folder"),
        (["create", "--out", f"{t}/new"], "needs --seed"),
        (["create", "--seed", "1", "--keep-face", "--out", f"{t}/new"], "--keep-face only goes with --from-face"),
        (["create", "--from-face", f"{t}/missing.png", "--out", f"{t}/new"], "no such image file"),
        (["create", "--from-face", f"{t}/notimage.png", "--out", f"{t}/new"], "not a readable image"),
        (["create", "--from-voice", f"{t}/notwav.wav", "--out", f"{t}/new"], "not a readable audio file"),
        (["say", "--persona", f"{t}/p", "--text", "Hi.", "--out", f"{t}/junk"], "is a folder"),
        (["say", "--persona", f"{t}/p", "--text", "Hi.", "--out", f"{t}/x.mp3"], "must be a .wav file"),
        (["family", "--seed", "1", "--out", f"{t}/junk"], "not an empty folder"),
        (["create", "--seed", "1", "--age", "30", "--aged", "-50", "--out", f"{t}/new"], "between -30 and 70"),
    ]
    for argv, msg in cases:
        one_error(capsys, main(w + argv), msg)
    assert no_models == []  # not even the trait prior was needed
    # the persona's own age needs only the trait prior, read without torch
    one_error(capsys, main(w + ["create", "--seed", "1", "--aged", "-99", "--out", f"{t}/new"]), "--aged must be between")
    assert no_models == []
    assert not (tmp_path / "new").exists() and (tmp_path / "junk" / "f.txt").read_text() == "mine"


def door_files(tmp: Path) -> None:
    """The input files of ``door_cases``, made in ``tmp``."""
    import soundfile as sf
    from PIL import Image

    from digitalhuman.persona import Persona, persona_latent

    sf.write(tmp / "tiny.wav", np.full(800, 0.1, np.float32), 16000)  # 0.05 s
    sf.write(tmp / "silent.wav", np.zeros(16000, np.float32), 16000)
    Image.fromarray(np.zeros((1, 1, 3), np.uint8)).save(tmp / "1x1.png")
    traits = {"gender": "female", "female": 0.9, "age": 30.0, "race": "white"}
    Persona(seed=1, latent=persona_latent(1), traits=traits, models={},
            voice={"f0_hz": 1e308, "f0_range_st": 2.0, "formant": 1.0, "rate": 1.0}).save(tmp / "badf0")


def door_cases(t: str) -> list[tuple[str, list[str], int, str]]:
    """Issue 28's inputs that must be answered at the door: ``(name, argv, exit code, words of the
    error line)``, with ``door_files`` made in folder ``t``. Each must end with one error line before
    any model loads and write nothing; ``benchmarks/cli_edges.py`` times them (budget 1 s each)."""
    return [
        ("--out under /proc", ["create", "--seed", "1", "--out", "/proc/nope/x"], 1, "cannot write in /proc"),
        ("--from-voice 0.05 s clip", ["create", "--from-voice", f"{t}/tiny.wav", "--out", f"{t}/new"], 1,
         "needs at least 0.25 s"),
        ("--from-voice silent clip", ["create", "--from-voice", f"{t}/silent.wav", "--out", f"{t}/new"], 1,
         "the clip is silent"),
        ("--from-face 1x1 image", ["create", "--from-face", f"{t}/1x1.png", "--out", f"{t}/new"], 1, "1x1 px"),
        ("say, persona.json f0 1e308", ["say", "--persona", f"{t}/badf0", "--text", "Hello.", "--out", f"{t}/x.wav"],
         1, "f0_hz=1e+308 is outside"),
        ("--out ''", ["create", "--seed", "1", "--out", ""], 2, "the output path is empty"),
        ("--out . (an empty working folder)", ["create", "--seed", "1", "--out", "."], 1, "names no folder of its own"),
        ("say --out ''", ["say", "--persona", f"{t}/badf0", "--text", "Hi.", "--out", ""], 2, "output path is empty"),
        ("--seed of 5,000 nines", ["create", "--seed", "9" * 5000, "--out", f"{t}/new"], 2,
         "seed must be at most 2**64-1"),
        ("--seed 2**64", ["create", "--seed", str(2**64), "--out", f"{t}/new"], 2, "seed must be at most 2**64-1"),
        ("blend --a of 5,000 nines", ["blend", "--a", "9" * 5000, "--b", "1", "--out", f"{t}/new"], 2,
         "seed must be at most 2**64-1"),
        ("--weights /nonexistent info", ["--weights", f"{t}/nonexistent", "info"], 1, "does not exist"),
        ("--weights /nonexistent create", ["--weights", f"{t}/nonexistent", "create", "--seed", "1", "--out",
                                           f"{t}/new"], 1, "does not exist"),
        ("--lipsync ''", ["create", "--seed", "1", "--say", "Hi.", "--lipsync", "", "--out", f"{t}/new"], 2,
         "no format given"),
        ("--lipsync ,", ["say", "--persona", f"{t}/badf0", "--text", "Hi.", "--lipsync", ",", "--out", f"{t}/y.wav"],
         2, "no format given"),
        ("--say with escape bytes", ["create", "--seed", "1", "--say", "\x01\x02\x07\x1b[31m", "--out", f"{t}/new"], 2,
         "control characters (U+0001, U+0002, U+0007, U+001B)"),
        ("say --text with a bell", ["say", "--persona", f"{t}/badf0", "--text", "Hi\x07 there", "--out",
                                    f"{t}/z.wav"], 2, "control characters (U+0007)"),
        ("blend --t of 5,000 characters", ["blend", "--a", "1", "--b", "2", "--t", "x" * 5000, "--out", f"{t}/new"],
         2, "expected a number from 0 to 1"),
    ]


def test_seed_text_of_any_length():
    import argparse

    from digitalhuman.cli_args import seed_arg

    assert seed_arg("0" * 5000 + "1") == 1 and seed_arg("0") == 0 and seed_arg(str(2**64 - 1)) == 2**64 - 1
    for bad in ("9" * 5000, "1" + "0" * 5000, str(2**64)):
        with pytest.raises(argparse.ArgumentTypeError, match=r"^seed must be at most 2\*\*64-1$"):
            seed_arg(bad)


@pytest.mark.parametrize("name", [c[0] for c in door_cases("T")])
def test_errors_at_the_door(name, tmp_path, tiny_weights_no_voice, monkeypatch, no_models, capsys):
    """Issue 28: each case ends with one clear error line, before any model loads, and writes nothing."""
    tmp, weights = tmp_path, tiny_weights_no_voice
    door_files(tmp)
    argv, code, msg = {c[0]: c[1:] for c in door_cases(str(tmp))}[name]
    if argv[0] != "--weights":
        argv = ["--weights", str(weights)] + argv
    if "/proc/nope/x" in argv and not Path("/proc").is_dir():
        pytest.skip("no /proc here")
    cwd = tmp / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    before = tree(tmp)
    try:
        got = main(argv)
    except SystemExit as e:
        got = e.code
    err = capsys.readouterr().err
    last = err.strip().splitlines()[-1] if err.strip() else ""
    assert got == code and msg in last and "Traceback" not in err, (got, err[-500:])
    assert len(last) < 300 and sum("error:" in line for line in err.splitlines()) == 1, err[-500:]
    assert tree(tmp) == before and list(cwd.iterdir()) == []  # nothing written, not even a probe
    assert no_models == []  # answered before any model (not even the trait prior) loaded


@pytest.mark.parametrize("argv,msg", [
    (["create", "--seed", "1", "--say", "\U0001F600\U0001F600", "--out", "x"], "cannot be spoken"),
    (["create", "--seed", "1", "--say", "?!...", "--out", "x"], "cannot be spoken"),
    (["say", "--persona", "p", "--text", "\U0001F47B", "--out", "x.wav"], "cannot be spoken"),
    (["create", "--seed", "1", "--aged", "500", "--out", "x"], "between -100 and 100"),
    (["create", "--seed", "1", "--aged", "nan", "--out", "x"], "between -100 and 100"),
    (["batch", "--seeds", "0-1", "--no-voice", "--say", "Hi", "--out", "nv"], "--say needs a voice"),
    (["batch", "--seeds", "0-1", "--shards", "2", "--out", "nv"], "--shards goes with --shard auto"),
])
def test_usage_errors_write_nothing(argv, msg, tmp_path, monkeypatch, no_models, capsys):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as e:
        main(argv)
    err = capsys.readouterr().err
    assert e.value.code == 2 and msg in err.strip().splitlines()[-1] and "Traceback" not in err
    assert list(tmp_path.iterdir()) == [] and no_models == []  # no empty nv/ left behind


def test_aged_is_checked_not_clamped(tiny_weights):
    pipe = PersonaPipeline.from_pretrained(tiny_weights)
    p = pipe(seed=5, age=40)
    assert pipe.aged(p, 60).traits["age"] == 100 and pipe.aged(p, -40).traits["age"] == 0
    for years in (-50, 61, 500, float("nan")):
        with pytest.raises(PersonaError, match="between -40 and 60"):
            pipe.aged(p, years)


# ------------------------------------------------------------------------------------ shard auto
def test_auto_shard_reads_each_scheduler():
    assert auto_shard({"SLURM_ARRAY_TASK_ID": "1", "SLURM_ARRAY_TASK_COUNT": "4"})[:2] == (1, 4)
    assert auto_shard({"SLURM_ARRAY_TASK_ID": "11", "SLURM_ARRAY_TASK_COUNT": "4", "SLURM_ARRAY_TASK_MIN": "10"})[:2] \
        == (1, 4)
    slurm_step = {"SLURM_ARRAY_TASK_ID": "14", "SLURM_ARRAY_TASK_COUNT": "3", "SLURM_ARRAY_TASK_MIN": "10",
                  "SLURM_ARRAY_TASK_STEP": "2"}
    assert auto_shard(slurm_step)[:2] == (2, 3)
    assert auto_shard({"RANK": "3", "WORLD_SIZE": "8"})[:2] == (3, 8)
    assert auto_shard({"JOB_COMPLETION_INDEX": "2"}, shards=5)[:2] == (2, 5)
    assert auto_shard({"JOB_COMPLETION_INDEX": "2", "DIGITALHUMAN_SHARDS": "3"})[:2] == (2, 3)
    for env, shards, msg in [
        ({}, None, "no scheduler variables"),
        ({"JOB_COMPLETION_INDEX": "2"}, None, "--shards N"),
        ({"RANK": "4", "WORLD_SIZE": "4"}, None, "0 <= K < N"),
        ({"RANK": "-1", "WORLD_SIZE": "4"}, None, "not a non-negative integer"),
        ({"RANK": "1", "WORLD_SIZE": "4"}, 3, "does not match"),
        ({**slurm_step, "SLURM_ARRAY_TASK_ID": "13"}, None, "evenly spaced"),
    ]:
        with pytest.raises(PersonaError, match=msg):
            auto_shard(env, shards)


def test_shard_auto_under_slurm_merges_to_the_unsharded_batch(tmp_path, tiny_weights_no_voice, monkeypatch, capsys):
    w = ["--weights", str(tiny_weights_no_voice)]
    base = ["batch", "--seeds", "0-6", "--no-voice", "--quiet"]
    for var in ("RANK", "WORLD_SIZE", "JOB_COMPLETION_INDEX", "SLURM_ARRAY_TASK_MIN", "SLURM_ARRAY_TASK_STEP"):
        monkeypatch.delenv(var, raising=False)
    assert main(w + base + ["--out", str(tmp_path / "all")]) == 0
    monkeypatch.setenv("SLURM_ARRAY_TASK_COUNT", "2")
    for k in (0, 1):
        monkeypatch.setenv("SLURM_ARRAY_TASK_ID", str(k))
        assert main(w + base + ["--shard", "auto", "--out", str(tmp_path / f"s{k}")]) == 0
        assert f"shard {k}/2 (from SLURM_ARRAY_TASK_ID" in capsys.readouterr().err
    assert sorted(p.name for p in (tmp_path / "s1").iterdir() if p.is_dir()) == ["1", "3", "5"]
    assert main(["merge", str(tmp_path / "s0"), str(tmp_path / "s1"), "--out", str(tmp_path / "m")]) == 0
    whole = {k: v[0] for k, v in tree(tmp_path / "all").items()}
    assert whole == {k: v[0] for k, v in tree(tmp_path / "m").items()} and len(whole) > 7


# ------------------------------------------------------------------------------------------ info
def _info(before: list[str], after: tuple[str, ...] = ()) -> str:
    r = subprocess.run([sys.executable, "-m", "digitalhuman", *before, "info", *after], capture_output=True,
                       text=True, timeout=60, cwd=REPO)
    assert r.returncode == 0, r.stderr
    return r.stdout


def test_info_is_short_and_info_json_is_json(tiny_weights):
    text = _info([])
    lines = text.splitlines()
    assert len(lines) <= 40 and max(map(len, lines)) <= 160, (len(lines), max(map(len, lines)))
    assert "../shared" not in text and "{" not in text  # no dict reprs, no local data paths
    for must in (f"digitalhuman {__version__}", "face-gan-", "speech-vae-", "NOT for commercial use", "LICENSE-WEIGHTS.md",
                 "1,559 clips of 1,264 speakers (147 clips of 116 other speakers held out)", "WER"):
        assert must in text, must
    doc = json.loads(_info([], ("--json",)))
    assert doc["licence"]["code"] == "MIT" and doc["licence"]["weights_file"].endswith("LICENSE-WEIGHTS.md")
    assert doc["models"]["face"]["commercial_use"] is False and doc["models"]["voice"]["licence_spdx"] == "CC0-1.0"
    tiny = _info(["--weights", str(tiny_weights)]).splitlines()
    assert any("tiny-face" in s for s in tiny) and "figures: none in card.json" in tiny


def test_info_stays_short_whatever_the_card_holds(tmp_path):
    from digitalhuman.info import summary_lines

    (tmp_path / "m.bin").write_bytes(b"x")
    models = {f"model{i}": {"id": "x" * 300, "file": "m.bin", "sha256": "0" * 64, "trained_on": "word " * 200,
                            "licence": "y" * 500, "quality": {"checks": [{"check": "wer", "value": 0.1}]}}
              for i in range(30)}
    (tmp_path / "card.json").write_text(json.dumps({"format_version": 1, "models": models}))
    lines = summary_lines(tmp_path)
    assert len(lines) <= 40 and max(map(len, lines)) <= 160


def test_info_counts_are_the_cards():
    card = json.loads((REPO / "digitalhuman" / "weights" / "card.json").read_text())
    m = card["models"]["voice"]["heldout_metrics"]
    readme = (REPO / "README.md").read_text()
    assert f"{m['n_train_clips']:,} clips of {m['n_train_speakers']:,} speakers" in readme
    assert f"{m['n_eval_clips']:,} clips of {m['n_eval_speakers']:,} other speakers held out" in readme
    assert "1,745" not in card["models"]["voice"]["trained_on"]  # no second, different count


# ------------------------------------------------------------------------------------- licences
def test_licence_files_are_declared_and_shipped():
    meta = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert "MIT" in meta["license"] and "LicenseRef-UTKFace-NonCommercial" in meta["license"]
    for f in meta["license-files"]:
        assert (REPO / f).is_file(), f
    assert {"LICENSE", "digitalhuman/weights/LICENSE-WEIGHTS.md"} <= set(meta["license-files"])
    assert "MIT License" in (REPO / "LICENSE").read_text()
    weights_licence = (REPO / "digitalhuman" / "weights" / "LICENSE-WEIGHTS.md").read_text()
    assert "non-commercial" in weights_licence and "LicenseRef-UTKFace-NonCommercial" in weights_licence
    card = json.loads((REPO / "digitalhuman" / "weights" / "card.json").read_text())
    assert card["licence_file"] == "LICENSE-WEIGHTS.md"
    for name in ("face", "face_attributes", "fusion"):
        assert card["models"][name]["commercial_use"] is False
        assert card["models"][name]["licence_spdx"] == "LicenseRef-UTKFace-NonCommercial"


def test_gitignore_covers_the_readme_outputs():
    if subprocess.run(["git", "-C", str(REPO), "rev-parse"], capture_output=True).returncode != 0:
        pytest.skip("not a git checkout")
    for path in ("npc42/", "npc42/face.png", "hello.wav", "hello.visemes.json"):
        assert subprocess.run(["git", "-C", str(REPO), "check-ignore", "-q", path]).returncode == 0, path
