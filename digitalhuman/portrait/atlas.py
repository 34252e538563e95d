"""A persona's mouth-shape atlas: its own face with the 9 Rhubarb mouth shapes and two blink frames.

Shape set (Rhubarb Lip Sync's, which 2D engines and animators use; the 15 Oculus visemes map onto
it with ``VISEME_TO_SHAPE``):

=====  ==========================================  =========================  ==================
shape  mouth                                       visemes                    made from
=====  ==========================================  =========================  ==================
X      rest, closed                                sil                        closed base
A      closed, lips pressed                        PP (m b p)                 closed base, narrower
B      slightly open, teeth                        DD kk CH SS TH ih          open base, gap x0.4
C      open, wide (E / smile)                      E                          open base, gap x0.9, x1.2 wide
D      wide open, jaw dropped                      aa                         open base, gap x1.6
E      open, rounded                               RR oh                      open base, gap x0.85, x0.75 wide
F      puckered, small opening                     ou (u w)                   open base, gap x0.45, x0.7 wide
G      upper teeth on the lower lip                FF                         open base, gap x0.35
H      tongue up, half open                        nn (n l)                   open base, gap x0.6
=====  ==========================================  =========================  ==================

How (the issue's facts: the face code alone only gives "closed <-> open smile" and moves the
whole face): the face is generated three times, at its own code and stepped along the fitted
mouth-opening direction to a closed and an open mouth (``directions.py``). The mouth region of
the closed / open face is composited onto the neutral face with a feathered mask around the
mouth, its low-frequency colour matched to the neutral skin, so identity, hair, lighting and
background are the neutral face's pixels. The shapes the data hardly holds (a dropped jaw,
rounded lips, graded openings) are local warps of the open mouth, driven by the lip landmarks the
shipped regressor places; blinks paint the eye opening over with the eyelid's own skin colours and
draw a lash line where the lids meet. Outside the mouth and eye masks every frame is the neutral face, bit for bit.

Frames (one row, ``FRAMES`` order): ``neutral`` (= face.png), the 9 shapes, ``blink_half`` and
``blink`` (both with the rest mouth X).
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..lipsync.weights import VISEME_RHUBARB
from .directions import (BROW_A, BROW_B, EYE_A, EYE_B, LANDMARKS, PortraitDirections, mouth_opening_of)

SHAPES = ("A", "B", "C", "D", "E", "F", "G", "H", "X")
FRAMES = ("neutral",) + SHAPES + ("blink_half", "blink")
VISEME_TO_SHAPE = dict(VISEME_RHUBARB)  # the same table as the Rhubarb lip-sync files
# (base, gap factor k, width factor s): the open shapes' inner-lip gap is k times the open base's.
# Widths chosen on tuning personas 950000-950039: narrower rounded shapes (x0.58) lost identity in
# a quarter of the F frames; a wider C and milder rounding kept 93-95% and the width ratio
SHAPE_PARAMS = {"X": ("closed", 1.0, 1.0), "A": ("closed", 1.0, 0.96), "B": ("open", 0.4, 1.0),
                "C": ("open", 0.9, 1.2), "D": ("open", 1.6, 0.97), "E": ("open", 0.85, 0.75),
                "F": ("open", 0.45, 0.7), "G": ("open", 0.35, 0.95), "H": ("open", 0.6, 0.95)}
# intended opening of each shape relative to the most open one (D); what the acceptance ranks against
SHAPE_OPENING = {s: (0.0 if b == "closed" else k / 1.6) for s, (b, k, _) in SHAPE_PARAMS.items()}
ROUNDED, WIDE, CLOSED = ("E", "F"), "C", ("A", "X")
BLINKS = {"blink_half": 0.5, "blink": 1.0}
# the mouth region reaches this many half mouth widths from its centre; 1.2 kept identity in 97.3% of
# tuning frames (96.6% at 1.45) but cut C's widening short: rounded narrower in 80% of personas, not 90%
MOUTH_MARGIN = 1.45
# chosen on tuning personas 950100-950129 (Face Mesh eye opening vs dlib identity of the blink frame)
BLINK_GROW, BLINK_ABOVE, BLINK_BELOW, BLINK_LASH, BLINK_LASH_WIDTH = 2.0, 2.0, 1.5, 0.85, 0.7  # px, px, px, -, px
BLINK_UP = 1.5  # px more painted above the upper lid (covers its own lash line, which read as an open eye)
# ridge openings aimed at and the largest code step: chosen on tuning personas 950100-950129, where
# stepping further opened / closed more but lost dlib identity (step 3: 78% of frames kept, 1.5: 95%;
# step 1: 97% but the openings no longer ranked, Spearman 0.75)
CLOSED_TARGET, OPEN_TARGET, MAX_STEP = 0.025, 0.065, 1.5
ATLAS_VERSION = 1
ATLAS_PNG, ATLAS_JSON = "mouths.png", "mouths.json"  # their names in a persona folder

_IDX = {lm: i for i, lm in enumerate(LANDMARKS)}
IN_UP = (78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308)
IN_LO = (78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308)
OUT_UP = (61, 185, 40, 39, 37, 0, 267, 269, 270, 409, 291)
OUT_LO = (61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291)
EYE_LO = {"a": (33, 7, 163, 144, 145, 153, 154, 155, 133), "b": (362, 382, 381, 380, 374, 373, 390, 249, 263)}
EYE_UP = {"a": (33, 246, 161, 160, 159, 158, 157, 173, 133), "b": (362, 398, 384, 385, 386, 387, 388, 466, 263)}
BROW = {"a": BROW_A, "b": BROW_B}
assert set(EYE_LO["a"] + EYE_UP["a"]) == set(EYE_A) and set(EYE_LO["b"] + EYE_UP["b"]) == set(EYE_B)


def _p(lm: np.ndarray, ids) -> np.ndarray:
    return lm[[_IDX[i] for i in ids]]


def _curve(lm: np.ndarray, ids, xs: np.ndarray) -> np.ndarray:
    """y of the polyline through landmarks ``ids`` at columns ``xs`` (clamped at its ends)."""
    p = _p(lm, ids)
    o = np.argsort(p[:, 0], kind="stable")
    return np.interp(xs, p[o, 0], p[o, 1])


def _smoothstep(t):
    t = np.clip(t, 0.0, 1.0)
    return t * t * (3 - 2 * t)


@dataclass(frozen=True)
class MouthGeometry:
    """Where a face's mouth is (px, 128 px frame), from the regressor's landmarks."""

    xc: float
    hw: float  # half the outer-lip width
    top: float  # upper edge of the mouth region (between nose and lip)
    bottom: float  # lower edge (towards the chin)

    @classmethod
    def of(cls, *lms: np.ndarray) -> "MouthGeometry":
        xs, ys_top, ys_bot, hws = [], [], [], []
        for lm in lms:
            c61, c291 = _p(lm, (61,))[0], _p(lm, (291,))[0]
            xs.append(0.5 * (c61[0] + c291[0]))
            hws.append(0.5 * abs(c291[0] - c61[0]))
            nose, chin = _p(lm, (2,))[0, 1], _p(lm, (152,))[0, 1]
            lip_top, lip_bot = _p(lm, OUT_UP)[:, 1].min(), _p(lm, OUT_LO)[:, 1].max()
            ys_top.append(nose + 0.45 * (lip_top - nose))
            ys_bot.append(lip_bot + 0.6 * (chin - lip_bot))
        return cls(float(np.mean(xs)), float(max(hws)), float(min(ys_top)), float(max(ys_bot)))

    def mask(self, R: int, margin: float | None = None, feather: float = 1.5) -> np.ndarray:
        """(R, R) float mask in [0, 1]: a superellipse around the mouth (``margin`` x its half width,
        default ``MOUTH_MARGIN``), feathered."""
        from scipy.ndimage import gaussian_filter

        margin = MOUTH_MARGIN if margin is None else margin
        yy, xx = np.mgrid[0:R, 0:R].astype(np.float64)
        yc, hy = 0.5 * (self.top + self.bottom), 0.5 * (self.bottom - self.top)
        d = np.abs((xx - self.xc) / (self.hw * margin)) ** 3 + np.abs((yy - yc) / hy) ** 3
        return np.clip(gaussian_filter((d <= 1).astype(np.float64), feather), 0, 1) * (d <= 1.6)


def _lips_mask(R: int, *lms: np.ndarray, grow: float = 2.0) -> np.ndarray:
    """(R, R) 1 inside the outer lips of any of ``lms`` (grown by ``grow`` px)."""
    from PIL import Image, ImageDraw

    im = Image.new("L", (R, R), 0)
    d = ImageDraw.Draw(im)
    for lm in lms:
        poly = np.concatenate([_p(lm, OUT_UP), _p(lm, OUT_LO)[::-1]])
        c = poly.mean(0)
        poly = c + (poly - c) * (1 + grow / max(np.abs(poly - c).max(), 1.0))
        d.polygon([tuple(map(float, q)) for q in poly], fill=255)
    return np.asarray(im, np.float64) / 255.0


def composite(neutral: np.ndarray, other: np.ndarray, mask: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """``other``'s region ``mask`` onto ``neutral`` (float (R, R, 3)), its skin's low-frequency
    colour matched to ``neutral`` (the difference outside ``keep``, the lips, smoothly filled in)."""
    from scipy.ndimage import gaussian_filter

    ring = (1 - keep)[..., None]
    diff = neutral - other
    num = np.stack([gaussian_filter(diff[..., c] * ring[..., 0], 4.0) for c in range(3)], -1)
    den = gaussian_filter(ring[..., 0], 4.0)[..., None]
    matched = other + num / np.maximum(den, 1e-3)
    m = mask[..., None]
    return neutral * (1 - m) + matched * m


def _mouth_field(lm: np.ndarray, geo: MouthGeometry, k: float, s: float, R: int):
    """The forward displacement ``field(x, y) -> (dx, dy)`` of ``mouth_warp``."""
    cols = np.arange(R, dtype=np.float64)
    y_iu, y_il = _curve(lm, IN_UP, cols), _curve(lm, IN_LO, cols)
    y_ou, y_ol = _curve(lm, OUT_UP, cols), _curve(lm, OUT_LO, cols)
    y_c = 0.5 * (y_iu + y_il)
    gap = max(float(np.linalg.norm(_p(lm, (13,))[0] - _p(lm, (14,))[0])), 0.5)
    prof = np.clip(1 - ((cols - geo.xc) / (geo.hw * 1.05)) ** 2, 0, 1)  # corners stay put
    d_lo, d_up = 0.75 * (k - 1) * gap * prof, 0.25 * (k - 1) * gap * prof
    lips = np.abs(cols - geo.xc) <= geo.hw  # the columns of the mouth: where the falloffs are measured
    ol_m, ou_m = float(y_ol[lips].mean()), float(y_ou[lips].mean())
    fall_lo, fall_up = max(geo.bottom - ol_m, 2.0), max(ou_m - geo.top, 2.0)  # lip edge -> region edge
    band_up, band_lo = max(ou_m - 1.0 - geo.top, 2.0), max(geo.bottom - ol_m - 1.0, 2.0)

    def field(x, y):
        """Forward displacement (dx, dy) of the content at source (x, y)."""
        xi = np.clip(np.rint(x).astype(int), 0, R - 1)
        yc, iu, il, ou, ol = y_c[xi], y_iu[xi], y_il[xi], y_ou[xi], y_ol[xi]
        half = np.maximum(0.5 * (il - iu), 0.5)
        below = y >= yc
        r_lo = np.where(y <= il, _smoothstep((y - yc) / half),
                        np.where(y <= ol, 1.0, 1 - _smoothstep((y - ol) / fall_lo)))
        r_up = np.where(y >= iu, _smoothstep((yc - y) / half),
                        np.where(y >= ou, 1.0, 1 - _smoothstep((ou - y) / fall_up)))
        dy = np.where(below, d_lo[xi] * r_lo, -d_up[xi] * r_up)
        ax = np.abs(x - geo.xc)
        q = 1 - _smoothstep((ax - geo.hw) / (0.8 * geo.hw))
        band_top, band_bot = ou - 1.0, ol + 1.0
        v = np.where(y < band_top, 1 - _smoothstep((band_top - y) / band_up),
                     np.where(y > band_bot, 1 - _smoothstep((y - band_bot) / band_lo), 1.0))
        dx = (s - 1) * (x - geo.xc) * q * v
        return dx, dy

    return field


def warp_landmarks(lm: np.ndarray, geo: MouthGeometry, k: float, s: float, R: int = 128) -> np.ndarray:
    """Where ``mouth_warp(img, lm, geo, k, s)`` moves the landmarks ``lm`` (K, 2)."""
    dx, dy = _mouth_field(lm, geo, k, s, R)(lm[:, 0], lm[:, 1])
    return lm + np.stack([dx, dy], -1)


def mouth_warp(img: np.ndarray, lm: np.ndarray, geo: MouthGeometry, k: float, s: float) -> np.ndarray:
    """Warp the mouth of ``img`` (float (R, R, 3), landmarks ``lm``): inner-lip gap x``k`` (the
    lower lip and jaw take 3/4 of the change), mouth width x``s`` about its centre; the field
    fades to nothing at the mouth region's edge."""
    from scipy.ndimage import map_coordinates

    R = img.shape[0]
    field = _mouth_field(lm, geo, k, s, R)
    yy, xx = np.mgrid[0:R, 0:R].astype(np.float64)
    # the field is zero outside the box [xc +- 1.8 hw] x [top, bottom]: compute it there only
    x0, x1 = max(int(np.floor(geo.xc - 1.8 * geo.hw)) - 1, 0), min(int(np.ceil(geo.xc + 1.8 * geo.hw)) + 2, R)
    y0, y1 = max(int(np.floor(geo.top)) - 1, 0), min(int(np.ceil(geo.bottom)) + 2, R)
    bx, by = xx[y0:y1, x0:x1], yy[y0:y1, x0:x1]
    sx, sy = bx.copy(), by.copy()
    for _ in range(6):  # invert the forward field: src + field(src) = dst
        dx, dy = field(sx, sy)
        sx, sy = bx - dx, by - dy
    out = img.copy()
    for c in range(3):
        out[y0:y1, x0:x1, c] = map_coordinates(img[..., c], [sy, sx], order=1, mode="nearest")
    return out


