"""Fit the fusion model's trait prior: the joint distribution of (gender, appearance group, age)
in the labelled face data (training split), saved as ``fusion.safetensors``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from .checkpoint import save_weights
from .face.data import is_holdout, read_labels
from .fusion import AGE_EDGES, TraitPrior
from .runs import new_run_dir


def train_fusion(face_data: str | Path, out: str | Path) -> Path:
    recs = [r for r in read_labels(face_data) if not is_holdout(r.file)]
    prior = TraitPrior.fit(np.array([r.female for r in recs]), np.array([r.race for r in recs]),
                           np.array([r.age for r in recs]))
    run = new_run_dir(out, "fusion")
    save_weights(run / "fusion.safetensors", {"trait_counts": torch.from_numpy(prior.counts)}, kind="fusion",
                 config={"age_edges": AGE_EDGES.tolist(), "n_faces": len(recs)})
    return run
