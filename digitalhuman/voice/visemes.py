"""Phoneme timings -> the 15 Oculus/Meta visemes read by Unity/Unreal lip-sync plugins.

A track is a list of ``{"t_start": s, "t_end": s, "viseme": name}`` dicts, contiguous, covering
[0, audio duration], times rounded to 1 ms, no two neighbours with the same viseme.

Mapping (Kokoro's phonemes, misaki's IPA with one letter per diphthong and affricate: ``A`` = eɪ,
``I`` = aɪ, ``O`` = oʊ, ``Q`` = əʊ, ``W`` = aʊ, ``Y`` = ɔɪ, ``ʧ`` ``ʤ``; see ``text.py``), following
Meta's table and, for the symbols it does not list, the closest mouth shape:

=======  =====================================================================
sil      silence, pauses, punctuation, word breaks >= ``MIN_PAUSE_S``, h
PP       p b m
FF       f v
TH       θ ð
DD       t d ɾ (flap) ʔ (glottal stop, mouth stays open between vowels)
kk       k g ɡ ŋ x ç
CH       tʃ dʒ ʧ ʤ ʃ ʒ
SS       s z
nn       n l ɫ
RR       ɹ r ɻ ɚ ɝ ɜ (the r-coloured vowels of US English: "bird", "butter")
aa       ɑ æ a ʌ ɐ ɒ ə ᵊ (schwa, as Meta's AH and Azure's viseme 1), aɪ aʊ (I W)
E        ɛ e eɪ (A)
ih       ɪ i ɨ ᵻ j (the palatal glide is an /i/ gesture)
oh       ɔ o oʊ ɔɪ ɵ (O Q Y)
ou       u ʊ w ʉ ʍ
=======  =====================================================================

Stress marks (ˈ ˌ) belong to the sound after them and length marks and diacritics (ː ̩ ...) to
the sound before; their time is merged there whatever its length. Word breaks shorter than
``MIN_PAUSE_S`` join the sound before (the mouth does not close between words in running speech).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

LIPSYNC_FORMATS = ("oculus", "arkit", "vrm", "rhubarb")  # the lip-sync files a line can have (digitalhuman.lipsync)

__all__ = ["VISEMES", "PHONEME_TO_VISEME", "MIN_PAUSE_S", "viseme_of", "phonemes_to_visemes", "scale_visemes"]

VISEMES = ("sil", "PP", "FF", "TH", "DD", "kk", "CH", "SS", "nn", "RR", "aa", "E", "ih", "oh", "ou")
MIN_PAUSE_S = 0.1

_GROUPS = {
    "sil": ["sil", "h", "_", "^", "$", ",", ".", "?", "!", ";", ":", "-", "…", "—", "|", "‖", '"', "(", ")", "“", "”"],
    "PP": ["p", "b", "m"],
    "FF": ["f", "v"],
    "TH": ["θ", "ð"],
    "DD": ["t", "d", "ɾ", "ʔ"],
    "kk": ["k", "g", "ɡ", "ŋ", "x", "ç"],
    "CH": ["tʃ", "dʒ", "ʃ", "ʒ", "t͡ʃ", "d͡ʒ", "ʧ", "ʤ"],
    "SS": ["s", "z"],
    "nn": ["n", "l", "ɫ"],
    "RR": ["ɹ", "r", "ɻ", "ɚ", "ɝ", "ɜ"],
    "aa": ["ɑ", "æ", "a", "ʌ", "ɐ", "ɒ", "ə", "ᵊ", "aɪ", "aʊ", "I", "W"],
    "E": ["ɛ", "e", "eɪ", "A"],
    "ih": ["ɪ", "i", "ɨ", "ᵻ", "j"],
    "oh": ["ɔ", "o", "oʊ", "ɔɪ", "ɵ", "O", "Q", "Y"],
    "ou": ["u", "ʊ", "w", "ʉ", "ʍ"],
}
PHONEME_TO_VISEME: dict[str, str] = {p: v for v, ps in _GROUPS.items() for p in ps}
_WORD_BREAK = " "
_LEADING = frozenset("ˈˌ")  # stress: part of the next sound
_TRAILING = frozenset("ːˑ̧̩̪̯̃ʰʲˤ˞")  # length and diacritics: part of the sound before


def viseme_of(phoneme: str) -> str:
    """Viseme of one phoneme (a voice symbol or a multi-character IPA phoneme); unknown -> ``sil``."""
    if phoneme in PHONEME_TO_VISEME:
        return PHONEME_TO_VISEME[phoneme]
    core = "".join(ch for ch in phoneme if ch not in _LEADING and ch not in _TRAILING)
    if core in PHONEME_TO_VISEME:
        return PHONEME_TO_VISEME[core]
    return PHONEME_TO_VISEME.get(core[:1], "sil")


def _is_modifier(symbol: str) -> bool:
    return bool(symbol) and all(ch in _LEADING or ch in _TRAILING for ch in symbol)


def _finish(segments: list[list], duration: float) -> list[dict]:
    """Round boundaries to 1 ms, drop empty segments, merge equal neighbours, end at ``duration``.

    ``segments``: ``[viseme, t_start, t_end]`` lists, contiguous from 0.
    """
    end_ms = round(duration * 1000)
    out: list[dict] = []
    for viseme, a, b in segments:
        a_ms = min(round(a * 1000), end_ms)
        b_ms = min(round(b * 1000), end_ms)
        if out:
            a_ms = round(out[-1]["t_end"] * 1000)
        if b_ms <= a_ms:
            continue
        if out and out[-1]["viseme"] == viseme:
            out[-1]["t_end"] = b_ms / 1000
        else:
            out.append({"t_start": a_ms / 1000, "t_end": b_ms / 1000, "viseme": viseme})
    if not out:
        return [{"t_start": 0.0, "t_end": end_ms / 1000, "viseme": "sil"}] if end_ms > 0 else []
    out[0]["t_start"] = 0.0
    if out[-1]["t_end"] < end_ms / 1000:  # cover the tail
        if out[-1]["viseme"] == "sil":
            out[-1]["t_end"] = end_ms / 1000
        else:
            out.append({"t_start": out[-1]["t_end"], "t_end": end_ms / 1000, "viseme": "sil"})
    return out


def phonemes_to_visemes(
    phonemes: Iterable[Sequence], duration: float | None = None, *, min_pause: float = MIN_PAUSE_S
) -> list[dict]:
    """Viseme track of timed phonemes ``(symbol, t_start s, t_end s)`` (e.g. ``BaseSpeech.phonemes``).

    ``duration`` (s) is the audio length; default: the end of the last phoneme. The track is
    contiguous over [0, duration], times rounded to 1 ms; gaps are silence.
    """
    items = [(str(p[0]), float(p[1]), float(p[2])) for p in phonemes]
    if duration is None:
        duration = max((b for _, _, b in items), default=0.0)
    segments: list[list] = []  # [viseme, start, end]
    pending_start: float | None = None  # start of stress marks waiting for their sound
    t = 0.0
    for symbol, a, b in items:
        a, b = max(a, t), max(b, t)
        if a > t + 1e-9:  # a gap in the input is silence
            segments.append(["sil", t, a])
        t = b
        if symbol in _LEADING or (_is_modifier(symbol) and symbol[0] in _LEADING):
            pending_start = a if pending_start is None else pending_start
            continue
        if _is_modifier(symbol) and segments:
            segments[-1][2] = b
            continue
        if symbol == _WORD_BREAK and b - a < min_pause and segments:
            segments[-1][2] = b
            continue
        viseme = "sil" if symbol == _WORD_BREAK else viseme_of(symbol)
        segments.append([viseme, a if pending_start is None else pending_start, b])
        pending_start = None
    if pending_start is not None:  # stress with nothing after it
        if segments:
            segments[-1][2] = t
        else:
            segments.append(["sil", pending_start, t])
    return _finish(segments, duration)


def scale_visemes(track: Sequence[dict], factor: float) -> list[dict]:
    """The track for audio time-stretched by ``factor`` (new duration = old * factor)."""
    if not factor > 0:
        raise ValueError(f"factor must be positive, got {factor}")
    if not track:
        return []
    segments = [[s["viseme"], s["t_start"] * factor, s["t_end"] * factor] for s in track]
    return _finish(segments, track[-1]["t_end"] * factor)
