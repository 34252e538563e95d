"""Lip-sync files for a spoken line, from its viseme track (``lipsync.weights`` has the model).

Formats (``--lipsync oculus,arkit,vrm,rhubarb``), each written beside the line's WAV as
``<stem>.<format>.<ext>`` and named in the line's ``lipsync: {format: file}`` in ``persona.json``:

- ``oculus`` (``.oculus.json``): ``{"fps", "visemes": [15 names], "segments": [the hard track],
  "frames": [[15 co-articulated weights, summing to <= 1] per frame]}``;
- ``arkit`` (``.arkit.csv``): the 52 ARKit blendshapes per frame as Live Link Face records them:
  ``Timecode,BlendShapeCount,EyeBlinkLeft,...,TongueOut,HeadYaw,...,RightEyeRoll``; mouth and jaw
  from the co-articulated visemes, values 0-1, the rest 0;
- ``vrm`` (``.vrm.json``): VRM 1.0 mouth presets ``{"fps", "presets": [aa ih ou ee oh],
  "frames": [{"aa": w, ...} per frame]}``;
- ``rhubarb`` (``.rhubarb.tsv``): Rhubarb Lip Sync's TSV, ``time<TAB>shape`` at each change of
  mouth shape (A-H, X), ending with ``X`` at the end of the audio.

Every per-frame format has ``frame_count(duration) = ceil(60 * duration)`` frames, frame ``i`` at
``i / 60`` s. Same track -> same bytes.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from ..voice.visemes import LIPSYNC_FORMATS, VISEMES
from .weights import (ARKIT_EXTRA, ARKIT_NAMES, FPS, LAG_S, LEAD_S, VISEME_ARKIT, VISEME_RHUBARB, VISEME_VRM,
                      VRM_PRESETS, floor4, pose_matrix, weights_at)

__all__ = ["LIPSYNC_FORMATS", "EXTENSIONS", "MEDIA_TYPES", "parse_formats", "file_names", "lipsync_files",
           "render", "oculus_json", "arkit_csv", "vrm_json", "rhubarb_tsv", "mapping_doc"]

EXTENSIONS = {"oculus": "oculus.json", "arkit": "arkit.csv", "vrm": "vrm.json", "rhubarb": "rhubarb.tsv"}
MEDIA_TYPES = {"oculus": "application/json", "arkit": "text/csv", "vrm": "application/json",
               "rhubarb": "text/tab-separated-values"}


def parse_formats(spec: str | Iterable[str] | None) -> tuple[str, ...]:
    """``"arkit,vrm"`` (or a list) -> ``("arkit", "vrm")`` in canonical order; ``"all"`` for every one.
    Raises ValueError naming the formats for anything else."""
    if spec is None:
        return ()
    items = spec.split(",") if isinstance(spec, str) else list(spec)
    names = {str(s).strip().lower() for s in items if str(s).strip()}
    if "all" in names:
        names = (names - {"all"}) | set(LIPSYNC_FORMATS)
    unknown = sorted(names - set(LIPSYNC_FORMATS))
    if unknown:
        raise ValueError(f"unknown lip-sync format {', '.join(repr(u[:20]) for u in unknown[:3])}; "
                         f"choose from {', '.join(LIPSYNC_FORMATS)} (comma-separated) or all")
    return tuple(f for f in LIPSYNC_FORMATS if f in names)


def file_names(stem: str, formats: Sequence[str]) -> dict[str, str]:
    return {f: f"{stem}.{EXTENSIONS[f]}" for f in parse_formats(formats)}


def _frames(line) -> tuple[np.ndarray, np.ndarray]:
    return weights_at(line.visemes, line.duration_s, FPS)


def oculus_json(line) -> bytes:
    _, w = _frames(line)
    doc = {"fps": FPS, "duration_s": round(line.duration_s, 4), "visemes": list(VISEMES),
           "segments": line.visemes, "frames": floor4(w).tolist()}
    return (json.dumps(doc, separators=(",", ":")) + "\n").encode()


def _timecode(frame: int, fps: int = FPS) -> str:
    """Live Link Face's ``HH:MM:SS:FF.mmm`` (frame within the second, then the sub-frame)."""
    s, f = divmod(frame, fps)
    return f"{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}:{f:02d}.000"