def eye_geometry(lm: np.ndarray) -> list[tuple]:
    out = []
    for e in ("a", "b"):
        corners = _p(lm, (EYE_LO[e][0], EYE_LO[e][-1]))
        x0, x1 = sorted(corners[:, 0])
        out.append((e, float(x0), float(x1)))
    return out


def eye_mask(lm: np.ndarray, R: int, feather: float = 1.0) -> np.ndarray:
    from scipy.ndimage import gaussian_filter

    m = np.zeros((R, R))
    for e, x0, x1 in eye_geometry(lm):
        w = x1 - x0
        y_top = min(_p(lm, BROW[e])[:, 1].min(), _p(lm, EYE_UP[e])[:, 1].min() - 3) - 0.5
        y_bot = _p(lm, EYE_LO[e])[:, 1].max() + 0.2 * w
        x_lo, x_hi = x0 - 0.15 * w, x1 + 0.15 * w
        m[max(int(np.floor(y_top)), 0):int(np.ceil(y_bot)) + 1, max(int(np.floor(x_lo)), 0):int(np.ceil(x_hi)) + 1] = 1
    return np.clip(gaussian_filter(m, feather), 0, 1) * (gaussian_filter(m, feather) > 0.02)


def blink_lids(img: np.ndarray, lm: np.ndarray, amount: float) -> np.ndarray:
    """Close the eyes of ``img`` (float (R, R, 3)) by ``amount`` (1 = shut): the eye opening from
    the upper lid down to ``amount`` of the way to the lower lid is painted over with the eyelid's
    skin (per column, the colour just above the upper lid shading into the colour just below the
    lower lid), and a soft lash line is drawn along the closed lid's edge. The aperture is grown by
    ``GROW`` px for the regressed landmarks' error."""
    from scipy.ndimage import gaussian_filter

    R = img.shape[0]
    out = img.copy()
    yy = np.arange(R, dtype=np.float64)[:, None]
    cols = np.arange(R, dtype=np.float64)
    grow, above, below, lash_dark = BLINK_GROW, BLINK_ABOVE, BLINK_BELOW, BLINK_LASH
    for e, x0, x1 in eye_geometry(lm):
        y_lo, y_up = _curve(lm, EYE_LO[e], cols), _curve(lm, EYE_UP[e], cols)
        inside_x = (cols >= x0 - 0.5) & (cols <= x1 + 0.5)
        top = y_up - grow - BLINK_UP
        edge = y_up + amount * (y_lo + grow - y_up)  # where the closed lid's edge lies
        i_above = np.clip(np.rint(top - above).astype(int), 0, R - 1)
        i_below = np.clip(np.rint(y_lo + grow + below).astype(int), 0, R - 1)
        c_above = gaussian_filter(img[i_above, np.arange(R)], (1.5, 0))  # (R, 3) skin above, per column
        c_below = gaussian_filter(img[i_below, np.arange(R)], (1.5, 0))
        t = np.clip((yy - top[None]) / np.maximum(y_lo + grow - top, 1.0)[None], 0, 1)[..., None]
        skin = c_above[None] * (1 - t) + c_below[None] * t
        paint = ((yy >= top[None]) & (yy <= edge[None]) & inside_x[None]).astype(np.float64)
        taper = np.clip(np.minimum(cols - x0, x1 - cols) / 2.0, 0, 1)  # lids meet at the corners
        paint = gaussian_filter(paint, 0.6) * taper[None]
        lash = np.exp(-0.5 * ((yy - edge[None]) / BLINK_LASH_WIDTH) ** 2) * taper[None] * inside_x[None]
        out = out * (1 - paint[..., None]) + skin * paint[..., None]
        out = out * (1 - lash_dark * lash[..., None])
    return out


