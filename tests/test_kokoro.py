"""Kokoro-82M (the voice model) and its text front end: tokens, durations, determinism."""

import numpy as np
import pytest

from digitalhuman.voice.kokoro import HOP, KOKORO_SHA256, Kokoro, model_bytes, shared_kokoro
from digitalhuman.voice.text import TextError, phonemize, symbols_to_tokens, vocab, word_phonemes


def test_model_parts_join_to_the_known_model():
    import hashlib

    assert hashlib.sha256(model_bytes()).hexdigest() == KOKORO_SHA256


def test_front_end_spells_words_in_kokoros_phonemes():
    assert word_phonemes("water", accent="us") != word_phonemes("water", accent="gb")  # ɹ-less British
    assert word_phonemes("read", "VBD") == "ɹˈɛd" and word_phonemes("read", "VB") == "ɹˈid"  # heteronyms by tag
    assert word_phonemes("the", next_vowel=True) == "ði" and word_phonemes("the", next_vowel=False) == "ðə"
    assert word_phonemes("barrels") == "bˈɛɹəlz"  # plural of a known stem
    assert word_phonemes("Zorbulax", fallback="zˈɔɹbjəlæks") == "zˈɔɹbjəlæks"  # unknown: gruut's reading
    (chunk,) = phonemize("I paid 42 dollars.")
    text = "".join(chunk.symbols)
    assert "fˈɔɹɾi tˈu" in text and text.endswith(".")  # numbers as users type them
    assert [w for w, _, _ in chunk.words] == ["I", "paid", "forty", "two", "dollars"]
    assert all(s in vocab() for s in chunk.symbols)
    with pytest.raises(TextError):
        phonemize("...")
    with pytest.raises(TextError):
        phonemize("Hello", accent="fr")


def test_tokens_and_durations_time_the_audio():
    (chunk,) = phonemize("Hello there.")
    tokens = symbols_to_tokens(chunk.symbols)
    assert tokens[0] == tokens[-1] == 0 and len(tokens) == len(chunk.symbols) + 2
    style = np.zeros(256, np.float32)
    style[:] = np.linspace(-0.2, 0.2, 256)
    sp = shared_kokoro(1).synthesize(tokens, style)
    assert len(sp.durations) == len(tokens) and len(sp.audio) == HOP * sp.durations.sum() > 0
    with pytest.raises(ValueError):
        shared_kokoro(1).synthesize([1, 2, 3], style)  # no pads


def test_same_input_same_samples_on_one_and_two_threads():
    (chunk,) = phonemize("The bridge collapsed in the storm.")
    tokens = symbols_to_tokens(chunk.symbols)
    style = np.sin(np.arange(256, dtype=np.float32)) * 0.1
    a = shared_kokoro(1).synthesize(tokens, style).audio
    b = Kokoro(2).synthesize(tokens, style).audio
    assert np.array_equal(a, b)


def test_f0_scale_moves_the_pitch_inside_the_model_and_the_predictor_knows_it_first():
    from digitalhuman.evaluate.voice_judges import log_f0

    (chunk,) = phonemize("Sit by the fire and listen, and I will sing you the old songs.")
    from digitalhuman.pipeline import PersonaPipeline

    tokens = symbols_to_tokens(chunk.symbols)
    prior = PersonaPipeline.from_pretrained(face=False).voice.prior
    w = prior.stock_weights({"af_heart": 1.0})
    style = prior.style(w, w, len(chunk.symbols))
    k = shared_kokoro(1)
    base, up = k.synthesize(tokens, style), k.synthesize(tokens, style, f0_scale=2 ** (4 / 12))
    assert np.array_equal(base.durations, up.durations) and len(base.audio) == len(up.audio)  # timing kept
    measured = np.exp(log_f0(up.audio, 24_000) - log_f0(base.audio, 24_000))
    assert 1.2 < measured < 1.35  # four semitones up (x1.26), as heard on the audio
    predicted = k.predicted_f0(tokens, style)
    assert 0.9 < predicted / np.exp(log_f0(base.audio, 24_000)) < 1.1  # the predictor's pitch is the audio's
    with pytest.raises(ValueError):
        k.synthesize(tokens, style, f0_scale=3.0)
