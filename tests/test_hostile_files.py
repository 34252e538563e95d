"""Hostile and damaged files: weights, model cards, training checkpoints, persona folders.

Every case must end in a clear refusal (``CheckpointError`` / ``PersonaError``, or exit code 1 with
a one-line message from the CLI) and must neither run code from the file nor write anywhere but
the output the user asked for. Directory trees are compared byte for byte before and after.
"""

from __future__ import annotations

import builtins
import hashlib
import json
import os
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from digitalhuman.checkpoint import (CheckpointError, load_training_checkpoint, load_weights,
                                     save_training_checkpoint, save_weights)
from digitalhuman.cli import main
from digitalhuman.pipeline import PersonaPipeline
from digitalhuman.weights_card import write_card

# --------------------------------------------------------------------------------------- helpers


def tree(root: Path) -> dict[str, tuple]:
    """Every path under ``root`` -> ("dir",) / ("file", sha256) / ("link", target)."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            rel = str(p.relative_to(root))
            if p.is_symlink():
                out[rel] = ("link", os.readlink(p))
            elif p.is_dir():
                out[rel] = ("dir",)
            else:
                out[rel] = ("file", hashlib.sha256(p.read_bytes()).hexdigest())
    return out


def run_cli(argv, capsys) -> tuple[int, str]:
    code = main([str(a) for a in argv])
    err = capsys.readouterr().err
    return code, err


def one_line_error(err: str) -> bool:
    return err.count("\n") == 1 and err.startswith("digitalhuman: error:") and "Traceback" not in err


def copy_weights(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def card(folder: Path) -> dict:
    return json.loads((folder / "card.json").read_text())


# ================================================================================ weight files
MODELS = ["face", "fusion", "voice", "voice_prior", "face_attributes"]


@pytest.mark.parametrize("model", MODELS)
def test_changed_byte_in_a_weight_file_is_refused_by_sha256(model, tiny_weights, tmp_path):
    w = copy_weights(tiny_weights, tmp_path / "w")
    f = w / card(w)["models"][model]["file"]
    data = bytearray(f.read_bytes())
    data[len(data) // 2] ^= 0x01  # one bit, in the tensor data: still a loadable safetensors file
    f.write_bytes(bytes(data))
    with pytest.raises(CheckpointError) as e:
        PersonaPipeline.from_pretrained(w)
    msg = str(e.value)
    assert f.name in msg and "sha256" in msg and "does not match" in msg and "reinstall" in msg, msg


@pytest.mark.parametrize("tamper", ["append", "truncate", "empty", "replace"])
def test_tampered_face_file_via_the_cli(tamper, tiny_weights, tmp_path, capsys):
    w = copy_weights(tiny_weights, tmp_path / "w")
    f = w / "face.safetensors"
    data = f.read_bytes()
    f.write_bytes({"append": data + b"\0", "truncate": data[:-100], "empty": b"",
                   "replace": (w / "fusion.safetensors").read_bytes()}[tamper])
    before = tree(tmp_path)
    code, err = run_cli(["--weights", w, "create", "--seed", "1", "--out", tmp_path / "npc"], capsys)
    assert code == 1 and one_line_error(err) and "sha256" in err and "face.safetensors" in err, err
    assert tree(tmp_path) == before


def _metadata(meta: dict[str, str], layout: str) -> dict[str, str]:
    """``packed``: one ``digitalhuman`` key holding JSON (what save_weights writes); ``flat``: the
    older layout with one metadata key per field (still read)."""
    return {"digitalhuman": json.dumps(meta)} if layout == "packed" else meta


def _write(path: Path, meta: dict[str, str], layout: str = "packed", tensors=None) -> Path:
    save_file(tensors or {"trait_counts": torch.zeros(2, 5, 3)}, str(path), metadata=_metadata(meta, layout))
    return path


LAYOUTS = ["packed", "flat"]


@pytest.mark.parametrize("meta,expect", [
    ({"kind": "face_generator", "format_version": "1", "config": "{}"}, "holds a 'face_generator' model"),
    ({"format_version": "1", "config": "{}"}, "holds a None model"),
    ({"kind": "FUSION", "format_version": "1", "config": "{}"}, "expected 'fusion'"),
    ({"kind": "fusion", "format_version": "2", "config": "{}"}, "format version '2' is not supported"),
    ({"kind": "fusion", "format_version": "0", "config": "{}"}, "not supported"),
    ({"kind": "fusion", "format_version": "abc", "config": "{}"}, "not supported"),
    ({"kind": "fusion", "format_version": "1.0", "config": "{}"}, "not supported"),
    ({"kind": "fusion", "format_version": "999999999999999999999", "config": "{}"}, "not supported"),
    ({"kind": "fusion", "config": "{}"}, "not supported"),
])
@pytest.mark.parametrize("layout", LAYOUTS)
def test_wrong_kind_or_unknown_format_version_is_refused(meta, expect, layout, tmp_path):
    f = _write(tmp_path / "fusion.safetensors", meta, layout)
    with pytest.raises(CheckpointError) as e:
        load_weights(f, kind="fusion")
    assert expect in str(e.value) and "fusion.safetensors" in str(e.value)


@pytest.mark.parametrize("meta", [
    {"kind": "voice_vae", "format_version": "1", "config": "{}"},
    {"kind": "face_generator", "format_version": "7", "config": "{}"},
])
def test_wrong_kind_or_version_through_the_pipeline_even_with_a_matching_card(meta, tiny_weights, tmp_path):
    """The card's sha256 matches (a consistent but wrong weights folder): the metadata still refuses it."""
    w = copy_weights(tiny_weights, tmp_path / "w")
    tensors, _, _ = load_weights(w / "face.safetensors", kind="face_generator")
    save_file(tensors, str(w / "face.safetensors"), metadata=_metadata(meta, "packed"))
    models = {k: {kk: vv for kk, vv in v.items() if kk != "sha256"} for k, v in card(w)["models"].items()}
    write_card(w, models)
    with pytest.raises(CheckpointError) as e:
        PersonaPipeline.from_pretrained(w)
    assert "face.safetensors" in str(e.value)


