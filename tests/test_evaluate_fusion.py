"""Fast tests of the fusion evaluation's pure parts (family and blend counting, agreement, stranger
choice, sampling, the age judge's fit, the check table) on synthetic numbers: no judges, no models
(except the last test: the voice-age evaluation on the tiny models)."""

import json

import numpy as np
import pytest

from digitalhuman.eval_lines import EVAL_LINES
from digitalhuman.evaluate.fusion import FULL, QUICK, main
from digitalhuman.evaluate.fusion_figures import (
    CHECKS,
    LINES,
    agreement,
    balanced_pick,
    check_rows,
    constrained_specs,
    family_figures,
    format_table,
    match_rate,
    mean_embedding,
    monotone_rate,
    pick_strangers,
    spearman,
)
from digitalhuman.evaluate.fusion_sections import aged_section, family_section
from digitalhuman.evaluate.voice_judges import fit_age_judge

nan = float("nan")


# ------------------------------------------------------------------------------ families
def test_family_counts_only_families_closer_in_both_modalities():
    d_sib = [0.3, 0.3, 0.7, 0.3, 0.5]
    d_str = [0.6, 0.6, 0.6, 0.6, 0.5]  # family 2: sibling farther in face; family 4: a tie is not closer
    c_sib = [0.9, 0.7, 0.9, 0.8, 0.9]
    c_str = [0.8, 0.8, 0.8, 0.8, 0.7]  # family 1: sibling less similar in voice; family 3: a tie
    f = family_figures(d_sib, d_str, c_sib, c_str)
    assert f["both_flags"] == [True, False, False, False, False]
    assert f["both"] == pytest.approx(0.2)
    assert f["face"] == pytest.approx(3 / 5) and f["voice"] == pytest.approx(3 / 5)
    assert f["n"] == 5 and f["n_invalid"] == 0
    assert f["d_face_sib_median"] == pytest.approx(0.3) and f["cos_voice_stranger_median"] == pytest.approx(0.8)


def test_family_with_a_missing_judgement_counts_as_not_closer():
    f = family_figures([0.1, 0.1, nan], [0.9, 0.9, 0.9], [0.9, nan, 0.9], [0.1, 0.1, 0.1])
    assert f["both_flags"] == [True, False, False]
    assert f["both"] == pytest.approx(1 / 3) and f["n_invalid"] == 2


def test_family_rate_on_many_synthetic_families():
    rng = np.random.Generator(np.random.PCG64(0))
    n = 100
    d_str = rng.uniform(0.5, 0.7, n)
    c_str = rng.uniform(0.6, 0.7, n)
    d_sib, c_sib = d_str - 0.1, c_str + 0.1
    d_sib[:3] += 0.2  # three families whose sibling face is farther
    c_sib[97:] -= 0.2  # three whose sibling voice is less similar
    assert family_figures(d_sib, d_str, c_sib, c_str)["both"] == pytest.approx(0.94)


def test_family_section_on_synthetic_rows():
    rng = np.random.Generator(np.random.PCG64(1))
    pool = [{"seed": 100 + i, "gender": g, "age": 30.0, "race": "white", "face_emb": rng.standard_normal(128),
             "voice_emb": rng.standard_normal(256)} for i, g in enumerate(["female", "male", "female", "male"])]
    sibs = []
    for f, g in enumerate(["female", "female"]):  # family 0: a sister; family 1: a man's sister
        sibs.append({"gender": g, "age": 33.0, "face_emb": pool[f]["face_emb"] + 0.01,
                     "voice_emb": pool[f]["voice_emb"] + 0.01})
    sec = family_section(pool, sibs, np.random.Generator(np.random.PCG64(0)))
    assert sec["figures"] == {"siblings_closer": 1.0, "siblings_closer_n": 2}
    sm = sec["summary"]
    assert sm["same_gender_sibling"]["n"] == 1 and sm["cross_gender_sibling"]["n"] == 1
    assert sm["group_matched_strangers"] == 2 and sm["sibling_same_gender"] == 1
    assert sec["details"][0]["stranger_seed"] == 102  # the only other woman
    assert sec["details"][1]["stranger_seed"] in (100, 102)  # a woman, not the man himself
    assert "same-gender siblings (1)" in sec["note"]


