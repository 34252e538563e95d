"""Fuzzing the inputs a user (or a hostile file) controls, with Hypothesis.

Targets: the text front end (``clean_text``, ``phonemize``, ``symbols_to_tokens``), the persona
schema loader (``parse_persona_json``), the CLI argument parser and the seed / shard specs. Each
target must end in a result or its own error (``TextError`` / ``ValueError``, ``PersonaError``,
``SystemExit(2)``), never another exception, and each input has a deadline (wall) and, where the
work is heavy, a CPU-time bound (robust on a busy machine).

Profiles (environment variable ``DIGITALHUMAN_FUZZ``):

- ``full`` (default): >= 10,000 generated inputs over the file, derandomised (the same inputs on
  every run, so CI is reproducible), no example database, Hypothesis' caches in the temporary
  folder (nothing written into the repository);
- ``quick``: a tenth of the inputs, for a fast local check;
- ``explore``: five times the inputs with fresh random draws on every run (look for new bugs).

The number of inputs actually tried is printed at the end of the module (stderr) and checked by
``test_total_inputs_tried``.
"""

from __future__ import annotations

import collections
import contextlib
import io
import json
import math
import os
import sys
import time
import unicodedata

import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from hypothesis.configuration import set_hypothesis_home_dir

from digitalhuman.batch import MAX_BATCH, parse_seeds, parse_shard, shard_seeds
from digitalhuman.cli import COMMANDS, build_parser, main
from digitalhuman.persona import MAX_SEED, PersonaDoc, PersonaError, parse_persona_json, safe_file_name
from digitalhuman.voice.text import (MAX_CHUNK_PHONEMES, MAX_TEXT_CHARS, TextError, clean_text, phonemize,
                                     symbols_to_tokens, vocab)

# ------------------------------------------------------------------------------------- settings
PROFILE = os.environ.get("DIGITALHUMAN_FUZZ", "full")
SCALE = {"full": 1.0, "quick": 0.1, "explore": 5.0}[PROFILE]
MIN_TOTAL_INPUTS = 10_000  # the full profile must try at least this many inputs over the file
_BASE = settings(
    derandomize=PROFILE != "explore",
    database=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example,
                           HealthCheck.filter_too_much],
)
settings.register_profile("digitalhuman-fuzz", _BASE)
if not os.environ.get("HYPOTHESIS_STORAGE_DIRECTORY"):
    # Hypothesis keeps caches (unicode tables, constants) in ./.hypothesis: not in the repository
    set_hypothesis_home_dir(Path(tempfile.gettempdir()) / "digitalhuman-hypothesis")

COUNTS: collections.Counter[str] = collections.Counter()
CPU: collections.Counter[str] = collections.Counter()
PLANNED: dict[str, int] = {}


def fuzz(n: int, deadline_ms: int):
    """Settings for one fuzz test: ``n`` inputs (scaled by the profile), a wall deadline per input."""
    return settings(_BASE, max_examples=max(5, round(n * SCALE)), deadline=deadline_ms)


def planned(name: str, n: int) -> int:
    PLANNED[name] = max(5, round(n * SCALE))
    return n


@contextlib.contextmanager
def counted(name: str, cpu_limit_s: float | None = None):
    """Count one input of ``name``; with ``cpu_limit_s``, fail if it used more CPU than that."""
    COUNTS[name] += 1
    t = time.process_time()
    yield
    used = time.process_time() - t
    CPU[name] += used
    if cpu_limit_s is not None:
        assert used <= cpu_limit_s, f"{name}: one input took {used:.2f} s of CPU (bound {cpu_limit_s:.2f} s)"


def _say(request, text: str) -> None:
    """A line on the terminal, visible whatever the output capturing."""
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    with capture.global_and_fixture_disabled() if capture else contextlib.nullcontext():
        if reporter is not None:
            reporter.write_line(text)
        else:
            sys.__stderr__.write(text + "\n")


@pytest.fixture(scope="module", autouse=True)
def _report_counts(request):
    t0, c0 = time.perf_counter(), time.process_time()
    yield
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    _say(request, f"\nfuzz ({PROFILE} profile): {sum(COUNTS.values()):,} inputs tried in {wall:.1f} s wall, "
                  f"{cpu:.1f} s CPU")
    for k, v in sorted(COUNTS.items()):
        _say(request, f"  {k:<28} {v:>6,} inputs  {CPU[k]:6.1f} s CPU")


# ================================================================================ text front end
ID_MAP = vocab()
UNICODE_CATEGORIES = ["Lu", "Ll", "Lt", "Lm", "Lo", "Mn", "Mc", "Me", "Nd", "Nl", "No", "Pc", "Pd", "Ps", "Pe",
                      "Pi", "Pf", "Po", "Sm", "Sc", "Sk", "So", "Zs", "Zl", "Zp", "Cc", "Cf", "Cs", "Co", "Cn"]
