"""The fusion evaluation's sections: judged rows -> figures.

Each section turns the judged rows into {"figures": check values (+ "<key>_n"), "summary": more
figures, "details": one record per item, "note": one line for the table}.
"""

from __future__ import annotations

import numpy as np

from .common import unit_rows
from .fusion_figures import (AGED_FROM, AGED_YEARS, BLEND_T, agreement, family_figures, fmt, match_rate,
                             monotone_rate, nanmean_or_nan, pick_strangers, spearman)


def _voice_judged(rows: list[dict], gj, aj) -> tuple[np.ndarray, np.ndarray]:
    """(P(female), age in years) of the rows' voices by the voice judges."""
    if not rows:
        return np.zeros(0), np.zeros(0)
    emb = np.stack([r["voice_emb"] for r in rows])
    lf0 = np.array([r["log_f0"] for r in rows])
    return gj.p_female(emb, lf0), aj.years(emb, lf0)


def _voice_record(r: dict, p_female: float, age: float) -> dict:
    return {"voice_p_female": float(p_female), "voice_age": float(age), "log_f0": r.get("log_f0"),
            "accent": r.get("accent"), "pitch_st": r.get("pitch_st"), "child": r.get("child")}


def random_section(rows: list[dict], gj, aj) -> dict:
    v_pf, v_age = _voice_judged(rows, gj, aj)
    f_pf = np.array([r["face_p_female"] for r in rows])
    f_age = np.array([r["face_age"] for r in rows])
    want = np.array([r["gender"] == "female" for r in rows], bool)
    t_age = np.array([r["age"] for r in rows])
    ga, rho = agreement(f_pf, v_pf), spearman(f_age, v_age)
    sm = {"gender_agreement": ga, "face_gender_vs_trait": match_rate(f_pf, want),
          "voice_gender_vs_trait": match_rate(v_pf, want),
          "face_age_vs_trait_spearman": spearman(f_age, t_age)["rho"],
          "voice_age_vs_trait_spearman": spearman(v_age, t_age)["rho"],
          "trait_female_fraction": float(want.mean()) if len(want) else float("nan"),
          "trait_age_mean": nanmean_or_nan(t_age), "face_age_mean": nanmean_or_nan(f_age),
          "voice_age_mean": nanmean_or_nan(v_age)}
    details = [{"seed": r["seed"], **{k: r[k] for k in ("gender", "age", "race")}, "face_p_female": r["face_p_female"],
                "face_age": r["face_age"], **_voice_record(r, pf, va)} for r, pf, va in zip(rows, v_pf, v_age)]
    fg, vg = sm["face_gender_vs_trait"], sm["voice_gender_vs_trait"]
    note = (f"{len(rows)} personas ({fmt(sm['trait_female_fraction'], 2)} female): face judge = trait "
            f"{fmt(fg['rate'])} (female {fmt(fg['female'], 2)}, male {fmt(fg['male'], 2)}), voice judge = trait "
            f"{fmt(vg['rate'])} (female {fmt(vg['female'], 2)}, male {fmt(vg['male'], 2)}); "
            f"age rho vs trait: face {fmt(sm['face_age_vs_trait_spearman'])}, voice "
            f"{fmt(sm['voice_age_vs_trait_spearman'])}; mean age trait/face/voice {fmt(sm['trait_age_mean'], 1)}/"
            f"{fmt(sm['face_age_mean'], 1)}/{fmt(sm['voice_age_mean'], 1)}")
    return {"figures": {"gender_agreement": ga["rate"], "gender_agreement_n": ga["n"], "age_spearman": rho["rho"],
                        "age_spearman_n": rho["n"]}, "summary": sm, "details": details, "note": note}


