"""Faces are made by onnxruntime (face/model.py ``OnnxFace``): same bytes for any thread count and
batch, and the same faces as the PyTorch generator up to float rounding. Tiny models."""

import numpy as np
import pytest
import torch

from digitalhuman.face.gan import FaceGANConfig, Generator, make_cond
from digitalhuman.face.model import FaceModel, OnnxFace

REFINED = FaceGANConfig(resolution=16, z_dim=16, cond_embed=4, g_channels=8, d_channels=4, max_channels=16,
                        refine_channels=8, refine_blocks=2)


def _generator() -> Generator:
    torch.manual_seed(3)
    g = Generator(REFINED).eval()
    torch.nn.init.normal_(g.refiner.up.weight, std=0.1)  # a top level that adds detail
    return g


def _inputs(n: int):
    rng = np.random.default_rng(n)
    z = torch.from_numpy(rng.standard_normal((n, 16), dtype=np.float32))
    c = make_cond(torch.from_numpy(rng.random(n, dtype=np.float32)),
                  torch.from_numpy(rng.uniform(1, 90, n).astype(np.float32)), torch.from_numpy(rng.integers(0, 5, n)))
    return z, c


def test_onnx_faces_are_the_same_bytes_for_any_thread_count_and_batch():
    g = _generator()
    z, c = _inputs(24)
    one, two = OnnxFace(g, threads=1), OnnxFace(g, threads=2)
    full = one(z, c).numpy()
    assert full.shape == (24, 3, 32, 32) and full.dtype == np.float32
    assert np.array_equal(two(z, c).numpy(), full)
    singles = np.concatenate([two(z[i:i + 1], c[i:i + 1]).numpy() for i in range(24)])
    assert np.array_equal(singles, full)
    assert np.array_equal(np.concatenate([one(z[i:i + 5], c[i:i + 5]).numpy() for i in range(0, 24, 5)]), full)


def test_onnx_and_torch_runtimes_make_the_same_faces_up_to_rounding():
    g = _generator()
    rng = np.random.default_rng(0)
    code = rng.standard_normal((8, 16)).astype(np.float32)
    args = (code, rng.integers(0, 2, 8).astype(np.float32), rng.uniform(5, 85, 8).astype(np.float32), rng.integers(0, 5, 8))
    a = FaceModel(g).generate(*args)
    b = FaceModel(g, runtime="torch").generate(*args)
    assert a.shape == b.shape == (8, 32, 32, 3)
    assert np.abs(a.astype(int) - b).max() <= 1  # float32 (onnxruntime) vs float64 (PyTorch) top level
    assert a.std() > 5  # faces, not a constant


def test_unknown_runtime_is_refused():
    with pytest.raises(ValueError, match="runtime"):
        FaceModel(_generator(), runtime="tensorrt")
