"""The renderer's pitch analysis works in blocks of frames so that memory stays flat for long lines."""

from __future__ import annotations

import numpy as np

from digitalhuman.voice import dsp


def _signal(seconds: float, sr: int = 22050) -> np.ndarray:
    rng = np.random.default_rng(0)
    t = np.arange(int(seconds * sr)) / sr
    return (0.3 * np.sin(2 * np.pi * (120 + 30 * np.sin(t)) * t) + 0.05 * rng.standard_normal(len(t))).astype(np.float32)


def test_block_analysis_equals_one_block(monkeypatch):
    x = _signal(7.0)  # ~1,200 frames: more than one block of 256
    monkeypatch.setattr(dsp, "BLOCK_FRAMES", 256)
    f_blocks, ap_blocks = dsp.yin(x, 22050)
    v_blocks = dsp.voicing(x, f_blocks, ap_blocks)
    monkeypatch.setattr(dsp, "BLOCK_FRAMES", 10**9)
    f_one, ap_one = dsp.yin(x, 22050)
    assert f_blocks.shape == f_one.shape == (1 + len(x) // dsp.HOP,)
    assert np.array_equal(f_blocks, f_one) and np.array_equal(ap_blocks, ap_one)
    assert np.array_equal(v_blocks, dsp.voicing(x, f_one, ap_one))


def test_yin_finds_a_known_pitch():
    sr = 22050
    x = (0.5 * np.sin(2 * np.pi * 150.0 * np.arange(sr) / sr)).astype(np.float32)
    f0, ap = dsp.yin(x, sr)
    mid = f0[20:-20]
    assert np.all(np.abs(mid - 150.0) < 1.0), (mid.min(), mid.max())
    assert np.median(ap[20:-20]) < 0.05


def test_short_signal():
    f0, ap = dsp.yin(np.zeros(10, np.float32), 22050)
    assert f0.shape == ap.shape == (1,)


def test_psola_grain_is_two_output_periods_when_pitch_goes_up():
    """Raising pitch, a grain spans two output periods, not two analysis periods: a click half-way
    between marks lies outside every grain at x2.25 (women's voices from the base voice) and inside
    them at x0.8."""
    from digitalhuman.voice.dsp import psola

    p, n = 200, 40
    marks = 1000.0 + p * np.arange(n)
    x = np.zeros(1000 + p * (n + 2))
    x[(marks + 0.5 * p).astype(int)] = 1.0
    periods, voiced = np.full(n, float(p)), np.ones(n, bool)
    up = psola(x, marks, periods, voiced, np.full(n, 2.25))
    down = psola(x, marks, periods, voiced, np.full(n, 0.8))
    assert np.abs(up).max() == 0.0
    assert np.abs(down).max() > 0.05
    unvoiced = psola(x, marks, periods, np.zeros(n, bool), np.full(n, 2.25))
    assert np.abs(unvoiced).max() > 0.05  # unvoiced marks keep analysis-length grains
