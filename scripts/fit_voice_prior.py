"""Fit the voice prior (``digitalhuman/voice/prior.py``) on Kokoro's stock voices and judged renderings.

    python scripts/fit_voice_prior.py basis  --packs DIR --run RUN
    python scripts/fit_voice_prior.py sample --run RUN [--n 160] [--cv ../shared/data/commonvoice61]
    python scripts/fit_voice_prior.py fit    --run RUN --out digitalhuman/weights/voice_prior.safetensors
    python scripts/fit_voice_prior.py calibrate-age --prior IN --out OUT --cache CACHE [--age-gain-old 2.5 --men 160]

``basis``: the 29 English v1.0 style packs of Kokoro (``af_ am_ bf_ bm_`` ``.pt`` files of
remsky/Kokoro-FastAPI ``api/src/voices/v1_0``, loaded with ``weights_only=True``) -> the group
centres and the principal directions of the voices around them (pooled over gender x accent), as
weights on the stock voices. Also renders every stock voice on the tuning lines and judges it.

``sample``: renders voices drawn around the centres at several spreads (each on one tuning line;
never the evaluation lines of ``digitalhuman/eval_lines.py``) and judges them: resemblyzer
embedding, DNSMOS, the project's voice features, and (with ``--cv``) the gender and age judges
fitted on the Common Voice training speakers. Resumable: the run folder keeps what was judged.

``fit``: learns from those judgements
- the spread of each direction: how much each moves the speaker judge (a linear fit of the
  embedding on the coefficients) against what it costs in DNSMOS (a quadratic fit), greedily
  widening the directions with the best ratio within a quality budget;
- ``gender_dir``/``gender_floor``: the direction that moves the gender judge and how far towards the
  other gender a voice may go;
- ``age_dir``/``age_gain``: the direction along which the age judge hears voices older;
- a ridge map from voice features to coefficients (``--from-voice``);
and writes the shipped file (packs in float16, the rest float32).
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

K_SPK, K_PRO = 16, 8
TUNING_LINES = (
    "The old mill by the river has been closed for twenty years.",
    "Bring me three barrels of salted fish before the winter comes, and I will pay you well.",
    "Keep your voice down; the baron's men are listening at every door.",
    "So you want to learn the old songs? Sit by the fire and listen.",
    "Those boots look worn out. I can mend them by tomorrow, if you like.",
    "Nobody has crossed the marsh since the fog came down last spring.",
)
SPREADS = (0.8, 1.2, 1.6, 2.0)
PRO_SPREADS = (0.6, 1.0)
SR = 24_000


def load_packs(folder: str) -> tuple[list[str], np.ndarray]:
    import torch

    files = sorted(f for f in glob.glob(os.path.join(folder, "*.pt"))
                   if os.path.basename(f)[:3] in ("af_", "am_", "bf_", "bm_") and "_v0" not in os.path.basename(f))
    if not files:
        sys.exit(f"no English v1.0 packs (af_*.pt, am_*.pt, bf_*.pt, bm_*.pt) in {folder}")
    names = [os.path.basename(f)[:-3] for f in files]
    packs = np.stack([torch.load(f, weights_only=True).numpy().reshape(510, 256) for f in files])
    return names, packs.astype(np.float32)


def groups_of(names: list[str]) -> np.ndarray:
    return np.array([2 * (n[1] == "f") + (n[0] == "b") for n in names])


class Renderer:
    def __init__(self, threads: int = 2):
        from digitalhuman.voice.kokoro import Kokoro

        self.k = Kokoro(threads)

    def __call__(self, packs, w_spk, w_pro, text, accent) -> np.ndarray:
        from digitalhuman.voice.text import phonemize, symbols_to_tokens

        out = []
        for ch in phonemize(text, accent):
            row = packs[:, len(ch.symbols) - 1, :].astype(np.float64)
            style = np.concatenate([w_spk @ row[:, :128], w_pro @ row[:, 128:]]).astype(np.float32)
            out.append(self.k.synthesize(symbols_to_tokens(ch.symbols), style).audio)
        return np.concatenate(out)


def judge_clip(J, audio: np.ndarray) -> dict:
    from digitalhuman.voice.features import FeatureError, voice_features

    ok = bool(np.isfinite(audio).all())
    audio = np.nan_to_num(audio)
    try:
        vf = voice_features(audio, SR)
    except FeatureError:
        vf = np.full(36, np.nan)
    return {"finite": ok, "emb": J.embed(audio, SR), "dnsmos": J.dnsmos(audio, SR)["ovrl"], "vf": vf,
            "peak": float(np.abs(audio).max())}


def cmd_basis(a) -> None:
    from digitalhuman.evaluate.voice_judges import VoiceJudges

    run = Path(a.run)
    run.mkdir(parents=True, exist_ok=True)
    names, packs = load_packs(a.packs)
    grp = groups_of(names)
    from digitalhuman.voice.prior import principal_weights

    A_s, sd_s = principal_weights(packs, grp, slice(0, 128), K_SPK)
    A_p, sd_p = principal_weights(packs, grp, slice(128, 256), K_PRO)
    np.savez(run / "basis.npz", names=np.array(names), packs=packs, grp=grp, A_s=A_s, sd_s=sd_s, A_p=A_p, sd_p=sd_p)
    if (run / "stock.npy").exists():
        return
    J, R = VoiceJudges(a.threads), Renderer(a.threads)
    rows = []
    for i, n in enumerate(names):
        w = np.eye(len(names))[i]
        for li in range(2):
            rows.append({"voice": n, "line": li, **judge_clip(J, R(packs, w, w, TUNING_LINES[li], "gb" if n[0] == "b" else "us"))})
        print(f"stock {i + 1}/{len(names)}", flush=True)
    np.save(run / "stock.npy", rows, allow_pickle=True)


def cmd_sample(a) -> None:
    from digitalhuman.evaluate.voice_judges import VoiceJudges

    run = Path(a.run)
    b = np.load(run / "basis.npz")
    packs, grp = b["packs"], b["grp"]
    path = run / "samples.npy"
    rows = list(np.load(path, allow_pickle=True)) if path.exists() else []
    J, R = VoiceJudges(a.threads), Renderer(a.threads)
    rng = np.random.default_rng(a.seed)
    for _ in range(len(rows)):  # the same draws on resume
        rng.standard_normal(K_SPK + K_PRO + 2)
    t = time.time()
    for n in range(len(rows), a.n):
        u = rng.standard_normal(K_SPK + K_PRO + 2)
        female, british = n % 2 == 0, bool(u[-1] > 0.5244)  # ~30% British
        s, sp = SPREADS[(n // 2) % len(SPREADS)], PRO_SPREADS[(n // 8) % len(PRO_SPREADS)]
        g = 2 * female + british
        centre = np.where(grp == g, 1.0 / np.sum(grp == g), 0.0)
        zs, zp = u[:K_SPK] * s, u[K_SPK:K_SPK + K_PRO] * sp
        w_s = centre + (zs * b["sd_s"]) @ b["A_s"]
        w_p = centre + (zp * b["sd_p"]) @ b["A_p"]
        line = n % len(TUNING_LINES)
        audio = R(packs, w_s, w_p, TUNING_LINES[line], "gb" if british else "us")
        rows.append({"female": female, "british": british, "s": s, "sp": sp, "zs": zs, "zp": zp, "line": line,
                     **judge_clip(J, audio)})
        if (n + 1) % 8 == 0 or n + 1 == a.n:
            np.save(path, rows, allow_pickle=True)
            print(f"sample {n + 1}/{a.n} ({time.time() - t:.0f} s)", flush=True)


_CV_JUDGES: dict = {}


def cv_judges(cv: str, cache: str | None):
    """``(gender judge, age judge)`` fitted on the Common Voice training speakers (the evaluation's
    judges; the real clips' judge inputs read once per process from ``cache``)."""
    if (cv, cache) not in _CV_JUDGES:
        from digitalhuman.evaluate.voice_judges import clip_ages, fit_age_judge, fit_gender_judge, real_clips

        real, _ = real_clips(None, cv, cache)
        tr = ~real.holdout
        _CV_JUDGES[cv, cache] = (fit_gender_judge(real.emb[tr], real.log_f0[tr], real.female[tr]),
                                 fit_age_judge(real.emb[tr], real.log_f0[tr], clip_ages(cv, real.files)[tr],
                                               real.speaker[tr]))
    return _CV_JUDGES[cv, cache]


def _ridge(X: np.ndarray, Y: np.ndarray, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    mx, my = X.mean(0), Y.mean(0)
    Xc = X - mx
    W = np.linalg.solve(Xc.T @ Xc + alpha * np.eye(X.shape[1]), Xc.T @ (Y - my))
    return W, my - mx @ W


def unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def stock_gender_judge(stock: list[dict]):
    """The fit's own gender judge: logistic regression on the stock voices' rendered embeddings.
    Returns ``(judge, embeddings, female)``."""
    from sklearn.linear_model import LogisticRegression

    se = unit(np.stack([r["emb"] for r in stock]))
    sf = np.array([r["voice"][1] == "f" for r in stock])
    return LogisticRegression(C=1.0, max_iter=2000).fit(se, sf), se, sf


def cmd_fit(a) -> None:
    from digitalhuman.voice.prior import write_prior

    run = Path(a.run)
    b = np.load(run / "basis.npz")
    names = [str(n) for n in b["names"]]
    stock = list(np.load(run / "stock.npy", allow_pickle=True))
    rows = [r for r in np.load(run / "samples.npy", allow_pickle=True) if r["finite"] and np.isfinite(r["emb"]).all()]
    report: dict = {"samples": len(rows), "stock_renders": len(stock)}
    female = np.array([r["female"] for r in rows])
    Z = np.stack([r["zs"] for r in rows])
    E = unit(np.stack([r["emb"] for r in rows]))
    Q = np.array([r["dnsmos"] for r in rows])

    if a.gender_judge == "cv":  # the gender judge fitted on the Common Voice training speakers
        cj = cv_judges(a.cv, a.cache)[0]
        pf = np.clip(cj.p_female(np.stack([r["emb"] for r in rows]), np.array([r["vf"][0] for r in rows])), 1e-6, 1 - 1e-6)
        logit = np.log(pf / (1 - pf))
        # centre weights: how surely the judge hears each stock voice as its gender (its renderings
        # on the tuning lines; no F0 was kept for them, so the judge takes the training mean)
        p_own = np.zeros(len(names))
        for v, name in enumerate(names):
            e = np.stack([r["emb"] for r in stock if r["voice"] == name])
            p = cj.p_female(e, np.full(len(e), np.nan)).mean()
            p_own[v] = p if name[1] == "f" else 1.0 - p
        report["stock_p_own_gender"] = dict(zip(names, np.round(p_own, 3).tolist()))
        centre_weights = p_own ** a.centre_power
        if a.centre_men_only:
            centre_weights[[n[1] == "f" for n in names]] = 1.0
    else:  # a judge fitted on the stock voices' renderings
        gj, se, sf = stock_gender_judge(stock)
        logit = gj.decision_function(E)
        report["own_gender_judge_stock_acc"] = float(gj.score(se, sf))
        centre_weights = np.ones(len(names))
    report["gender_judge"] = a.gender_judge
    sign = np.where(female, 1.0, -1.0)
    report["samples_gender_right"] = float(np.mean(sign * logit > 0))
    # direction in z that moves the gender judge (towards female), fitted within each gender
    W, _ = _ridge(np.c_[Z, female], logit[:, None], 1.0)
    gender_dir = unit(W[:K_SPK, 0])
    proj = Z @ gender_dir
    # floor per gender: the furthest a voice may go towards the other gender with >= --floor-acc of
    # that gender's samples judged right (negative: it must stay that far on its own side)
    floors = np.round(np.linspace(-2.0, 3.0, 51), 2)
    gender_floors = []
    for g in (True, False):
        m = female == g
        right, side = (sign * logit > 0)[m], (sign * proj)[m]
        ok = [np.mean(right[side >= -f]) if np.sum(side >= -f) >= 5 else 1.0 for f in floors]
        good = [f for f, o in zip(floors, ok) if o >= a.floor_acc]
        gender_floors.append(float(max(good)) if good else float(floors[0]))
        report[f"gender_right_by_floor_{'female' if g else 'male'}"] = {f"{f:.1f}": round(float(o), 3)
                                                                        for f, o in zip(floors, ok)}
    if a.gender_floors:
        gender_floors = [float(x) for x in a.gender_floors.split(",")]
    gender_floor = max(gender_floors)
    report["gender_floors"] = gender_floors

    # speaker sensitivity per direction: embedding ~ linear in z (per gender); quality ~ quadratic
    sens = np.zeros(K_SPK)
    for g in (True, False):
        m = female == g
        Wg, _ = _ridge(Z[m], E[m], 1.0)
        sens += np.linalg.norm(Wg, axis=1) / 2
    Xq = np.c_[Z ** 2, np.stack([r["zp"] for r in rows]) ** 2]
    Wq, bq = _ridge(Xq, Q[:, None], 5.0)
    cost = np.clip(-Wq[:K_SPK, 0], 0.002, None)  # DNSMOS lost per unit^2 of each direction
    report["sensitivity"] = np.round(sens, 4).tolist()
    report["dnsmos_cost"] = np.round(-Wq[:, 0], 4).tolist()
    report["dnsmos_at_centre"] = float(bq[0])
    # greedy: start at 1 (the stock spread), widen the best ratio directions within the budget
    spread = np.ones(K_SPK)
    budget = a.dnsmos_budget
    for k in np.argsort(-(sens ** 2) / cost):
        extra = min(a.max_spread ** 2 - 1.0, budget / cost[k])
        if extra <= 0:
            continue
        spread[k] = np.sqrt(1.0 + extra)
        budget -= extra * cost[k]
    report["spread_spk"] = np.round(spread, 3).tolist()
    spread_pro = np.full(K_PRO, a.pro_spread)
    if a.uniform_spread:
        spread = np.full(K_SPK, a.uniform_spread)
        report["spread_spk"] = spread.tolist()
    report["spread_gender"] = [a.spread_female, a.spread_male]

    # quality guard: DNSMOS ~ intercept + sum_k (lin_k z_k + quad_k z_k^2) + sum_j quad_pro_j zp_j^2
    P = np.stack([r["zp"] for r in rows])
    Xg = np.c_[Z, Z ** 2, P ** 2]
    Wg, bg = _ridge(Xg, Q[:, None], a.quality_alpha)
    pred = Xg @ Wg[:, 0] + bg[0]
    q_lin, q_quad, q_quad_pro = Wg[:K_SPK, 0], np.minimum(Wg[K_SPK:2 * K_SPK, 0], 0.0), np.minimum(Wg[2 * K_SPK:, 0], 0.0)
    report["quality_model_r"] = float(np.corrcoef(pred, Q)[0, 1])
    folds = np.arange(len(Q)) % 5
    cv = np.zeros(len(Q))
    for f in range(5):
        Wf_, bf_ = _ridge(Xg[folds != f], Q[folds != f, None], a.quality_alpha)
        cv[folds == f] = Xg[folds == f] @ Wf_[:, 0] + bf_[0]
    report["quality_model_r_heldout"] = float(np.corrcoef(cv, Q)[0, 1])
    report["quality_intercept"] = float(bg[0])
    report["quality_min"] = a.quality_min

    # age: the age judge's years ~ linear in z (per gender), if the judge was run
    age_dir, age_gain = np.zeros(K_SPK), 0.0
    years = None
    if a.age_judge == "cv":  # the ridge age judge fitted on the Common Voice training speakers
        aj = cv_judges(a.cv, a.cache)[1]
        years = aj.years(np.stack([r["emb"] for r in rows]), np.array([r["vf"][0] for r in rows]))
    elif a.age_judge == "vae":  # the shipped speech VAE's trait inference on the voice features
        from digitalhuman.voice.vae import load_voice_vae
        from digitalhuman.weights_card import WEIGHTS_DIR

        vae = load_voice_vae(WEIGHTS_DIR / "voice_vae.safetensors")
        F_ = np.stack([r["vf"] for r in rows])
        years = np.full(len(rows), np.nan)
        okv = np.isfinite(F_).all(1)
        years[okv] = vae.infer_traits(F_[okv])[1]
    report["age_judge"] = a.age_judge
    if years is not None:
        keep = np.isfinite(years)
        Z_, female_, years = Z[keep], female[keep], years[keep]
        Wa, _ = _ridge(np.c_[Z_, female_], years[:, None], 1.0)
        wa = Wa[:K_SPK, 0]
        wa = wa - (wa @ gender_dir) * gender_dir  # never move the gender when moving the age
        age_dir = unit(wa)
        per_unit = float(np.linalg.norm(wa))  # judged years per unit of z along age_dir
        # aim: +10 judged years per decade, within a bounded shift (|shift| <= 1.5 at 85)
        age_gain = float(np.clip(10.0 / max(per_unit, 1e-6), 0.0, 0.3)) if per_unit > 0 else 0.0
        if a.age_gain is not None:
            age_gain = a.age_gain
        report["age_years_per_unit"] = per_unit
    report["age_gain"] = age_gain

    # voice features -> z (ridge, standardised features)
    F = np.stack([r["vf"] for r in rows])
    okf = np.isfinite(F).all(1)
    fm, fs = F[okf].mean(0), F[okf].std(0) + 1e-6
    Wf, bf = _ridge((F[okf] - fm) / fs, Z[okf], a.feature_alpha)
    pred = ((F[okf] - fm) / fs) @ Wf + bf
    report["features_to_z_r2"] = float(1 - np.sum((pred - Z[okf]) ** 2) / np.sum((Z[okf] - Z[okf].mean(0)) ** 2))

    anchor = None
    if a.anchor_top:  # anchored voices: a few stock voices picked by the voice code, then the deviation
        proj = np.random.default_rng(a.anchor_seed).standard_normal((K_SPK, len(names))) / np.sqrt(K_SPK)
        anchor = {"proj": np.round(proj, 6).tolist(), "temperature": a.anchor_temp, "top": a.anchor_top,
                  "spread": a.anchor_spread, "power": a.anchor_power, "seed": a.anchor_seed}
        report["anchor"] = {k: v for k, v in anchor.items() if k != "proj"}
    sha = write_prior(a.out, names, b["packs"], k_spk=K_SPK, k_pro=K_PRO, spread_spk=spread, spread_pro=spread_pro,
                      gender_dir=gender_dir, gender_floor=gender_floor, age_dir=age_dir, age_gain=age_gain,
                      features=(fm, fs, Wf, bf), quality=(q_lin, q_quad, q_quad_pro),
                      config={"quality_intercept": float(bg[0]), "quality_min": a.quality_min,
                              "gender_floors": gender_floors, "spread_gender": [a.spread_female, a.spread_male],
                              "centre_weights": np.round(centre_weights, 6).tolist(),
                              **({"anchor": anchor} if anchor else {}),
                              "age_replace": bool(a.age_replace),
                              "source": "Kokoro-82M v1.0 English voices (hexgrad, Apache-2.0) via "
                                        "remsky/Kokoro-FastAPI api/src/voices/v1_0",
                              "tuning_lines": list(TUNING_LINES), "fit": report})
    (run / "fit_report.json").write_text(json.dumps(report, indent=1))
    print(json.dumps({k: v for k, v in report.items() if not k.startswith("gender_right_by_floor")}, indent=1))
    print(f"wrote {a.out} sha256 {sha}")


def cmd_check(a) -> None:
    """Personas of tuning seeds voiced by a prior file, judged on tuning lines (the fit's own check)."""
    from digitalhuman.evaluate.voice_judges import VoiceJudges
    from digitalhuman.fusion import SL_STYLE, SL_VOICE
    from digitalhuman.persona import persona_latent
    from digitalhuman.pipeline import accent_of
    from digitalhuman.voice.persona_voice import PersonaVoice
    from digitalhuman.voice.prior import VoicePrior

    run = Path(a.run)
    stock = list(np.load(run / "stock.npy", allow_pickle=True))
    gj = stock_gender_judge(stock)[0]
    cj = cv_judges(a.cv, a.cache)[0]
    vm = PersonaVoice(VoicePrior.load(a.prior), threads=a.threads)
    J = VoiceJudges(a.threads)
    rows = []
    for k in range(a.n):
        seed = a.seed + k
        lat = persona_latent(seed)
        female = {"female": True, "male": False}.get(a.only, k % 2 == 0)
        params = vm.params(1.0 if female else 0.0, 35.0, lat[SL_VOICE], lat[SL_STYLE], accent=accent_of(lat))
        audio = vm.speak(TUNING_LINES[k % len(TUNING_LINES)], params)[0]
        r = judge_clip(J, audio)
        rows.append({"female": female, "emb": r["emb"], "dnsmos": r["dnsmos"], "log_f0": r["vf"][0]})
    # nearest stock voice: each clip's cosine to the closest stock voice's mean embedding (its
    # renderings on the tuning lines); for reference, each stock clip's to the closest *other* voice's
    voices = sorted({r["voice"] for r in stock})
    cent = unit(np.stack([unit(np.stack([r["emb"] for r in stock if r["voice"] == v])).mean(0) for v in voices]))
    near = (unit(np.stack([r["emb"] for r in rows])) @ cent.T).max(1)
    ref = [max(float(unit(r["emb"]) @ c) for v, c in zip(voices, cent) if v != r["voice"]) for r in stock]
    out = {"nearest_stock": round(float(near.mean()), 3), "nearest_stock_ref": round(float(np.mean(ref)), 3)}
    for g in sorted({r["female"] for r in rows}, reverse=True):
        R = [r for r in rows if r["female"] == g]
        E = unit(np.stack([r["emb"] for r in R]))
        C = E @ E.T
        q = [r["dnsmos"] for r in R]
        pf = gj.predict_proba(E)[:, 1]
        pcv = cj.p_female(np.stack([r["emb"] for r in R]), np.array([r["log_f0"] for r in R]))
        out["women" if g else "men"] = {"cos": round(float(C[np.triu_indices(len(R), 1)].mean()), 3),
                                        "dnsmos_mean": round(float(np.mean(q)), 3), "dnsmos_min": round(float(np.min(q)), 3),
                                        "gender_right": float(np.mean((pf > 0.5) == g)),
                                        "gender_right_cv": float(np.mean((pcv > 0.5) == g))}
    print(json.dumps(out))


def _with_age(prior, gain: float | None, replace: bool | None, gain_old: float | None = None):
    """The prior with another age calibration (``age_gain`` z units per decade; ``age_gain_old``
    above ``AGE_CENTER``; ``age_replace``); None keeps the prior's."""
    import dataclasses

    cfg = dict(prior.config)
    if replace is not None:
        cfg["age_replace"] = bool(replace)
    if gain_old is not None:
        cfg["age_gain_old"] = float(gain_old)
    return dataclasses.replace(prior, config=cfg, age_gain=prior.age_gain if gain is None else float(gain))


def judge_men(vm, n: int, seed: int, threads: int, cv: str, cache: str) -> list[dict]:
    """Men's voices of tuning seeds at ages drawn uniformly in 18-85, two tuning lines each: their
    speaker coefficients and the Common Voice gender judge's mean P(female)."""
    from digitalhuman.evaluate.voice_judges import VoiceJudges, log_f0
    from digitalhuman.fusion import SL_STYLE, SL_VOICE
    from digitalhuman.persona import persona_latent
    from digitalhuman.pipeline import accent_of

    gj = cv_judges(cv, cache)[0]
    J = VoiceJudges(threads)
    rng = np.random.default_rng(seed)
    rows = []
    for k in range(n):
        lat = persona_latent(seed + k)
        params = vm.params(0.0, float(rng.uniform(18, 85)), lat[SL_VOICE], lat[SL_STYLE], accent=accent_of(lat))
        pf = []
        for j in range(2):
            audio = vm.speak(TUNING_LINES[(2 * k + j) % len(TUNING_LINES)], params)[0]
            pf.append(float(gj.p_female(J.embed(audio, SR)[None], np.array([log_f0(audio, SR)]))[0]))
        rows.append({"z": [params[f"s{i:02d}"] for i in range(vm.prior.k_spk)], "p_female": float(np.mean(pf))})
        if k % 20 == 19:
            print(f"men judged: {k + 1}/{n}", file=sys.stderr, flush=True)
    return rows


def fit_men_guard(rows: list[dict], quantile: float, alpha: float = 10.0) -> dict:
    """The direction in ``z`` along which the judge's logit P(female) of men's voices rises (ridge),
    its 5-fold r, and the guard's ``max``: that ``quantile`` of the men's projections on it."""
    Z = np.array([r["z"] for r in rows])
    pf = np.clip(np.array([r["p_female"] for r in rows]), 1e-3, 1 - 1e-3)
    y = np.log(pf / (1 - pf))
    folds = np.arange(len(y)) % 5
    pred = np.zeros(len(y))
    for f in range(5):
        w, b = _ridge(Z[folds != f], y[folds != f, None], alpha)
        pred[folds == f] = Z[folds == f] @ w[:, 0] + b[0]
    w = _ridge(Z, y[:, None], alpha)[0][:, 0]
    d = unit(w)
    proj = Z @ d
    mx = float(np.quantile(proj, quantile))
    return {"dir": np.round(d, 6).tolist(), "max": round(mx, 4),
            "fit": {"men": len(rows), "judged_female": float(np.mean(pf > 0.5)), "logit_per_unit": float(np.linalg.norm(w)),
                    "cv_r": float(np.corrcoef(pred, y)[0, 1]), "quantile": quantile,
                    "moved": float(np.mean(proj > mx)), "judged_female_moved": int(np.sum((pf > 0.5) & (proj > mx)))}}


def check_age(prior, n: int, seed: int, threads: int, cv: str, cache: str) -> dict:
    """Personas of tuning seeds at ages drawn uniformly in 18-85 (genders alternating) voiced by a
    prior (a ``VoicePrior``), one tuning line each, judged by the gender and age
    judges fitted on the Common Voice training speakers and by DNSMOS: Spearman of judged vs persona
    age (all, per gender), judged years per decade, gender judged right, DNSMOS mean / minimum."""
    from digitalhuman.evaluate.fusion_figures import spearman
    from digitalhuman.evaluate.voice_judges import VoiceJudges, log_f0
    from digitalhuman.fusion import SL_STYLE, SL_VOICE
    from digitalhuman.persona import persona_latent
    from digitalhuman.pipeline import accent_of
    from digitalhuman.voice.persona_voice import PersonaVoice
    from digitalhuman.voice.prior import VoicePrior

    gj, aj = cv_judges(cv, cache)
    vm = PersonaVoice(prior, threads=threads)
    J = VoiceJudges(threads)
    ages, judged, fem, pf, mos = [], [], [], [], []
    rng = np.random.default_rng(seed)
    for k in range(n):
        lat = persona_latent(seed + k)
        female, age = k % 2 == 0, float(rng.uniform(18, 85))
        params = vm.params(1.0 if female else 0.0, age, lat[SL_VOICE], lat[SL_STYLE], accent=accent_of(lat))
        audio = vm.speak(TUNING_LINES[k % len(TUNING_LINES)], params)[0]
        e, lf = J.embed(audio, SR)[None], np.array([log_f0(audio, SR)])
        judged.append(float(aj.years(e, lf)[0]))
        pf.append(float(gj.p_female(e, lf)[0]))
        mos.append(float(J.dnsmos(audio, SR)["ovrl"]))
        ages.append(age)
        fem.append(female)
    ages, judged, fem, pf, mos = map(np.array, (ages, judged, fem, pf, mos))
    return {"n": n, "seed": seed, "age_gain": vm.prior.age_gain, "age_gain_old": vm.prior.config.get("age_gain_old"),
            "age_replace": bool(vm.prior.config.get("age_replace")), "men_guard": "men_guard" in vm.prior.config,
            "rho": spearman(judged, ages)["rho"], "rho_women": spearman(judged[fem], ages[fem])["rho"],
            "rho_men": spearman(judged[~fem], ages[~fem])["rho"],
            "judged_years_per_decade": float(np.polyfit(ages, judged, 1)[0] * 10), "judged_sd": float(judged.std()),
            "gender_right": float(np.mean((pf > 0.5) == fem)), "dnsmos_mean": float(mos.mean()),
            "dnsmos_min": float(mos.min()), "dnsmos_mean_60_plus": float(mos[ages >= 60].mean())}


def cmd_check_age(a) -> None:
    from digitalhuman.voice.prior import VoicePrior

    prior = _with_age(VoicePrior.load(a.prior), a.age_gain, True if a.age_replace else None, a.age_gain_old)
    print(json.dumps(check_age(prior, a.n, a.seed, a.threads, a.cv, a.cache)))


def cmd_calibrate_age(a) -> None:
    """Rewrite a prior file's age calibration (``age_gain``, ``age_gain_old``, ``age_replace``) and,
    with ``--men N``, its men's guard (``fit_men_guard`` on N judged men's voices of that calibration),
    the rest as it is; record the check of each seed range given (``check_age``) in the ``fit`` report."""
    import dataclasses

    import torch
    from safetensors.numpy import load_file

    from digitalhuman.checkpoint import save_weights
    from digitalhuman.voice.persona_voice import PersonaVoice
    from digitalhuman.voice.prior import KIND, VoicePrior

    prior = VoicePrior.load(a.prior)
    raw = load_file(a.prior)  # the tensors exactly as stored (the packs stay float16)
    was = {k: prior.config.get(k) for k in ("age_gain", "age_gain_old", "age_replace", "men_guard")}
    cfg = {k: v for k, v in prior.config.items() if k != "men_guard"}
    prior = _with_age(dataclasses.replace(prior, config=cfg), a.age_gain, a.age_replace, a.age_gain_old)
    cfg = prior.config | {"age_gain": prior.age_gain}
    fit = dict(cfg.get("fit", {}))
    if a.men:
        guard = fit_men_guard(judge_men(PersonaVoice(prior, threads=a.threads), a.men, a.men_seed, a.threads,
                                        a.cv, a.cache), a.men_quantile)
        print(json.dumps(guard["fit"]), flush=True)
        cfg["men_guard"] = {"dir": guard["dir"], "max": guard["max"]}
        fit["men_guard"] = guard["fit"]
        prior = dataclasses.replace(prior, config=cfg)
    checks = [check_age(prior, a.n, s, a.threads, a.cv, a.cache) for s in a.seeds]
    for c in checks:
        print(json.dumps(c), flush=True)
    fit["age_calibration"] = {"was": was, "checks": checks, "command": " ".join(sys.argv[1:])}
    cfg["fit"] = fit
    sha = save_weights(a.out, {k: torch.from_numpy(v) for k, v in raw.items()}, kind=KIND, config=cfg)
    print(f"wrote {a.out} sha256 {sha}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("basis")
    p.add_argument("--packs", required=True)
    p.add_argument("--run", required=True)
    p.add_argument("--threads", type=int, default=2)
    p = sub.add_parser("sample")
    p.add_argument("--run", required=True)
    p.add_argument("--n", type=int, default=160)
    p.add_argument("--seed", type=int, default=20261203)
    p.add_argument("--threads", type=int, default=2)
    p = sub.add_parser("fit")
    p.add_argument("--run", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--dnsmos-budget", type=float, default=0.08)
    p.add_argument("--max-spread", type=float, default=2.0)
    p.add_argument("--pro-spread", type=float, default=0.8)
    p.add_argument("--feature-alpha", type=float, default=10.0)
    p.add_argument("--uniform-spread", type=float, default=0.0, help="one spread for every speaker direction")
    p.add_argument("--age-judge", choices=["cv", "vae", "none"], default="vae")
    p.add_argument("--age-gain", type=float, default=None, help="z units per decade along age_dir (default: fitted)")
    p.add_argument("--age-replace", action="store_true",
                   help="a voice's coordinate along age_dir is set by the age alone (not drawn)")
    p.add_argument("--cv", default="../shared/data/commonvoice61", help="Common Voice folder (the cv judges)")
    p.add_argument("--cache", default=None, help="the judges' cache of the real clips (the cv judges)")
    p.add_argument("--gender-judge", choices=["cv", "stock"], default="cv",
                   help="judge of the samples' gender: fitted on Common Voice training speakers, or on stock renderings")
    p.add_argument("--centre-power", type=float, default=4.0,
                   help="a stock voice weighs P(judged its gender)^power in its group's centre (0: equal)")
    p.add_argument("--anchor-top", type=int, default=0, help="anchor each voice on its code's top-N stock voices (0: off)")
    p.add_argument("--anchor-temp", type=float, default=0.3, help="softmax temperature of the anchor choice")
    p.add_argument("--anchor-spread", type=float, default=0.6, help="the deviation's scale around the anchors")
    p.add_argument("--anchor-power", type=float, default=1.0, help="weight of log(centre_weights) in the choice")
    p.add_argument("--anchor-seed", type=int, default=1603)
    p.add_argument("--centre-men-only", action="store_true", help="weigh only the men's group centres")
    p.add_argument("--floor-acc", type=float, default=0.98, help="share judged right within each gender's floor")
    p.add_argument("--gender-floors", default="", help="female,male floors (instead of fitted)")
    p.add_argument("--spread-female", type=float, default=1.0, help="scales every speaker spread of women's voices")
    p.add_argument("--spread-male", type=float, default=1.0, help="scales every speaker spread of men's voices")
    p.add_argument("--quality-alpha", type=float, default=5.0)
    p.add_argument("--quality-min", type=float, default=3.3, help="predicted DNSMOS a voice is pulled in to")
    p = sub.add_parser("check")
    p.add_argument("--run", required=True)
    p.add_argument("--prior", required=True)
    p.add_argument("--n", type=int, default=24)
    p.add_argument("--seed", type=int, default=50_000, help="first tuning seed (not an evaluation seed)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--cv", default="../shared/data/commonvoice61")
    p.add_argument("--cache", required=True)
    p.add_argument("--only", choices=["female", "male"], default=None, help="personas of one gender only")
    for name in ("check-age", "calibrate-age"):
        p = sub.add_parser(name)
        p.add_argument("--prior", required=True)
        p.add_argument("--n", type=int, default=24)
        p.add_argument("--threads", type=int, default=2)
        p.add_argument("--cv", default="../shared/data/commonvoice61")
        p.add_argument("--cache", required=True)
        p.add_argument("--age-gain", type=float, default=None if name == "check-age" else 0.3,
                       help="z units per decade along age_dir")
        p.add_argument("--age-gain-old", type=float, default=None,
                       help="z units per decade along age_dir above age 35 (default: --age-gain)")
        p.add_argument("--age-replace", action="store_true",
                       help="a voice's coordinate along age_dir is set by the age alone (not drawn)")
        if name == "check-age":
            p.add_argument("--seed", type=int, default=60_000, help="first tuning seed (not an evaluation seed)")
        else:
            p.add_argument("--seeds", type=int, nargs="+", default=[60_000, 61_000],
                           help="first tuning seeds of the checks (not evaluation seeds)")
            p.add_argument("--out", required=True)
            p.add_argument("--men", type=int, default=0, help="judged men's voices for the men's guard (0: none)")
            p.add_argument("--men-seed", type=int, default=90_000, help="first tuning seed of those men")
            p.add_argument("--men-quantile", type=float, default=0.7,
                           help="the guard keeps men at most at this quantile of their projection")
    a = ap.parse_args()
    {"basis": cmd_basis, "sample": cmd_sample, "fit": cmd_fit, "check": cmd_check,
     "check-age": cmd_check_age, "calibrate-age": cmd_calibrate_age}[a.cmd](a)


if __name__ == "__main__":
    main()