def constrained_section(rows: list[dict], specs: list[tuple[str, float]], gj, aj) -> dict:
    v_pf, v_age = _voice_judged(rows, gj, aj)
    want = np.array([g == "female" for g, _ in specs], bool)
    asked = [a for _, a in specs]
    fm, vm = match_rate([r["face_p_female"] for r in rows], want), match_rate(v_pf, want)
    sm = {"face": fm, "voice": vm,
          "face_age_vs_requested_spearman": spearman([r["face_age"] for r in rows], asked)["rho"],
          "voice_age_vs_requested_spearman": spearman(v_age, asked)["rho"]}
    details = [{"seed": r["seed"], "gender": g, "age": a, "face_p_female": r["face_p_female"],
                "face_age": r["face_age"], **_voice_record(r, pf, va)}
               for r, (g, a), pf, va in zip(rows, specs, v_pf, v_age)]
    note = (f"judged = requested, female/male: face {fmt(fm['female'], 2)}/{fmt(fm['male'], 2)}, voice "
            f"{fmt(vm['female'], 2)}/{fmt(vm['male'], 2)}; age rho vs requested: face "
            f"{fmt(sm['face_age_vs_requested_spearman'])}, voice {fmt(sm['voice_age_vs_requested_spearman'])}")
    return {"figures": {"constrained_face_gender": fm["rate"], "constrained_face_gender_n": fm["n"],
                        "constrained_voice_gender": vm["rate"], "constrained_voice_gender_n": vm["n"]},
            "summary": sm, "details": details, "note": note}


def face_to_voice_section(rows: list[dict], faces: list[dict], gj, aj) -> dict:
    v_pf, v_age = _voice_judged(rows, gj, aj)
    label = np.array([f["female"] for f in faces], bool)
    age = [f["age"] for f in faces]
    vm = match_rate(v_pf, label)
    sm = {"voice_judge_vs_label": vm,
          "attribute_encoder_vs_label": match_rate([r["female"] for r in rows], label),
          "face_judge_vs_label": match_rate([r["real_face_p_female"] for r in rows], label),
          "voice_age_vs_label_spearman": spearman(v_age, age)["rho"],
          "attribute_age_vs_label_spearman": spearman([r["age"] for r in rows], age)["rho"],
          "face_judge_age_vs_label_spearman": spearman([r["real_face_age"] for r in rows], age)["rho"]}
    details = [{"file": f["file"], "female": f["female"], "age": f["age"], "inferred_female": r["female"],
                "inferred_age": r["age"], "face_judge_p_female": r["real_face_p_female"], **_voice_record(r, pf, va)}
               for f, r, pf, va in zip(faces, rows, v_pf, v_age)]
    note = (f"balanced {fmt(vm['balanced'])} (female {fmt(vm['female'], 2)}, male {fmt(vm['male'], 2)}); "
            f"attribute encoder = label {fmt(sm['attribute_encoder_vs_label']['rate'])}; face judge on these real "
            f"faces = label {fmt(sm['face_judge_vs_label']['rate'])}; voice age rho vs label "
            f"{fmt(sm['voice_age_vs_label_spearman'])} (face judge's {fmt(sm['face_judge_age_vs_label_spearman'])})")
    return {"figures": {"face_to_voice_gender": vm["rate"], "face_to_voice_gender_n": vm["n"]},
            "summary": sm, "details": details, "note": note}


def voice_to_face_section(rows: list[dict], speakers: list[dict]) -> dict:
    from ..voice.features import AGE_YEARS
    from .voice_age import age_agreement

    ok = [r for r in rows if "failed" not in r]
    label = np.array([speakers[r["i"]]["female"] for r in ok], bool)
    fm = match_rate([r["face_p_female"] for r in ok], label)
    vt = match_rate([r["female"] for r in ok], label)
    ages = age_agreement([r["age"] for r in ok], [AGE_YEARS.get(speakers[r["i"]]["age"], np.nan) for r in ok], label)
    sm = {"face_judge_vs_label": fm, "vae_traits_vs_label": vt, "persona_age_vs_label": ages,
          "face_judge_age_vs_label_spearman": spearman([r["face_age"] for r in ok],
                                                       [AGE_YEARS.get(speakers[r["i"]]["age"], np.nan) for r in ok])["rho"],
          "speakers": len(rows), "failed": [r["failed"] for r in rows if "failed" in r]}
    details = [{"speaker": speakers[r["i"]]["speaker"], "female": speakers[r["i"]]["female"],
                "age_bucket": speakers[r["i"]]["age"], "clip": r.get("clip"), "inferred_female": r.get("female"),
                "inferred_age": r.get("age"), "face_p_female": r.get("face_p_female"), "face_age": r.get("face_age"),
                "failed": r.get("failed")} for r in rows]
    note = (f"{fm['n_female']} female / {fm['n'] - fm['n_female']} male speakers, balanced {fmt(fm['balanced'])} "
            f"(female {fmt(fm['female'], 2)}, male {fmt(fm['male'], 2)}); VAE-inferred gender = label "
            f"{fmt(vt['rate'])} (balanced {fmt(vt['balanced'])}); persona age rho vs label {fmt(ages['spearman'])} "
            f"(face judge's age {fmt(sm['face_judge_age_vs_label_spearman'])}), MAE {fmt(ages['mae_years'], 1)} y; "
            f"{len(rows) - len(ok)} without a usable clip")
    return {"figures": {"voice_to_face_gender": fm["rate"], "voice_to_face_gender_n": fm["n"],
                        "voice_to_face_age_spearman": ages["spearman"], "voice_to_face_age_spearman_n": ages["n"]},
            "summary": sm, "details": details, "note": note}


