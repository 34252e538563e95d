"""A line as a sequence of independently rendered chunks: the unit of streaming *and* of ``say``.

A line is cut into chunks at sentence and phrase boundaries (``plan_chunks``): the first chunk
short (the first sentence's first phrase when it ends within ``FIRST_CHUNK_SYMBOLS`` voice symbols,
at a punctuation mark or before a word that opens a phrase; else the whole first sentence up to
``HEAD_LIMIT``), the others at most ``CHUNK_SYMBOLS`` (cut after a phrase mark where one fits). Each chunk is
synthesised, rendered and loudness-normalised on its own, from its own generator
(``rng_for(index)``), so chunk ``i`` never depends on audio after it: streaming yields chunks as
they are rendered and ``say`` joins the same chunks, which makes the joined PCM of a stream the
PCM of the WAV exactly.

Times in a chunk (phonemes, words, visemes) are absolute: seconds from the start of the line.
Viseme tracks of chunks are made in whole milliseconds from sample boundaries rounded once
(``round(samples * 1000 / sr)``), so consecutive chunks' tracks meet exactly and their join (equal
neighbours merged) is the line's track.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from .text import PUNCTUATION, WORD_BREAK, PhonemeChunk, _pack
from .visemes import phonemes_to_visemes

__all__ = ["FIRST_CHUNK_SYMBOLS", "CHUNK_SYMBOLS", "SpeechChunk", "plan_chunks", "chunk_visemes", "join_tracks"]

FIRST_CHUNK_SYMBOLS = 24  # ~1-1.5 s of speech: what a listener waits for before the first sound
PHRASE_HEAD_MIN = 8  # a shorter first phrase ("Oh," "Well,") is not cut off on its own
HEAD_LIMIT = 40  # a first sentence without a phrase end in its first 24 symbols stays whole up to this
# words that open a phrase: a first sentence may be cut before one ("I lost three sheep | to the wolves")
PHRASE_OPENERS = frozenset(
    "to for at in on with from by into onto over under before after since until through across about "
    "behind near and but or so because while when if that who which where than unless though although".split())
NUMBER_WORDS = frozenset("hundred thousand million billion".split())
CHUNK_SYMBOLS = 160


@dataclass(frozen=True)
class SpeechChunk:
    """One rendered chunk of a line. ``audio`` (N,) float32; ``start`` its first sample in the line;
    ``visemes`` / ``words`` in absolute seconds (``words``: ``(word, t_start, t_end)``)."""

    index: int
    start: int
    audio: np.ndarray
    sample_rate: int
    visemes: list[dict] = field(default_factory=list)
    words: list[tuple[str, float, float]] = field(default_factory=list)

    @property
    def t_start(self) -> float:
        return self.start / self.sample_rate

    @property
    def end(self) -> int:
        return self.start + len(self.audio)


def _words_of(chunk: PhonemeChunk) -> tuple[list[list[str]], list[str]]:
    """The chunk's words (symbols incl. trailing punctuation) and their texts, as ``_pack`` takes them."""
    words: list[list[str]] = [[]]
    for s in chunk.symbols:
        if s == WORD_BREAK:
            words.append([])
        else:
            words[-1].append(s)
    words = [w for w in words if w]
    texts = [w[0] for w in chunk.words]
    if len(texts) != len(words):  # a chunk made without word spans
        texts = [""] * len(words)
    return words, texts


def _repack(chunk: PhonemeChunk, limit: int) -> list[PhonemeChunk]:
    if len(chunk.symbols) <= limit:
        return [chunk]
    words, texts = _words_of(chunk)
    return [PhonemeChunk(chunk.text, tuple(sym), tuple(spans)) for sym, spans in _pack(words, limit, texts)]


