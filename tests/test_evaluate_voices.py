"""Fast tests of the voice evaluation: WER normalisation, cosine statistics, the gender judge's
fit, line assignment and the check table; the judges (an optional extra, scripts/install-judges.sh)
only in the last tests, which skip without them."""

import json
import sys

from pathlib import Path

import numpy as np
import pytest

from digitalhuman.eval_lines import EVAL_LINES
from digitalhuman.evaluate.voice_judges import INSTALL_HINT, VoiceJudges, fit_gender_judge, judges_missing
from digitalhuman.evaluate.voice_metrics import (
    CHECKS,
    assign_lines,
    check_rows,
    edit_distance,
    gender_accuracy,
    normalize_text,
    similarity_stats,
    wer,
    word_errors,
)
from digitalhuman.evaluate.voices import format_table, main


# ------------------------------------------------------------------------------ text and WER
def test_numbers_are_words_on_both_sides():
    assert normalize_text("I lost 3 sheep!") == ["i", "lost", "three", "sheep"]
    assert wer("I lost 3 sheep.", "i lost three sheep") == 0.0
    assert wer("The 7th floor", "The seventh floor.") == 0.0
    assert wer("That costs 250 gold", "That costs two hundred fifty gold") == 0.0
    assert wer("That costs 250 gold", "that costs two hundred and fifty gold") == 0.0
    assert wer("twenty-one days", "21 days") == 0.0
    assert normalize_text("1,200 men and 40% of them") == ["one", "thousand", "two", "hundred", "men", "and",
                                                           "forty", "percent", "of", "them"]
    assert normalize_text("2.5 miles") == ["two", "point", "five", "miles"]


def test_and_is_kept_outside_numbers():
    assert normalize_text("bread and water") == ["bread", "and", "water"]
    assert normalize_text("a hundred and one nights")[-2:] == ["one", "nights"]
    assert "and" in normalize_text("one hundred and the rest")  # "the" is not a number word


def test_punctuation_case_and_apostrophes():
    assert normalize_text("Halt!  Don't MOVE, stranger; ‘quiet’ now...") == [
        "halt", "dont", "move", "stranger", "quiet", "now"]
    assert wer("Don't let anyone read it!", "Don’t let anyone read it.") == 0.0
    assert wer("the ship to the islands", "the ship to the island's") == 0.0
    assert wer("I'll pay you", "I will pay you") == pytest.approx(2 / 3)  # contractions are not expanded


def test_word_errors_count_substitutions_insertions_deletions():
    assert edit_distance(["a", "b", "c"], ["a", "x", "c"]) == 1
    assert edit_distance(["a", "b", "c"], ["a", "c"]) == 1
    assert edit_distance(["a", "b"], ["a", "b", "c", "d"]) == 2
    assert edit_distance([], ["a"]) == 1 and edit_distance(["a"], []) == 1
    assert word_errors("I lost 3 sheep", "I lost free sheep") == (1, 4)
    assert wer("one two three four", "") == 1.0
    assert wer("", "") == 0.0


def test_eval_lines_are_held_out_and_varied():
    import importlib.util

    spec = importlib.util.spec_from_file_location("fit_voice_prior", Path(__file__).parents[1] / "scripts" / "fit_voice_prior.py")
    fit = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(fit)
    assert len(EVAL_LINES) >= 24 and len(set(EVAL_LINES)) == len(EVAL_LINES)
    tuned = {s.strip().lower() for line in fit.TUNING_LINES for s in line.split(".") if s.strip()}  # the prior's lines
    for line in EVAL_LINES:
        assert 5 <= len(line.split()) <= 20, line
        assert not any(t in line.lower() for t in tuned), line
        assert "old mill" not in line.lower()
    assert sum(any(c.isdigit() for c in ln) for ln in EVAL_LINES) >= 8
    assert any("?" in ln for ln in EVAL_LINES) and any("!" in ln for ln in EVAL_LINES)
    assert all(normalize_text(ln) for ln in EVAL_LINES)


