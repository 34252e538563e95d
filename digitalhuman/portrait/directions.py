"""What the talking portrait knows about a face before it sees it: the mouth-opening direction in
the face code and where the mouth and eyes are.

Both were fitted (``fit.py``) on the outside judge's landmarks (MediaPipe Face Mesh) of 2,000
generated faces of tuning seeds, and are shipped as ``portrait_directions.safetensors``:

* ``open_direction`` (128,) unit vector in the face code (before psi) along which the judged mouth
  opening (inner-lip gap / face height) rises, ``open_gain`` its slope per unit step and
  ``open_bias`` the ridge intercept: ``opening ~ open_bias + open_gain * (code . open_direction)``
  in the mean (the ridge's own prediction is ``code @ (gain * direction) + bias``).
* ``landmark_W`` / ``landmark_b``: a ridge regressor from ``features(code, female, age, group)``
  to the (x, y) px of the ``LANDMARKS`` (Face Mesh numbering) in the 128 px frame. Generated faces
  are aligned as the training crops are, so a linear map from the code places lips and eyelids
  within a few px; the atlas masks and warps are wide and feathered for that.

No judge runs at generation time: MediaPipe is only what the numbers were fitted on.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

KIND = "portrait_directions"
# Face Mesh landmark groups used by the atlas (indices into the 478-point mesh)
LIPS_OUTER = (61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291, 409, 270, 269, 267, 0, 37, 39, 40, 185)
LIPS_INNER = (78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308, 415, 310, 311, 312, 13, 82, 81, 80, 191)
EYE_A = (33, 7, 163, 144, 145, 153, 154, 155, 133, 173, 157, 158, 159, 160, 161, 246)
EYE_B = (362, 382, 381, 380, 374, 373, 390, 249, 263, 466, 388, 387, 386, 385, 384, 398)
BROW_A = (70, 63, 105, 66, 107)
BROW_B = (300, 293, 334, 296, 336)
FACE = (10, 152, 234, 454, 1, 2)  # forehead top, chin, cheek sides, nose tip, below the nose
LANDMARKS = tuple(dict.fromkeys(LIPS_OUTER + LIPS_INNER + EYE_A + EYE_B + BROW_A + BROW_B + FACE))
N_GROUPS = 5


def features(codes: np.ndarray, female, age, race) -> np.ndarray:
    """(B, 128) face codes + traits -> (B, 128 + 2 + 5) regressor inputs. ``race``: (B,) group
    index or (B, 5) weights."""
    codes = np.atleast_2d(np.asarray(codes, np.float64))
    B = len(codes)
    female = np.broadcast_to(np.asarray(female, np.float64), (B,))
    age = np.broadcast_to(np.asarray(age, np.float64), (B,)) / 100.0
    race = np.asarray(race)
    if race.ndim == 2:
        groups = race.astype(np.float64)
    else:
        groups = np.zeros((B, N_GROUPS))
        groups[np.arange(B), np.broadcast_to(race.astype(np.int64), (B,))] = 1.0
    return np.concatenate([codes, female[:, None], age[:, None], groups], 1)


def _pts(lm: np.ndarray, ids) -> np.ndarray:
    """Full 478-point mesh (..., 478, 2) or a ``LANDMARKS``-ordered (..., K, 2) -> the points ``ids``."""
    if lm.shape[-2] == len(LANDMARKS) and lm.shape[-2] != 478:
        ids = [LANDMARKS.index(i) for i in ids]
    return lm[..., list(ids), :]


def _dist(lm, a, b):
    p = _pts(lm, (a, b))
    return np.linalg.norm(p[..., 0, :] - p[..., 1, :], axis=-1)


def face_height(lm: np.ndarray) -> np.ndarray:
    return _dist(lm, 10, 152)


def mouth_opening_of(lm: np.ndarray) -> np.ndarray:
    """Inner-lip gap (13-14) / face height (10-152), the issue's measure."""
    return _dist(lm, 13, 14) / face_height(lm)


def mouth_width_of(lm: np.ndarray) -> np.ndarray:
    """Outer lip corners (61-291) / face height."""
    return _dist(lm, 61, 291) / face_height(lm)


def eye_opening_of(lm: np.ndarray) -> np.ndarray:
    """Mean over both eyes of lid gap / eye width (159-145 over 33-133, 386-374 over 362-263)."""
    return 0.5 * (_dist(lm, 159, 145) / _dist(lm, 33, 133) + _dist(lm, 386, 374) / _dist(lm, 362, 263))


@dataclass(frozen=True)
class PortraitDirections:
    open_direction: np.ndarray  # (128,) unit
    open_gain: float  # opening per unit step along the direction
    open_bias: float
    landmark_W: np.ndarray  # (F, 2K)
    landmark_b: np.ndarray  # (2K,)
    info: dict

    def predicted_opening(self, codes: np.ndarray) -> np.ndarray:
        """(B, 128) -> (B,) the ridge's mouth opening."""
        return np.atleast_2d(codes) @ self.open_direction * self.open_gain + self.open_bias

    def landmarks(self, codes: np.ndarray, female, age, race) -> np.ndarray:
        """(B, 128) codes + traits -> (B, K, 2) px of ``LANDMARKS`` in the 128 px frame."""
        y = features(codes, female, age, race) @ self.landmark_W + self.landmark_b
        return y.reshape(len(y), len(LANDMARKS), 2)

    @classmethod
    def load(cls, path: str | Path, expected_sha256: str | None = None) -> "PortraitDirections":
        from ..checkpoint import CheckpointError, load_weights

        t, config, meta = load_weights(path, kind=KIND, expected_sha256=expected_sha256, framework="np")
        ids = tuple(int(i) for i in t["landmark_ids"])
        if ids != LANDMARKS:
            raise CheckpointError(f"{Path(path).name}: fitted for other landmarks than this digitalhuman's; re-fit "
                                  "with python -m digitalhuman.portrait.fit")
        W = np.asarray(t["landmark_W"], np.float64)
        if W.shape != (128 + 2 + N_GROUPS, 2 * len(LANDMARKS)) or t["open_direction"].shape != (128,):
            raise CheckpointError(f"{Path(path).name}: tensor shapes do not fit a 128-number face code")
        return cls(np.asarray(t["open_direction"], np.float64), float(t["open_gain"][0]), float(t["open_bias"][0]),
                   W, np.asarray(t["landmark_b"], np.float64), config)


def save_directions(path: str | Path, tensors: dict[str, np.ndarray], report: dict) -> str:
    import torch

    from ..checkpoint import save_weights

    return save_weights(path, {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in tensors.items()},
                        kind=KIND, config=report)