WHITESPACE_AND_CONTROLS = list("\t\n\r\x0b\x0c \x85\xa0\u1680\u2000\u200a\u2028\u2029\u202f\u205f\u3000"
                               "\x00\x01\x07\x08\x1b\x7f\x9f\u200b\u200c\u200d\u2060\ufeff\u00ad\u061c"
                               "\u200e\u200f\u202a\u202e\u2066\u2069\ufff9\ufffc\ufffd")
EMOJI = ["😀", "👍🏽", "👩‍👩‍👧‍👦", "🏳️‍🌈", "🇬🇧", "🇺🇳", "1️⃣", "#️⃣", "*️⃣", "❤️", "♥", "☃", "⚔️", "🗡", "🧙‍♂️",
         "🐉", "🏴󠁧󠁢󠁳󠁣󠁴󠁿", "👁‍🗨", "🫠", "©", "®", "™", "🔟", "🆗", "🅰️", "Ⓜ️", "㊗️", "🈚"]
WORDS = ["the", "mines", "are", "cursed", "Welcome", "back", "traveller", "Hello", "NASA", "ok", "Dr.", "St.",
         "Mr", "a", "A", "I", "I'm", "don't", "rock'n'roll", "well-known", "e.g.", "etc", "vs.", "U.S.A.",
         "Xylophone", "Llanfairpwllgwyngyll", "Ægir", "naïve", "façade", "Zoë", "über", "smörgåsbord",
         "Москва", "東京", "Ελλάδα", "שלום", "مرحبا", "नमस्ते", "ลาว", "x", "qqqq", "zzzzzzzzzzzz", "AAAA"]
PUNCT = list(",.?!;:-–—…'\"()[]{}<>/\\|@#%^&*_+=~`") + ["...", "?!", "--", "''", "«»", "¿", "¡", "。", "、"]

_EXTRA_DIGITS = {"arabic": "٠١٢٣٤٥٦٧٨٩", "devanagari": "०१२३४५६७८९", "fullwidth": "０１２３４５６７８９",
                 "superscript": "⁰¹²³⁴⁵⁶⁷⁸⁹", "subscript": "₀₁₂₃₄₅₆₇₈₉", "math_bold": "𝟎𝟏𝟐𝟑𝟒𝟓𝟔𝟕𝟖𝟗"}


def _int_formats(n: int) -> list[str]:
    a = abs(n)
    sign = "-" if n < 0 else ""
    ordinal = "th" if 10 <= a % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(a % 10, "th")
    out = [str(n), f"{n:,}", f"{n:_}", f"{n:,}".replace(",", "."), f"{n:,}".replace(",", " "), hex(n), bin(n),
           oct(n), f"{sign}{a}{ordinal}", f"{n}%", f"${n}", f"{sign}€{a:,}", f"£{a}.99", f"¥{a}", f"₹{a}",
           f"\u2212{a}", f"+{a}", f"{a:08d}", f"#{a}", f"No. {a}", f"{a}s", f"'{a % 100:02d}s", f"{a}x{a}",
           f"{a}:{a % 60:02d}", f"{a % 12 + 1}:{a % 60:02d}pm", f"{a % 12 + 1} a.m.", f"{a}-{a + 1}",
           f"{a % 12 + 1}/{a % 28 + 1}/{a}", f"{a}-{a % 12 + 1:02d}-{a % 28 + 1:02d}", f"10^{a % 400}",
           f"{a}e{a % 500}", f"{a}E-{a % 500}", f"{a}.{a}", f".{a}", f"{a}.", f"{a},{a % 100:02d}"]
    out += [str(a).translate(str.maketrans("0123456789", d)) for d in _EXTRA_DIGITS.values()]
    return out


_SPECIAL_NUMBERS = ["NaN", "nan", "inf", "-inf", "Infinity", "1e400", "1.0e309", "1/2", "3 1/2", "½", "⅞", "⅓",
                    "1.2.3", "192.168.0.1", "+1 (555) 123-4567", "XIV", "Ⅻ", "ⅻ", "2²", "π", "∞", "0", "00", "-0",
                    "0.0", "1,5", "1'000'000", "1 000 000", "12:00", "24:00:00", "3pm", "3 p.m.", "1st", "22nd",
                    "101st", "0th", "1990s", "'90s", "$5.50", "5¢", "€5,50", "5 €", "2023-12-25", "25.12.2023",
                    "12/25/2023", "1/1/1", "9999999999999999999999999999", "0x", "0b", "1e", "e5", ".", "-.5"]