def test_assign_lines_wraps_and_spreads():
    idx = assign_lines(12, 4, 24)
    assert idx.shape == (12, 4)
    assert np.array_equal(idx[0], [0, 1, 2, 3]) and np.array_equal(idx[6], [0, 1, 2, 3])
    assert np.bincount(idx.ravel(), minlength=24).tolist() == [2] * 24
    assert all(len(set(r)) == 4 for r in idx.tolist())
    with pytest.raises(ValueError):
        assign_lines(2, 30, 24)


# ------------------------------------------------------------------------------ cosine statistics
def test_similarity_stats_on_known_geometry():
    # two speakers, two utterances each: same-speaker cos 1, cross cos 0 (orthogonal)
    e = np.array([[1, 0, 0], [2, 0, 0], [0, 1, 0], [0, 3, 0]], float)
    s = similarity_stats(e, ["a", "a", "b", "b"])
    assert s["same_persona_cos"] == pytest.approx(1.0) and s["same_persona_cos_min"] == pytest.approx(1.0)
    assert s["diff_persona_cos"] == pytest.approx(0.0) and s["diff_persona_above_0.9"] == 0.0
    assert s["n_same_pairs"] == 2 and s["n_diff_pairs"] == 4 and s["n_speakers"] == 2


def test_similarity_stats_line_level_and_persona_level_fractions():
    c = np.cos(np.radians(60))  # cos 0.5 between the two utterances of speaker a
    e = np.array([[1, 0], [c, np.sin(np.radians(60))], [1, 0.01], [0, 1]], float)
    s = similarity_stats(e, [0, 0, 1, 2], groups=["f", "f", "f", "m"], texts=["x", "y", "x", "y"])
    assert s["same_persona_cos"] == pytest.approx(0.5)
    # different-speaker pairs: (a0,b) ~1, (a1,b) ~0.5, (a0,c) 0, (a1,c) 0.87, (b,c) ~0.01
    assert s["n_diff_pairs"] == 5 and s["diff_persona_above_0.9"] == pytest.approx(1 / 5)
    # persona level: a-b mean ~0.75, a-c ~0.43, b-c ~0.01: none above 0.9
    assert s["diff_persona_pairs_above_0.9_persona_level"] == 0.0
    assert s["diff_persona_cos_same_gender"] == pytest.approx((1 + 0.5) / 2, abs=0.01)
    assert s["diff_persona_cos_cross_gender"] == pytest.approx((0 + np.sin(np.radians(60)) + 0.01) / 3, abs=0.01)
    # same text: (a0,b) "x" ~1 and (a1,c) "y" 0.87; different text: (a1,b) 0.5, (a0,c) 0, (b,c) 0.01
    assert s["diff_persona_cos_same_text"] == pytest.approx((1 + np.sin(np.radians(60))) / 2, abs=0.01)
    assert s["diff_persona_cos_different_text"] == pytest.approx((0.5 + 0 + 0.01) / 3, abs=0.01)


def test_similarity_stats_ignores_nan_rows_and_single_utterance_speakers():
    e = np.array([[1, 0], [np.nan, np.nan], [0, 1], [1, 1]], float)
    s = similarity_stats(e, ["a", "a", "b", "c"])
    assert np.isnan(s["same_persona_cos"]) and s["n_same_pairs"] == 0 and s["n_diff_pairs"] == 3


# ------------------------------------------------------------------------------ gender judge
def test_gender_judge_learns_pitch_and_embedding_cues():
    rng = np.random.Generator(np.random.PCG64(0))
    n = 400
    female = rng.integers(0, 2, n)
    emb = rng.standard_normal((n, 16)) + 0.8 * female[:, None] * np.eye(16)[0]
    lf0 = np.log(np.where(female == 1, 210.0, 115.0)) + 0.15 * rng.standard_normal(n)
    judge = fit_gender_judge(emb[:300], lf0[:300], female[:300])
    p = judge.p_female(emb[300:], lf0[300:])
    assert p.shape == (100,) and ((p >= 0) & (p <= 1)).all()
    assert gender_accuracy(p, female[300:])["accuracy"] > 0.95
    # an unknown F0 (NaN) falls back to the training mean instead of failing
    q = judge.p_female(emb[300:302], np.array([np.nan, lf0[301]]))
    assert np.isfinite(q).all()
    with pytest.raises(ValueError, match="both genders"):
        fit_gender_judge(emb[:10], lf0[:10], np.zeros(10))


