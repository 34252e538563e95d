"""The fusion evaluation's work: the task list, rendering + judging one task in a worker process
(each loads the pipeline and the judges once), and the real faces and speakers it starts from."""

from __future__ import annotations

import csv
import time
from pathlib import Path
from typing import Any

import numpy as np

from ..face.data import is_holdout, read_labels
from .fusion_figures import AGED_FROM, AGED_YEARS, BLEND_T, LINES, balanced_pick, mean_embedding, nanmean_or_nan

REAL_ADULT_AGES = (18, 80)  # labelled ages of the real faces used for face -> voice
SEED_BASE = {"pool": 100_000, "constrained": 200_000, "from_face": 300_000, "from_voice": 400_000,
             "blend": 500_000, "aged": 600_000}


def build_tasks(pool_n: int, specs: list[tuple[str, float]], families: int, faces: list[dict],
                speakers: list[dict], pairs: int, seed: int, aged: int = 0) -> list[dict]:
    """Work items in a fixed order: random personas, constrained ones, siblings, real faces, real
    speakers, blend pairs, aged personas (seeds: ``SEED_BASE[section] + seed + index``)."""
    base = {k: v + seed for k, v in SEED_BASE.items()}
    return ([{"kind": "persona", "i": i, "seed": base["pool"] + i, "identity": True} for i in range(pool_n)]
            + [{"kind": "persona", "i": pool_n + i, "seed": base["constrained"] + i, "gender": g, "age": a,
                "identity": False} for i, (g, a) in enumerate(specs)]
            + [{"kind": "sibling", "i": f, "seed": base["pool"] + f} for f in range(families)]
            + [{"kind": "sibling_cross", "i": f, "seed": base["pool"] + f, "sibling_gender": "opposite"}
               for f in range(families)]
            + [{"kind": "from_face", "i": i, "seed": base["from_face"] + i, "image": f["path"]}
               for i, f in enumerate(faces)]
            + [{"kind": "from_voice", "i": i, "seed": base["from_voice"] + i, "clips": s["clips"]}
               for i, s in enumerate(speakers)]
            + [{"kind": "blend", "i": j, "a": base["blend"] + 2 * j, "b": base["blend"] + 2 * j + 1}
               for j in range(pairs)]
            + [{"kind": "aged", "i": j, "seed": base["aged"] + j} for j in range(aged)])


# ---------------------------------------------------------------------------- worker side
_CTX: dict[str, Any] = {}


def _init_context(weights: str | None, threads: int = 1) -> None:
    """Load the pipeline and the judges once per process, with ``threads`` torch and BLAS threads
    (parallelism comes from the worker processes; small BLAS calls only spin with more)."""
    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(threads)
    threadpool_limits(threads)  # for the rest of this process
    from .face_judges import FaceJudges
    from .voice_judges import VoiceJudges
    from ..pipeline import PersonaPipeline

    _CTX["pipe"] = PersonaPipeline.from_pretrained(weights)
    _CTX["face"] = FaceJudges()
    _CTX["voice"] = VoiceJudges(threads)


def _close_context() -> None:
    if "face" in _CTX:
        _CTX["face"].close()
    _CTX.clear()


def _judge_face(face: np.ndarray, age_gender: bool, identity: bool) -> dict:
    from .face_judges import to_judge_size

    img = to_judge_size(np.asarray(face)[None])
    out = {}
    if age_gender:
        pf, age = _CTX["face"].judge_age_gender(img)
        out.update(face_p_female=float(pf[0]), face_age=float(age[0]))
    if identity:
        out["face_emb"] = _CTX["face"].embed(img)[0]
    return out


def _judge_voice(persona, f0: bool) -> dict:
    from .voice_judges import log_f0

    vj = _CTX["voice"]
    emb = np.stack([vj.embed(ln.audio, ln.sample_rate) for ln in persona.lines])
    out = {"voice_emb": mean_embedding(emb), "line_emb_finite": int(np.isfinite(emb).all(1).sum()),
           "audio_s": float(sum(len(ln.audio) / ln.sample_rate for ln in persona.lines))}
    if f0:
        out["log_f0"] = nanmean_or_nan([log_f0(ln.audio, ln.sample_rate) for ln in persona.lines])
    return out


def _traits(p) -> dict:
    out = {"gender": p.traits["gender"], "female": float(p.traits["female"]), "age": float(p.traits["age"]),
           "race": p.traits.get("race")}
    if p.voice:
        out.update(accent=p.traits.get("accent"), pitch_st=float(p.voice["pitch_st"]), child=float(p.voice["child"]))
    return out