# ------------------------------------------------------------------------------ blends
def test_aged_section_counts_judged_rises_per_modality():
    class Years:  # a voice "age judge": the first embedding number, in years
        def years(self, emb, log_f0):
            return emb[:, 0] * 100

    def row(i, f_young, f_old, v_young, v_old, moved):
        e = np.zeros(128)
        return {"seed": i, "gender": "female", "age": 30.0,
                "young_face_age": f_young, "old_face_age": f_old,
                "young_face_emb": e, "old_face_emb": e + moved / np.sqrt(128),
                "young_voice_emb": np.array([v_young / 100, 0.0]), "old_voice_emb": np.array([v_old / 100, 0.0]),
                "young_log_f0": 5.0, "old_log_f0": 5.0}

    rows = [row(0, 30, 50, 30, 40, 0.2), row(1, 40, 35, 30, 30, 0.4), row(2, 20, 45, 50, 45, 0.8),
            row(3, 25, 30, 20, 26, 0.3)]
    sec = aged_section(rows, None, Years())
    sm = sec["summary"]
    assert sec["figures"]["aged_face_older"] == sm["face_older"] == 0.75  # 30->50, 20->45, 25->30; not 40->35
    assert sm["voice_older"] == 0.5  # a tie (30->30) is not older
    assert sm["face_judged_rise_mean"] == pytest.approx((20 - 5 + 25 + 5) / 4)
    assert sm["voice_judged_rise_mean"] == pytest.approx((10 + 0 - 5 + 6) / 4)
    assert sm["face_identity_distance_median"] == pytest.approx(0.35)
    assert sm["face_identity_distance_below_0.6"] == 0.75
    assert sec["figures"]["aged_voice_older_n"] == 4 and len(sec["details"]) == 4


def test_blend_rows_must_rise_strictly_at_every_step():
    d = np.array([[0.0, 0.1, 0.2, 0.3, 0.4],
                  [0.0, 0.2, 0.2, 0.3, 0.4],    # a plateau is not a rise
                  [0.0, 0.3, 0.25, 0.35, 0.5],  # one dip
                  [0.0, 0.1, 0.2, nan, 0.4],    # a failed judgement
                  [0.0, 0.05, 0.5, 0.51, 0.9]])
    m = monotone_rate(d)
    assert m["flags"] == [True, False, False, False, True]
    assert m["rate"] == pytest.approx(0.4) and m["n"] == 5
    with pytest.raises(AssertionError):
        monotone_rate(np.zeros(5))


# ------------------------------------------------------------------------------ agreement
def test_agreement_skips_failed_judgements():
    a = agreement([0.9, 0.2, 0.6, nan, 0.1], [0.8, 0.7, 0.5, 0.9, 0.3])
    assert a["n"] == 4 and a["n_failed"] == 1
    assert a["rate"] == pytest.approx(3 / 4)  # 0.6 vs 0.5: both female at the 0.5 threshold


def test_match_rate_reports_balanced_and_per_gender():
    p = [0.9, 0.8, 0.1, 0.2, 0.3, 0.4, 0.6, nan]
    want = [True, True, False, False, False, False, False, True]
    m = match_rate(p, want)
    assert m["n"] == 7 and m["n_female"] == 2 and m["n_failed"] == 1
    assert m["rate"] == pytest.approx(6 / 7)
    assert m["female"] == 1.0 and m["male"] == pytest.approx(4 / 5)
    assert m["balanced"] == pytest.approx(0.9)


def test_spearman_ignores_nan_and_needs_variation():
    assert spearman([1, 2, 3, nan, 5], [10, 20, 30, 0, 50])["rho"] == pytest.approx(1.0)
    assert spearman([1, 2, 3], [3, 2, 1])["rho"] == pytest.approx(-1.0)
    assert np.isnan(spearman([1, 1, 1], [1, 2, 3])["rho"])
    assert np.isnan(spearman([1, 2], [1, 2])["rho"])


