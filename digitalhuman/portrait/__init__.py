"""Talking portraits: a persona's own face as a mouth-shape atlas (``make_atlas``) and as a video
of a spoken line (``render_video``), from the face GAN and the shipped portrait directions."""

from __future__ import annotations

from pathlib import Path

from .atlas import ATLAS_JSON, ATLAS_PNG, FRAMES, SHAPES, VISEME_TO_SHAPE, Atlas, make_atlas
from .directions import PortraitDirections
from .video import FPS, render_video

__all__ = ["ATLAS_JSON", "ATLAS_PNG", "Atlas", "FRAMES", "SHAPES", "VISEME_TO_SHAPE", "FPS", "PortraitDirections", "load_directions",
           "make_atlas", "render_video"]

CARD_NAME = "portrait"  # the model's name in a weights folder's card.json


def load_directions(path: str | Path | None = None, verify: bool = True) -> PortraitDirections:
    """The portrait directions of a weights folder (default: the shipped ones), sha256 checked
    against its ``card.json``; a ``.safetensors`` file path is loaded as it is."""
    from ..weights_card import ModelNotAvailable, read_card

    if path is not None and str(path).endswith(".safetensors"):
        return PortraitDirections.load(path)
    entries = read_card(path)
    if CARD_NAME not in entries:
        raise ModelNotAvailable(f"no portrait directions in the card of {path or 'the shipped weights'}; fit them "
                                "with python -m digitalhuman.portrait.fit")
    e = entries[CARD_NAME]
    return PortraitDirections.load(e.file, e.sha256 if verify else None)
