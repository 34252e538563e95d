"""The ONNX export is complete: faces rebuilt from the export alone (a process where torch and
digitalhuman cannot be imported) match face.png, for the 64 px-style generator, the 128 px
skip-RGB layout and the shipped layout with a learned 2x top level (refiner); the README gives the exact formulas; the lip-sync maps ship beside the models."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from digitalhuman.export import export_onnx
from digitalhuman.export_readme import LIPSYNC_MAP_FILE, REFERENCE_SCRIPT, VISEME_MAP_FILE
from digitalhuman.lipsync import mapping_doc
from digitalhuman.pipeline import DEFAULT_PSI, PersonaPipeline
from digitalhuman.voice.visemes import PHONEME_TO_VISEME
from tests.conftest import TINY_FACE_REFINED, TINY_FACE_SKIP, make_tiny_weights

SEEDS = (0, 7, 42, 2**64 - 1)
STRENGTHS = {"gender_strength": "1.5", "age_strength": "1.5"}  # as the shipped face weights carry them (0.5.0 on)


def _block(folder):
    """A folder that, first on PYTHONPATH, makes `import torch` and `import digitalhuman` fail."""
    for name in ("torch", "digitalhuman"):
        (folder / name).mkdir(parents=True)
        (folder / name / "__init__.py").write_text(f"raise ImportError('{name} is blocked in this process')\n")
    return folder


@pytest.fixture(scope="module", params=["plain", "skip_rgb", "refined"])
def exported(request, tmp_path_factory):
    root = tmp_path_factory.mktemp(f"rebuild_{request.param}")
    if request.param == "plain":
        weights = make_tiny_weights(root / "w", face_meta=STRENGTHS)
    elif request.param == "refined":  # the shipped layout: 64 px-style generator + learned 2x top level,
        # with a children's age map as shipped since 0.6.0 (the 8-year-old is conditioned as 12)
        age_map = {"requested": [0.0, 8.0, 15.0, 116.0], "condition": [1.0, 12.0, 15.0, 116.0]}
        weights = make_tiny_weights(root / "w", face=TINY_FACE_REFINED,
                                    face_meta=STRENGTHS | {"age_map": json.dumps(age_map)})
    else:  # with a latent age shift, which the rebuild must apply to z (the 70-year-old is shifted)
        direction = np.cos(np.arange(TINY_FACE_SKIP.z_dim)).tolist()
        shift = {"requested": [0.0, 30.0, 80.0], "shift": [0.0, 0.5, 2.5], "direction": direction}
        weights = make_tiny_weights(root / "w", face=TINY_FACE_SKIP, face_meta=STRENGTHS | {"age_shift": json.dumps(shift)})
    pipe = PersonaPipeline.from_pretrained(weights, voice=False)
    folders = []
    for i, seed in enumerate(SEEDS):
        constraints = [{}, {"gender": "male", "age": 70}, {"gender": "female", "age": 8, "race": "asian"},
                       {"race": "other"}][i]
        folder = root / "personas" / str(i)
        pipe(seed=seed, voice=False, **constraints).save(folder)
        folders.append(folder)
    out = root / "onnx"
    manifest = export_onnx(out, weights, seeds=8)
    return out, manifest, folders, request.param


def test_faces_rebuilt_without_torch_match_face_png(exported, tmp_path):
    out, manifest, folders, kind = exported
    assert manifest["files"]["face_generator.onnx"]["skip_rgb"] is (kind == "skip_rgb")
    assert manifest["files"]["face_generator.onnx"]["refined"] is (kind == "refined")
    assert manifest["files"]["face_generator.onnx"]["resolution"] == (32 if kind != "plain" else 16)
    blocked = _block(tmp_path / "block")
    code = ("import sys, runpy; sys.path.insert(0, sys.argv[1]); sys.argv = sys.argv[2:]; "
            "runpy.run_path(sys.argv[0], run_name='__main__'); "
            "assert 'torch' not in sys.modules and 'digitalhuman' not in sys.modules")
    res = subprocess.run([sys.executable, "-I", "-c", code, str(blocked), str(out / REFERENCE_SCRIPT), str(out),
                          *map(str, folders), "--out", str(tmp_path / "faces")],
                         capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-2000:]
    for folder in folders:  # the pipeline runs the same graph in onnxruntime: the same bytes
        want = np.asarray(Image.open(folder / "face.png"), np.int16)
        got = np.asarray(Image.open(tmp_path / "faces" / f"{folder.name}.png"), np.int16)
        assert got.shape == want.shape
        assert np.array_equal(got, want), f"{folder.name}: differs by up to {int(np.abs(got - want).max())} levels"


def test_readme_states_every_number(exported):
    out, manifest, _, _ = exported
    face = manifest["files"]["face_generator.onnx"]
    text = (out / "README.txt").read_text()
    assert face["age_strength"] == 1.5 and face["gender_strength"] == 1.5
    for needle in ("age_strength", "age_center_years", f"{face['age_center_years']:g} years", "clamp(c + 1.5",
                   "0.5 + 1.5 * (f - 0.5)", f"latent[4:132] * {DEFAULT_PSI:g}", REFERENCE_SCRIPT, "WAVs digitalhuman renders"):
        assert needle in text, needle


def test_lipsync_maps_beside_the_models(exported):
    out, manifest, _, _ = exported
    phonemes = json.loads((out / VISEME_MAP_FILE).read_text())
    assert phonemes["phoneme_to_viseme"] == PHONEME_TO_VISEME
    assert json.loads((out / LIPSYNC_MAP_FILE).read_text()) == json.loads(json.dumps(mapping_doc()))
    assert set(manifest["other_files"]) == {VISEME_MAP_FILE, LIPSYNC_MAP_FILE, REFERENCE_SCRIPT}
