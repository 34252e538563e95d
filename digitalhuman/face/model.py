"""Inference wrapper for the shipped face generator (EMA weights, no training code).

Faces are made by onnxruntime (``OnnxFace``): the generator is exported to an ONNX graph in memory
when the model loads (about 0.4 s), and onnxruntime's CPU convolutions give the same bytes for any
thread count and batch size, at about 6x the speed of PyTorch's float64 path for the 128 px level.
The graph is the one ``digitalhuman export onnx`` writes, so an engine running the exported file
gets the same pixels.
"""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import torch

from ..checkpoint import load_weights
from .gan import (COND_DIM, RACES, AgeMap, AgeShift, FaceGANConfig, Generator, parse_age_map, parse_age_shift,
                  present_cond, shift_code, to_pixels)


def face_generator_onnx(g: Generator, opset: int | None = None) -> bytes:
    """A face ``Generator`` as ONNX bytes: ``z (B,z_dim), cond (B,8) -> image (B,3,R,R)`` (opset
    ``runtime.OPSET`` unless given). The refiner runs in float32: onnxruntime has no float64 Conv."""
    from ..runtime import OPSET, torch_to_onnx

    if g.refiner is not None:
        g = copy.deepcopy(g)
        g.refiner.float()
    R, Z = g.cfg.out_resolution, g.cfg.z_dim
    shapes = {"z": ["batch", Z], "cond": ["batch", COND_DIM], "image": ["batch", 3, R, R]}
    return torch_to_onnx(g.eval(), (torch.zeros(2, Z), torch.zeros(2, COND_DIM)), ["z", "cond"], ["image"], shapes,
                         OPSET if opset is None else opset)