@pytest.mark.parametrize("blob", [
    b"",
    b"\x00" * 7,
    b"\xff" * 8 + b"{}",  # header length 2**64-1
    (10).to_bytes(8, "little") + b"not json!!",
    (2).to_bytes(8, "little") + b"{}",  # no tensors, no metadata
    (64).to_bytes(8, "little") + b'{"x": {"dtype": "F32", "shape": [1000000], "data_offsets": [0, 4000000]}}',
    b"PK\x03\x04" + b"\x00" * 100,  # a zip (torch.save) renamed
    pickle.dumps({"a": 1}),
])
def test_not_a_safetensors_file_is_refused(blob, tmp_path):
    f = tmp_path / "fusion.safetensors"
    f.write_bytes(blob)
    with pytest.raises(CheckpointError):
        load_weights(f, kind="fusion", expected_sha256=hashlib.sha256(blob).hexdigest())


@pytest.mark.parametrize("meta", [
    {"kind": "fusion", "format_version": "1"},  # no config at all
    {"kind": "fusion", "format_version": "1", "config": "{not json"},
])
@pytest.mark.parametrize("layout", LAYOUTS)
def test_weight_file_without_a_readable_config_is_refused(meta, layout, tmp_path):
    """Found here: ``load_weights`` raised KeyError / JSONDecodeError instead of CheckpointError."""
    f = _write(tmp_path / "fusion.safetensors", meta, layout)
    with pytest.raises(CheckpointError):
        load_weights(f, kind="fusion")


@pytest.mark.parametrize("packed", ["{not json", "[]", "null", '"fusion"', "1", '{"kind": ["fusion"]}'])
def test_packed_metadata_that_is_not_an_object_is_refused(packed, tmp_path):
    """The ``digitalhuman`` metadata key must hold a JSON object; anything else is a CheckpointError."""
    f = tmp_path / "fusion.safetensors"
    save_file({"trait_counts": torch.zeros(2)}, str(f), metadata={"digitalhuman": packed})
    with pytest.raises(CheckpointError):
        load_weights(f, kind="fusion")


@pytest.mark.parametrize("change", ["unknown config key", "wrong tensor shapes"])
def test_face_weights_that_do_not_fit_the_model_are_refused(change, tiny_weights, tmp_path, capsys):
    """Like the voice VAE loader does: a config or tensors that do not fit -> CheckpointError, not a traceback."""
    w = copy_weights(tiny_weights, tmp_path / "w")
    tensors, config, _ = load_weights(w / "face.safetensors", kind="face_generator")
    if change == "unknown config key":
        config = {**config, "bogus": 1}
    else:
        tensors = {k: torch.zeros(tuple(s + 1 for s in v.shape)) for k, v in tensors.items()}
    save_weights(w / "face.safetensors", tensors, kind="face_generator", config=config)
    write_card(w, {k: {kk: vv for kk, vv in v.items() if kk != "sha256"} for k, v in card(w)["models"].items()})
    code, err = run_cli(["--weights", w, "create", "--seed", "1", "--out", tmp_path / "npc"], capsys)
    assert code == 1 and one_line_error(err), err


