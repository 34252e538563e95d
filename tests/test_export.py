"""ONNX export of the tiny models: files, manifest, parity with PyTorch, dynamic batch, seeded base voice."""

from __future__ import annotations

import json

import numpy as np
import onnxruntime as ort
import pytest
import torch

from digitalhuman.checkpoint import sha256_file
from digitalhuman.export import BASE_VOICE_FILE, FACE_FILE, PARITY_BAR, VOICE_FILE, export_onnx
from digitalhuman.face.gan import make_cond
from digitalhuman.face.model import FaceModel
from digitalhuman.pipeline import ModelNotAvailable
from digitalhuman.weights_card import read_card
from digitalhuman.voice.text import load_phoneme_id_map, phonemes_to_ids, phonemize
from digitalhuman.voice.vae import load_voice_vae


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
    for name in (FACE_FILE, VOICE_FILE, BASE_VOICE_FILE, BASE_VOICE_FILE + ".json", "manifest.json", "README.txt"):
        assert (out / name).is_file(), name
    assert json.loads((out / "manifest.json").read_text()) == manifest
    for name, entry in manifest["files"].items():
        assert entry["sha256"] == sha256_file(out / name)
    face = manifest["files"][FACE_FILE]
    assert [i["name"] for i in face["inputs"]] == ["z", "cond"] and face["opset"]["ai.onnx"] == 17
    assert face["inputs"][0]["shape"] == ["batch", 128] and face["outputs"][0]["shape"] == ["batch", 3, 16, 16]
    voice = manifest["files"][VOICE_FILE]
    assert [i["name"] for i in voice["inputs"]] == ["cond", "eps"] and voice["outputs"][0]["name"] == "features"
    base = manifest["files"][BASE_VOICE_FILE]
    assert {"noise_0", "noise_1"} <= {i["name"] for i in base["inputs"]}
    assert "durations" in {o["name"] for o in base["outputs"]}
    assert "phoneme_id_map" in json.loads((out / (BASE_VOICE_FILE + ".json")).read_text())
    assert "CC0" in (out / "README.txt").read_text()


def test_parity_64_seeds(exported):
    _, manifest = exported
    p = manifest["parity"]
    assert p["seeds"] == 64
    assert 0 <= p["face_generator_max_abs_diff"] <= PARITY_BAR
    assert 0 <= p["voice_prior_decoder_max_abs_diff"] <= PARITY_BAR
    assert p["base_voice_bit_identical"] is True


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

    vae = load_voice_vae(entries["voice"].file)
    female, age = rng.random(batch, dtype=np.float32), rng.uniform(16, 90, batch).astype(np.float32)
    eps = rng.standard_normal((batch, vae.cfg.latent_dim), dtype=np.float32)
    (feats,) = _session(out / VOICE_FILE).run(["features"], {"cond": vae.make_cond(female, age).numpy(), "eps": eps})
    assert feats.shape == (batch, vae.cfg.feat_dim)
    assert np.abs(feats - vae.sample_voice(female, age, eps)).max() <= PARITY_BAR


def test_seeded_base_voice_is_repeatable(exported):
    out, _ = exported
    id_map = load_phoneme_id_map(out / (BASE_VOICE_FILE + ".json"))  # the copy written next to the graph
    ids = phonemes_to_ids(phonemize("Welcome back, traveller.", id_map)[0].symbols, id_map)

    def feeds(seed: int) -> dict[str, np.ndarray]:
        rng = np.random.Generator(np.random.PCG64(seed))
        return {"input": np.asarray([ids], np.int64), "input_lengths": np.asarray([len(ids)], np.int64),
                "scales": np.asarray([0.667, 1.0, 0.8], np.float32),
                "noise_0": rng.standard_normal(2 * len(ids), dtype=np.float32),
                "noise_1": rng.standard_normal(192 * 8 * len(ids), dtype=np.float32)}

    names = ["output", "durations", "noise_1_count"]
    a, dur_a, count = _session(out / BASE_VOICE_FILE).run(names, feeds(7))
    b, dur_b, _ = _session(out / BASE_VOICE_FILE).run(names, feeds(7))
    assert int(count[0]) <= 192 * 8 * len(ids)  # enough noise was given
    assert a.size == 256 * max(1, int(dur_a.sum())) and a.size > 0.3 * 22050
    assert a.tobytes() == b.tobytes() and dur_a.tobytes() == dur_b.tobytes()
    c, _, _ = _session(out / BASE_VOICE_FILE).run(names, feeds(8))
    assert a.shape != c.shape or not np.array_equal(a, c)  # the noise input is really used


def test_needs_face_and_voice(tiny_weights_no_voice, tmp_path):
    with pytest.raises(ModelNotAvailable, match="voice"):
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


def test_voice_graph_applies_age_strength(tiny_weights):
    """The exported prior-decoder presents age like the pipeline (``presented_prior``) at strength != 1."""
    import torch

    from digitalhuman.export import _prior_decoder, _voice_parity
    from digitalhuman.runtime import session, torch_to_onnx
    from digitalhuman.weights_card import read_card
    from digitalhuman.voice.vae import load_voice_vae

    vae = load_voice_vae(read_card(tiny_weights)["voice"].file)
    vae.age_strength = 2.5
    Z, F = vae.cfg.latent_dim, vae.cfg.feat_dim
    shapes = {"cond": ["batch", 2], "eps": ["batch", Z], "features": ["batch", F]}
    data = torch_to_onnx(_prior_decoder(vae), (torch.zeros(2, 2), torch.zeros(2, Z)), ["cond", "eps"],
                          ["features"], shapes, 17)
    assert _voice_parity(vae, session(data), 16) <= 1e-4
    vae.age_strength = 1.0  # the same graph no longer matches the unguided prior
    assert _voice_parity(vae, session(data), 16) > 1e-3
