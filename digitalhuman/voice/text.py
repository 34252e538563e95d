"""English text -> Kokoro phoneme symbols, split into synthesis chunks.

Text is cleaned (control characters, emoji and accents removed), then ``gruut`` reads it: sentences,
words, numbers, dates, currency and abbreviations written out ("$42.50" -> "forty two dollars fifty
cents"), and a part-of-speech tag per word. Each word is then spelled in the phonemes Kokoro-82M was
trained on, misaki's (Apache-2.0; one character per sound, diphthongs as ``A I O Q W Y``):

1. a few function words whose reading depends on what follows, as misaki reads them ("the" is
   ``ði`` before a vowel, else ``ðə``; "a" is ``ɐ``; "to" is ``tə`` / ``tʊ``);
2. misaki's lexicon of the accent (``us`` or ``gb``; gold entries, then silver), choosing the
   heteronym reading by the gruut tag ("read" as ``ɹˈid`` or ``ɹˈɛd``), then the same with an ``-s``
   / ``'s`` suffix on a known stem;
3. else gruut's own pronunciation (its lexicon and its grapheme-to-phoneme model) converted to
   misaki's symbols (``eɪ`` -> ``A``, ``tʃ`` -> ``ʧ``, ``ɚ`` -> ``əɹ`` ...).

No espeak-ng (GPL-3.0) and no spaCy (misaki's English class loads a spaCy model from the network):
only misaki's data files are read. Words are separated by ``" "``; punctuation follows its word.

One chunk is one sentence (at most ``MAX_CHUNK_PHONEMES`` symbols; longer sentences are cut after
a comma, else between words). Kokoro's tokens for a chunk are ``0 id(s1) ... id(sn) 0``.
"""

from __future__ import annotations

import json
import logging
import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from importlib.resources import files

import gruut

from .limits import MAX_TEXT_CHARS

__all__ = [
    "ACCENTS",
    "MAX_TEXT_CHARS",
    "MAX_CHUNK_PHONEMES",
    "TextError",
    "PhonemeChunk",
    "clean_text",
    "phonemize",
    "symbols_to_tokens",
    "vocab",
    "word_phonemes",
]

log = logging.getLogger(__name__)

MAX_CHUNK_PHONEMES = 400  # Kokoro takes at most 510 symbols per call (its style packs have 510 rows)
ACCENTS = ("us", "gb")
GRUUT_LANG = "en-us"  # gruut reads the text (numbers, abbreviations); misaki's lexicons give the accent

WORD_BREAK = " "
PUNCTUATION = frozenset(",.?!;:—…")
STRESS = frozenset("ˈˌ")
# Symbols that are not sounds of their own: stress, length, combining diacritics.
MODIFIERS = frozenset("ˈˌːˑ̧̩̪̯̃ʰʲˤ˞")
VOWELS = frozenset("AIOQWYaeiouæɐɑɒɔəɛɜɪʊʌᵊᵻ")

# gruut IPA -> misaki symbols (longest first), per accent
_IPA_TO_MISAKI = {
    "us": (("eɪ", "A"), ("aɪ", "I"), ("oʊ", "O"), ("aʊ", "W"), ("ɔɪ", "Y"), ("tʃ", "ʧ"), ("dʒ", "ʤ"),
           ("t͡ʃ", "ʧ"), ("d͡ʒ", "ʤ"), ("ɚ", "əɹ"), ("ɝ", "ɜɹ"), ("r", "ɹ"), ("g", "ɡ"), ("ɫ", "l"), ("ː", "")),
    "gb": (("eɪ", "A"), ("aɪ", "I"), ("oʊ", "Q"), ("əʊ", "Q"), ("aʊ", "W"), ("ɔɪ", "Y"), ("tʃ", "ʧ"),
           ("dʒ", "ʤ"), ("t͡ʃ", "ʧ"), ("d͡ʒ", "ʤ"), ("ɚ", "ə"), ("ɝ", "ɜː"), ("r", "ɹ"), ("g", "ɡ"), ("ɫ", "l")),
}
_PARENT_TAG = (("VB", "VERB"), ("NN", "NOUN"), ("JJ", "ADJ"), ("RB", "ADV"))
_WHITESPACE = re.compile(r"\s+")
# Small fixes before gruut for readings it gets wrong (pattern, replacement).
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


@lru_cache(maxsize=1)
def vocab() -> Mapping[str, int]:
    """Kokoro's phoneme table ``{symbol: token id}`` (``voice/kokoro_vocab.json``, from the model's
    config; id 0 is the pad at each end of a chunk)."""
    return json.loads(files(__package__).joinpath("kokoro_vocab.json").read_text(encoding="utf-8"))["vocab"]


@lru_cache(maxsize=2)
def _lexicon(accent: str) -> Mapping[str, object]:
    """misaki's lexicon of ``accent``: silver entries overridden by gold ones."""
    data = files("misaki").joinpath("data")
    lex = json.loads(data.joinpath(f"{accent}_silver.json").read_text(encoding="utf-8"))
    lex.update(json.loads(data.joinpath(f"{accent}_gold.json").read_text(encoding="utf-8")))
    return lex


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


def _to_misaki(ipa: str, accent: str) -> str:
    """gruut IPA of one word -> misaki symbols of ``accent`` (characters Kokoro lacks are dropped)."""
    for src, dst in _IPA_TO_MISAKI[accent]:
        ipa = ipa.replace(src, dst)
    table = vocab()
    kept = "".join(ch for ch in ipa if ch in table)
    if len(kept) != len(ipa):
        log.debug("dropped phoneme characters %r", [ch for ch in ipa if ch not in table])
    return kept