def test_mean_embedding_is_a_unit_mean_of_unit_rows():
    e = np.array([[3.0, 0.0], [0.0, 0.5], [nan, nan]])
    m = mean_embedding(e)
    assert m == pytest.approx(np.array([1.0, 1.0]) / np.sqrt(2))
    assert np.isnan(mean_embedding(np.full((2, 4), nan))).all()


# ------------------------------------------------------------------------------ strangers
def test_strangers_share_the_siblings_gender_and_the_familys_group_when_possible():
    pool_female = np.array([1, 1, 0, 0, 1, 0, 1], bool)
    pool_race = ["white", "asian", "white", "black", "white", "white", "other"]
    sib_female = np.array([0, 1, 1], bool)  # family 0 (a woman) has a brother
    fam_race = pool_race[:3]  # white, asian, white
    for s in range(20):
        rng = np.random.Generator(np.random.PCG64(s))
        idx, matched = pick_strangers(sib_female, fam_race, pool_female, pool_race, rng)
        assert idx[0] in (2, 5) and matched[0]  # male, white, not the persona itself
        assert idx[1] in (0, 4, 6) and not matched[1]  # no other asian woman: any other woman
        assert idx[2] in (0, 4) and matched[2]
    idx, matched = pick_strangers(np.array([1], bool), ["white"], np.array([1], bool), ["white"],
                                  np.random.Generator(np.random.PCG64(0)))
    assert idx[0] == -1 and not matched[0]  # nobody else in the pool


# ------------------------------------------------------------------------------ sampling
def test_constrained_specs_split_genders_and_spread_ages():
    s = constrained_specs(40)
    assert [g for g, _ in s].count("female") == 20 and [g for g, _ in s].count("male") == 20
    ages = [a for g, a in s if g == "male"]
    assert ages[0] == 25.0 and ages[-1] == 70.0 and ages == sorted(ages)
    assert [g for g, _ in constrained_specs(3)] == ["female", "female", "male"]
    assert constrained_specs(1) == [("female", 47.5)] and constrained_specs(0) == []


def test_balanced_pick_halves_and_fills_from_the_other_side():
    female = np.array([1] * 5 + [0] * 50, bool)
    rng = lambda: np.random.Generator(np.random.PCG64(0))  # noqa: E731
    p = balanced_pick(female, 20, rng())
    assert len(p) == 20 and female[p].sum() == 5 and len(set(p.tolist())) == 20
    p = balanced_pick(female, 8, rng())
    assert female[p].sum() == 4 and (~female[p]).sum() == 4
    assert len(balanced_pick(female, 100, rng())) == 55
    assert (balanced_pick(female, 8, rng()) == p).all()


# ------------------------------------------------------------------------------ age judge
def test_age_judge_recovers_a_linear_age_signal_and_tolerates_missing_f0():
    rng = np.random.Generator(np.random.PCG64(3))
    n, d = 400, 16
    age = rng.uniform(16, 85, n)
    direction = rng.standard_normal(d)
    direction /= np.linalg.norm(direction)
    emb = rng.standard_normal((n, d)) * 0.3 + 4.0 * np.outer((age - 50) / 35, direction) + 3.0
    log_f0 = np.log(120 + 0.5 * age) + rng.normal(0, 0.05, n)
    log_f0[:10] = nan
    speakers = np.arange(n) // 2  # two clips each: folds never split a speaker
    j = fit_age_judge(emb[:300], log_f0[:300], age[:300], speakers[:300], alphas=(0.1, 10.0, 1e5))
    pred = j.years(emb[300:], log_f0[300:])
    assert spearman(pred, age[300:])["rho"] > 0.9
    assert np.isfinite(j.years(emb[:1], np.array([nan]))).all()
    assert j.alpha in (0.1, 10.0)  # a huge penalty loses the signal under cross-validation
    with pytest.raises(ValueError):
        fit_age_judge(emb[:5], log_f0[:5], age[:5], speakers[:5])