def test_gender_accuracy_balanced_and_nan():
    r = gender_accuracy(np.array([0.9, 0.8, 0.1, 0.6, np.nan]), np.array([1, 1, 0, 0, 1]))
    assert r["n"] == 4 and r["accuracy"] == pytest.approx(0.75) and r["balanced_accuracy"] == pytest.approx(0.75)


# ------------------------------------------------------------------------------ checks and table
def test_check_rows_pass_fail_and_missing():
    fig = {"wer": 0.04, "nearest_stock_cos": 0.9, "dnsmos_ovrl_mean_female": 3.3, "same_persona_cos": 0.8,
           "diff_persona_cos_male": 0.6, "gender_match": float("nan"), "ages_distinct_min": 7,
           "rtf_excl_load": 0.5, "deterministic": True, "frechet_top16": 0.2}
    rows = {r["check"]: r for r in check_rows(fig)}
    assert len(rows) == len(CHECKS)
    assert rows["wer"]["pass"] is True and rows["nearest_stock_cos"]["pass"] is False
    assert rows["dnsmos_ovrl_mean_female"]["pass"] is True and rows["diff_persona_cos_male"]["pass"] is True
    assert rows["same_persona_cos"]["pass"] is False and rows["rtf_excl_load"]["pass"] is False
    assert rows["gender_match"]["pass"] is None and rows["frechet_top16"]["pass"] is None  # not measured / report
    assert rows["ages_distinct_min"]["pass"] is True and rows["deterministic"]["pass"] is True
    res = {"checks": list(rows.values()), "joe": {"wer": 0.02, "rtf": 0.1, "rtf_excl_load": 0.09},
           "real_holdout": {"gender_match": 0.95},
           "personas": {"n_personas": 2, "gender_counts": {"female": 1, "male": 1}, "lines_judged": 4,
                        "dnsmos_ovrl_min": 3.0, "rtf_excl_load": 0.1,
                        "ages_distinct": [{"gender": "female", "distinct": 7}, {"gender": "male", "distinct": 6}]}}
    table = format_table(res)
    assert "female 7, male 6" in table
    assert "Whisper tiny.en WER" in table and "0.040" in table and "0.950" in table


# ------------------------------------------------------------------------------ judges
def test_missing_judges_give_an_error_naming_the_install_script(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "speechmos", None)  # makes `import speechmos` fail
    assert "speechmos" in judges_missing()
    with pytest.raises(ImportError, match="install-judges.sh"):
        VoiceJudges()
    assert main(["--personas", "1", "--lines", "1"]) == 2
    assert "install-judges.sh" in capsys.readouterr().err and "install-judges.sh" in INSTALL_HINT


