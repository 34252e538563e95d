"""Voice quality checks by external judges (tools nobody on this project wrote).

``evaluate_voices(weights, n_personas, n_lines)`` renders the personas of seeds
``seed .. seed + n_personas - 1`` (traits as the pipeline samples them: no constraints), each
saying ``n_lines`` of the held-out lines in ``eval_lines.EVAL_LINES`` (persona ``k`` says lines
``k * n_lines .. k * n_lines + n_lines - 1``, wrapping around, so with 12 x 4 each of the 24
lines is said by two personas). In the same run the bare Piper joe voice (every persona's voice
before 0.7.0) says every line used once, the stock Kokoro voices say two, and held-out real
Common Voice speakers give the reference for the speaker and gender judges.

==============================  ================================================================
figure                          what it is
==============================  ================================================================
``wer``                         Whisper tiny.en word error rate over all lines: word edits /
                                reference words (``wer_line_mean``: mean of per-line WERs)
``dnsmos_ovrl_mean`` / ``_min`` DNSMOS overall quality (speechmos, 16 kHz; 1-5) per line
``same_persona_cos``            resemblyzer cosine of two lines of one persona: mean over each
                                persona's line pairs, then over personas (``_min``: worst persona)
``diff_persona_cos``            the same over line pairs of two different personas (line level:
                                every line of one with every line of the other)
``diff_persona_above_0.9``      fraction of those different-persona line pairs with cosine > 0.9
                                (``diff_persona_pairs_above_0.9_persona_level``: fraction of
                                persona pairs whose mean cross cosine is > 0.9)
``gender_match``                judged voice gender == persona gender. Judge: a logistic
                                regression on [resemblyzer embedding, log F0] of the Common
                                Voice *training* speakers (the voice trainer's split), applied
                                per line and averaged per persona (P(female) > 0.5). Its accuracy
                                on the held-out speakers' clips is the ``real_holdout`` row.
``gender_match_voice2gender``   the same with voice2gender's P(female) (a second opinion)
``diff_persona_cos_female``     ``diff_persona_cos`` over pairs of two women (``_male``: two men)
``cos_to_joe_same_text``        cosine of each persona line to the bare base voice saying the same
                                line: mean (``_max``: the highest)
``frechet_top16``               Frechet distance between persona means and held-out real speaker
                                means in the top 16 principal components of the training
                                speakers' embeddings (``voice_space``), real vs real beside it
``ages_distinct_min``           the first persona of each gender, constrained to it, at ages
                                ``AGE_STEPS`` (10 ... 75) saying one line: distinct WAVs (of 7);
                                the smaller of the two
``voice_age_spearman``          ``AGE_PERSONAS`` more personas (seeds ``seed + 1000 ..``), one
                                held-out line each: Spearman of judged voice age vs persona age.
                                Judge: ridge regression on [resemblyzer embedding, log F0] of the
                                Common Voice training speakers' clips (``fit_age_judge``)
``nearest_stock_cos``          each persona's mean embedding vs each stock voice's (its own pack
                                on ``STOCK_LINES`` of the lines): cosine to the nearest, mean
``rtf``                         wall time of the batch run, *including* ``from_pretrained`` (the
                                Kokoro session rebuilt; Python imports done before) and face
                                generation when a face model is shipped, over the audio
                                duration (``rtf_excl_load``: without the model load)
``deterministic``               one persona + line rendered in two fresh processes on 1 and 2
                                threads (and in the batch): identical WAV sha256 (``code_changed_during_run`` flags
                                package sources edited between the batch and those processes)
==============================  ================================================================

The WER normalisation is in ``voice_metrics``; the judges and the real clips in ``voice_judges``.

The judges are an optional extra: install them with ``scripts/install-judges.sh``.

  python -m digitalhuman.evaluate.voices --personas 12 --lines 4 --out-json voice_eval.json \\
      --wav-dir voice_eval_wavs/ --cache-dir /work/cache
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Sequence

import numpy as np

from ..eval_lines import EVAL_LINES

STOCK_LINES = 2  # each stock voice says the first two lines used (speaker embeddings barely depend on the text)
from .common import DEFAULT_VOICE_DATA, jsonable, unit_rows
from .fusion_figures import spearman
from .voice_judges import (GENDER_C, INSTALL_HINT, VoiceJudges, clip_ages, fit_age_judge, fit_gender_judge,
                           judges_missing, log_f0, real_clips)
from .voice_age import AGE_PERSONAS, AGE_STEPS, age_steps, render_age_personas
from .voice_report import format_table
from .voice_metrics import SAME_SPEAKER, nearest_stock, line_quality, assign_lines, check_rows, gender_accuracy, similarity_stats, word_errors


# ---------------------------------------------------------------------------- rendering
def render_personas(weights, seeds: Sequence[int], lines: Sequence[Sequence[str]]):
    """Cold batch: ``from_pretrained`` (the Kokoro session rebuilt too) + every persona with its lines.
    Returns ``(personas, seconds_load, seconds_total, faces_made, pipeline)``.
    """
    from ..face import model as _face_model  # noqa: F401  (imports are not model load: done before timing)
    from ..pipeline import PersonaPipeline
    from ..voice import kokoro

    kokoro.shared_kokoro.cache_clear()  # the load must include Kokoro's session
    t0 = time.perf_counter()
    pipe = PersonaPipeline.from_pretrained(weights)
    pipe.voice.kokoro  # noqa: B018  (build the session inside the load)
    t_load = time.perf_counter() - t0
    face = pipe.face is not None
    personas = [pipe(int(s), lines=list(ls), face=face) for s, ls in zip(seeds, lines)]
    return personas, t_load, time.perf_counter() - t0, face, pipe


def render_joe(texts: Sequence[str]):
    """The bare Piper joe voice (``evaluate.joe``, installed with the judges) -> ([(audio, sr)], total s)."""
    from .joe import render_joe as joe

    t0 = time.perf_counter()
    out = [joe(t) for t in texts]
    return out, time.perf_counter() - t0


def render_stock(pipe, texts: Sequence[str]):
    """Every stock voice of the prior saying ``texts`` (its own pack, its own accent): {name: [audio]}."""
    pr, out = pipe.voice.prior, {}
    for i, name in enumerate(pr.names):
        params = {"female": float(pr.female[i]), "british": float(pr.british[i]), f"mix_{name}": 1.0,
                  "speed": 1.0, "pitch_st": 0.0, "child": 0.0, "f0_hz": 0.0, "formant": 1.0, "s00": 0.0}
        out[name] = [pipe.voice.speak(t, params)[0] for t in texts]
    return out


_DETERMINISM_SCRIPT = """
import hashlib, sys
import torch
torch.set_num_threads(int(sys.argv[4]))
from digitalhuman.pipeline import PersonaPipeline
pipe = PersonaPipeline.from_pretrained(sys.argv[1] or None, face=False)
p = pipe(int(sys.argv[2]), lines=[sys.argv[3]], face=False)
print(hashlib.sha256(p.lines[0].wav_bytes()).hexdigest())
"""


def source_digest() -> str:
    """sha256 over the package's Python sources: tells whether the code changed during a run."""
    h = hashlib.sha256()
    root = Path(__file__).resolve().parents[1]
    for f in sorted(root.rglob("*.py")):
        h.update(str(f.relative_to(root)).encode() + b"\0" + f.read_bytes())
    return h.hexdigest()