# ------------------------------------------------------------------------------ checks and CLI
def test_check_rows_and_table():
    figures = {"gender_agreement": 0.82, "gender_agreement_n": 120, "age_spearman": nan,
               "constrained_face_gender": 0.95, "siblings_closer": 0.95, "blend_monotone": 0.5}
    rows = {r["check"]: r for r in check_rows(figures)}
    assert len(rows) == len(CHECKS)
    assert rows["gender_agreement"]["pass"] is True and rows["gender_agreement"]["meets_goal"] is False
    assert rows["gender_agreement"]["n"] == 120
    assert rows["age_spearman"]["pass"] is None  # not measured is not a pass
    assert rows["siblings_closer"]["pass"] is True  # the bar itself passes
    assert rows["blend_monotone"]["pass"] is False and rows["face_to_voice_gender"]["value"] is None
    table = format_table({"checks": list(rows.values()), "notes": {"families": "face alone 0.9"}})
    assert "face gender = voice gender" in table and "0.820" in table and "families: face alone 0.9" in table


def test_lines_are_two_held_out_lines_and_quick_is_smaller():
    assert len(LINES) == 2 and all(t in EVAL_LINES for t in LINES)
    assert all(QUICK[k] <= FULL[k] or FULL[k] == 0 for k in FULL)
    assert FULL["n"] == 120 and FULL["families"] == 100 and FULL["pairs"] == 50


def test_main_without_judges_says_how_to_install(monkeypatch, capsys):
    from digitalhuman.evaluate import fusion

    monkeypatch.setattr(fusion, "judges_missing", lambda: ["dlib"])
    assert main(["--quick"]) == 2
    err = capsys.readouterr().err
    assert "install-judges.sh" in err and "dlib" in err


def test_help_needs_no_judges(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--help"])
    assert e.value.code == 0
    assert "--quick" in capsys.readouterr().out


# ------------------------------------------------------------------------------ voice -> age
def test_age_agreement_figures():
    from digitalhuman.evaluate.voice_age import age_agreement

    inferred = [20, 30, 40, 50, 60, 35, nan]
    labelled = [16, 25, 35, 45, 55, 25, 65]
    female = [True, True, True, False, False, False, False]
    a = age_agreement(inferred, labelled, female)
    assert a["n"] == 6 and a["spearman"] == pytest.approx(spearman(inferred[:6], labelled[:6])["rho"])
    assert a["spearman_female"] == pytest.approx(1.0) and a["mae_years"] == pytest.approx((4 + 5 * 4 + 10) / 6)
    assert a["by_labelled_age"]["25"] == {"n": 2, "inferred_mean": 32.5} and "65" not in a["by_labelled_age"]


def test_voice_age_end_to_end_on_a_tiny_speaker_set(tiny_weights, tmp_path):
    """Three held-out 'speakers' (clips of the base voice) through from_voice with the tiny models."""
    import csv

    import soundfile as sf

    from digitalhuman.evaluate.voice_age import evaluate_voice_age
    from digitalhuman.pipeline import PersonaPipeline
    from digitalhuman.voice.train import is_holdout_speaker

    pipe = PersonaPipeline.from_pretrained(tiny_weights, face=False)
    ids = [s for s in (f"spk{i}" for i in range(200)) if is_holdout_speaker(s)][:3]
    (tmp_path / "audio").mkdir()
    rows = []
    for k, (sid, bucket) in enumerate(zip(ids, ["twenties", "fifties", "seventies"])):
        clip = pipe.say(pipe(seed=20 + k, gender="male", face=False),
                        "Hello there, my friend, how are you today? The road to the village is long and cold.")
        sf.write(tmp_path / "audio" / f"{sid}.wav", clip.audio, clip.sample_rate)
        rows.append({"file": f"audio/{sid}.wav", "speaker_id": sid, "gender": "male", "age": bucket})
    rows.append({"file": "audio/none.wav", "speaker_id": "x", "gender": "other", "age": "twenties"})  # not used
    with open(tmp_path / "clips.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    res = evaluate_voice_age(tiny_weights, tmp_path, out_json=tmp_path / "va.json", progress=False)
    assert res["speakers"] == 3 and res["n"] == 3 and res["without_usable_clip"] == 0
    assert [d["age"] for d in res["details"]] == [25.0, 55.0, 75.0]
    assert all(16 <= d["inferred_age"] <= 90 for d in res["details"])
    assert json.loads((tmp_path / "va.json").read_text())["n"] == 3
