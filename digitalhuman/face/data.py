"""Labelled face folders (UTKFace layout): images/ + labels.csv with file, age, gender, race.

The evaluation hold-out is fixed by a hash of each file name (5%), so every tool that reads the
data agrees on which faces were never trained on.
"""

from __future__ import annotations

import csv
import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

DEFAULT_FACE_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "utkface128"
HOLDOUT_MOD = 20  # 1 in 20 files is held out


def is_holdout(file_name: str) -> bool:
    return int(hashlib.sha1(file_name.encode()).hexdigest(), 16) % HOLDOUT_MOD == 0


@dataclass
class FaceRecord:
    file: str
    age: float
    female: int
    race: int


def read_labels(data_dir: str | Path) -> list[FaceRecord]:
    data_dir = Path(data_dir)
    path = data_dir / "labels.csv"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: expected a face folder with labels.csv and images/")
    out = []
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            out.append(FaceRecord(row["file"], float(row["age"]), int(row["gender"]), int(row["race"])))
    return out


def load_split(
    data_dir: str | Path, resolution: int, split: str = "train", cache_dir: str | Path | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """Return ``(images uint8 (N,R,R,3), female (N,), age (N,), race (N,), files)`` for a split.

    ``split`` is ``"train"`` (95%), ``"holdout"`` (5%) or ``"all"``. Decoded arrays are cached in
    ``cache_dir`` (if given) as ``.npz`` keyed by split and resolution.
    """
    if split not in ("train", "holdout", "all"):
        raise ValueError(f"unknown split {split!r}")
    data_dir = Path(data_dir)
    if cache_dir is not None:
        key = hashlib.sha1(str(data_dir.resolve()).encode()).hexdigest()[:8]
        cache = Path(cache_dir) / f"faces_{key}_{split}_{resolution}.npz"
        if cache.is_file():
            z = np.load(cache)
            return z["images"], z["female"], z["age"], z["race"], list(z["files"])
    recs = read_labels(data_dir)
    if split != "all":
        recs = [r for r in recs if is_holdout(r.file) == (split == "holdout")]
    imgs = np.empty((len(recs), resolution, resolution, 3), np.uint8)
    for i, r in enumerate(recs):
        with Image.open(data_dir / "images" / r.file) as im:
            im = im.convert("RGB")
            if im.size != (resolution, resolution):
                im = im.resize((resolution, resolution), Image.LANCZOS)
            imgs[i] = np.asarray(im)
    female = np.array([r.female for r in recs], np.float32)
    age = np.array([r.age for r in recs], np.float32)
    race = np.array([r.race for r in recs], np.int64)
    files = [r.file for r in recs]
    if cache_dir is not None:
        Path(cache_dir).mkdir(parents=True, exist_ok=True)
        tmp = cache.with_name(f".{cache.name}.tmp.npz")
        np.savez(tmp, images=imgs, female=female, age=age, race=race, files=np.array(files))
        tmp.replace(cache)
    return imgs, female, age, race, files
