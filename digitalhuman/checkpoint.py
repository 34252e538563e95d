"""Self-describing weight files.

Inference weights are safetensors files whose metadata holds the model's config (JSON), the
format version and the package version that wrote them. Loading never executes code: safetensors
holds tensors only, and training checkpoints (``.pt``) are read with ``weights_only=True``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

FORMAT_VERSION = 1
SUPPORTED_FORMAT_VERSIONS = (1,)


class CheckpointError(ValueError):
    """A weight file that cannot be used: missing, tampered, unknown version, wrong kind."""


def sha256_file(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder and a rename."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; outputs are meant to be shared
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_weights(
    path: str | os.PathLike,
    tensors: dict[str, "torch.Tensor"],
    *,
    kind: str,
    config: Any,
    half: bool = False,
    extra: dict[str, str] | None = None,
) -> str:
    """Save inference weights with their config; returns the file's sha256."""
    from safetensors.torch import save_file

    from . import __version__

    if dataclasses.is_dataclass(config):
        config = dataclasses.asdict(config)
    out = {}
    for k, v in tensors.items():
        v = v.detach().cpu().contiguous()
        if half and v.is_floating_point():
            v = v.half()
        out[k] = v
    meta = {
        "kind": kind,
        "format_version": str(FORMAT_VERSION),
        "package_version": __version__,
        "config": json.dumps(config, sort_keys=True),
    }
    meta.update(extra or {})
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    # one metadata key: safetensors writes its metadata map in hash order, so several keys made
    # byte-different files from identical content
    save_file(out, str(tmp), metadata={"digitalhuman": json.dumps(meta, sort_keys=True)})
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)
    return sha256_file(path)


def load_weights(
    path: str | os.PathLike, *, kind: str, expected_sha256: str | None = None, framework: str = "pt"
) -> tuple[dict[str, "torch.Tensor"], dict[str, Any], dict[str, str]]:
    """Load ``(tensors as float32, config dict, metadata)``; refuse anything unexpected.

    ``framework="np"`` gives numpy arrays instead of torch tensors, without importing torch."""
    from safetensors import SafetensorError

    if framework == "np":
        from safetensors.numpy import load_file
    else:
        from safetensors.torch import load_file
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"weight file not found: {path}")
    if expected_sha256 is not None:
        got = sha256_file(path)
        if got != expected_sha256:
            raise CheckpointError(
                f"{path.name}: sha256 {got[:12]}... does not match the card's {expected_sha256[:12]}...; "
                "the file was changed or corrupted - reinstall the package or retrain"
            )
    try:
        from safetensors import safe_open

        with safe_open(str(path), framework=framework) as f:
            meta = dict(f.metadata() or {})
        if "digitalhuman" in meta:
            meta = json.loads(meta["digitalhuman"])
            if not isinstance(meta, dict):
                raise ValueError("metadata is not an object")
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"{path.name}: not a readable safetensors weight file ({e})") from None
    if meta.get("kind") != kind:
        raise CheckpointError(f"{path.name}: holds a {meta.get('kind')!r} model, expected {kind!r}")
    try:
        version = int(meta.get("format_version", "-1"))
    except ValueError:
        version = -1
    if version not in SUPPORTED_FORMAT_VERSIONS:
        raise CheckpointError(
            f"{path.name}: weight format version {meta.get('format_version')!r} is not supported by this "
            f"digitalhuman (supports {SUPPORTED_FORMAT_VERSIONS}); upgrade the package or re-export the weights"
        )
    try:
        config = json.loads(meta["config"])
        if not isinstance(config, dict):
            raise ValueError("config is not an object")
    except (KeyError, TypeError, ValueError) as e:
        raise CheckpointError(f"{path.name}: its config is missing or unreadable ({e}); re-export the weights") from None
    if framework == "np":
        import numpy as np

        tensors = {k: (v.astype(np.float32) if np.issubdtype(v.dtype, np.floating) else v) for k, v in tensors.items()}
    else:
        tensors = {k: (v.float() if v.is_floating_point() else v) for k, v in tensors.items()}
    return tensors, config, meta


def meta_float(meta: dict[str, Any], key: str, path: str | os.PathLike, default: float = 1.0,
               lo: float = 0.5, hi: float = 5.0) -> float:
    """A number from weights' metadata (``default`` when absent), refused unless within ``lo..hi``."""
    try:
        v = float(meta.get(key, default))
    except (TypeError, ValueError):
        v = float("nan")
    if not lo <= v <= hi:  # NaN fails too
        raise CheckpointError(f"{Path(path).name}: {key} {meta.get(key)!r} is outside {lo:g}..{hi:g}")
    return v


def save_training_checkpoint(path: str | os.PathLike, state: dict[str, Any]) -> None:
    """Save a resumable training state (tensors, numbers, strings only) atomically."""
    import torch

    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def load_training_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    import torch

    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # pickle payloads are refused by weights_only
        raise CheckpointError(f"{Path(path).name}: refused to load ({type(e).__name__}: {str(e)[:200]})") from None