def family_section(pool: list[dict], sibs: list[dict], rng: np.random.Generator) -> dict:
    """Family ``f``: pool member ``f``, its sibling ``sibs[f]`` and a stranger from the pool."""
    F = len(sibs)
    p_female = np.array([r["gender"] == "female" for r in pool], bool)
    p_race = [r["race"] for r in pool]
    s_female = np.array([r["gender"] == "female" for r in sibs], bool)
    st, matched = pick_strangers(s_female, p_race[:F], p_female, p_race, rng)
    fe, ve = np.stack([r["face_emb"] for r in pool]), np.stack([r["voice_emb"] for r in pool])
    sf, sv = np.stack([r["face_emb"] for r in sibs]), np.stack([r["voice_emb"] for r in sibs])
    a, have = np.arange(F), st >= 0
    d_sib = np.linalg.norm(fe[a] - sf, axis=1)
    c_sib = (unit_rows(ve[a]) * unit_rows(sv)).sum(1)
    d_str, c_str = np.full(F, np.nan), np.full(F, np.nan)
    d_str[have] = np.linalg.norm(fe[a[have]] - fe[st[have]], axis=1)
    c_str[have] = (unit_rows(ve[a[have]]) * unit_rows(ve[st[have]])).sum(1)
    fam = family_figures(d_sib, d_str, c_sib, c_str)
    flags = np.asarray(fam.pop("both_flags"), bool)
    same = s_female == p_female[:F]  # by default a sibling has the persona's gender; with gender=None about half
    split = {}
    for name, m in (("same_gender_sibling", same), ("cross_gender_sibling", ~same)):
        sub = family_figures(d_sib[m], d_str[m], c_sib[m], c_str[m]) if m.any() else {}
        split[name] = {k: sub.get(k, float("nan")) for k in ("both", "face", "voice", "n")}
    sm = {**fam, **split, "group_matched_strangers": int(matched.sum()), "sibling_same_gender": int(same.sum()),
          "both_when_group_matched": float(flags[matched].mean()) if matched.any() else float("nan")}
    details = [{"seed": pool[f]["seed"], "gender": pool[f]["gender"], "age": pool[f]["age"], "race": p_race[f],
                "sibling_gender": sibs[f]["gender"], "sibling_age": sibs[f]["age"],
                "stranger_seed": pool[st[f]]["seed"] if st[f] >= 0 else None,
                "stranger_group_matched": bool(matched[f]), "d_face_sibling": d_sib[f], "d_face_stranger": d_str[f],
                "cos_voice_sibling": c_sib[f], "cos_voice_stranger": c_str[f], "both": bool(flags[f])}
               for f in range(F)]
    sg, cg = split["same_gender_sibling"], split["cross_gender_sibling"]
    note = (f"face alone {fmt(fam['face'])}, voice alone {fmt(fam['voice'])}; same-gender siblings "
            f"({sg['n']}): both {fmt(sg['both'])} (face {fmt(sg['face'])}, voice {fmt(sg['voice'])}), "
            f"cross-gender ({cg['n']}): both {fmt(cg['both'])} (face {fmt(cg['face'])}, voice {fmt(cg['voice'])}); "
            f"median d_face sibling/stranger {fmt(fam['d_face_sib_median'])}/{fmt(fam['d_face_stranger_median'])}, "
            f"median cos_voice {fmt(fam['cos_voice_sib_median'])}/{fmt(fam['cos_voice_stranger_median'])}; "
            f"strangers of the family's group {sm['group_matched_strangers']}/{F}")
    return {"figures": {"siblings_closer": fam["both"], "siblings_closer_n": fam["n"]},
            "summary": sm, "details": details, "note": note}