@dataclass(frozen=True)
class Atlas:
    """``frames`` uint8 (F, R, R, 3) in ``FRAMES`` order; ``info``: how they were made."""

    frames: np.ndarray
    info: dict[str, Any] = field(default_factory=dict)
    # in memory only (not in mouths.json): the mouth region and each mouth frame's regressed
    # landmarks, for the video's loudness-driven jaw (``video.render_frames``)
    geometry: dict[str, Any] | None = field(default=None, repr=False, compare=False)

    def __post_init__(self):
        assert self.frames.ndim == 4 and self.frames.shape[0] == len(FRAMES) and self.frames.shape[3] == 3, \
            self.frames.shape
        assert self.frames.dtype == np.uint8

    @property
    def size(self) -> int:
        return int(self.frames.shape[1])

    def frame(self, name: str) -> np.ndarray:
        return self.frames[FRAMES.index(name)]

    def shape_frame(self, viseme: str) -> int:
        """Index of the frame that shows ``viseme`` (an Oculus viseme or a shape letter)."""
        return FRAMES.index(VISEME_TO_SHAPE.get(viseme, viseme))

    def image(self) -> np.ndarray:
        """uint8 (R, F * R, 3): the frames side by side, ``FRAMES`` order."""
        return np.concatenate(list(self.frames), 1)

    def png_bytes(self) -> bytes:
        from PIL import Image

        buf = io.BytesIO()
        Image.fromarray(self.image()).save(buf, format="PNG", compress_level=9)
        return buf.getvalue()

    def json_dict(self) -> dict[str, Any]:
        R = self.size
        return {"atlas_version": ATLAS_VERSION, "image": ATLAS_PNG, "frame_size": [R, R], "columns": len(FRAMES),
                "rows": 1, "shape_set": "rhubarb",
                "frames": [{"index": i, "name": n, "x": i * R, "y": 0, "w": R, "h": R,
                            "kind": "neutral" if n == "neutral" else "blink" if n.startswith("blink") else "mouth"}
                           for i, n in enumerate(FRAMES)],
                "viseme_to_shape": dict(VISEME_TO_SHAPE),
                "viseme_to_frame": {v: FRAMES.index(s) for v, s in VISEME_TO_SHAPE.items()},
                # the same as a list, for readers without JSON objects as maps (Unity's JsonUtility)
                "viseme_frames": [{"viseme": v, "frame": FRAMES.index(s)} for v, s in VISEME_TO_SHAPE.items()],
                "blink_frames": [FRAMES.index("blink_half"), FRAMES.index("blink")],
                "rest_frame": FRAMES.index("X"), **({"made": self.info} if self.info else {})}

    def json_bytes(self) -> bytes:
        return (json.dumps(self.json_dict(), indent=1, sort_keys=True) + "\n").encode()

    def save(self, folder) -> list[str]:
        """Write ``mouths.png`` and ``mouths.json`` into ``folder`` (atomically); returns their names."""
        from pathlib import Path

        from ..checkpoint import atomic_write_bytes

        atomic_write_bytes(Path(folder) / ATLAS_PNG, self.png_bytes())
        atomic_write_bytes(Path(folder) / ATLAS_JSON, self.json_bytes())
        return [ATLAS_PNG, ATLAS_JSON]