def _fake_voice_folder(root, sr=16000):
    """A Common Voice-style folder of buzzy vowel-like 'voices': low F0 men, high F0 women, with
    speakers in both the voice trainer's training and held-out splits."""
    import soundfile as sf

    from digitalhuman.voice.train import is_holdout_speaker

    rng = np.random.Generator(np.random.PCG64(7))
    (root / "audio").mkdir(parents=True)
    rows, n_ho, n_tr = [], 0, 0
    for i in range(200):
        spk = f"spk{i:02d}"
        ho = is_holdout_speaker(spk)
        if (ho and n_ho >= 4) or (not ho and n_tr >= 8):
            continue
        n_ho, n_tr = n_ho + ho, n_tr + (not ho)
        female = (n_ho if ho else n_tr) % 2
        f0 = (210.0 if female else 110.0) * np.exp(0.1 * rng.standard_normal())
        for k in range(2):
            t = np.arange(int(1.6 * sr)) / sr
            ph = 2 * np.pi * np.cumsum(f0 * (1 + 0.05 * np.sin(2 * np.pi * 3 * t))) / sr
            y = sum(np.sin(h * ph) / h for h in range(1, 25)) * (0.6 + 0.4 * np.sin(2 * np.pi * 2.5 * t) ** 2)
            y = 0.3 * y / np.abs(y).max() + 0.003 * rng.standard_normal(len(t))
            name = f"audio/{spk}_{k}.wav"
            sf.write(root / name, y.astype(np.float32), sr)
            rows.append(f"{name},{spk},{'female' if female else 'male'},thirties,en,,1.6,x,2,0,x")
        if n_ho >= 4 and n_tr >= 8:
            break
    (root / "clips.csv").write_text("file,speaker_id,gender,age,lang,accent,duration_s,sentence,up_votes,"
                                    "down_votes,source_path\n" + "\n".join(rows) + "\n")


def test_judges_on_the_bare_joe_voice():
    missing = judges_missing()
    if missing:
        pytest.skip(f"voice judges not installed ({', '.join(missing)}): run scripts/install-judges.sh")
    from digitalhuman.evaluate.joe import render_joe

    text = EVAL_LINES[1]
    audio, sr = render_joe(text)
    assert np.array_equal(audio, render_joe(text)[0])  # noise scales at 0: the same samples every call
    j = VoiceJudges(threads=1)
    assert wer(text, j.transcribe(audio, sr)) <= 0.2
    assert 2.5 < j.dnsmos(audio, sr)["ovrl"] <= 5
    e = j.embed(audio, sr)
    assert e.shape == (256,) and np.linalg.norm(e) == pytest.approx(1.0, abs=1e-3)
    assert 0 <= j.voice2gender(audio, sr) <= 1


def test_evaluate_voices_end_to_end_with_the_judges(tiny_weights, tmp_path):
    missing = judges_missing()
    if missing:
        pytest.skip(f"voice judges not installed ({', '.join(missing)}): run scripts/install-judges.sh")
    from digitalhuman.evaluate.voices import evaluate_voices

    data = tmp_path / "cv"
    _fake_voice_folder(data)
    out = tmp_path / "eval.json"
    r = evaluate_voices(tiny_weights, n_personas=2, n_lines=2, data=data, out_json=out, wav_dir=tmp_path / "wavs",
                        cache_dir=tmp_path / "cache", threads=1, progress=False, age_personas=3)
    assert json.loads(out.read_text()) == json.loads(json.dumps(r))
    p = r["personas"]
    assert p["n_personas"] == 2 and p["lines_judged"] == 4 and sum(p["gender_counts"].values()) == 2
    assert 0 <= p["wer"] and 1 <= p["dnsmos_ovrl_mean"] <= 5 and p["rtf"] > p["rtf_excl_load"] > 0
    assert r["determinism"]["identical"] is True and p["deterministic"] is True
    assert r["joe"]["lines_judged"] == 4 and r["real_holdout"]["gender_judge"]["n"] == 8
    assert len(r["per_persona"]) == 2 and len(r["lines"]) == 4 and len(r["checks"]) == len(CHECKS)
    assert 1 <= p["ages_distinct_min"] <= 7 and len(p["voice_age_personas"]) == 3
    assert 0 < p["nearest_stock_cos"] <= 1 and len(p["nearest_stock_per_persona"]) == 2
    assert r["stock"]["n_voices"] == 8 and 0 < r["stock"]["nearest_other_stock_cos_mean"] <= 1
    assert len(list((tmp_path / "wavs").glob("persona*.wav"))) == 4
    assert len(list((tmp_path / "wavs").glob("joe*.wav"))) == 4
    assert list((tmp_path / "cache").glob("voice_judge_clips_*.npz"))