@pytest.mark.parametrize("text", [
    '{"models": []}',
    '{"models": "x"}',
    "{}",
    "[]",
    "null",
    "{",
    b"\xff\xfe{",
    "[" * 100_000 + "]" * 100_000,
    '{"models": {"fusion": {"file": "fusion.safetensors", "id": "x"}}}',
    '{"models": {"fusion": {"file": "fusion.safetensors", "id": "x", "sha256": 5}}}',
])
def test_malformed_model_card_is_a_checkpoint_error(text, tiny_weights_no_voice, tmp_path, capsys):
    w = copy_weights(tiny_weights_no_voice, tmp_path / "w")
    (w / "card.json").write_bytes(text if isinstance(text, bytes) else text.encode())
    with pytest.raises(CheckpointError):
        PersonaPipeline.from_pretrained(w)
    code, err = run_cli(["--weights", w, "create", "--seed", "1", "--out", tmp_path / "npc"], capsys)
    assert code == 1 and one_line_error(err), err


# ======================================================================= training checkpoints
MARKER_NAME = "PWNED"


class MarkerPayload:
    """Unpickling this would create the marker file (if a loader ever ran pickled code)."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (builtins.exec, (f"open({self.marker!r}, 'w').write('pwned')",))


class ShellPayload:
    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch '{self.marker}'",))


class ClassPayload:
    """An instance of a class of this test module (a GLOBAL outside the allow-list)."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __setstate__(self, state):
        Path(state["marker"]).write_text("pwned")


@pytest.mark.parametrize("payload", [MarkerPayload, ShellPayload, ClassPayload])
@pytest.mark.parametrize("fmt", ["torch_zip", "torch_legacy", "raw_pickle"])
def test_training_checkpoint_with_a_pickle_payload_is_refused(payload, fmt, tmp_path):
    marker = tmp_path / MARKER_NAME
    state = {"step": 10, "model": {"w": torch.zeros(2)}, "extra": payload(marker)}
    path = tmp_path / "checkpoint.pt"
    if fmt == "torch_zip":
        torch.save(state, path)
    elif fmt == "torch_legacy":
        torch.save(state, path, _use_new_zipfile_serialization=False)
    else:
        path.write_bytes(pickle.dumps(state, protocol=2))
    assert not marker.exists()  # saving did not run it
    with pytest.raises(CheckpointError) as e:
        load_training_checkpoint(path)
    assert "refused to load" in str(e.value) and "checkpoint.pt" in str(e.value)
    assert not marker.exists(), "the pickle payload ran"


def test_plain_training_checkpoint_still_loads(tmp_path):
    state = {"step": 3, "model": {"w": torch.arange(4.0)}, "cfg": {"lr": 0.002, "name": "x"}, "rng": [1, 2]}
    save_training_checkpoint(tmp_path / "ok.pt", state)
    back = load_training_checkpoint(tmp_path / "ok.pt")
    assert back["step"] == 3 and torch.equal(back["model"]["w"], state["model"]["w"]) and back["cfg"] == state["cfg"]


# ============================================================================ persona folders
@pytest.fixture(scope="module")
def persona_folder(tiny_weights, tmp_path_factory) -> Path:
    pipe = PersonaPipeline.from_pretrained(tiny_weights)
    folder = tmp_path_factory.mktemp("persona") / "npc"
    pipe(seed=5, lines=["Hello there."]).save(folder)
    return folder


def _sandbox(tmp_path: Path, persona_folder: Path) -> tuple[Path, Path]:
    """tmp/sandbox/a/b/npc (a copy of the persona) plus a file outside it; returns (sandbox, npc)."""
    sandbox = tmp_path / "sandbox"
    npc = sandbox / "a" / "b" / "npc"
    shutil.copytree(persona_folder, npc)
    (sandbox / "a" / "keep.txt").write_text("mine")
    return sandbox, npc


HOSTILE_NAMES = ["../../etc/x", "/abs/path", "..\\x", "../x.wav", "a/b.wav", "..", ".", "", "C:\\x.wav", "C:x.wav",
                 "x.wav\x00", ".hidden.wav", "voice_00.wav/../../../x", "~/x.wav", "\\\\server\\share\\x.wav"]


@pytest.mark.parametrize("field", ["face", "audio"])
@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_say_refuses_a_persona_with_unsafe_file_names(field, name, persona_folder, tiny_weights, tmp_path, capsys):
    sandbox, npc = _sandbox(tmp_path, persona_folder)
    doc = json.loads((npc / "persona.json").read_text())
    if field == "face":
        doc["face"] = name
    else:
        doc["lines"][0]["audio"] = name
    (npc / "persona.json").write_text(json.dumps(doc))
    before = tree(tmp_path)
    for out in (None, sandbox / "new" / "hello.wav"):
        argv = ["--weights", tiny_weights, "say", "--persona", npc, "--text", "Hello."]
        code, err = run_cli(argv + (["--out", out] if out else []), capsys)
        assert code == 1 and one_line_error(err), err
        assert "persona.json is invalid" in err, err
        assert tree(tmp_path) == before
    assert not Path("/abs/path").exists()