def _split_head(chunk: PhonemeChunk, first: int, limit: int) -> list[PhonemeChunk]:
    """The first sentence's head, then the rest of it in pieces of at most ``limit``.

    The head ends where a listener hears a phrase end, within ``first`` symbols and after at least
    ``PHRASE_HEAD_MIN``: after a punctuation mark inside the sentence, else before the last word
    that opens a phrase (``PHRASE_OPENERS``: "to", "before", "that", ...). A sentence with neither
    stays whole up to ``HEAD_LIMIT`` symbols; a longer one is cut where a phrase ends within
    ``HEAD_LIMIT``, else at ``HEAD_LIMIT`` between words. Cutting inside a phrase costs words: Whisper misheard 7 of 48 lines
    whose first sentence was cut there."""
    words, texts = _words_of(chunk)

    def phrase_end(most: int) -> int | None:  # words in the head, or None
        size, cut = -1, None
        for j, w in enumerate(words[:-1]):
            size += len(w) + 1
            if size > most:
                break
            if size >= PHRASE_HEAD_MIN:
                if w[-1] in PUNCTUATION:
                    return j + 1
                if texts[j + 1].lower() in PHRASE_OPENERS and texts[j].lower() not in NUMBER_WORDS:
                    cut = j + 1  # (not "two hundred | and fifty")
        return cut

    most = first
    cut = phrase_end(most)
    if cut is None and len(chunk.symbols) > HEAD_LIMIT:
        most = HEAD_LIMIT
        cut = phrase_end(most)
    if cut is not None:
        return [PhonemeChunk(chunk.text, tuple(sym), tuple(spans))
                for sym, spans in _pack(words[:cut], most, texts[:cut]) + _pack(words[cut:], limit, texts[cut:])]
    if len(chunk.symbols) <= HEAD_LIMIT:
        return _repack(chunk, limit)
    packed = _repack(chunk, HEAD_LIMIT)
    words, texts = [], []
    for piece in packed[1:]:
        w, t = _words_of(piece)
        words += w
        texts += t
    rest = [PhonemeChunk(chunk.text, tuple(sym), tuple(spans)) for sym, spans in _pack(words, limit, texts)]
    return packed[:1] + rest


def plan_chunks(chunks: Sequence[PhonemeChunk], first: int = FIRST_CHUNK_SYMBOLS,
                limit: int = CHUNK_SYMBOLS) -> list[tuple[PhonemeChunk, bool]]:
    """Cut ``phonemize``'s sentence chunks for rendering: ``[(chunk, new_sentence)]``.

    ``new_sentence`` is False for a piece that continues the sentence of the chunk before it (no
    sentence pause goes between them). Deterministic in the text alone.
    """
    out: list[tuple[PhonemeChunk, bool]] = []
    for i, chunk in enumerate(chunks):
        if i == 0:
            pieces = _split_head(chunk, first, limit)
        else:
            pieces = _repack(chunk, limit)
        out.extend((p, j == 0) for j, p in enumerate(pieces))
    return out


def chunk_visemes(phonemes: Iterable[Sequence], start: int, end: int, sr: int) -> list[dict]:
    """Viseme track of one chunk over samples [start, end) of the line, in absolute seconds.

    ``phonemes``: (symbol, t_start, t_end) relative to the chunk start (seconds)."""
    a_ms, b_ms = round(start * 1000 / sr), round(end * 1000 / sr)
    track = phonemes_to_visemes(list(phonemes), (b_ms - a_ms) / 1000)
    return [{"t_start": (round(v["t_start"] * 1000) + a_ms) / 1000, "t_end": (round(v["t_end"] * 1000) + a_ms) / 1000,
             "viseme": v["viseme"]} for v in track]


def join_tracks(tracks: Iterable[list[dict]]) -> list[dict]:
    """Consecutive chunk tracks -> one track (equal neighbours at the seams merged)."""
    out: list[dict] = []
    for track in tracks:
        for v in track:
            if out and out[-1]["viseme"] == v["viseme"] and out[-1]["t_end"] == v["t_start"]:
                out[-1] = {**out[-1], "t_end": v["t_end"]}
            else:
                out.append(dict(v))
    return out


def split_line(line) -> list[SpeechChunk]:
    """The chunks of a rendered line (``SpokenLine`` with ``chunk_starts``), as ``speak_chunks``
    yielded them: audio slices, the track cut back at the seams, the words of each chunk."""
    sr, n = line.sample_rate, len(line.audio)
    starts = list(line.chunk_starts) or [0]
    bounds = starts + [n]
    out = []
    for i, (a, b) in enumerate(zip(bounds, bounds[1:])):
        a_ms, b_ms = round(a * 1000 / sr), round(b * 1000 / sr)
        track = []
        for v in line.visemes:
            s_ms, e_ms = max(round(v["t_start"] * 1000), a_ms), min(round(v["t_end"] * 1000), b_ms)
            if e_ms > s_ms:
                track.append({"t_start": s_ms / 1000, "t_end": e_ms / 1000, "viseme": v["viseme"]})
        words = [(w["word"], w["t_start"], w["t_end"]) for w in line.words if a_ms <= round(w["t_start"] * 1000) < b_ms]
        out.append(SpeechChunk(index=i, start=a, audio=line.audio[a:b], sample_rate=sr, visemes=track, words=words))
    return out
