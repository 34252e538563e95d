"""The face trainer on a tiny synthetic face folder: run, resume, export, and 2-process DDP."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from digitalhuman.cli import main
from digitalhuman.face.model import FaceModel


@pytest.fixture(scope="module")
def face_folder(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("faces")
    (root / "images").mkdir()
    rng = np.random.default_rng(0)
    rows = ["file,age,gender,gender_name,race,race_name,original_file"]
    for i in range(40):
        img = (rng.random((32, 32, 3)) * 255).astype(np.uint8)
        name = f"{i:03d}.jpg"
        Image.fromarray(img).save(root / "images" / name)
        g = i % 2
        rows.append(f"{name},{20 + i},{g},{'female' if g else 'male'},{i % 5},x,{name}")
    (root / "labels.csv").write_text("\n".join(rows) + "\n")
    return root


def _train(args, env=None):
    return subprocess.run([sys.executable, "-m", "digitalhuman", "train", "face", *args], capture_output=True,
                          text=True, timeout=600, env=env)


def test_train_resume_export(face_folder, tmp_path):
    out = tmp_path / "runs"
    base = ["--data", str(face_folder), "--out", str(out), "--resolution", "32", "--batch", "8", "--threads", "1"]
    assert main(["train", "face", *base, "--steps", "3"]) == 0
    run = out / "00000-face-r32"
    assert (run / "config.json").is_file() and (run / "checkpoint.pt").is_file()
    assert (run / "face_generator.safetensors").is_file()
    assert main(["train", "face", *base, "--steps", "5", "--resume"]) == 0
    log = [json.loads(x) for x in (run / "log.jsonl").read_text().splitlines()]
    assert all(np.isfinite([r["loss_d"], r["loss_g"]]).all() for r in log)
    m = FaceModel.load(run / "face_generator.safetensors")
    img = m.generate(np.zeros((1, 128)), 1.0, 30.0, "asian")
    assert img.shape == (1, 32, 32, 3) and img.dtype == np.uint8
    from digitalhuman.checkpoint import load_training_checkpoint

    assert load_training_checkpoint(run / "checkpoint.pt")["step"] == 5


def test_ddp_two_processes(face_folder, tmp_path):
    out = tmp_path / "ddp"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    r = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                        "-m", "digitalhuman", "train", "face", "--data",
                        str(face_folder), "--out", str(out), "--resolution", "32", "--batch", "8", "--steps", "3",
                        "--threads", "2"], capture_output=True, text=True, timeout=600, env=env)
    assert r.returncode == 0, r.stderr[-2000:]
    runs = list(out.iterdir())
    assert len(runs) == 1
    m = FaceModel.load(runs[0] / "face_generator.safetensors")
    assert m.generate(np.zeros((2, 128)), 0.0, 40.0, 0).shape == (2, 32, 32, 3)
