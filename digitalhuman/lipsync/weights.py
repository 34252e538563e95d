"""Co-articulated per-frame viseme weights, and the viseme -> ARKit / VRM / Rhubarb mappings.

Co-articulation (the formula the engine readers in ``samples/engine/`` repeat, so a rig driven at
run time from ``persona.json`` moves like the exported curves). For a segment ``[a, b]`` of the
viseme track, its *dominance* at time ``t`` is 1 inside the segment and falls linearly to 0 over
``LEAD_S`` before ``a`` (the lips prepare the next shape) and ``LAG_S`` after ``b`` (they let go of
the last one)::

    d(t) = 1                       a <= t <= b
           1 - (a - t) / LEAD_S    t < a
           1 - (t - b) / LAG_S     t > b          (clamped to >= 0)

A viseme's raw weight is the largest dominance among its segments; the weights are the raw
weights divided by their sum, so they always sum to 1 (a frame past the end is all ``sil``). Inside
a segment its own viseme has raw weight 1 and every other < 1, so at the middle of a segment the
track's viseme is always the loudest.

The target poses (ARKit blendshape values, VRM presets, Rhubarb shapes) per viseme are tables
below; a frame's pose is the weighted sum of the visemes' poses, so values stay within 0-1.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from ..voice.visemes import VISEMES

__all__ = ["FPS", "LEAD_S", "LAG_S", "ARKIT_NAMES", "ARKIT_EXTRA", "VISEME_ARKIT", "VRM_PRESETS", "VISEME_VRM",
           "VISEME_RHUBARB", "frame_count", "viseme_weights", "weights_at"]

FPS = 60
LEAD_S = 0.08
LAG_S = 0.05

# The 52 ARKit blendshapes in ARKit's / Live Link Face's order (Unreal's EARFaceBlendShape 0-51),
# then the rotation columns Live Link Face records after them.
ARKIT_NAMES = (
    "EyeBlinkLeft", "EyeLookDownLeft", "EyeLookInLeft", "EyeLookOutLeft", "EyeLookUpLeft", "EyeSquintLeft",
    "EyeWideLeft", "EyeBlinkRight", "EyeLookDownRight", "EyeLookInRight", "EyeLookOutRight", "EyeLookUpRight",
    "EyeSquintRight", "EyeWideRight", "JawForward", "JawLeft", "JawRight", "JawOpen", "MouthClose",
    "MouthFunnel", "MouthPucker", "MouthLeft", "MouthRight", "MouthSmileLeft", "MouthSmileRight",
    "MouthFrownLeft", "MouthFrownRight", "MouthDimpleLeft", "MouthDimpleRight", "MouthStretchLeft",
    "MouthStretchRight", "MouthRollLower", "MouthRollUpper", "MouthShrugLower", "MouthShrugUpper",
    "MouthPressLeft", "MouthPressRight", "MouthLowerDownLeft", "MouthLowerDownRight", "MouthUpperUpLeft",
    "MouthUpperUpRight", "BrowDownLeft", "BrowDownRight", "BrowInnerUp", "BrowOuterUpLeft", "BrowOuterUpRight",
    "CheekPuff", "CheekSquintLeft", "CheekSquintRight", "NoseSneerLeft", "NoseSneerRight", "TongueOut",
)
ARKIT_EXTRA = ("HeadYaw", "HeadPitch", "HeadRoll", "LeftEyeYaw", "LeftEyePitch", "LeftEyeRoll", "RightEyeYaw",
               "RightEyePitch", "RightEyeRoll")


def _lr(name: str, v: float) -> dict[str, float]:
    return {f"{name}Left": v, f"{name}Right": v}


# Target pose of each viseme (ARKit values 0-1; shapes not named are 0). Jaw opening follows the
# vowel height (aa widest, ih/ou narrow); rounding = MouthFunnel/MouthPucker; spreading =
# MouthStretch/MouthSmile; bilabials press and roll the lips; FF tucks the lower lip.
VISEME_ARKIT: dict[str, dict[str, float]] = {
    "sil": {},
    "PP": {"MouthClose": 0.3, **_lr("MouthPress", 0.5), "MouthRollLower": 0.3, "MouthRollUpper": 0.2},
    "FF": {"JawOpen": 0.08, "MouthRollLower": 0.6, **_lr("MouthUpperUp", 0.3)},
    "TH": {"JawOpen": 0.15, "TongueOut": 0.4, **_lr("MouthUpperUp", 0.1)},
    "DD": {"JawOpen": 0.2, **_lr("MouthStretch", 0.15)},
    "kk": {"JawOpen": 0.25, **_lr("MouthStretch", 0.1)},
    "CH": {"JawOpen": 0.15, "MouthFunnel": 0.5, "MouthPucker": 0.3},
    "SS": {"JawOpen": 0.08, **_lr("MouthStretch", 0.35), **_lr("MouthSmile", 0.1)},
    "nn": {"JawOpen": 0.15, **_lr("MouthStretch", 0.1)},
    "RR": {"JawOpen": 0.15, "MouthFunnel": 0.3, "MouthPucker": 0.4},
    "aa": {"JawOpen": 0.7, **_lr("MouthLowerDown", 0.3)},
    "E": {"JawOpen": 0.4, **_lr("MouthStretch", 0.35), **_lr("MouthSmile", 0.2)},
    "ih": {"JawOpen": 0.25, **_lr("MouthStretch", 0.4), **_lr("MouthSmile", 0.3)},
    "oh": {"JawOpen": 0.45, "MouthFunnel": 0.6, "MouthPucker": 0.2},
    "ou": {"JawOpen": 0.15, "MouthFunnel": 0.4, "MouthPucker": 0.8},
}

VRM_PRESETS = ("aa", "ih", "ou", "ee", "oh")  # VRM 1.0 expression presets for the mouth
VISEME_VRM: dict[str, dict[str, float]] = {
    "sil": {}, "PP": {},
    "FF": {"ih": 0.2}, "TH": {"aa": 0.2}, "DD": {"aa": 0.25, "ih": 0.1}, "kk": {"aa": 0.3},
    "CH": {"ou": 0.4}, "SS": {"ih": 0.4}, "nn": {"aa": 0.15, "ih": 0.15}, "RR": {"ou": 0.3, "oh": 0.2},
    "aa": {"aa": 1.0}, "E": {"ee": 1.0}, "ih": {"ih": 1.0}, "oh": {"oh": 1.0}, "ou": {"ou": 1.0},
}

# Rhubarb Lip Sync's mouth shapes: A closed (P B M), B slightly open, teeth together (most
# consonants, EE), C open (EH, AE), D wide open (AA), E slightly rounded (AO, ER), F puckered
# (UW, OW, W), G upper teeth on the lower lip (F V), H tongue raised (long L), X idle.
VISEME_RHUBARB: dict[str, str] = {
    "sil": "X", "PP": "A", "FF": "G", "TH": "B", "DD": "B", "kk": "B", "CH": "B", "SS": "B", "nn": "H",
    "RR": "E", "aa": "D", "E": "C", "ih": "B", "oh": "E", "ou": "F",
}

assert set(VISEME_ARKIT) == set(VISEME_VRM) == set(VISEME_RHUBARB) == set(VISEMES)
assert all(k in ARKIT_NAMES and 0 <= v <= 1 for pose in VISEME_ARKIT.values() for k, v in pose.items())


def frame_count(duration_s: float, fps: int = FPS) -> int:
    """Frames of a line: frame ``i`` is the pose at ``i / fps``; ``ceil(fps * duration)`` cover it."""
    return max(1, math.ceil(round(duration_s * fps, 6)))


def _dominance(t: np.ndarray, a: float, b: float) -> np.ndarray:
    before = 1.0 - (a - t) / LEAD_S
    after = 1.0 - (t - b) / LAG_S
    return np.clip(np.where(t < a, before, np.where(t > b, after, 1.0)), 0.0, 1.0)


def viseme_weights(track: Sequence[dict], times: np.ndarray) -> np.ndarray:
    """Co-articulated weights ``(len(times), 15)`` (columns in ``VISEMES`` order), rows summing to 1."""
    t = np.asarray(times, np.float64)
    raw = np.zeros((len(t), len(VISEMES)))
    for seg in track:
        a, b = float(seg["t_start"]), float(seg["t_end"])
        lo, hi = np.searchsorted(t, a - LEAD_S, "left"), np.searchsorted(t, b + LAG_S, "right")
        if hi > lo:
            k = VISEMES.index(seg["viseme"])
            raw[lo:hi, k] = np.maximum(raw[lo:hi, k], _dominance(t[lo:hi], a, b))
    total = raw.sum(axis=1, keepdims=True)
    out = np.divide(raw, total, out=np.zeros_like(raw), where=total > 0)
    out[total[:, 0] == 0, VISEMES.index("sil")] = 1.0
    return out


def weights_at(track: Sequence[dict], duration_s: float, fps: int = FPS) -> tuple[np.ndarray, np.ndarray]:
    """``(times (F,), weights (F, 15))`` at ``fps`` over a line of ``duration_s`` seconds."""
    times = np.arange(frame_count(duration_s, fps)) / fps
    return times, viseme_weights(track, times)


def floor4(x: np.ndarray) -> np.ndarray:
    """Round down to 4 decimals: rounded weights that summed to 1 still sum to <= 1."""
    return np.floor(np.asarray(x, np.float64) * 10_000 + 1e-9) / 10_000


def pose_matrix(names: Sequence[str], table: dict[str, dict[str, float]]) -> np.ndarray:
    """(15, len(names)): row k = the pose of viseme ``VISEMES[k]``."""
    m = np.zeros((len(VISEMES), len(names)))
    for k, v in enumerate(VISEMES):
        for name, value in table[v].items():
            m[k, list(names).index(name)] = value
    return m