def _work(task: dict) -> dict:
    """One unit of work (render + judge), run in a worker process (or in-process with one worker)."""
    t0, c0 = time.perf_counter(), time.process_time()
    pipe = _CTX["pipe"]
    kind = task["kind"]
    out: dict[str, Any] = {"kind": kind, "i": task["i"], "seed": task.get("seed")}
    if kind == "persona":
        p = pipe(task["seed"], gender=task.get("gender"), age=task.get("age"), lines=LINES)
        out.update(_traits(p), **_judge_face(p.face, True, task["identity"]), **_judge_voice(p, True))
    elif kind in ("sibling", "sibling_cross"):
        anchor = pipe(task["seed"], face=False, voice=False)
        gender = task.get("sibling_gender", "same")
        if gender == "opposite":
            gender = "male" if anchor.traits["gender"] == "female" else "female"
        p = pipe.sibling(anchor, 1, lines=LINES, gender=gender)
        out.update(_traits(p), **_judge_face(p.face, False, True), **_judge_voice(p, False))
    elif kind == "from_face":
        from PIL import Image

        with Image.open(task["image"]) as im:
            img = np.asarray(im.convert("RGB"))
        p = pipe.from_face(img, task["seed"], lines=LINES, keep_face=True)
        real = _judge_face(img, True, False)
        out.update(_traits(p), real_face_p_female=real["face_p_female"], real_face_age=real["face_age"],
                   **_judge_voice(p, True))
    elif kind == "from_voice":
        from ..voice.features import FeatureError, load_audio

        out["failed"] = "no clip"
        for clip in task["clips"]:
            try:
                p = pipe.from_voice(*load_audio(clip), seed=task["seed"])
            except FeatureError as e:
                out["failed"] = f"{Path(clip).name}: {e}"
                continue
            out.pop("failed")
            out.update(_traits(p), clip=Path(clip).name, **_judge_face(p.face, True, False))
            break
    elif kind == "aged":
        # a random adult of AGED_FROM: the seed's own draw when it falls there, else its age set
        p = pipe(task["seed"], face=False, voice=False)
        age = p.traits["age"]
        p = pipe(task["seed"], lines=LINES, age=None if AGED_FROM[0] <= age <= AGED_FROM[1]
                 else float(np.clip(age, *AGED_FROM)))
        q = pipe.aged(p, AGED_YEARS, lines=LINES)
        for tag, x in (("young", p), ("old", q)):
            out.update({f"{tag}_{k}": v for k, v in {**_judge_face(x.face, True, True), **_judge_voice(x, True)}.items()})
        out.update(age=float(p.traits["age"]), gender=p.traits["gender"])
    elif kind == "blend":
        from .face_judges import to_judge_size

        a = pipe(task["a"], voice=False)
        b = pipe(task["b"], voice=False)
        faces = [a.face] + [pipe.blend(a, b, t).face for t in BLEND_T]
        emb = _CTX["face"].embed(to_judge_size(np.stack(faces)))
        out.update(a=task["a"], b=task["b"], dist=np.linalg.norm(emb[1:] - emb[0], axis=1),
                   gender_a=a.traits["gender"], gender_b=b.traits["gender"])
    else:
        raise ValueError(f"unknown task {kind!r}")
    out["seconds"], out["cpu_seconds"] = time.perf_counter() - t0, time.process_time() - c0
    return out


def run_tasks(tasks: list[dict], weights: str | None, workers: int, log=lambda m: None) -> list[dict]:
    """Run ``_work`` over ``tasks`` (results in task order) in ``workers`` spawned processes."""
    every = max(1, len(tasks) // 10)
    results = []
    if workers <= 1:  # in this process; its thread settings are restored afterwards
        import torch
        from threadpoolctl import threadpool_limits

        torch_threads = torch.get_num_threads()
        try:
            with threadpool_limits(1):
                _init_context(weights, 1)
                for k, t in enumerate(tasks):
                    results.append(_work(t))
                    if (k + 1) % every == 0:
                        log(f"{k + 1}/{len(tasks)} tasks done")
        finally:
            _close_context()
            torch.set_num_threads(torch_threads)
        return results
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                             initializer=_init_context, initargs=(weights, 1)) as ex:
        for k, r in enumerate(ex.map(_work, tasks, chunksize=1)):
            results.append(r)
            if (k + 1) % every == 0:
                log(f"{k + 1}/{len(tasks)} tasks done")
    return results


# ---------------------------------------------------------------------------- real data
def real_faces(face_dir: str | Path, n: int, seed: int) -> list[dict]:
    """``n`` UTKFace hold-out faces aged 18-80, half female (fixed by ``seed``)."""
    recs = sorted((r for r in read_labels(face_dir) if is_holdout(r.file)
                   and REAL_ADULT_AGES[0] <= r.age <= REAL_ADULT_AGES[1]), key=lambda r: r.file)
    if not recs:
        raise FileNotFoundError(f"{face_dir}: no held-out adult faces")
    pick = balanced_pick(np.array([r.female for r in recs]), n, np.random.Generator(np.random.PCG64(seed)))
    return [{"file": recs[i].file, "path": str(Path(face_dir) / "images" / recs[i].file),
             "female": bool(recs[i].female), "age": float(recs[i].age)} for i in pick]


def real_speakers(voice_dir: str | Path, n: int, seed: int) -> list[dict]:
    """Common Voice hold-out speakers (male/female) with their clips; all of them when ``n`` is 0,
    else up to ``n``, half female where possible."""
    from ..voice.train import is_holdout_speaker

    voice_dir = Path(voice_dir)
    speakers: dict[str, dict] = {}
    with open(voice_dir / "clips.csv", newline="") as f:
        for r in csv.DictReader(f):
            if r["gender"] in ("female", "male") and is_holdout_speaker(r["speaker_id"]):
                s = speakers.setdefault(r["speaker_id"], {"speaker": r["speaker_id"], "female": r["gender"] == "female",
                                                          "age": r["age"], "clips": []})
                s["clips"].append(str(voice_dir / r["file"]))
    out = [speakers[k] for k in sorted(speakers)]
    if n and n < len(out):
        pick = balanced_pick(np.array([s["female"] for s in out]), n, np.random.Generator(np.random.PCG64(seed)))
        out = [out[i] for i in pick]
    return out


