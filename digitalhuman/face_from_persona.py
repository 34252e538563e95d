"""Rebuild a persona's face from the ONNX export alone: numpy + onnxruntime (+ Pillow to write PNG).

``digitalhuman export onnx`` copies this file into the export folder as the reference for engine
code: it reads nothing but ``manifest.json``, ``face_generator.onnx`` and a ``persona.json``, and
needs neither torch nor digitalhuman::

    python face_from_persona.py EXPORT_DIR PERSONA_DIR [PERSONA_DIR ...] --out OUT_DIR

writes ``OUT_DIR/<persona folder name>.png``. The steps, in float32 like the Python pipeline:

- ``z = latent[a:b] * psi`` with ``[a, b]`` and ``psi`` from the manifest's ``z_from_persona``;
  with an ``age_shift``, ``z += k * direction`` where ``k`` interpolates the persona's age over its
  ``requested`` knots to its ``shift`` knots (held at the ends);
- ``female' = 0.5 + gender_strength * (female - 0.5)``, ``male' = 1 - female'``;
- ``age`` through the manifest's ``age_map`` when it has one: linear interpolation from its
  ``requested`` knots to its ``condition`` knots (held at the ends);
- ``age_n = log1p(clamp(age, 0, 116)) / log1p(100) * 2 - 1``; with ``c`` the ``age_n`` of
  ``age_center_years``: ``age_n = clamp(c + age_strength * (age_n - c), -1, 1)``;
- ``cond = [male', female', age_n, one-hot group (white black asian indian other; null = white)]``;
- ``pixel = round((clamp(x, -1, 1) + 1) * 127.5)`` of the NCHW output, as uint8 RGB.

A blended persona (``origin.blend``) mixes two groups by ``t``: ``group`` weights ``(1 - t, t)`` of
its two personas' groups. persona.json holds them only as ``origin.blend.groups`` (5 weights, in
the order above); a blend without them is refused, never rebuilt as another face. Each PNG is named
after its persona folder, so two folders of one name (``a/npc``, ``b/npc``) are refused before
anything is written.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np

GROUPS = ("white", "black", "asian", "indian", "other")
FACE_FILE = "face_generator.onnx"


def age_unit(age: np.ndarray) -> np.ndarray:
    age = np.clip(np.asarray(age, np.float32), np.float32(0), np.float32(116))
    return np.log1p(age) / np.float32(math.log1p(100.0)) * np.float32(2) - np.float32(1)


def face_inputs(meta: dict, persona: dict) -> tuple[np.ndarray, np.ndarray]:
    """``(z (1, Z), cond (1, 8))`` float32 for one persona.json document."""
    zs = meta["z_from_persona"]
    a, b = zs["latent_slice"]
    z = np.asarray(persona["latent"], np.float64)[a:b].astype(np.float32) * np.float32(zs["psi"])
    traits = persona["traits"]
    if meta.get("age_shift"):
        sh = meta["age_shift"]
        k = np.float32(np.interp(np.float64(np.float32(traits["age"])), sh["requested"], sh["shift"]))
        z = (z + k * np.asarray(sh["direction"], np.float32)).astype(np.float32)
    f = np.float32(traits["female"])
    female = np.float32(0.5) + np.float32(meta["gender_strength"]) * (f - np.float32(0.5))
    age = np.float32(traits["age"])
    if meta.get("age_map"):
        am = meta["age_map"]
        age = np.float32(np.interp(np.float64(age), am["requested"], am["condition"]))
    age_n = age_unit(age)
    strength = float(meta["age_strength"])
    if strength != 1.0:
        c = np.float32(age_unit(np.float32(meta["age_center_years"])))
        age_n = np.clip(c + np.float32(strength) * (age_n - c), np.float32(-1), np.float32(1))
    group = np.zeros(len(GROUPS), np.float32)
    blend = (persona.get("origin") or {}).get("blend")
    if blend is not None:
        weights = blend.get("groups") if isinstance(blend, dict) else None
        if not (isinstance(weights, list) and len(weights) == len(GROUPS)
                and all(isinstance(w, (int, float)) and not isinstance(w, bool) and 0 <= w <= 1 for w in weights)):
            raise ValueError("a blended persona (origin.blend): its face mixes the groups of its two personas, "
                             "which this persona.json does not record (origin.blend.groups); rebuild it with "
                             "digitalhuman, or add the 5 group weights")
        group[:] = np.asarray(weights, np.float32)
    else:
        group[GROUPS.index(traits.get("race") or "white")] = 1.0
    cond = np.concatenate([[np.float32(1) - female, female, age_n], group]).astype(np.float32)
    return z[None], cond[None]


def to_uint8(image: np.ndarray) -> np.ndarray:
    """(1, 3, R, R) in [-1, 1] -> (R, R, 3) uint8."""
    x = (np.clip(image[0], np.float32(-1), np.float32(1)) + np.float32(1)) * np.float32(127.5)
    return np.round(x).astype(np.uint8).transpose(1, 2, 0)


def rebuild(export_dir: str | Path, persona_json: str | Path) -> np.ndarray:
    import onnxruntime as ort

    export_dir = Path(export_dir)
    meta = json.loads((export_dir / "manifest.json").read_text())["files"][FACE_FILE]
    persona = json.loads(Path(persona_json).read_text())
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.log_severity_level = 3
    session = ort.InferenceSession(str(export_dir / FACE_FILE), opts, providers=["CPUExecutionProvider"])
    z, cond = face_inputs(meta, persona)
    (image,) = session.run(["image"], {"z": z, "cond": cond})
    return to_uint8(image)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("export_dir", type=Path)
    ap.add_argument("personas", type=Path, nargs="+", help="persona folders (with persona.json)")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args(argv)
    from PIL import Image

    # everything checked before anything is written: names, files, blends
    folders, names = [], {}
    for folder in dict.fromkeys(p.resolve() for p in args.personas):  # the same folder twice: once
        if folder.name in names:
            ap.error(f"two persona folders are named {folder.name!r} ({names[folder.name]}, {folder}): their "
                     "PNGs would have one name; rename one or rebuild them into different --out folders")
        names[folder.name] = folder
        if not (folder / "persona.json").is_file():
            ap.error(f"{folder}: no persona.json")
        try:
            face_inputs(json.loads((args.export_dir / "manifest.json").read_text())["files"][FACE_FILE],
                        json.loads((folder / "persona.json").read_text()))
        except (ValueError, KeyError, TypeError, OSError) as e:
            ap.error(f"{folder}: {str(e)[:300]}")
        folders.append(folder)
    args.out.mkdir(parents=True, exist_ok=True)
    for folder in folders:
        Image.fromarray(rebuild(args.export_dir, folder / "persona.json")).save(args.out / f"{folder.name}.png")
    print(f"{args.out}: {len(folders)} face(s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
