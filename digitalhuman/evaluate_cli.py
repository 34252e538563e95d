"""What the ``evaluate faces|voices|fusion`` commands share around their evaluation."""

from __future__ import annotations

import sys
from typing import Any, Callable


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
    from .pipeline import ModelNotAvailable

    try:
        res = run()
    except (ModelNotAvailable, FileNotFoundError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(format_table(res))
    if out_json:
        print(f"wrote {out_json}")
    return 0
