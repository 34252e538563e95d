"""A weights folder and its ``card.json``: which model files it holds, their ids and sha256.

Both the pipeline and the model loaders (``face.model.load_generator``, ``export``) read cards,
so this lives apart from either: nothing here imports a model.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .checkpoint import CheckpointError, sha256_file

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
CARD_FILE = "card.json"
LICENCE_FILE = "LICENSE-WEIGHTS.md"  # the shipped weights' licence (not the code's MIT)


class ModelNotAvailable(RuntimeError):
    """A model the request needs is not shipped (or not found in the given weights folder)."""


@dataclass(frozen=True)
class ModelEntry:
    name: str
    id: str
    file: Path
    sha256: str
    info: dict[str, Any]


def weights_folder(path: str | Path | None = None) -> Path:
    """The weights folder ``path`` names (None: the weights shipped in the package)."""
    return Path(path) if path is not None else WEIGHTS_DIR


def read_card(path: str | Path | None = None) -> dict[str, ModelEntry]:
    """Read ``card.json`` of a weights folder -> {model name: entry} (only models whose file exists)."""
    folder = weights_folder(path)
    card = folder / CARD_FILE
    if not card.is_file():
        return {}
    from .persona import safe_file_name

    try:
        data = json.loads(card.read_bytes())
        models = data["models"]
        if not isinstance(models, dict):
            raise TypeError("'models' is not an object")
        out = {}
        for name, m in models.items():
            if not (isinstance(m, dict) and isinstance(m.get("id"), str) and isinstance(m.get("sha256"), str)):
                raise TypeError(f"model {name!r} needs string 'id', 'file' and 'sha256'")
            f = folder / safe_file_name(m["file"])
            if f.is_file():
                out[name] = ModelEntry(name, m["id"], f, m["sha256"], m)
        return out
    except (KeyError, TypeError, ValueError, AttributeError, RecursionError) as e:
        raise CheckpointError(f"{card}: unreadable model card ({str(e)[:200]})") from None


def read_card_file(path: str | Path | None = None) -> dict[str, Any]:
    """The whole ``card.json`` of a weights folder as JSON (``{}`` when there is none)."""
    card = weights_folder(path) / CARD_FILE
    if not card.is_file():
        return {}
    try:
        data = json.loads(card.read_bytes())
    except (ValueError, RecursionError) as e:
        raise CheckpointError(f"{card}: unreadable model card ({str(e)[:200]})") from None
    if not isinstance(data, dict):
        raise CheckpointError(f"{card}: unreadable model card (not a JSON object)")
    return data


def write_card(folder: str | Path, models: dict[str, dict[str, Any]], licence_file: str | None = None) -> Path:
    """Write ``folder/card.json`` for model files already in ``folder`` (sha256 computed here);
    ``licence_file`` names the weights' licence file in ``folder``."""
    folder = Path(folder)
    card: dict[str, Any] = {"format_version": 1, "models": {}}
    if licence_file is not None:
        card["licence_file"] = licence_file
    for name, m in models.items():
        entry = dict(m)
        entry["sha256"] = sha256_file(folder / m["file"])
        card["models"][name] = entry
    path = folder / CARD_FILE
    path.write_text(json.dumps(card, indent=2, sort_keys=True) + "\n")
    return path