@st.composite
def numbers(draw) -> str:
    """A number as people write it: every format, sign, size (to 10**40), script and context."""
    kind = draw(st.integers(0, 3))
    if kind == 0:
        n = draw(st.integers(-(10**40), 10**40) | st.integers(-1000, 1000) | st.sampled_from([0, 1, 7, 13, 1999]))
        s = draw(st.sampled_from(_int_formats(n)))
    elif kind == 1:
        x = draw(st.floats(allow_nan=True, allow_infinity=True))
        fmt = draw(st.sampled_from(["{!r}", "{:e}", "{:.3f}", "{:g}", "{:,.2f}", "{:.0f}", "{:%}"]))
        try:
            s = fmt.format(x)
        except (ValueError, OverflowError):
            s = repr(x)
    elif kind == 2:
        s = draw(st.sampled_from(_SPECIAL_NUMBERS))
    else:
        s = draw(st.from_regex(r"[-+$€£]?[0-9]{1,8}([.,:/][0-9]{1,4}){0,3}(st|nd|rd|th|%|s)?", fullmatch=True))
    template = draw(st.sampled_from(["{}", "It costs {} gold.", "{} of them, {} left!", "On {} we ride",
                                     "({})", "{}{}", "The year {}, at {}."]))
    return template.replace("{}", s)


one_category = st.sampled_from(UNICODE_CATEGORIES).flatmap(
    lambda c: st.text(st.characters(categories=[c]), min_size=1, max_size=12))
any_text = st.text(st.characters(codec=None), max_size=80)
whitespace_controls = st.text(st.sampled_from(WHITESPACE_AND_CONTROLS), max_size=30)
pieces = st.one_of(st.sampled_from(WORDS), st.sampled_from(EMOJI), st.sampled_from(PUNCT), numbers(),
                   one_category, whitespace_controls)
mixed_text = st.tuples(st.lists(pieces, max_size=12), st.sampled_from([" ", "", "\n", ", ", "\t\x00"])).map(
    lambda t: t[1].join(t[0]))
speakable_or_not = st.one_of(mixed_text, any_text, one_category, whitespace_controls, st.just(""),
                             st.sampled_from(EMOJI).map(lambda e: e * 5))


def _check_chunks(chunks) -> None:
    assert chunks, "phonemize returned no chunks instead of raising TextError"
    for c in chunks:
        assert 0 < len(c.symbols) <= MAX_CHUNK_PHONEMES
        assert all(s in ID_MAP for s in c.symbols), c.symbols
        ids = symbols_to_tokens(c.symbols)
        assert len(ids) == len(c.symbols) + 2 and all(isinstance(i, int) for i in ids)


def _phonemize_or_refuse(text) -> None:
    try:
        chunks = phonemize(text)
    except ValueError:  # TextError is a ValueError
        return
    _check_chunks(chunks)


@fuzz(planned("clean_text", 3000), deadline_ms=5000)
@given(speakable_or_not)
@example("\x00\t\u200b 😀 \ufeff")
@example("é" * MAX_TEXT_CHARS)
def test_clean_text_any_unicode(text):
    with counted("clean_text", cpu_limit_s=1.0):
        try:
            cleaned = clean_text(text)
        except TextError:
            return
        assert cleaned and cleaned == cleaned.strip() and "  " not in cleaned
        bad = [ch for ch in cleaned if unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co", "Cn", "So", "Sk")
               or unicodedata.category(ch)[0] == "M" or (ch.isspace() and ch != " ")]
        assert not bad, bad