def make_atlas(face_model, directions: PortraitDirections, latent: np.ndarray, traits: dict[str, Any],
               psi: float, groups: np.ndarray | None = None) -> Atlas:
    """The atlas of a persona: ``latent`` (160,) persona latent (or a (128,) face code), ``traits``
    its ``female``, ``age`` and ``race``, ``psi`` the pipeline's truncation (its ``face.png`` is
    frame 0 bit for bit when these are what the pipeline used). ``groups``: (5,) group weights
    instead of ``traits["race"]`` (blends)."""
    codes, lms, race3, (pred, s_c, s_o) = _plan(directions, latent, traits, groups)
    imgs = face_model.generate(codes, traits["female"], traits["age"], race3, psi=psi)
    R = imgs.shape[1]
    if R != 128:  # landmarks are fitted in the 128 px frame
        lms = lms * (R / 128.0)
    N, C, O = (im.astype(np.float64) for im in imgs)
    geo = MouthGeometry.of(*lms)
    region = geo.mask(R)
    closed = composite(N, C, region, _lips_mask(R, lms[0], lms[1]))
    opened = composite(N, O, region, _lips_mask(R, lms[0], lms[2]))
    frames = {"neutral": imgs[0]}
    shape_lms = {}
    for sh in SHAPES:
        base, k, s = SHAPE_PARAMS[sh]
        src, lm = (closed, lms[1]) if base == "closed" else (opened, lms[2])
        out = src if (k == 1.0 and s == 1.0) else mouth_warp(src, lm, geo, k, s)
        shape_lms[sh] = lm if (k == 1.0 and s == 1.0) else warp_landmarks(lm, geo, k, s, R)
        out = N * (1 - region[..., None]) + out * region[..., None]
        frames[sh] = _u8(out)
    emask = eye_mask(lms[0], R)[..., None]
    rest = frames["X"].astype(np.float64)
    for name, amount in BLINKS.items():
        frames[name] = _u8(rest * (1 - emask) + blink_lids(rest, lms[0], amount) * emask)
    info = {"open_step": round(s_o, 4), "closed_step": round(s_c, 4), "predicted_opening": round(pred, 4),
            "predicted_open_gap": round(float(mouth_opening_of(lms[2:3])[0]), 4)}
    return Atlas(np.stack([frames[n] for n in FRAMES]), info, {"mouth": geo, "region": region, "landmarks": shape_lms})