def wav_sha256_in_subprocess(weights, seed: int, text: str, timeout: float = 600, threads: int = 1) -> str:
    """sha256 of the WAV of ``text`` said by persona ``seed``, rendered in a fresh Python process
    on ``threads`` threads."""
    r = subprocess.run([sys.executable, "-c", _DETERMINISM_SCRIPT, str(weights or ""), str(seed), text, str(threads)],
                       capture_output=True, text=True, timeout=timeout)
    if r.returncode != 0:
        raise RuntimeError(f"determinism subprocess failed: {r.stderr.strip()[-500:]}")
    return r.stdout.strip().splitlines()[-1]


# ---------------------------------------------------------------------------- evaluation
def _judge_lines(judges: VoiceJudges, items, log, desc: str) -> list[dict]:
    """items: (text, audio, sr) -> per line transcript, word errors, DNSMOS, embedding, log F0, voice2gender."""
    out = []
    for k, (text, audio, sr) in enumerate(items):
        hyp = judges.transcribe(audio, sr)
        e, n = word_errors(text, hyp)
        out.append({"text": text, "duration_s": len(audio) / sr, "transcript": hyp, "word_edits": e, "words": n,
                    "wer": e / max(1, n), **{f"dnsmos_{k2}": v for k2, v in judges.dnsmos(audio, sr).items()},
                    "emb": judges.embed(audio, sr), "log_f0": log_f0(audio, sr),
                    "p_female_voice2gender": judges.voice2gender(audio, sr)})
        if (k + 1) % 8 == 0:
            log(f"{desc}: {k + 1}/{len(items)} lines judged")
    return out