def aged_section(rows: list[dict], gj, aj) -> dict:
    def voice(tag):
        emb = np.stack([r[f"{tag}_voice_emb"] for r in rows])
        return aj.years(emb, np.array([r[f"{tag}_log_f0"] for r in rows]))

    v_young, v_old = voice("young"), voice("old")
    f_young = np.array([r["young_face_age"] for r in rows])
    f_old = np.array([r["old_face_age"] for r in rows])
    dist = np.array([np.linalg.norm(r["young_face_emb"] - r["old_face_emb"]) for r in rows])
    sm = {"years": AGED_YEARS, "n": len(rows), "face_older": float((f_old > f_young).mean()),
          "voice_older": float((v_old > v_young).mean()),
          "face_judged_rise_mean": float((f_old - f_young).mean()),
          "voice_judged_rise_mean": float((v_old - v_young).mean()),
          "face_identity_distance_median": float(np.median(dist)),
          "face_identity_distance_below_0.6": float((dist < 0.6).mean())}
    details = [{"seed": r["seed"], "gender": r["gender"], "age": r["age"], "face_age": [a, b], "voice_age": [c, d],
                "face_identity_distance": float(e)}
               for r, a, b, c, d, e in zip(rows, f_young, f_old, v_young, v_old, dist)]
    note = (f"{len(rows)} personas aged {AGED_FROM[0]:.0f}-{AGED_FROM[1]:.0f} -> +{AGED_YEARS:.0f} y: judged older, "
            f"face {fmt(sm['face_older'])} (mean rise {fmt(sm['face_judged_rise_mean'], 1)} y), voice "
            f"{fmt(sm['voice_older'])} (mean rise {fmt(sm['voice_judged_rise_mean'], 1)} y); face identity "
            f"distance to the younger self: median {fmt(sm['face_identity_distance_median'], 2)}, "
            f"{fmt(sm['face_identity_distance_below_0.6'], 2)} under dlib's 0.6 same-person threshold")
    return {"figures": {"aged_face_older": sm["face_older"], "aged_face_older_n": len(rows),
                        "aged_voice_older": sm["voice_older"], "aged_voice_older_n": len(rows)},
            "summary": sm, "details": details, "note": note}


def blend_section(rows: list[dict]) -> dict:
    dist = np.stack([r["dist"] for r in rows])
    mono = monotone_rate(dist)
    flags = np.asarray(mono["flags"], bool)
    cross = np.array([r["gender_a"] != r["gender_b"] for r in rows])
    mean_d = [float(v) for v in dist.mean(0)]
    sm = {"rate": mono["rate"], "n": mono["n"], "t": list(BLEND_T), "mean_distance_by_t": mean_d,
          "cross_gender_pairs": int(cross.sum()),
          "rate_cross_gender": float(flags[cross].mean()) if cross.any() else float("nan")}
    details = [{"a": r["a"], "b": r["b"], "genders": [r["gender_a"], r["gender_b"]], "dist": r["dist"],
                "monotone": bool(f)} for r, f in zip(rows, flags)]
    note = (f"mean distance to a over t = {', '.join(str(t) for t in BLEND_T)}: "
            f"{', '.join(fmt(v, 2) for v in mean_d)}; {int(cross.sum())} cross-gender pairs")
    return {"figures": {"blend_monotone": mono["rate"], "blend_monotone_n": mono["n"]},
            "summary": sm, "details": details, "note": note}