def _plan(directions: PortraitDirections, latent: np.ndarray, traits: dict[str, Any], groups=None):
    """The three face codes (own, closed, open), their regressed landmarks (3, K, 2), the group
    argument for them and ``(predicted opening, closed step, open step)``."""
    from ..fusion import RACES, SL_FACE

    latent = np.asarray(latent, np.float64)
    code = latent[SL_FACE] if latent.shape == (160,) else latent
    assert code.shape == (128,), latent.shape
    u = directions.open_direction
    pred = float(directions.predicted_opening(code[None])[0])
    s_c = float(np.clip((CLOSED_TARGET - pred) / directions.open_gain, -MAX_STEP, 0.0))
    s_o = float(np.clip((OPEN_TARGET - pred) / directions.open_gain, 0.0, MAX_STEP))
    codes = np.stack([code, code + s_c * u, code + s_o * u])
    if groups is None:
        race3 = RACES.index(traits.get("race") or "white")
    else:
        race3 = np.repeat(np.asarray(groups, np.float32)[None], 3, 0)
    lms = directions.landmarks(codes, traits["female"], traits["age"], race3)
    return codes, lms, race3, (pred, s_c, s_o)


def atlas_masks(directions: PortraitDirections, latent: np.ndarray, traits: dict[str, Any], R: int = 128,
                groups=None) -> tuple[np.ndarray, np.ndarray]:
    """``(mouth, eyes)`` (R, R) float masks of the persona's atlas: outside them every frame is the
    neutral face (the mouth frames outside ``mouth``, the blink frames outside ``eyes``)."""
    _, lms, _, _ = _plan(directions, latent, traits, groups)
    lms = lms * (R / 128.0)
    return MouthGeometry.of(*lms).mask(R), eye_mask(lms[0], R)


def _u8(x: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)