def evaluate_voices(
    weights: str | Path | None = None,
    n_personas: int = 12,
    n_lines: int = 4,
    data: str | Path = DEFAULT_VOICE_DATA,
    seed: int = 0,
    out_json: str | Path | None = None,
    wav_dir: str | Path | None = None,
    cache_dir: str | Path | None = None,
    threads: int = 0,
    determinism: bool = True,
    progress: bool = True,
    age_personas: int = AGE_PERSONAS,
) -> dict:
    """Judge the voices of ``n_personas`` personas x ``n_lines`` held-out lines; returns (and writes) a dict.

    ``weights``: a weights folder with ``card.json`` (default: the weights shipped in the
    package). ``seed``: the first persona seed. Result: ``{"personas": figures, "joe": figures,
    "real_holdout": figures, "checks": [...], "per_persona": [...], "lines": [...], "setup": ...,
    "seconds": ...}``; see the module docstring for the figures.
    """
    t_all = time.perf_counter()
    secs: dict[str, float] = {}
    log = (lambda m: print(f"[evaluate_voices] {m}", file=sys.stderr, flush=True)) if progress else (lambda m: None)
    missing = judges_missing()  # fail early, before any rendering
    if missing:
        raise ImportError(f"{INSTALL_HINT} (missing: {', '.join(missing)})")
    if not (Path(data) / "clips.csv").is_file():
        raise FileNotFoundError(f"{data}: no clips.csv (a Common Voice-style folder is needed for the gender judge)")

    code_at_start = source_digest()
    idx = assign_lines(n_personas, n_lines)
    seeds = list(range(seed, seed + n_personas))
    lines = [[EVAL_LINES[i] for i in row] for row in idx]
    used = sorted(set(idx.ravel().tolist()))

    log(f"rendering {n_personas} personas x {n_lines} lines (cold: model load included)")
    personas, t_load, t_batch, faces, pipe = render_personas(weights, seeds, lines)
    audio_s = sum(ln.duration_s for p in personas for ln in p.lines)
    secs["render_personas"] = t_batch
    log(f"bare joe (the voice of 0.6.0 and before) on {len(used)} lines")
    joe, joe_total = render_joe([EVAL_LINES[i] for i in used])
    secs["render_joe"] = joe_total
    stock_lines = [EVAL_LINES[i] for i in used[:STOCK_LINES]]
    log(f"the {len(pipe.voice.prior.names)} stock voices on {len(stock_lines)} lines")
    t = time.perf_counter()
    stock = render_stock(pipe, stock_lines)
    secs["render_stock"] = time.perf_counter() - t

    log(f"one persona of each gender at ages {', '.join(f'{a:g}' for a in AGE_STEPS)}; "
        f"{age_personas} more personas for the voice age rho")
    t = time.perf_counter()
    first = {g: next((p for p in personas if p.traits["gender"] == g), None) for g in ("female", "male")}
    steps = [age_steps(pipe, p.seed if p is not None else seed, g, lines[0][0]) for g, p in first.items()]
    age_lines = render_age_personas(pipe, seed, age_personas)
    secs["render_ages"] = time.perf_counter() - t

    if wav_dir is not None:
        wd = Path(wav_dir)
        wd.mkdir(parents=True, exist_ok=True)
        for p, row in zip(personas, idx):
            for ln, i in zip(p.lines, row):
                (wd / f"persona{p.seed:03d}_line{i:02d}.wav").write_bytes(ln.wav_bytes())
        from ..persona import SpokenLine

        for (audio, sr), i in zip(joe, used):
            wav = SpokenLine(EVAL_LINES[i], audio, sr, []).wav_bytes()
            (wd / f"joe_line{i:02d}.wav").write_bytes(wav)

    log("loading the judges")
    t = time.perf_counter()
    judges = VoiceJudges(threads)
    secs["load_judges"] = time.perf_counter() - t

    log("judging persona lines (Whisper, DNSMOS, resemblyzer, pYIN, voice2gender)")
    t = time.perf_counter()
    p_rows = _judge_lines(judges, [(ln.text, ln.audio, ln.sample_rate) for p in personas for ln in p.lines], log,
                          "personas")
    j_rows = _judge_lines(judges, [(EVAL_LINES[i], a, sr) for (a, sr), i in zip(joe, used)], log, "joe")
    s_emb = {n: unit_rows(np.nanmean([judges.embed(a, 24_000) for a in clips], 0)) for n, clips in stock.items()}
    secs["judge_lines"] = time.perf_counter() - t

    log("real speakers: gender judge (training split) and references (held-out split)")
    t = time.perf_counter()
    real, real_setup = real_clips(judges, data, cache_dir, log)
    tr, ho = ~real.holdout, real.holdout
    gj = fit_gender_judge(real.emb[tr], real.log_f0[tr], real.female[tr])
    aj = fit_age_judge(real.emb[tr], real.log_f0[tr], clip_ages(data, real.files)[tr], real.speaker[tr])
    secs["real_speakers"] = time.perf_counter() - t
    t = time.perf_counter()
    a_emb = np.stack([judges.embed(ln.audio, ln.sample_rate) for _, _, ln in age_lines])
    a_judged = aj.years(a_emb, np.array([log_f0(ln.audio, ln.sample_rate) for _, _, ln in age_lines]))
    a_age = np.array([a for a, _, _ in age_lines])
    secs["judge_ages"] = time.perf_counter() - t

    # ---------------------------------------------------------------- persona figures
    P, L = n_personas, n_lines
    p_emb = np.stack([r["emb"] for r in p_rows])
    p_lf0 = np.array([r["log_f0"] for r in p_rows])
    p_lr = gj.p_female(p_emb, p_lf0)
    for r, v in zip(p_rows, p_lr):
        r["p_female_judge"] = float(v)
    genders = [p.traits["gender"] for p in personas]
    want_f = np.array([g == "female" for g in genders], int)
    pf_lr = np.nanmean(p_lr.reshape(P, L), 1)
    pf_v2g = np.nanmean(np.array([r["p_female_voice2gender"] for r in p_rows]).reshape(P, L), 1)
    line_genders, line_seeds = np.repeat(genders, L), np.repeat(seeds, L)
    sim = similarity_stats(p_emb, line_seeds, line_genders, idx.ravel())
    joe_emb = {i: r["emb"] for r, i in zip(j_rows, used)}
    cos_joe = np.array([float(unit_rows(r["emb"]) @ unit_rows(joe_emb[i])) for r, i in zip(p_rows, idx.ravel())])

    by_gender_cos = {g: similarity_stats(p_emb[line_genders == g], line_seeds[line_genders == g])["diff_persona_cos"]
                     for g in ("female", "male")}
    rtf = t_batch / audio_s
    persona_fig = {
        "diff_persona_cos_female": by_gender_cos["female"],
        "diff_persona_cos_male": by_gender_cos["male"],
        "ages_distinct_min": min(x["distinct"] for x in steps),
        "ages_distinct": steps,
        "voice_age_spearman": spearman(a_judged, a_age)["rho"],
        "voice_age_personas": [{"seed": seed + 1000 + k, "age": float(a), "female": bool(f), "judged_age": float(j)}
                               for k, ((a, f, _), j) in enumerate(zip(age_lines, a_judged))],
        **line_quality(p_rows),
        **sim,
        "gender_match": gender_accuracy(pf_lr, want_f)["accuracy"],
        "gender_match_line_level": gender_accuracy(p_lr, np.repeat(want_f, L))["accuracy"],
        "gender_match_voice2gender": gender_accuracy(pf_v2g, want_f)["accuracy"],
        **nearest_stock(p_emb, line_seeds, s_emb),
        "cos_to_joe_same_text": float(np.nanmean(cos_joe)),
        "cos_to_joe_same_text_max": float(np.nanmax(cos_joe)),
        "dnsmos_ovrl_by_gender": {g: {"mean": float(np.mean(d)), "min": float(np.min(d))} for g in ("female", "male")
                                  if (d := [r["dnsmos_ovrl"] for r, pg in zip(p_rows, line_genders) if pg == g])},
        "rtf": rtf,
        "rtf_excl_load": (t_batch - t_load) / audio_s,
        "seconds_load": t_load,
        "seconds_batch": t_batch,
        "faces_generated": faces,
        "n_personas": P,
        "gender_counts": {g: genders.count(g) for g in ("female", "male")},
    }
    per_persona = []
    for k, p in enumerate(personas):
        rows = p_rows[k * L:(k + 1) * L]
        lf = np.array([r["log_f0"] for r in rows])
        m_f0 = float(np.exp(np.nanmedian(lf))) if np.isfinite(lf).any() else float("nan")
        e = unit_rows(np.stack([r["emb"] for r in rows]))
        same = float((e @ e.T)[np.triu_indices(L, 1)].mean()) if L > 1 else float("nan")
        per_persona.append({
            "seed": p.seed, "gender": p.traits["gender"], "female": p.traits["female"], "age": p.traits["age"],
            "accent": p.traits.get("accent"), "f0_hz_measured": m_f0, "speed": p.voice.get("speed"),
            "nearest_stock": persona_fig["nearest_stock_per_persona"][k],
            "p_female_judge": float(pf_lr[k]), "p_female_voice2gender": float(pf_v2g[k]),
            "same_persona_cos": same, "cos_to_joe_same_text": float(np.nanmean(cos_joe[k * L:(k + 1) * L])),
            "wer": sum(r["word_edits"] for r in rows) / max(1, sum(r["words"] for r in rows)),
            "dnsmos_ovrl_mean": float(np.mean([r["dnsmos_ovrl"] for r in rows])),
        })

    # ---------------------------------------------------------------- joe and real references
    j_e = np.stack([r["emb"] for r in j_rows])
    j_sim = similarity_stats(j_e, np.zeros(len(j_rows), int))
    jf = np.array([r["p_female_voice2gender"] for r in j_rows])
    joe_fig = {**line_quality(j_rows), "same_persona_cos": j_sim["same_persona_cos"],
               "p_female_judge": float(np.nanmean(gj.p_female(j_e, np.array([r["log_f0"] for r in j_rows])))),
               "p_female_voice2gender": float(np.nanmean(jf)),
               "f0_hz_measured": float(np.exp(np.nanmedian([r["log_f0"] for r in j_rows])))}
    names = list(s_emb)
    S = np.stack([s_emb[n] for n in names])
    ss = S @ S.T
    np.fill_diagonal(ss, -np.inf)
    stock_fig = {"n_voices": len(names), "lines": stock_lines,
                 "nearest_other_stock_cos_mean": float(np.mean(ss.max(1))),
                 "nearest_other_stock": {n: names[int(j)] for n, j in zip(names, ss.argmax(1))}}
    for g, d in persona_fig["dnsmos_ovrl_by_gender"].items():
        persona_fig[f"dnsmos_ovrl_mean_{g}"] = d["mean"]
    r_sim = similarity_stats(real.emb[ho], real.speaker[ho], real.female[ho])
    real_fig = {
        **{k: r_sim[k] for k in ("same_persona_cos", "diff_persona_cos", "diff_persona_above_0.9",
                                 "diff_persona_cos_same_gender", "diff_persona_cos_cross_gender", "n_speakers")},
        "gender_judge": gender_accuracy(gj.p_female(real.emb[ho], real.log_f0[ho]), real.female[ho]),
        "gender_judge_train": gender_accuracy(gj.p_female(real.emb[tr], real.log_f0[tr]), real.female[tr]),
        "voice2gender": gender_accuracy(real.v2g[ho], real.female[ho]),
        "n_clips": int(ho.sum()),
    }
    real_fig["gender_match"] = real_fig["gender_judge"]["accuracy"]
    for g, fem in (("female", 1), ("male", 0)):
        k = ho & (real.female == fem)
        real_fig[f"diff_persona_cos_{g}"] = similarity_stats(real.emb[k], real.speaker[k])["diff_persona_cos"]

    # ---------------------------------------------------------------- determinism
    det = {}
    if determinism:
        log("determinism: one persona + line in two fresh processes")
        t = time.perf_counter()
        text = lines[0][0]
        h = [wav_sha256_in_subprocess(weights, seeds[0], text, threads=n) for n in (1, 2)]
        batch_hash = hashlib.sha256(personas[0].lines[0].wav_bytes()).hexdigest()
        det = {"seed": seeds[0], "text": text, "sha256_process_1": h[0], "sha256_process_2": h[1],
               "sha256_batch": batch_hash, "identical": h[0] == h[1] == batch_hash,
               "code_changed_during_run": source_digest() != code_at_start}
        persona_fig["deterministic"] = det["identical"]
        secs["determinism"] = time.perf_counter() - t

    for r in p_rows + j_rows:
        r.pop("emb")
    for r, (k, i) in zip(p_rows, [(k, i) for k in range(P) for i in idx[k]]):
        r["seed"], r["line"] = seeds[k], int(i)
    for r, i in zip(j_rows, used):
        r["line"] = int(i)
    secs["total"] = time.perf_counter() - t_all
    from .voice_space import speaker_space

    space = speaker_space(p_emb, line_seeds, line_genders, real.emb, real.speaker, real.female, real.holdout)
    persona_fig["frechet_top16"] = space["frechet_top16"]
    result = jsonable({
        "personas": persona_fig,
        "joe": joe_fig,
        "stock": stock_fig,
        "real_holdout": real_fig,
        "speaker_space": space,
        "checks": check_rows(persona_fig),
        "determinism": det,
        "per_persona": per_persona,
        "lines": p_rows,
        "joe_lines": j_rows,
        "setup": {
            "weights": str(weights) if weights is not None else "package", "n_personas": P, "n_lines": L,
            "seeds": seeds, "line_indices": idx.tolist(), "data": str(data), "cache_dir": str(cache_dir),
            "gender_judge": {"inputs": "resemblyzer embedding (unit) + log F0, standardised", "C": GENDER_C,
                             "class_weight": "balanced", "train_clips": int(tr.sum()), "holdout_clips": int(ho.sum()),
                             "train_speakers": int(len(set(real.speaker[tr].tolist()))),
                             "holdout_speakers": int(len(set(real.speaker[ho].tolist())))},
            **real_setup, "similarity_threshold": SAME_SPEAKER, "threads": threads,
            "cpus": os.cpu_count(), "loadavg_1min": round(os.getloadavg()[0], 2),
        },
        "seconds": {k: round(v, 1) for k, v in secs.items()},
    })
    if out_json is not None:
        Path(out_json).parent.mkdir(parents=True, exist_ok=True)
        Path(out_json).write_text(json.dumps(result, indent=2) + "\n")
    return result


