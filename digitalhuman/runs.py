"""Numbered training run folders: ``OUT/00000-face-r64``, ``OUT/00001-voice`` ..."""

from __future__ import annotations

import re
from pathlib import Path

_RUN = re.compile(r"^(\d{5})-(.+)$")


def _runs(out: Path):
    if not out.is_dir():
        return []
    found = []
    for p in out.iterdir():
        m = _RUN.match(p.name)
        if m and p.is_dir():
            found.append((int(m.group(1)), m.group(2), p))
    return sorted(found)


def new_run_dir(out: str | Path, desc: str) -> Path:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    runs = _runs(out)
    n = runs[-1][0] + 1 if runs else 0
    run = out / f"{n:05d}-{desc}"
    run.mkdir()
    return run


def latest_run_dir(out: str | Path, kind: str) -> Path | None:
    """Newest run whose description starts with ``kind`` (e.g. ``face``)."""
    runs = [r for r in _runs(Path(out)) if r[1].startswith(kind)]
    return runs[-1][2] if runs else None
