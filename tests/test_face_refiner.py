"""The face generator's learned 2x top level (face/refine.py, face/train_refiner.py). Tiny models."""

import json

import numpy as np
import torch

from digitalhuman.checkpoint import save_weights
from digitalhuman.face.gan import FaceGANConfig, Generator, make_cond
from digitalhuman.face.model import FaceModel
from digitalhuman.face.refine import Refiner, RefinerConfig, high_pass, upsample
from digitalhuman.face.train_refiner import RefinerTrainConfig, export_refiner, train_refiner

SMALL = FaceGANConfig(resolution=16, z_dim=16, cond_embed=4, g_channels=8, d_channels=4, max_channels=16)
REFINED = FaceGANConfig(resolution=16, z_dim=16, cond_embed=4, g_channels=8, d_channels=4, max_channels=16,
                        refine_channels=4, refine_blocks=1)


def _zc(n=3):
    return torch.randn(n, 16), make_cond(torch.tensor([0.0, 1.0, 0.5][:n]), torch.tensor([5.0, 30.0, 80.0][:n]),
                                         torch.tensor([0, 1, 2][:n]))


def test_a_new_refiner_is_the_bilinear_upsampling_and_high_pass_removes_it():
    torch.manual_seed(0)
    x = torch.rand(2, 3, 8, 8) * 2 - 1
    r = Refiner(RefinerConfig(4, 1))
    assert torch.equal(r(x), upsample(x))
    assert high_pass(upsample(torch.ones(1, 3, 4, 4))).abs().max() < 1e-6
    assert high_pass(x).abs().max() > 0.1  # a noisy image has detail
    from digitalhuman.face.train_refiner import detail_energy

    flat = upsample(torch.zeros(1, 3, 8, 8))
    assert detail_energy(upsample(x)).mean() < detail_energy(x).mean()
    assert detail_energy(flat).max() <= torch.log(torch.tensor(1e-4)) + 1e-6


def test_sharpen_amplifies_the_refined_detail_layer_only():
    torch.manual_seed(0)
    x = torch.rand(2, 3, 8, 8) * 2 - 1
    plain, sharp = Refiner(RefinerConfig(4, 1)), Refiner(RefinerConfig(4, 1, sharpen=0.5))
    torch.nn.init.normal_(plain.up.weight, std=0.1)
    sharp.load_state_dict(plain.state_dict())  # sharpen is config, not a tensor
    with torch.no_grad():
        y, ys = plain(x), sharp(x)
    assert torch.allclose(ys, y + 0.5 * high_pass(y), atol=1e-6)
    assert high_pass(ys).pow(2).mean() > 1.5 * high_pass(y).pow(2).mean()  # more energy in the 2x band


def test_refiner_noise_is_fixed_and_saved_with_the_weights():
    a, b = Refiner(RefinerConfig(4, 1, noise=2)), Refiner(RefinerConfig(4, 1, noise=2))
    assert a.noise.shape == (1, 2, 64, 64) and torch.equal(a.noise, b.noise)  # the same seeded draw
    assert "noise" in a.state_dict() and "noise" not in Refiner(RefinerConfig(4, 1)).state_dict()
    torch.nn.init.normal_(a.up.weight, std=0.05)
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    with torch.no_grad():
        y = a(x)
        b.load_state_dict(a.state_dict())
        assert torch.equal(b(x), y)
        b.noise.zero_()  # the noise takes part: other noise, other detail
        assert not torch.equal(b(x), y)


def test_generator_with_refiner_returns_twice_the_resolution_and_keeps_the_base_face():
    torch.manual_seed(0)
    base = Generator(SMALL).eval()
    g = Generator(REFINED).eval()
    missing = g.load_state_dict(base.state_dict(), strict=False).missing_keys
    assert missing and all(k.startswith("refiner.") for k in missing)
    torch.nn.init.normal_(g.refiner.up.weight, std=0.05)  # a refiner that changes the image
    z, c = _zc()
    with torch.no_grad():
        small, big = base(z, c), g(z, c)
    assert REFINED.out_resolution == 32 and SMALL.out_resolution == 16
    assert big.shape == (3, 3, 32, 32) and big.abs().max() <= 1.0
    assert not torch.equal(big, upsample(small))
    assert (torch.nn.functional.avg_pool2d(big, 2) - small).abs().mean() < 0.2


def test_refined_weights_load_through_face_model(tmp_path):
    torch.manual_seed(1)
    g = Generator(REFINED)
    save_weights(tmp_path / "f.safetensors", g.state_dict(), kind="face_generator", config=REFINED, half=True)
    fm = FaceModel.load(tmp_path / "f.safetensors")
    faces = fm.generate(np.random.default_rng(0).standard_normal((2, 16)), [0.0, 1.0], [20.0, 60.0], "white")
    assert faces.shape == (2, 32, 32, 3) and faces.dtype == np.uint8


def test_train_refiner_learns_resumes_and_exports(tmp_path):
    rng = np.random.default_rng(0)
    # "real" faces: flat colours with 1 px horizontal stripes (detail the 2x-down version loses
    # entirely; the trainer's left-right flips keep them)
    yy = np.mgrid[0:16, 0:16][0]
    stripes = np.where(yy % 2 == 0, 40.0, -40.0).astype(np.float32)
    base = rng.uniform(60, 190, (40, 1, 1, 3)).astype(np.float32)
    hi = np.clip(base + stripes[None, :, :, None], 0, 255).astype(np.uint8)
    lo = hi.reshape(40, 8, 2, 8, 2, 3).mean((2, 4)).astype(np.uint8)
    cfg = RefinerTrainConfig(model=RefinerConfig(4, 1), batch=4, steps=30, log_every=10, sample_every=1000,
                             ckpt_every=10, threads=1, lr=2e-2, lr_d=1e-3, ema_start=0, ema_decay=0.0)
    run = tmp_path / "run"
    train_refiner(run, hi, lo, lo[:20], cfg, log=lambda m: None)
    log = [json.loads(x) for x in (run / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [10, 20, 30]
    assert log[-1]["l1"] < 0.9 * log[0]["l1"]  # it learns to put the stripes back
    train_refiner(run, hi, lo, lo[:20], RefinerTrainConfig(**{**cfg.__dict__, "steps": 40}), log=lambda m: None)
    log = [json.loads(x) for x in (run / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [10, 20, 30, 40]  # resumed at 30, not restarted
    export_refiner(run, tmp_path / "r.safetensors")
    from digitalhuman.checkpoint import load_weights

    tensors, config, meta = load_weights(tmp_path / "r.safetensors", kind="face_refiner")
    assert meta["steps"] == "40" and config == {"channels": 4, "blocks": 1, "noise": 0, "sharpen": 0.0}
    r = Refiner(RefinerConfig(**config))
    r.load_state_dict(tensors)