# ---------------------------------------------------------------------------- command line
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="digitalhuman evaluate voices",
        description="Judge persona voices on held-out lines (Whisper WER, DNSMOS, resemblyzer speaker "
                    "similarity, judged gender, real-time factor, determinism), with the bare base voice and "
                    "held-out real speakers as references. Prints a table, then writes JSON.",
        epilog="example: digitalhuman evaluate voices --personas 12 --lines 4 --out-json voice_eval.json "
               "--wav-dir voice_eval_wavs/ --cache-dir /work/cache",
    )
    ap.add_argument("--weights", default=None, help="weights folder with card.json (default: the shipped weights)")
    ap.add_argument("--personas", type=int, default=12, help="personas (seeds SEED .. SEED+N-1; default 12)")
    ap.add_argument("--lines", type=int, default=4,
                    help=f"lines per persona (of {len(EVAL_LINES)} held-out; default 4)")
    ap.add_argument("--data", default=str(DEFAULT_VOICE_DATA), help="Common Voice-style folder (clips.csv + audio/)")
    ap.add_argument("--seed", type=int, default=0, help="first persona seed")
    ap.add_argument("--out-json", default=None)
    ap.add_argument("--wav-dir", default=None, help="save every rendered line here")
    ap.add_argument("--cache-dir", default=None, help="cache real clips' embeddings here (and read voice_features.npz)")
    ap.add_argument("--threads", type=int, default=0, help="torch and Whisper threads (0 = defaults)")
    ap.add_argument("--no-determinism", action="store_true", help="skip the two-process check")
    ap.add_argument("--age-personas", type=int, default=AGE_PERSONAS,
                    help=f"personas for the judged voice age rho (default {AGE_PERSONAS})")
    ap.add_argument("--quiet", action="store_true")
    a = ap.parse_args(argv)
    from .common import prepare, run_and_report

    code = prepare(a.threads, judges_missing(), INSTALL_HINT)
    if code is not None:
        return code
    return run_and_report(lambda: evaluate_voices(a.weights, a.personas, a.lines, a.data, a.seed, a.out_json,
                                                  a.wav_dir, a.cache_dir, a.threads, not a.no_determinism,
                                                  not a.quiet, a.age_personas), format_table, a.out_json)

if __name__ == "__main__":
    sys.exit(main())
