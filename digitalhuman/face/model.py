"""Inference wrapper for the shipped face generator (EMA weights, no training code)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..checkpoint import load_weights
from .gan import RACES, FaceGANConfig, Generator, make_cond


class FaceModel:
    def __init__(self, generator: Generator):
        self.g = generator.eval()
        self.cfg = generator.cfg

    @classmethod
    def load(cls, path: str | Path, expected_sha256: str | None = None) -> "FaceModel":
        from ..checkpoint import CheckpointError

        tensors, config, _ = load_weights(path, kind="face_generator", expected_sha256=expected_sha256)
        try:
            g = Generator(FaceGANConfig(**config))
            g.load_state_dict(tensors)
        except (TypeError, ValueError, RuntimeError) as e:
            reason = " ".join(str(e).split())[:200]  # one line
            raise CheckpointError(f"{Path(path).name}: does not fit this face generator ({reason})") from None
        return cls(g)

    @torch.inference_mode()
    def generate(
        self,
        code: np.ndarray,
        female: np.ndarray | float,
        age: np.ndarray | float,
        race: np.ndarray | str | int,
        psi: float = 1.0,
    ) -> np.ndarray:
        """``code`` (B, z_dim) N(0,1) draws -> uint8 images (B, R, R, 3).

        ``race`` may be a group name, an index, or (B, 5) soft weights (for blends).
        """
        code = np.atleast_2d(np.asarray(code, np.float32))
        B = code.shape[0]
        assert code.shape[1] == self.cfg.z_dim, code.shape
        female_t = torch.as_tensor(np.broadcast_to(np.asarray(female, np.float32), (B,)).copy())
        age_t = torch.as_tensor(np.broadcast_to(np.asarray(age, np.float32), (B,)).copy())
        if isinstance(race, str):
            race = RACES.index(race)
        race_arr = np.asarray(race)
        if race_arr.ndim <= 1:
            race_t = torch.as_tensor(np.broadcast_to(race_arr.astype(np.int64), (B,)).copy())
        else:
            race_t = torch.as_tensor(race_arr.astype(np.float32))
        c = make_cond(female_t, age_t, race_t)
        x = self.g(torch.from_numpy(code) * psi, c)
        return ((x.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
