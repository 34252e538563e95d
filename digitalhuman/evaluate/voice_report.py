"""The table ``digitalhuman evaluate voices`` prints: the acceptance checks of issue "voices v2", with
the bare base voice and held-out real speakers as references (``format_table(result)``)."""

from __future__ import annotations


def _fmt(v, nd=3) -> str:
    if v is None:
        return "-"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return f"{v:.{nd}f}"
    return str(v)


def _ages(p: dict) -> str:
    return ", ".join(f"{x['gender']} {x['distinct']}" for x in p.get("ages_distinct", [])) or "-"


def format_table(res: dict) -> str:
    """The acceptance checks, with the bare base voice and held-out real speakers as references."""
    joe, real = res.get("joe", {}), res.get("real_holdout", {})
    ref = {"wer": joe.get("wer"), "dnsmos_ovrl_min": joe.get("dnsmos_ovrl_min"),
           "same_persona_cos": joe.get("same_persona_cos")}
    real_ref = {"same_persona_cos": real.get("same_persona_cos"), "diff_persona_cos_female":
                real.get("diff_persona_cos_female"), "diff_persona_cos_male": real.get("diff_persona_cos_male"),
                "gender_match": real.get("gender_match"),
                "frechet_top16": res.get("speaker_space", {}).get("frechet_top16_real_vs_real")}
    out = [f"{'check':<28} {'personas':>9} {'bar':>8} {'pass':>5}   {'joe':>7} {'real':>7}"]
    for c in res["checks"]:
        bar = f"{c['op']}{_fmt(c['bar'], 2)}" if c["op"] != "==" else "same"
        out.append(f"{c['label']:<28} {_fmt(c['value']):>9} {bar:>8} {_fmt(c['pass']):>5}   "
                   f"{_fmt(ref.get(c['check'])):>7} {_fmt(real_ref.get(c['check'])):>7}")
    p = res["personas"]
    out.append(f"(personas: {p['n_personas']} = {p['gender_counts']}, {p['lines_judged']} lines; "
               f"voice2gender agreement {_fmt(p.get('gender_match_voice2gender'))}, real held-out "
               f"{_fmt(real.get('voice2gender', {}).get('accuracy'))}; DNSMOS min {_fmt(p['dnsmos_ovrl_min'])}; "
               f"RTF without load {_fmt(p['rtf_excl_load'])} vs joe {_fmt(joe.get('rtf_excl_load'))}; "
               f"F0 error median {_fmt(p.get('f0_error_st_median'), 2)} st; DNSMOS joe "
               f"{_fmt(joe.get('dnsmos_ovrl_mean'))}; distinct voices at 7 ages {_ages(p)})")
    sp = res.get("speaker_space")
    if sp:
        g, r = sp["same_gender_cos"]["generated"], sp["same_gender_cos"]["real_holdout"]
        out.append(f"(speaker space: Frechet top-16 PCs vs real held-out {_fmt(sp['frechet_top16'])} (real vs real "
                   f"{_fmt(sp['frechet_top16_real_vs_real'])}); same-gender cosine women/men {_fmt(g['female'])}/"
                   f"{_fmt(g['male'])} (real {_fmt(r['female'])}/{_fmt(r['male'])}); nearest training speaker "
                   f"median {_fmt(sp['nearest_train_cos']['generated']['median'])} (real held-out "
                   f"{_fmt(sp['nearest_train_cos']['real_holdout']['median'])}); cosine to joe max "
                   f"{_fmt(p.get('cos_to_joe_same_text_max'))})")
    return "\n".join(out)
