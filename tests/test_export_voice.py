"""The voice part of the export is complete: the reference script, run where torch and digitalhuman
cannot be imported, gives each persona's style exactly as ``PersonaVoice`` computes it (float32, bit
for bit) for personas of each gender and accent, a child and mixes of stock voices; Kokoro called as
the manifest says (joined parts, sha256, the added ``durations``) speaks with it."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from importlib.resources import files

import numpy as np
import pytest

from digitalhuman.export import VOICE_REFERENCE_SCRIPT, export_onnx
from digitalhuman.pipeline import PersonaPipeline

PERSONAS = {  # folder name: pipeline arguments
    "woman_us": dict(seed=1, gender="female", age=30, accent="us"),
    "man_gb": dict(seed=2, gender="male", age=50, accent="gb"),
    "old_woman_gb": dict(seed=3, gender="female", age=80, accent="gb"),
    "boy": dict(seed=4, gender="male", age=9),
    "mix": dict(seed=5, gender="female", age=35, voice_like={"af_heart": 0.6, "bm_george": 0.4}),
    "like_one": dict(seed=6, gender="male", age=40, voice_like="am_adam", near=0.8),
}
LENGTHS = (1, 2, 33, 400, 509, 510)


def _block(folder):
    """A folder that, first on PYTHONPATH, makes `import torch` and `import digitalhuman` fail."""
    for name in ("torch", "digitalhuman"):
        (folder / name).mkdir(parents=True, exist_ok=True)
        (folder / name / "__init__.py").write_text(f"raise ImportError('{name} is blocked in this process')\n")
    return folder


def _run_blocked(tmp_path, script, *args):
    blocked = _block(tmp_path / "block")
    code = ("import sys, runpy; sys.path.insert(0, sys.argv[1]); sys.argv = sys.argv[2:]; "
            "runpy.run_path(sys.argv[0], run_name='__main__'); "
            "assert 'torch' not in sys.modules and 'digitalhuman' not in sys.modules")
    return subprocess.run([sys.executable, "-I", "-c", code, str(blocked), str(script), *map(str, args)],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path)


@pytest.fixture(scope="module")
def setup(tiny_weights, tmp_path_factory):
    root = tmp_path_factory.mktemp("export_voice")
    pipe = PersonaPipeline.from_pretrained(tiny_weights)
    folders = {}
    for name, kw in PERSONAS.items():
        pipe(face=False, mouths=False, **kw).save(root / "personas" / name)
        folders[name] = root / "personas" / name
    out = root / "onnx"
    export_onnx(out, tiny_weights, seeds=2)
    return pipe, folders, out


def test_reference_script_gives_persona_voice_styles(setup, tmp_path):
    pipe, folders, out = setup
    res = _run_blocked(tmp_path, out / VOICE_REFERENCE_SCRIPT, out, *folders.values(), "--out", tmp_path / "voices")
    assert res.returncode == 0, res.stderr[-2000:]
    pv = pipe.voice
    assert any(k.startswith("mix_") for k in json.loads((folders["mix"] / "persona.json").read_text())["voice"])
    for name, folder in folders.items():
        params = json.loads((folder / "persona.json").read_text())["voice"]
        pack = np.load(tmp_path / "voices" / f"{name}.voice.npy")
        assert pack.dtype == np.float32 and pack.shape == (510, 1, 256)
        w_spk, w_pro = pv.weights(params)
        for n in LENGTHS:
            want = pv.prior.style(w_spk, w_pro, n)
            assert pack[n - 1, 0].tobytes() == want.tobytes(), (name, n)
        want_all = np.stack([pv.prior.style(w_spk, w_pro, n) for n in range(1, 511)])
        assert pack[:, 0].tobytes() == want_all.tobytes(), name
        info = json.loads((tmp_path / "voices" / f"{name}.voice.json").read_text())
        assert info["speed"] == params["speed"] and info["lexicon"] == ("gb" if params["british"] >= 0.5 else "us")
        assert info["age_cues_needed"] is (params["child"] > 0 or params["pitch_st"] != 0)
    assert json.loads((tmp_path / "voices" / "boy.voice.json").read_text())["age_cues_needed"] is True


def test_reference_script_refuses_another_prior(setup, tmp_path):
    _, folders, out = setup
    doc = json.loads((folders["woman_us"] / "persona.json").read_text())
    doc["models"]["voice_prior"]["sha256"] = "0" * 64
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "persona.json").write_text(json.dumps(doc))
    res = _run_blocked(tmp_path, out / VOICE_REFERENCE_SCRIPT, out, tmp_path / "other", "--out", tmp_path / "v")
    assert res.returncode != 0 and "another voice" in res.stderr and not (tmp_path / "v").exists()
    res = _run_blocked(tmp_path, out / VOICE_REFERENCE_SCRIPT, out, tmp_path / "other", "--out", tmp_path / "v",
                       "--other-prior")
    assert res.returncode == 0, res.stderr[-2000:]


def test_kokoro_called_as_the_manifest_says(setup):
    """The parts joined as the manifest says, the durations output added, the tokens from the exported
    vocabulary and the style from the reference: the audio and durations the pipeline's Kokoro gives."""
    import importlib.util

    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper

    from digitalhuman.voice.text import phonemize

    pipe, folders, out = setup
    manifest = json.loads((out / "manifest.json").read_text())
    model = manifest["voice"]["model"]
    blob = b"".join(files(p.split("==")[0].replace("-", "_")).joinpath(model["source"]["file_in_each"]).read_bytes()
                    for p in model["source"]["pypi_packages"])
    assert len(blob) == model["bytes"] and hashlib.sha256(blob).hexdigest() == model["sha256"]
    graph = onnx.load_from_string(blob)
    dur = model["durations"]
    graph.graph.node.append(helper.make_node("Identity", [dur["tensor"]], [dur["output"]]))
    graph.graph.output.append(helper.make_tensor_value_info(dur["output"], TensorProto.FLOAT, None))
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    sess = ort.InferenceSession(graph.SerializeToString(), opts, providers=["CPUExecutionProvider"])

    spec = importlib.util.spec_from_file_location("voice_ref", out / VOICE_REFERENCE_SCRIPT)
    ref = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ref)
    prior = ref.load_prior(out)
    voice = json.loads((folders["man_gb"] / "persona.json").read_text())["voice"]
    symbols = phonemize("Good morning.", "gb")[0].symbols
    table = json.loads((out / manifest["voice"]["vocabulary"]).read_text())["vocab"]
    tokens = np.array([[0] + [table[s] for s in symbols] + [0]], np.int64)
    style = ref.style(prior, *ref.voice_weights(prior, voice), len(symbols))[None]
    audio, frames = sess.run(["audio", dur["output"]], {"tokens": tokens, "style": style,
                                                         "speed": np.array([voice["speed"]], np.float32)})
    assert audio.size == dur["hop_samples"] * int(frames.sum()) and frames.size == tokens.shape[1]

    from digitalhuman.voice.kokoro import shared_kokoro
    from digitalhuman.voice.text import symbols_to_tokens

    assert tokens[0].tolist() == symbols_to_tokens(symbols)
    pv = pipe.voice  # the pipeline's Kokoro (any thread count gives the same samples; 1 shares the tests' session)
    want = shared_kokoro(1).synthesize(symbols_to_tokens(symbols), pv.prior.style(*pv.weights(voice), len(symbols)),
                                       float(voice["speed"]))
    assert np.asarray(audio, np.float32).reshape(-1).tobytes() == want.audio.tobytes()
    assert np.array_equal(np.asarray(frames).reshape(-1).astype(np.int64), want.durations)