class OnnxFace:
    """A face ``Generator`` run by onnxruntime: ``(z (B, z_dim), cond (B, 8)) -> image (B, 3, R, R)``
    float32 in [-1, 1], the same bytes for any ``threads`` (default: torch's thread count) and batch."""

    def __init__(self, g: Generator, threads: int | None = None):
        from ..runtime import session

        self.session = session(face_generator_onnx(g.eval()), threads or torch.get_num_threads())

    def __call__(self, z: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        feeds = {"z": np.ascontiguousarray(z, np.float32), "cond": np.ascontiguousarray(cond, np.float32)}
        return torch.from_numpy(self.session.run(["image"], feeds)[0])


RUNTIMES = ("onnxruntime", "torch")


class FaceModel:
    """``runtime``: ``"onnxruntime"`` (what personas use; the graph is built from ``generator`` here,
    so later changes to ``self.g`` do not reach it) or ``"torch"`` (the ``Generator`` itself: for
    training code; its float32 convolutions are not bit-stable across thread counts)."""

    def __init__(self, generator: Generator, gender_strength: float = 1.0, age_strength: float = 1.0,
                 age_map: AgeMap | None = None, age_shift: AgeShift | None = None, runtime: str = "onnxruntime"):
        if runtime not in RUNTIMES:
            raise ValueError(f"runtime must be one of {RUNTIMES}, got {runtime!r}")
        self.g = generator.eval()
        self.net = OnnxFace(self.g) if runtime == "onnxruntime" else self.g
        self.cfg = generator.cfg
        self.gender_strength = float(gender_strength)
        self.age_strength = float(age_strength)
        self.age_map = age_map
        self.age_shift = age_shift

    @classmethod
    def load(cls, path: str | Path, expected_sha256: str | None = None, runtime: str = "onnxruntime") -> "FaceModel":
        from ..checkpoint import CheckpointError

        tensors, config, meta = load_weights(path, kind="face_generator", expected_sha256=expected_sha256)
        try:
            g = Generator(FaceGANConfig(**config))
            g.load_state_dict(tensors)
        except (TypeError, ValueError, RuntimeError) as e:
            reason = " ".join(str(e).split())[:200]  # one line
            raise CheckpointError(f"{Path(path).name}: does not fit this face generator ({reason})") from None
        return cls(g, *strengths_of(meta, path), age_map=age_map_of(meta, path),
                   age_shift=age_shift_of(meta, g.cfg.z_dim, path), runtime=runtime)

    @torch.inference_mode()
    def generate(
        self,
        code: np.ndarray,
        female: np.ndarray | float,
        age: np.ndarray | float,
        race: np.ndarray | str | int,
        psi: float = 1.0,
    ) -> np.ndarray:
        """``code`` (B, z_dim) N(0,1) draws -> uint8 images (B, R, R, 3).

        ``race`` may be a group name, an index, or (B, 5) soft weights (for blends). Gender and age
        are presented with the weights' ``gender_strength`` and ``age_strength`` (``gan.present_cond``).
        """
        code = np.atleast_2d(np.asarray(code, np.float32))
        B = code.shape[0]
        assert code.shape[1] == self.cfg.z_dim, code.shape
        female_t = torch.as_tensor(np.broadcast_to(np.asarray(female, np.float32), (B,)).copy())
        age_t = torch.as_tensor(np.broadcast_to(np.asarray(age, np.float32), (B,)).copy())
        if isinstance(race, str):
            race = RACES.index(race)
        race_arr = np.asarray(race)
        if race_arr.ndim <= 1:
            race_t = torch.as_tensor(np.broadcast_to(race_arr.astype(np.int64), (B,)).copy())
        else:
            race_t = torch.as_tensor(race_arr.astype(np.float32))
        c = present_cond(female_t, age_t, race_t, self.gender_strength, self.age_strength, self.age_map)
        z = torch.from_numpy(code) * psi
        if self.age_shift is not None:
            z = torch.from_numpy(shift_code(z.numpy(), age_t.numpy(), self.age_shift))
        x = self.net(z, c)
        return to_pixels(x)


def strengths_of(meta: dict, path: str | Path = "") -> tuple[float, float]:
    """``(gender_strength, age_strength)`` from face weights' metadata (1.0 when absent), checked."""
    from ..checkpoint import meta_float

    return meta_float(meta, "gender_strength", path), meta_float(meta, "age_strength", path)


def _checked(meta: dict, key: str, parse, path: str | Path):
    from ..checkpoint import CheckpointError

    try:
        return parse(meta.get(key))
    except (ValueError, KeyError, TypeError) as e:
        raise CheckpointError(f"{Path(path).name}: bad {key} in the metadata ({e})") from None


def age_map_of(meta: dict, path: str | Path = "") -> AgeMap | None:
    """The age calibration of face weights' metadata (``gan.map_age``), or None; checked."""
    return _checked(meta, "age_map", parse_age_map, path)


def age_shift_of(meta: dict, z_dim: int, path: str | Path = "") -> AgeShift | None:
    """The latent age shift of face weights' metadata (``gan.shift_code``), or None; checked."""
    return _checked(meta, "age_shift", lambda text: parse_age_shift(text, z_dim), path)


def load_generator(path: str | Path) -> tuple[Generator, dict]:
    """A face generator (eval mode) from a shipped ``face_generator.safetensors``, a weights folder
    with a ``card.json``, or a training ``checkpoint.pt`` (its EMA generator, rebuilt from the
    ``config.json`` beside it; its batch-norm statistics are the training ones, not recalibrated).

    Returns ``(generator, info)``, info ``{"step", "gender_strength", "age_strength", "age_map",
    "age_shift", "source"}``
    (step may be None).
    For evaluation and benchmarks; the pipeline uses :meth:`FaceModel.load` (sha256 checked).
    """
    import json

    from ..checkpoint import CheckpointError, load_training_checkpoint

    path = Path(path)
    if path.is_dir():
        from ..weights_card import read_card

        entries = read_card(path)
        if "face" not in entries:
            raise CheckpointError(f"{path}: no face model in card.json")
        path = entries["face"].file
    if path.suffix == ".safetensors":
        state, cfg, meta = load_weights(path, kind="face_generator")
        step = meta.get("steps")
        gender_strength, age_strength = strengths_of(meta, path)
        age_map = age_map_of(meta, path)
        age_shift = age_shift_of(meta, int(cfg["z_dim"]), path)
    else:
        cfg_file = path.with_name("config.json")
        if not cfg_file.is_file():
            raise CheckpointError(f"{path.name}: no config.json beside it to rebuild the generator from")
        cfg = json.loads(cfg_file.read_text())["model"]
        ckpt = load_training_checkpoint(path)
        state, step = ckpt["G_ema"], ckpt.get("step")
        gender_strength = age_strength = 1.0
        age_map = age_shift = None
    g = Generator(FaceGANConfig(**cfg)).eval()
    g.load_state_dict(state)
    return g, {"step": None if step is None else int(step), "gender_strength": gender_strength,
               "age_strength": age_strength, "age_map": age_map, "age_shift": age_shift, "source": str(path)}