def _pick(entry: object, tag: str | None) -> str | None:
    """One reading of a lexicon entry: a string, or ``{tag: reading}`` for heteronyms."""
    if not isinstance(entry, dict):
        return entry if isinstance(entry, str) else None
    if tag:
        if entry.get(tag):
            return entry[tag]
        for prefix, parent in _PARENT_TAG:
            if tag.startswith(prefix) and entry.get(parent):
                return entry[parent]
    return entry.get("DEFAULT")


def _lookup(word: str, tag: str | None, accent: str) -> str | None:
    lex = _lexicon(accent)
    for cand in dict.fromkeys((word, word.lower(), word.capitalize())):
        if cand in lex:
            return _pick(lex[cand], tag)
    return None


def _plural(stem: str, accent: str) -> str:
    if stem[-1] in "ptkfθ":
        return stem + "s"
    if stem[-1] in "szʃʒʧʤ":
        return stem + ("ɪ" if accent == "gb" else "ᵻ") + "z"
    return stem + "z"


def word_phonemes(word: str, tag: str | None = None, *, accent: str = "us", next_vowel: bool | None = None,
                  fallback: str | None = None) -> str:
    """Kokoro phonemes of one written word (see the module docstring for the order of the rules).

    ``tag``: its Penn part-of-speech tag (gruut's); ``next_vowel``: whether the next word starts
    with a vowel sound; ``fallback``: gruut's IPA for the word (used when the lexicon lacks it)."""
    if word in ("the", "The", "THE"):
        return "ði" if next_vowel else "ðə"
    if word in ("a",) or (word == "A" and tag == "DT"):
        return "ɐ"
    if word in ("an", "An"):
        return "ɐn"
    if word in ("to", "To") and next_vowel is not None:
        return "tʊ" if next_vowel else "tə"
    found = _lookup(word, tag, accent)
    if found is None and len(word) > 3 and word.endswith(("s", "'s", "’s")):
        stem = word[:-2] if word.endswith(("'s", "’s")) else word[:-1]
        stem_ps = _lookup(stem, "NN", accent) if not stem.endswith("s") or word.endswith("'s") else None
        if stem_ps:
            found = _plural(stem_ps, accent)
    if found is None:
        found = _to_misaki(fallback, accent) if fallback else ""
    return "".join(ch for ch in found if ch in vocab())


def _is_speakable(symbols: Sequence[str]) -> bool:
    return any(s not in PUNCTUATION and s != WORD_BREAK and s not in MODIFIERS for s in symbols)


def _sentence_words(sentence: gruut.const.Sentence, accent: str) -> tuple[list[list[str]], list[str]]:
    """Symbols of each spoken word in ``sentence`` and the words' text; a break's punctuation joins
    the word before it."""
    items = [w for w in sentence if w.is_break or (w.is_spoken and w.phonemes)]
    words: list[list[str]] = []
    texts: list[str] = []
    for i, word in enumerate(items):
        if word.is_break:
            if words and words[-1][-1] not in PUNCTUATION:
                mark = word.text.strip()[-1:] if word.text else ""
                if mark not in PUNCTUATION or mark not in vocab():
                    mark = "." if word.is_major_break else ","
                words[-1].append(mark)
            continue
        nxt = items[i + 1] if i + 1 < len(items) else None
        next_vowel = None
        if nxt is not None and not nxt.is_break:
            first = "".join(nxt.phonemes).lstrip("ˈˌ")[:1]
            next_vowel = first in "aeiouæɐɑɒɔəɛɜɪʊʌɚɝ"
        symbols = list(word_phonemes(word.text, word.pos, accent=accent, next_vowel=next_vowel,
                                     fallback="".join(word.phonemes)))
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


def phonemize(text: str, accent: str = "us", *, max_chunk: int = MAX_CHUNK_PHONEMES) -> list[PhonemeChunk]:
    """Turn English ``text`` into synthesis chunks of Kokoro symbols (one or more per sentence).

    ``accent``: ``"us"`` or ``"gb"`` (whose lexicon spells the words). Raises ``TextError`` for
    empty or too long text, or text with nothing speakable (e.g. only punctuation).
    """
    if accent not in ACCENTS:
        raise TextError(f"accent must be one of {', '.join(ACCENTS)}, got {accent!r}")
    cleaned = clean_text(text)
    chunks: list[PhonemeChunk] = []
    try:
        for sentence in gruut.sentences(cleaned, lang=GRUUT_LANG):
            words, texts = _sentence_words(sentence, accent)
            for symbols, spans in _pack(words, max_chunk, texts):
                chunks.append(PhonemeChunk(text=sentence.text, symbols=tuple(symbols), words=tuple(spans)))
    except (ArithmeticError, OverflowError, RecursionError) as e:  # e.g. "1e400" in num2words
        raise TextError(f"could not read the numbers in {text[:80]!r} ({type(e).__name__}); write them out") from None
    if not chunks:
        raise TextError(f"no speakable words in {text[:80]!r}")
    return chunks


def symbols_to_tokens(symbols: Sequence[str]) -> list[int]:
    """Kokoro tokens of one chunk: ``[0, id(s1), ..., id(sn), 0]``, length ``len(symbols) + 2``."""
    table = vocab()
    ids = [0]
    for s in symbols:
        if s not in table:
            raise TextError(f"symbol {s!r} is not in Kokoro's phoneme table")
        ids.append(table[s])
    ids.append(0)
    return ids