def test_say_out_into_a_new_folder_writes_only_there(persona_folder, tiny_weights, tmp_path, capsys):
    sandbox, npc = _sandbox(tmp_path, persona_folder)
    before = tree(tmp_path)
    out = sandbox / "new" / "deeper" / "hello.wav"
    code, err = run_cli(["--weights", tiny_weights, "say", "--persona", npc, "--text", "Welcome back.",
                         "--out", out], capsys)
    assert code == 0, err
    after = tree(tmp_path)
    added = {k for k in after if k not in before}
    assert {k: v for k, v in after.items() if k in before} == before  # nothing changed
    assert added == {"sandbox/new", "sandbox/new/deeper", "sandbox/new/deeper/hello.wav",
                     "sandbox/new/deeper/hello.visemes.json"}, added
    import soundfile as sf

    audio, sr = sf.read(out)
    assert len(audio) > 0.2 * sr and np.isfinite(audio).all()
    vis = json.loads(out.with_suffix(".visemes.json").read_text())
    assert vis["text"] == "Welcome back." and vis["visemes"]


@pytest.mark.parametrize("which", [".wav", ".visemes.json"])
def test_say_does_not_follow_a_planted_symlink(which, persona_folder, tiny_weights, tmp_path, capsys):
    """A persona folder from elsewhere may hold a symlink where ``say`` writes by default
    (``say_<sha256(text)[:10]>.wav`` and ``.visemes.json``): the file it points to must stay untouched."""
    sandbox, npc = _sandbox(tmp_path, persona_folder)
    text = "Hello."
    victim = sandbox / "a" / "keep.txt"
    stem = f"say_{hashlib.sha256(text.encode()).hexdigest()[:10]}"
    (npc / f"{stem}{which}").symlink_to(victim)
    code, err = run_cli(["--weights", tiny_weights, "say", "--persona", npc, "--text", text], capsys)
    assert code == 1 and "add --overwrite" in err, err  # an existing name (even a link) is not overwritten
    assert victim.read_text() == "mine"
    code, err = run_cli(["--weights", tiny_weights, "say", "--persona", npc, "--text", text, "--overwrite"], capsys)
    assert code == 0, err
    assert victim.read_text() == "mine", "say wrote through a symlink to a file outside the persona folder"
    assert not (npc / f"{stem}{which}").is_symlink()  # the link itself was replaced


@pytest.mark.parametrize("voice", [
    {"drop": "speed"},
    {"drop": "s00"},
    {"formant": 0.0},
    {"formant": -1.0},
    {"formant": 1e9},
    {"formant": float("nan")},
    {"child": 1.0, "f0_hz": 0.0},
    {"f0_hz": float("nan")},
    {"f0_hz": -100.0},
    {"speed": 0.0},
    {"speed": 1e9},
    {"s00": float("nan")},
    {"s01": 1e300},
    {"p00": float("inf")},
    {"pitch_st": 1e9},
    {"mix_af_nobody": 1.0},
    {"mix_af_heart": 1.0, "mix_am_adam": -5.0},
    {"eq_00": 1.0},
], ids=lambda v: "-".join(f"{k}={v[k]}" for k in v))
def test_say_with_hostile_voice_parameters_ends_cleanly(voice, persona_folder, tiny_weights, tmp_path, capsys):
    """persona.json's ``voice`` is a free dict of floats: missing keys, zero, negative, NaN or huge
    values must give audio or a one-line error (exit 1), never a traceback or a huge allocation."""
    sandbox, npc = _sandbox(tmp_path, persona_folder)
    doc = json.loads((npc / "persona.json").read_text())
    if "drop" in voice:
        del doc["voice"][voice["drop"]]
    else:
        doc["voice"].update(voice)
    (npc / "persona.json").write_text(json.dumps(doc, allow_nan=True))
    out = tmp_path / "out" / "x.wav"
    code, err = run_cli(["--weights", tiny_weights, "say", "--persona", npc, "--text", "Hello there.", "--out", out],
                        capsys)
    assert code in (0, 1), code
    if code == 1:
        assert one_line_error(err), err
    else:
        import soundfile as sf

        audio, sr = sf.read(out)
        assert np.isfinite(audio).all() and len(audio) < 30 * sr