@fuzz(planned("text_over_limit_or_not_str", 500), deadline_ms=5000)
@given(st.one_of(
    st.tuples(st.text(min_size=1, max_size=20), st.integers(MAX_TEXT_CHARS + 1, 20 * MAX_TEXT_CHARS)).map(
        lambda t: (t[0] * (t[1] // len(t[0]) + 1))[: t[1]]),
    st.none(), st.binary(max_size=50), st.integers(), st.floats(), st.lists(st.text(max_size=5), max_size=3)))
@example("a" * (MAX_TEXT_CHARS + 1))
@example(" " * (MAX_TEXT_CHARS + 1))
def test_text_over_the_limit_or_not_a_string_is_a_text_error(text):
    with counted("text_over_limit_or_not_str", cpu_limit_s=1.0):
        with pytest.raises(TextError) as e:
            phonemize(text)
        assert ("limit" in str(e.value)) if isinstance(text, str) else ("string" in str(e.value))


@fuzz(planned("phonemize_unicode", 250), deadline_ms=60_000)
@given(speakable_or_not)
@example("")
@example("   \t\n ")
@example("\x00\x01\x1b[31m")
@example("😀🐉👩‍👩‍👧‍👦")
@example("Hello, traveller! The mines are cursed.")
@example("...?!;:")
def test_phonemize_any_unicode(text):
    with counted("phonemize_unicode", cpu_limit_s=1.0 + 0.1 * len(text)):
        _phonemize_or_refuse(text)


@fuzz(planned("phonemize_numbers", 200), deadline_ms=60_000)
@given(numbers())
@example("It costs 1,234,567.89 dollars.")
@example("1" * 28)
def test_phonemize_numbers_in_every_format(text):
    with counted("phonemize_numbers", cpu_limit_s=1.0 + 0.1 * len(text)):
        _phonemize_or_refuse(text)


@pytest.mark.parametrize("text", [
    "1" * 29,  # 29 digits: gruut's Decimal % 1 overflows the default 28-digit context
    "It costs 99999999999999999999999999999 gold.",
    "1e400",
    "1.5e30",
    "$" + "1" * 30,
])
def test_huge_numbers_are_spoken_or_refused(text):
    """Regression (found by the number fuzzing): gruut raised ``decimal.InvalidOperation``."""
    _phonemize_or_refuse(text)


def _at_limit(unit: str) -> str:
    return (unit * (MAX_TEXT_CHARS // len(unit) + 1))[:MAX_TEXT_CHARS]


@pytest.mark.parametrize("text", [
    _at_limit("The mines are cursed, traveller; turn back before nightfall. "),
    _at_limit("a "),
    _at_limit("😀 \x00"),
    _at_limit(" ") ,
])
def test_text_at_the_limit_is_spoken_or_refused(text):
    assert len(text) == MAX_TEXT_CHARS
    t = time.process_time()
    _phonemize_or_refuse(text)
    assert time.process_time() - t < 30.0


@fuzz(planned("text_expansion", 200), deadline_ms=5000)
@given(st.tuples(st.sampled_from(["\ufdfa", "\ufdfb", "\u321d", "\u33af", "\u3356", "㎉", "㏒", "ﬃ", "⑳", "⒇"]),
                 st.integers(1, MAX_TEXT_CHARS)).map(lambda t: t[0] * t[1]))
@example("\ufdfa" * 120)  # 120 characters -> 2160
def test_cleaning_does_not_expand_text_past_the_limit(text):
    """A text within the limit must not become a much longer one after Unicode normalisation.

    ``clean_text`` applies NFKD *after* the 2000-character check, and some characters expand
    (U+FDFA "ﷺ" becomes 18 characters, 4 words): 2000 of them are 36,000 characters of words the
    English reader does not know, ~140 s of CPU in ``phonemize`` for one line (an HTTP request).
    """
    with counted("text_expansion", cpu_limit_s=2.0):
        try:
            cleaned = clean_text(text)
        except TextError:
            return
        n_in, n_out = len(text), len(cleaned)
        assert n_out <= MAX_TEXT_CHARS, f"{n_in} characters ({text[:3]!r}...) became {n_out} after cleaning"


def _speakable() -> list[str]:
    from digitalhuman.voice.text import MODIFIERS, PUNCTUATION, WORD_BREAK

    return sorted(s for s in ID_MAP if s not in PUNCTUATION | MODIFIERS | {WORD_BREAK})


_SPEAKABLE = _speakable()


@fuzz(planned("chunk_packing", 500), deadline_ms=5000)
@given(st.lists(st.tuples(st.lists(st.sampled_from(_SPEAKABLE), min_size=1, max_size=60),
                          st.sampled_from(["", ",", ".", "?"])), max_size=40),
       st.integers(1, MAX_CHUNK_PHONEMES))
def test_chunk_packing_keeps_every_sound_within_the_limit(words, limit):
    """``phonemize`` cuts long sentences into chunks (``text._pack``): no chunk over the limit,
    no sound lost, duplicated or reordered, whatever the word lengths (incl. words over the limit)."""
    from digitalhuman.voice.text import WORD_BREAK, _pack

    ws = [syms + ([mark] if mark else []) for syms, mark in words]
    with counted("chunk_packing", cpu_limit_s=1.0):
        packed = _pack(ws, limit)
        chunks = [c for c, _ in packed]
        assert all(0 < len(c) <= limit for c in chunks)
        for c, spans in packed:  # word spans: inside the chunk, in order, never over a word break
            assert all(0 <= a < b <= len(c) and WORD_BREAK not in c[a:b] for _, a, b in spans)
            assert all(s1[2] < s2[1] for s1, s2 in zip(spans, spans[1:]))
        sounds = [s for w in ws for s in w if s in _SPEAKABLE]
        assert [s for c in chunks for s in c if s in _SPEAKABLE] == sounds
        assert all(c[0] != WORD_BREAK and c[-1] != WORD_BREAK for c in chunks)


@fuzz(planned("phonemes_to_ids_valid", 1000), deadline_ms=5000)
@given(st.lists(st.sampled_from(sorted(ID_MAP)), max_size=2 * MAX_CHUNK_PHONEMES))
def test_symbols_to_tokens_layout(symbols):
    with counted("phonemes_to_ids_valid", cpu_limit_s=1.0):
        ids = symbols_to_tokens(symbols)
        assert len(ids) == len(symbols) + 2
        assert ids[0] == 0 and ids[-1] == 0 and ids[1:-1] == [ID_MAP[s] for s in symbols]


@fuzz(planned("phonemes_to_ids_any", 300), deadline_ms=5000)
@given(st.lists(st.text(max_size=3), max_size=20))
@example(["☃"])
def test_symbols_to_tokens_unknown_symbols_are_value_errors(symbols):
    """A symbol the voice does not have must be a ``ValueError`` (like ``TextError``), not a KeyError."""
    with counted("phonemes_to_ids_any", cpu_limit_s=1.0):
        try:
            ids = symbols_to_tokens(symbols)
        except ValueError:
            assert any(s not in ID_MAP for s in symbols)
            return
        assert len(ids) == len(symbols) + 2


# ================================================================================ persona schema
VALID_DOC = {
    "schema_version": 1,
    "package_version": "0.1.0",
    "seed": 42,
    "models": {"face": {"id": "tiny-face", "sha256": "0" * 64}, "fusion": {"id": "tiny-fusion", "sha256": "a" * 64}},
    "latent": [round(math.sin(i), 6) for i in range(160)],
    "traits": {"gender": "female", "female": 0.9, "age": 31.5, "race": "asian"},
    "voice": {"speed": 1.0, "s00": 0.5},
    "origin": {"constraints": {"age": 30}},
    "face": "face.png",
    "lines": [{"text": "Hi.", "audio": "voice_00.wav", "sample_rate": 22050, "duration_s": 0.5,
               "visemes": [{"t_start": 0.0, "t_end": 0.1, "viseme": "aa"}]}],
}


def _paths(obj, prefix=()):
    yield prefix
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(obj, list):
        for i, v in enumerate(obj[:3]):
            yield from _paths(v, prefix + (i,))


DOC_PATHS = [p for p in _paths(VALID_DOC) if p]
HOSTILE_NAMES = ["../../etc/x", "/abs/path", "..\\x", "C:\\x", "C:x", "a/b", "a\\b", "..", ".", "", " ", "face.png\x00",
                 ".hidden", "face..png", "-rf", "a" * 101, "a" * 5000, "con", "NUL", "face.png/", "~/x", "$HOME",
                 "%2e%2e%2fx", "\u202eexe.png", "ｆａｃｅ.png", "face.png\n", "\\\\server\\share", "file:///etc/x",
                 "x\ud800y"]

json_scalars = st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70),
                         st.sampled_from([-1, 0, MAX_SEED, MAX_SEED + 1, -(2**63), 2**200, 10**30]),
                         st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=30),
                         st.sampled_from(HOSTILE_NAMES))
json_values = st.recursive(json_scalars, lambda c: st.lists(c, max_size=5) | st.dictionaries(st.text(max_size=8), c,
                                                                                             max_size=5), max_leaves=20)


def _dumps(obj) -> str:
    return json.dumps(obj, allow_nan=True)


def _parse_or_refuse(text) -> PersonaDoc | None:
    try:
        doc = parse_persona_json(text)
    except PersonaError as e:
        # one line, bounded, and no control characters from the file (the CLI prints it to a terminal)
        msg = str(e)
        assert len(msg) < 2000 and not any(unicodedata.category(c) == "Cc" for c in msg), repr(msg[:300])
        return None
    assert isinstance(doc, PersonaDoc)
    assert 0 <= doc.seed <= MAX_SEED and len(doc.latent) == 160
    for name in [doc.face] + [ln.audio for ln in doc.lines]:
        if name is not None:
            assert safe_file_name(name) == name and "/" not in name and "\\" not in name and ".." not in name
    return doc


def test_the_valid_template_parses():
    assert parse_persona_json(_dumps(VALID_DOC)).seed == 42


@fuzz(planned("persona_json_values", 1200), deadline_ms=5000)
@given(json_values)
def test_persona_json_random_values(value):
    with counted("persona_json_values", cpu_limit_s=1.0):
        _parse_or_refuse(_dumps(value))
        _parse_or_refuse(_dumps({"schema_version": 1, **value}) if isinstance(value, dict) else "[]")


def _mutate_bytes(data: bytes, ops) -> bytes:
    b = bytearray(data)
    for kind, pos, blob in ops:
        pos = pos % (len(b) + 1)
        if kind == "flip" and pos < len(b):
            b[pos] ^= blob[0] if blob else 0xFF
        elif kind == "insert":
            b[pos:pos] = blob
        elif kind == "delete":
            del b[pos: pos + len(blob) + 1]
        elif kind == "truncate":
            del b[pos:]
    return bytes(b)


@fuzz(planned("persona_json_malformed", 1200), deadline_ms=5000)
@given(st.one_of(
    st.text(max_size=200),
    st.binary(max_size=200),
    st.lists(st.tuples(st.sampled_from(["flip", "insert", "delete", "truncate"]), st.integers(0, 10_000),
                       st.binary(max_size=8)), min_size=1, max_size=4).map(
        lambda ops: _mutate_bytes(_dumps(VALID_DOC).encode(), ops)),
    st.sampled_from(["", "null", "[]", "1", '"x"', "{", "}", "\ufeff{}", "{\"schema_version\": 1,}", "NaN", "-Infinity",
                     '{"schema_version": 1, "schema_version": 2}', '{"schema_version": 1e400}'])))
@example(b"\xef\xbb\xbf" + _dumps(VALID_DOC).encode())
@example(_dumps(VALID_DOC).encode("utf-16"))
@example(b"\xff\xfe\x00")
@example('{"schema_version": 1, "seed": ' + "1" * 5000 + "}")  # beyond Python's int-digits limit
@example("1" * 5000)
def test_persona_json_malformed_text_and_bytes(data):
    with counted("persona_json_malformed", cpu_limit_s=1.0):
        _parse_or_refuse(data)


def _set(doc, path, value):
    obj = doc
    for k in path[:-1]:
        obj = obj[k]
    obj[path[-1]] = value


def _delete(doc, path):
    obj = doc
    for k in path[:-1]:
        obj = obj[k]
    del obj[path[-1]]


mutation = st.one_of(
    st.tuples(st.just("set"), st.sampled_from(DOC_PATHS), json_values),
    st.tuples(st.just("set"), st.sampled_from([("seed",), ("schema_version",), ("lines", 0, "sample_rate")]),
              st.one_of(st.integers(-(2**200), 2**200), st.floats(), st.sampled_from([True, "42", 4.0, -0.0]))),
    st.tuples(st.just("set"), st.sampled_from([("face",), ("lines", 0, "audio")]),
              st.one_of(st.sampled_from(HOSTILE_NAMES), st.text(max_size=20),
                        st.from_regex(r"(\.\.[/\\])+[a-z]{1,8}", fullmatch=True))),
    st.tuples(st.just("delete"), st.sampled_from(DOC_PATHS), st.none()),
    st.tuples(st.just("extra"), st.sampled_from([(), ("traits",), ("lines", 0), ("models", "face")]),
              st.tuples(st.text(max_size=10), json_values)),
)


@fuzz(planned("persona_json_mutated", 1500), deadline_ms=5000)
@given(st.lists(mutation, min_size=1, max_size=4))
def test_persona_json_mutated_valid_documents(mutations):
    doc = json.loads(_dumps(VALID_DOC))
    for kind, path, value in mutations:
        try:
            if kind == "set":
                _set(doc, path, value)
            elif kind == "delete":
                _delete(doc, path)
            else:
                target = doc
                for k in path:
                    target = target[k]
                target[value[0]] = value[1]
        except (KeyError, IndexError, TypeError):
            continue  # an earlier mutation removed or replaced the container
    with counted("persona_json_mutated", cpu_limit_s=1.0):
        _parse_or_refuse(_dumps(doc))


@pytest.mark.parametrize("where", [(), ("traits",), ("lines", 0), ("models",)])
def test_error_messages_carry_no_control_characters_from_the_file(where):
    """Found by the fuzzing: an unknown key is echoed raw in the error ("invalid at <key>"), so a
    persona.json can put newlines or terminal escape sequences into what the CLI prints."""
    doc = json.loads(_dumps(VALID_DOC))
    target = doc
    for k in where:
        target = target[k]
    target["\x1b]0;owned\x07\n\x1b[2J"] = 1
    _parse_or_refuse(_dumps(doc))


def _nested(kind: str, depth: int, leaf):
    out = leaf
    for i in range(depth):
        out = [out] if kind == "list" or (kind == "mixed" and i % 2) else {"k": out}
    return out


@fuzz(planned("persona_json_deep", 150), deadline_ms=10_000)
@given(st.sampled_from(["list", "dict", "mixed"]), st.integers(1, 5000),
       st.sampled_from(["top", "origin", "voice", "traits", "lines", "models"]))
@example("list", 100_000, "top")
@example("dict", 990, "origin")
def test_persona_json_deeply_nested(kind, depth, where):
    with counted("persona_json_deep", cpu_limit_s=3.0):
        if where == "top":
            opens, closes = ("[", "]") if kind == "list" else ('{"a":', "}")
            text = opens * depth + "1" + closes * depth
        else:
            doc = json.loads(_dumps(VALID_DOC))
            doc[where] = {"k": _nested(kind, depth, 1)} if where != "lines" else [_nested(kind, depth, 1)]
            try:
                text = json.dumps(doc)
            except RecursionError:
                return  # json.dumps itself cannot write it; nothing to parse
        _parse_or_refuse(text)


@fuzz(planned("persona_json_roundtrip", 300), deadline_ms=5000)
@given(st.lists(st.tuples(st.sampled_from([("latent", 0), ("traits", "female"), ("traits", "age"),
                                           ("voice", "speed"), ("lines", 0, "duration_s"),
                                           ("lines", 0, "visemes", 0, "t_end")]),
                          st.floats(allow_nan=True, allow_infinity=True)), min_size=1, max_size=3))
@example([(("latent", 0), float("nan"))])
def test_accepted_documents_round_trip(changes):
    """What the loader accepts, the package can write back and read again (no NaN/inf slips in)."""
    doc = json.loads(_dumps(VALID_DOC))
    for path, value in changes:
        _set(doc, path, value)
    with counted("persona_json_roundtrip", cpu_limit_s=1.0):
        parsed = _parse_or_refuse(_dumps(doc))
        if parsed is not None:
            again = parse_persona_json(parsed.model_dump_json())
            assert again.model_dump_json() == parsed.model_dump_json()


# ================================================================================ CLI arguments
def _option_strings(parser) -> set[str]:
    import argparse

    out = set()
    for action in parser._actions:  # noqa: SLF001 - walking the parser to build the fuzz vocabulary
        out.update(action.option_strings)
        if isinstance(action, argparse._SubParsersAction):  # noqa: SLF001
            for name, sub in action.choices.items():
                out.add(name)
                out |= _option_strings(sub)
    return out


PARSER = build_parser()
VOCAB = sorted(_option_strings(PARSER)) + ["faces", "voices", "fusion", "onnx", "face", "voice"]
ARG_VALUES = st.one_of(
    st.sampled_from(["0", "1", "-1", "42", "0-11", "5-2", "0/4", "4/4", "1e400", "nan", "inf", "-inf", "100.5",
                     "2**64", str(MAX_SEED), str(MAX_SEED + 1), "１", "٣", "", " ", "-", "--", "x.wav", "/tmp/x",
                     "../../etc/x", "female", "robot", "white", "65536", "0x10", "3", "17", "64", "=", "-=x"]),
    st.integers(-(10**25), 10**25).map(str),
    st.floats().map(repr),
    st.text(max_size=12),
    st.sampled_from(["a" * 2001, "1" * 5000, "x" * 300]),
)
argv_lists = st.tuples(
    st.lists(st.sampled_from(["--weights", "/nonexistent", "--version", "-h"]), max_size=2),
    st.one_of(st.sampled_from(sorted(COMMANDS)), st.sampled_from(VOCAB), st.text(max_size=8)),
    st.lists(st.one_of(st.sampled_from(VOCAB), ARG_VALUES,
                       st.tuples(st.sampled_from(VOCAB), ARG_VALUES).map(lambda t: f"{t[0]}={t[1]}")), max_size=10),
).map(lambda t: t[0] + [t[1]] + t[2])


@fuzz(planned("cli_argv", 1500), deadline_ms=5000)
@given(argv_lists)
@example(["create", "--seed", "1" * 5000, "--out", "x"])
@example(["batch", "--seeds", "0-3", "--out", "o", "--shard", "1" * 5000])
@example(["serve", "--port", "1" * 5000])
@example(["train", "face", "--out", "r", "--steps", "9" * 5000])
@example(["evaluate", "faces", "--anything", "goes"])
@example(["--weights"])
@example([])
def test_cli_argv_is_a_namespace_or_a_usage_error(argv):
    with counted("cli_argv", cpu_limit_s=2.0):
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                ns = PARSER.parse_args(argv)
            except SystemExit as e:
                code = e.code
            else:
                code = None
        if code is None:
            assert ns.command in COMMANDS
            return
        assert "Traceback" not in err.getvalue()
        if code == 0:  # --help / --version (or an abbreviation): text on stdout
            assert out.getvalue() and not err.getvalue()
            return
        assert code == 2, (code, err.getvalue())
        assert "digitalhuman" in err.getvalue() and "error:" in err.getvalue()  # argv may hold a newline
        # main() stops at the same argument error, before doing anything
        err2 = io.StringIO()
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err2):
            with pytest.raises(SystemExit) as e2:
                main(argv)
        assert e2.value.code == 2 and "Traceback" not in err2.getvalue()


# ================================================================================ seeds and shards
@fuzz(planned("parse_seeds_random", 800), deadline_ms=5000)
@given(st.one_of(st.text(st.sampled_from("0123456789-, \t"), max_size=40),
                 st.text(max_size=40),
                 st.text(st.sampled_from("0123456789-,٣１²⁵ \u00a0"), max_size=25)))
@example("")
@example(" , ")
@example(f"0-{MAX_BATCH - 1}")
@example(f"0-{MAX_BATCH}")
@example(f"{MAX_SEED}")
@example(f"{MAX_SEED + 1}")
def test_parse_seeds_random_strings(spec):
    with counted("parse_seeds_random", cpu_limit_s=5.0):
        try:
            seeds = parse_seeds(spec)
        except PersonaError as e:
            assert "\n" not in str(e)
            return
        assert seeds and seeds == sorted(set(seeds)) and len(seeds) <= MAX_BATCH
        assert 0 <= seeds[0] and seeds[-1] <= MAX_SEED and all(type(s) is int for s in seeds)


seed_parts = st.lists(st.tuples(st.one_of(st.integers(0, 1000), st.integers(MAX_SEED - 1000, MAX_SEED),
                                          st.integers(0, MAX_SEED)),
                                st.integers(-3, 30), st.booleans(), st.sampled_from(["", " ", "  "])),
                      min_size=1, max_size=6)


@fuzz(planned("parse_seeds_structured", 500), deadline_ms=5000)
@given(seed_parts, st.integers(1, 7))
def test_parse_seeds_structured_specs_and_shards(parts, n):
    spec = ",".join(f"{pad}{lo}{pad}" if single else f"{pad}{lo}-{lo + span}{pad}" for lo, span, single, pad in parts)
    want, bad = set(), False
    for lo, span, single, _ in parts:
        hi = lo if single else lo + span
        bad |= hi < lo or hi > MAX_SEED
        want.update(range(lo, hi + 1) if hi >= lo else ())
    with counted("parse_seeds_structured", cpu_limit_s=2.0):
        if bad:
            with pytest.raises(PersonaError):
                parse_seeds(spec)
            return
        seeds = parse_seeds(spec)
        assert seeds == sorted(want)
        shards = [shard_seeds(seeds, (k, n)) for k in range(n)]
        assert sorted(sum(shards, [])) == seeds
        assert sum(len(s) for s in shards) == len(seeds)


@fuzz(planned("parse_shard", 500), deadline_ms=5000)
@given(st.one_of(st.text(max_size=12), st.text(st.sampled_from("0123456789/-+ ٣"), max_size=12),
                 st.tuples(st.integers(-5, 10_005), st.integers(-5, 10_005)).map(lambda t: f"{t[0]}/{t[1]}")))
@example("0/10000")
@example("9999/10000")
@example("0/10001")
def test_parse_shard_random_strings(spec):
    with counted("parse_shard", cpu_limit_s=1.0):
        try:
            shard = parse_shard(spec)
        except PersonaError:
            return
        k, n = shard
        assert 0 <= k < n <= 10_000 and (k, n) == tuple(int(x) for x in spec.split("/"))


@pytest.mark.parametrize("call,spec", [
    (parse_seeds, "1" * 5000),
    (parse_seeds, "0-" + "1" * 5000),
    (parse_shard, "0/" + "1" * 5000),
    (parse_shard, "1" * 5000 + "/2"),
])
def test_huge_numbers_in_seed_and_shard_specs_are_persona_errors(call, spec):
    """Regression: ``int()`` of more than 4300 digits raises a plain ValueError, not PersonaError."""
    with pytest.raises(PersonaError):
        call(spec)


# ================================================================================ the total
def test_total_inputs_tried(record_property):
    """Runs last (file order): the full profile tried at least MIN_TOTAL_INPUTS inputs.

    (A failing fuzz test stops at its first bug, so it contributes fewer inputs than planned.)
    """
    total = sum(COUNTS.values())
    record_property("fuzz_inputs_tried", total)
    if set(PLANNED) - set(COUNTS):
        pytest.skip(f"not every fuzz test ran (missing: {sorted(set(PLANNED) - set(COUNTS))})")
    if PROFILE == "full":
        short = {k: (COUNTS[k], n) for k, n in PLANNED.items() if COUNTS[k] < n}
        assert total >= MIN_TOTAL_INPUTS, f"only {total} fuzz inputs were tried (short of plan: {short})"
