"""What the face, voice and fusion evaluations share: judge detection, JSON, the command wrapper,
small figures."""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np

DEFAULT_VOICE_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "commonvoice61"


def missing_modules(names: Iterable[str]) -> list[str]:
    """The import names among ``names`` that are not installed (empty when all are)."""
    missing = []
    for m in names:
        try:
            if importlib.util.find_spec(m) is None:
                missing.append(m)
        except (ImportError, ValueError):  # ValueError: sys.modules[m] is None
            missing.append(m)
    return missing


def jsonable(d: Any) -> Any:
    """``d`` with numpy values as Python ones, string keys, and NaN/inf as None (strict JSON)."""
    if isinstance(d, dict):
        return {str(k): jsonable(v) for k, v in d.items()}
    if isinstance(d, (list, tuple)):
        return [jsonable(v) for v in d]
    if isinstance(d, np.ndarray):
        return jsonable(d.tolist())
    if isinstance(d, (np.floating, np.integer, np.bool_)):
        d = d.item()
    if isinstance(d, float) and not math.isfinite(d):
        return None
    return d


def unit_rows(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, np.float64)
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def prepare(threads: int, missing: list[str], install_hint: str) -> int | None:
    """Set torch's threads (0 = its default); 2, after one error line, if judges are ``missing``."""
    if threads:
        import torch

        torch.set_num_threads(threads)
    if missing:
        print(f"error: {install_hint} (missing: {', '.join(missing)})", file=sys.stderr)
        return 2
    return None


def run_and_report(run: Callable[[], dict[str, Any]], format_table: Callable[[dict], str], out_json: str | None) -> int:
    """Run the evaluation and print its table; 2 with one error line for missing models or data."""
    from ..pipeline import ModelNotAvailable

    try:
        res = run()
    except (ModelNotAvailable, FileNotFoundError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(format_table(res))
    if out_json:
        print(f"wrote {out_json}")
    return 0