def arkit_csv(line) -> bytes:
    _, w = _frames(line)
    values = np.clip(floor4(w @ pose_matrix(ARKIT_NAMES, VISEME_ARKIT)), 0.0, 1.0)
    buf = io.StringIO()
    buf.write(",".join(("Timecode", "BlendShapeCount") + ARKIT_NAMES + ARKIT_EXTRA) + "\n")
    zeros = ",".join(["0"] * len(ARKIT_EXTRA))
    for i, row in enumerate(values):
        buf.write(f"{_timecode(i)},{len(ARKIT_NAMES) + len(ARKIT_EXTRA)},"
                  + ",".join(f"{v:.4f}".rstrip("0").rstrip(".") for v in row) + "," + zeros + "\n")
    return buf.getvalue().encode()


def vrm_json(line) -> bytes:
    _, w = _frames(line)
    values = floor4(w @ pose_matrix(VRM_PRESETS, VISEME_VRM))
    frames = [dict(zip(VRM_PRESETS, row.tolist())) for row in values]
    return (json.dumps({"fps": FPS, "duration_s": round(line.duration_s, 4), "presets": list(VRM_PRESETS),
                        "frames": frames}, separators=(",", ":")) + "\n").encode()


def rhubarb_tsv(line) -> bytes:
    rows: list[tuple[float, str]] = []
    for seg in line.visemes:
        shape = VISEME_RHUBARB[seg["viseme"]]
        if not rows or rows[-1][1] != shape:
            rows.append((float(seg["t_start"]), shape))
    end = round(line.duration_s, 3)
    if not rows or rows[-1][1] != "X":
        rows.append((end, "X"))
    return "".join(f"{t:.3f}\t{s}\n" for t, s in rows).encode()


WRITERS = {"oculus": oculus_json, "arkit": arkit_csv, "vrm": vrm_json, "rhubarb": rhubarb_tsv}


def render(line, fmt: str) -> bytes:
    """One format's file for ``line`` (anything with ``visemes`` and ``duration_s``)."""
    (fmt,) = parse_formats([fmt])
    return WRITERS[fmt](line)


def lipsync_files(line, stem: str, formats: Sequence[str]) -> dict[str, tuple[str, bytes]]:
    return {f: (name, WRITERS[f](line)) for f, name in file_names(stem, formats).items()}


def mapping_doc() -> dict[str, Any]:
    """Everything an engine needs to turn a viseme track into these curves itself (exported as JSON)."""
    return {
        "fps": FPS,
        "visemes": list(VISEMES),
        "coarticulation": {
            "lead_s": LEAD_S, "lag_s": LAG_S,
            "dominance": "1 inside [t_start, t_end]; 1 - (t_start - t) / lead_s before; 1 - (t - t_end) / lag_s "
                         "after; clamped to [0, 1]",
            "weights": "raw[v] = max dominance over v's segments; w[v] = raw[v] / sum(raw) (sums to 1; all sil "
                       "when every raw is 0)",
        },
        "arkit": {"names": list(ARKIT_NAMES), "live_link_face_extra_columns": list(ARKIT_EXTRA),
                  "viseme_poses": VISEME_ARKIT, "frame": "value[shape] = sum over visemes of w[v] * pose[v][shape]"},
        "vrm": {"presets": list(VRM_PRESETS), "viseme_poses": VISEME_VRM},
        "rhubarb": {"viseme_shapes": VISEME_RHUBARB},
    }


def lipsync_arg(value: str) -> tuple[str, ...]:
    """argparse ``type`` of ``--lipsync``: the message names the formats on a bad value."""
    import argparse

    try:
        return parse_formats(value)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def say_sidecars(line, wav_name: str, formats: Sequence[str]) -> tuple[dict[str, bytes], dict[str, Any]]:
    """For ``digitalhuman say``: the lip-sync files beside ``wav_name`` (``hello.wav`` ->
    ``hello.arkit.csv`` ...) and the ``.visemes.json`` document naming them, with the word timings."""
    stem = wav_name[:-4] if wav_name.lower().endswith(".wav") else wav_name
    files = lipsync_files(line, stem, formats)
    doc = {"text": line.text, "sample_rate": line.sample_rate, "duration_s": round(line.duration_s, 4),
           "visemes": line.visemes, "words": line.words, "lipsync": {f: name for f, (name, _) in files.items()}}
    return {name: data for name, data in files.values()}, doc


def add_lipsync_option(parser) -> None:
    """``--lipsync FORMATS`` on an argparse (sub)parser (create, batch, say)."""
    parser.add_argument("--lipsync", type=lipsync_arg, default=(), metavar="FORMATS",
                        help="lip-sync files beside each WAV: oculus,arkit,vrm,rhubarb (comma-separated) or all")
