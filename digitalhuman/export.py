"""Export for game engines: ``export_onnx(out_dir, weights_dir=None)``.

Files written into ``out_dir``:

- ``face_generator.onnx``: ``z (B,128), cond (B,8) -> image (B,3,R,R)`` float32 in [-1, 1].
  ``cond = [male, female, age_n, white, black, asian, indian, other]`` with ``male = 1 - female``
  (female in [0, 1], may be soft, presented as ``0.5 + gender_strength * (female - 0.5)`` with the
  manifest's ``gender_strength``), ``age_n = log1p(age) / log1p(100) * 2 - 1`` (age in years,
  clamped to [0, 116]) and a one-hot (or soft) group; see ``face.gan.make_cond``;
  ``face_from_persona.py`` rebuilds a persona's face from it with numpy + onnxruntime.
- The voice (``export_voice``): not a copy of Kokoro-82M (92 MB, from four PyPI packages) but its
  sha256 and how to call it, in the manifest's ``voice``; ``kokoro_vocab.json`` (phoneme ids),
  ``voice_packs.npy`` + ``voice_prior.json`` (the voice prior as plain arrays) and
  ``voice_style_from_persona.py`` (persona.json -> Kokoro style, numpy only).
- ``phoneme_to_viseme.json``, ``lipsync_mapping.json``: the lip-sync maps.
- ``manifest.json`` (sha256, input/output names and shapes, opsets, versions, parity) and
  ``README.txt`` (what the files are, every formula, licences).

Parity: for seeds 0..63, the face generator's ``z`` and conditions are drawn from ``PCG64(seed)``;
the largest absolute difference between onnxruntime (CPU) and PyTorch is recorded. The voice
reference script must give ``PersonaVoice``'s styles bit for bit.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from . import __version__
from .checkpoint import atomic_write_bytes, sha256_file
from .export_readme import (FACE_FILE, KOKORO_VOCAB_FILE, LIPSYNC_MAP_FILE, REFERENCE_SCRIPT, VISEME_MAP_FILE,
                            VOICE_PACKS_FILE, VOICE_PRIOR_FILE, VOICE_REFERENCE_SCRIPT, readme_text)
from .face.model import face_generator_onnx
from .runtime import MIN_OPSET, OPSET, session

__all__ = ["export_onnx", "face_generator_onnx", "ExportError", "OPSET", "PARITY_BAR", "FACE_FILE",
           "KOKORO_VOCAB_FILE", "VOICE_PACKS_FILE", "VOICE_PRIOR_FILE", "VOICE_REFERENCE_SCRIPT"]

PARITY_BAR = 1e-3  # max abs difference onnxruntime vs PyTorch, face generator
PARITY_SEEDS = 64
MANIFEST_FILE = "manifest.json"
FACE_COND_LAYOUT = ["male", "female", "age_n", "white", "black", "asian", "indian", "other"]


class ExportError(RuntimeError):
    """The models cannot be exported, or the exported graph does not match PyTorch."""


# --------------------------------------------------------------------------------------- helpers
def _write(path: Path, data: bytes) -> None:
    """Atomic write, readable by all (the temporary file it goes through is private)."""
    atomic_write_bytes(path, data)
    path.chmod(0o644)


def _io_spec(model) -> dict[str, list[dict[str, Any]]]:
    """Graph inputs (not initialisers) and outputs: ``{"inputs": [{name, dtype, shape}], "outputs": [...]}``."""
    from onnx import helper

    inits = {i.name for i in model.graph.initializer}

    def spec(vi) -> dict[str, Any]:
        t = vi.type.tensor_type
        shape = [d.dim_param if d.dim_param else (d.dim_value if d.HasField("dim_value") else None)
                 for d in t.shape.dim]
        return {"name": vi.name, "dtype": str(helper.tensor_dtype_to_np_dtype(t.elem_type)), "shape": shape}

    return {"inputs": [spec(v) for v in model.graph.input if v.name not in inits],
            "outputs": [spec(v) for v in model.graph.output]}


def _file_entry(path: Path, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    entry: dict[str, Any] = {"file": path.name, "sha256": sha256_file(path), "bytes": path.stat().st_size,
                             "opset": {(o.domain or "ai.onnx"): o.version for o in model.opset_import},
                             "ir_version": model.ir_version}
    entry.update(_io_spec(model))
    entry.update(extra or {})
    return entry


def _source(entry) -> dict[str, Any]:
    info = {"id": entry.id, "sha256": entry.sha256}
    for k in ("trained_on", "licence"):
        if k in entry.info:
            info[k] = entry.info[k]
    return info


def _seed_rng(seed: int) -> np.random.Generator:
    return np.random.Generator(np.random.PCG64(seed))


# ------------------------------------------------------------------------------------------ face
def _face_parity(g, sess, seeds: int) -> float:
    """Max abs difference over ``seeds`` faces: per seed, z (128,) then female, age, group from PCG64(seed)."""
    import torch

    from .face.gan import RACES, make_cond

    z, female, age, race = [], [], [], []
    for s in range(seeds):
        rng = _seed_rng(s)
        z.append(rng.standard_normal(g.cfg.z_dim, dtype=np.float32))
        female.append(rng.random())
        age.append(rng.uniform(0.0, 100.0))
        race.append(rng.integers(0, len(RACES)))
    z_np = np.stack(z)
    cond = make_cond(torch.tensor(female, dtype=torch.float32), torch.tensor(age, dtype=torch.float32),
                     torch.tensor(race)).numpy()
    with torch.inference_mode():
        ref = g(torch.from_numpy(z_np), torch.from_numpy(cond)).numpy()
    (got,) = sess.run(["image"], {"z": z_np, "cond": cond})
    return float(np.max(np.abs(got - ref)))


def _export_face(entry, out: Path, seeds: int, opset: int) -> tuple[dict[str, Any], float]:
    from .face.gan import AGE_CENTER
    from .face.model import FaceModel
    from .fusion import SL_FACE
    from .pipeline import DEFAULT_PSI

    model = FaceModel.load(entry.file, entry.sha256, runtime="torch")  # its graph is built once, below
    g = model.g.eval()
    R, Z = g.cfg.out_resolution, g.cfg.z_dim
    data = face_generator_onnx(g, opset)
    _write(out / FACE_FILE, data)
    err = _face_parity(g, session(data), seeds)
    meta = {
        "source_model": _source(entry),
        "resolution": R,
        "z_dim": Z,
        "cond_layout": FACE_COND_LAYOUT,
        "gender_strength": model.gender_strength,
        "female": "cond female = 0.5 + gender_strength * (persona female - 0.5); cond male = 1 - cond female",
        "age_map": None if model.age_map is None else {"requested": list(model.age_map[0]),
                                                         "condition": list(model.age_map[1])},
        "age_mapped": "age_years = linear interpolation of the persona's age over age_map (requested -> condition), "
                      "held at the end knots; unchanged when age_map is null",
        "age_strength": model.age_strength,
        "age_center_years": AGE_CENTER,
        "age_presented": "age_n = clamp(c + age_strength * (age_n - c), -1, 1) with c = age_n of age_center_years",
        "age_n": "log1p(clamp(age_years, 0, 116)) / log1p(100) * 2 - 1 (age_years after age_map)",
        "z": f"standard normal; the Python pipeline uses persona.json latent[{SL_FACE.start}:{SL_FACE.stop}] * psi "
             f"(psi {DEFAULT_PSI}), then adds the age shift",
        "age_shift": None if model.age_shift is None else {"requested": list(model.age_shift[0]),
                                                             "shift": list(model.age_shift[1]),
                                                             "direction": [float(x) for x in model.age_shift[2]]},
        "age_shifted": "z = z + k * direction (float32) with k = linear interpolation of the persona's age (before "
                       "age_map) over age_shift (requested -> shift), held at the end knots; none when age_shift is null",
        "z_from_persona": {"latent_slice": [SL_FACE.start, SL_FACE.stop], "psi": DEFAULT_PSI},
        "image": "RGB, NCHW, [-1, 1]; to uint8: round((clamp(x, -1, 1) + 1) * 127.5)",
        "skip_rgb": bool(g.cfg.skip_rgb),
        "refined": bool(g.cfg.refine_channels),  # the graph ends in the learned 2x top level (face/refine.py)
        "reference": f"{REFERENCE_SCRIPT}: these formulas in numpy + onnxruntime, persona.json -> face.png",
    }
    return meta, err


# ------------------------------------------------------------------------------- lip-sync maps
def _write_lipsync_maps(out: Path) -> dict[str, Any]:
    from .lipsync import mapping_doc
    from .voice.visemes import PHONEME_TO_VISEME, VISEMES

    phonemes = {"visemes": list(VISEMES), "phoneme_to_viseme": dict(sorted(PHONEME_TO_VISEME.items())),
                "unknown": "sil",
                "note": "keys are the voice's phoneme symbols (and multi-character IPA); stress marks belong to "
                        "the next sound, length marks and diacritics to the sound before"}
    _write(out / VISEME_MAP_FILE, (json.dumps(phonemes, indent=1, ensure_ascii=False) + "\n").encode())
    _write(out / LIPSYNC_MAP_FILE, (json.dumps(mapping_doc(), indent=1) + "\n").encode())
    shutil.copyfile(Path(__file__).resolve().parent / REFERENCE_SCRIPT, out / REFERENCE_SCRIPT)
    return {name: {"file": name, "sha256": sha256_file(out / name)}
            for name in (VISEME_MAP_FILE, LIPSYNC_MAP_FILE, REFERENCE_SCRIPT)}


# ------------------------------------------------------------------------------------------- API
def export_onnx(out_dir: str | Path, weights_dir: str | Path | None = None, *, seeds: int = PARITY_SEEDS,
                opset: int = OPSET, strict: bool = True) -> dict[str, Any]:
    """Export the face generator and the voice (Kokoro named, the voice prior as arrays) to ``out_dir``.

    ``weights_dir``: a folder with ``card.json`` (default: the weights shipped in the package); it
    needs the ``face`` and ``voice_prior`` models. Returns the manifest (also written as
    ``manifest.json``); ``manifest["parity"]`` holds the max abs difference onnxruntime vs PyTorch
    of the face generator over ``seeds`` seeds and whether the voice reference script gives the
    pipeline's styles bit for bit. ``opset`` applies to the face generator (Unity Sentis documents
    opsets 7-15: ``opset=15`` gives the same operators, see docs/engines.md); Kokoro is named, not
    re-exported. With ``strict`` an :class:`ExportError` is raised (after writing everything) if
    the face exceeds ``PARITY_BAR`` or the voice styles differ.
    """
    import onnxruntime
    import torch

    from .export_voice import export_voice
    from .pipeline import ModelNotAvailable
    from .weights_card import WEIGHTS_DIR, read_card

    if seeds < 1:
        raise ValueError(f"seeds must be >= 1, got {seeds}")
    if not MIN_OPSET <= opset <= OPSET:
        raise ValueError(f"opset must be within [{MIN_OPSET}, {OPSET}], got {opset}")
    entries = read_card(weights_dir)
    missing = [n for n in ("face", "voice_prior") if n not in entries]
    if missing:
        where = weights_dir if weights_dir is not None else WEIGHTS_DIR
        raise ModelNotAvailable(f"no {' or '.join(missing)} model in {where}/card.json; "
                                "pass a weights folder (--weights DIR) that has them")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)

    face_meta, face_err = _export_face(entries["face"], out, seeds, opset)
    voice_files, voice_section, voice_parity = export_voice(entries["voice_prior"], out, _io_spec)
    extra_files = _write_lipsync_maps(out)
    parity = {
        "seeds": seeds,
        "bar": PARITY_BAR,
        "face_generator_max_abs_diff": face_err,
        **voice_parity,
        "runtime": f"onnxruntime {onnxruntime.__version__} CPUExecutionProvider vs torch {torch.__version__}",
    }
    manifest = {
        "format_version": 2,  # 2: the voice is Kokoro-82M, named (not copied), and the voice prior's arrays
        "package_version": __version__,
        "opset": opset,
        "torch_version": torch.__version__,
        "onnxruntime_version": onnxruntime.__version__,
        "files": {FACE_FILE: _file_entry(out / FACE_FILE, face_meta), **voice_files},
        "voice": voice_section,
        "parity": parity,
        "other_files": extra_files,
    }
    (out / "README.txt").write_text(readme_text(manifest), encoding="utf-8")
    _write(out / MANIFEST_FILE, (json.dumps(manifest, indent=2) + "\n").encode())

    if strict and not (face_err <= PARITY_BAR and voice_parity["voice_style_bit_identical"]):
        raise ExportError(f"the export differs from digitalhuman (parity {parity}); files left in {out} to inspect")
    return manifest
