"""Batch generation: one folder per persona, a manifest, resumable, shardable, mergeable.

Layout of a batch folder ``OUT``::

    OUT/.digitalhuman-batch.json   what was asked (seeds, lines, constraints) - a rerun must match
    OUT/<seed>/face.png voice_00.wav ... persona.json
    OUT/manifest.jsonl             one JSON line per persona, in seed order (rewritten atomically)

Each persona folder is written under a temporary name and renamed when complete, so an
interrupted batch never shows half a persona, and a rerun with the same arguments skips the
personas already done.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from .checkpoint import atomic_write_bytes
from .persona import MAX_SEED, PersonaError, load_persona_doc

MARKER = ".digitalhuman-batch.json"
MAX_BATCH = 1_000_000


def parse_seeds(spec: str) -> list[int]:
    """``"0-499,600,700-710"`` -> sorted unique seeds; clear errors for bad ranges."""
    if not isinstance(spec, str) or not spec.strip():
        raise PersonaError("--seeds is empty; use e.g. 0-499,600,700-710")
    if len(spec) > 10_000:
        raise PersonaError("--seeds is too long")
    seeds: set[int] = set()
    for part in spec.split(","):
        part = part.strip()
        lo_s, sep, hi_s = part.partition("-")
        if not lo_s.isdigit() or (sep and not hi_s.isdigit()) or (not lo_s.isascii()) or (sep and not hi_s.isascii()):
            raise PersonaError(f"bad seed range {part!r}: use N or A-B with non-negative integers")
        if len(lo_s) > 20 or len(hi_s) > 20:  # also keeps int() clear of its 4300-digit limit
            raise PersonaError(f"bad seed range {part[:40]!r}: seeds are at most 2**64-1")
        lo, hi = int(lo_s), int(hi_s) if sep else int(lo_s)
        if hi < lo:
            raise PersonaError(f"bad seed range {part!r}: the end is smaller than the start")
        if hi > MAX_SEED:
            raise PersonaError(f"seed {hi} is larger than 2**64-1")
        if hi - lo + 1 + len(seeds) > MAX_BATCH:
            raise PersonaError(f"--seeds asks for more than {MAX_BATCH} personas; split the batch")
        seeds.update(range(lo, hi + 1))
    return sorted(seeds)


def parse_shard(spec: str | None) -> tuple[int, int] | None:
    if spec is None:
        return None
    k, sep, n = spec.partition("/")
    if len(k) > 6 or len(n) > 6:
        raise PersonaError(f"bad --shard {spec[:40]!r}: use K/N with 0 <= K < N <= 10000")
    if not (sep and k.isdigit() and n.isdigit() and k.isascii() and n.isascii()) or not (0 <= int(k) < int(n) <= 10_000):
        raise PersonaError(f"bad --shard {spec!r}: use K/N with 0 <= K < N, e.g. 0/4")
    return int(k), int(n)


SHARDS_ENV = "DIGITALHUMAN_SHARDS"  # the shard count for Kubernetes Indexed Jobs (or --shards)


def _env_int(env: Mapping[str, str], name: str) -> int:
    v = env[name].strip()
    if not (v.isascii() and v.isdigit()) or len(v) > 6:
        raise PersonaError(f"--shard auto: {name}={env[name][:20]!r} is not a non-negative integer")
    return int(v)


def auto_shard(env: Mapping[str, str], shards: int | None = None) -> tuple[int, int, str]:
    """``(K, N, where from)`` of this worker from the scheduler's environment, for ``--shard auto``.

    In order: a SLURM job array (``SLURM_ARRAY_TASK_ID`` and ``SLURM_ARRAY_TASK_COUNT``;
    ``K = (ID - SLURM_ARRAY_TASK_MIN) / SLURM_ARRAY_TASK_STEP``, MIN 0 and STEP 1 when unset),
    torchrun or a Kubeflow PyTorchJob (``RANK`` and ``WORLD_SIZE``), a Kubernetes Indexed Job
    (``JOB_COMPLETION_INDEX``; it has no count variable, so ``N`` is ``shards`` (``--shards``) or
    ``DIGITALHUMAN_SHARDS``, set to the Job's ``completions``). ``shards``, when given, must agree
    with the scheduler's count.
    """
    if "SLURM_ARRAY_TASK_ID" in env and "SLURM_ARRAY_TASK_COUNT" in env:
        task, n = _env_int(env, "SLURM_ARRAY_TASK_ID"), _env_int(env, "SLURM_ARRAY_TASK_COUNT")
        lo = _env_int(env, "SLURM_ARRAY_TASK_MIN") if "SLURM_ARRAY_TASK_MIN" in env else 0
        step = _env_int(env, "SLURM_ARRAY_TASK_STEP") if "SLURM_ARRAY_TASK_STEP" in env else 1
        if step < 1 or task < lo or (task - lo) % step:
            raise PersonaError(f"--shard auto: SLURM array task {task} is not MIN + k * STEP ({lo} + k * {step}); "
                               "use an evenly spaced --array, or give --shard K/N")
        k, where = (task - lo) // step, "SLURM_ARRAY_TASK_ID/SLURM_ARRAY_TASK_COUNT"
    elif "RANK" in env and "WORLD_SIZE" in env:
        k, n, where = _env_int(env, "RANK"), _env_int(env, "WORLD_SIZE"), "RANK/WORLD_SIZE"
    elif "JOB_COMPLETION_INDEX" in env:
        k, where = _env_int(env, "JOB_COMPLETION_INDEX"), "JOB_COMPLETION_INDEX"
        if shards is None and SHARDS_ENV in env:
            shards = _env_int(env, SHARDS_ENV)
        if shards is None:
            raise PersonaError(f"--shard auto: JOB_COMPLETION_INDEX is set but not the number of shards; "
                               f"give --shards N or set {SHARDS_ENV} (the Job's completions)")
        n = shards
    else:
        raise PersonaError("--shard auto: no scheduler variables found (SLURM_ARRAY_TASK_ID + SLURM_ARRAY_TASK_COUNT, "
                           "RANK + WORLD_SIZE, or JOB_COMPLETION_INDEX with --shards N); give --shard K/N")
    if shards is not None and shards != n:
        raise PersonaError(f"--shards {shards} does not match the scheduler's {n} workers ({where})")
    if not 0 <= k < n <= 10_000:
        raise PersonaError(f"--shard auto: worker {k} of {n} from {where} is not 0 <= K < N <= 10000")
    return k, n, where


def shard_seeds(seeds: Sequence[int], shard: tuple[int, int] | None) -> list[int]:
    if shard is None:
        return list(seeds)
    k, n = shard
    return [s for i, s in enumerate(seeds) if i % n == k]


def check_out(out: Path, request: dict[str, Any]) -> bool:
    """Whether ``out`` can take the batch ``request`` (True: it holds this batch already, a resume;
    False: it is new or empty). Raises for anything else; writes nothing."""
    marker = out / MARKER
    if out.exists() and not out.is_dir():
        raise PersonaError(f"--out {out} exists and is not a folder")
    for parent in out.parents:  # a file on the way would fail later, after the models are loaded
        if parent.exists():
            if not parent.is_dir():
                raise PersonaError(f"--out {out}: {parent} is not a folder")
            break
    partial = (".tmp", ".old", ".tmp.npz")
    if out.is_dir() and any(not (p.name.startswith(".") and p.name.endswith(partial)) for p in out.iterdir()):
        if not marker.is_file():
            raise PersonaError(f"--out {out} is not empty and is not a previous batch; choose another folder")
        try:
            previous = json.loads(marker.read_text())
        except (OSError, json.JSONDecodeError):
            raise PersonaError(f"{marker} is unreadable; choose another --out") from None
        if previous != request:
            raise PersonaError(f"--out {out} holds a different batch (other seeds, lines or options); "
                               "rerun with the same arguments to resume, or choose another folder")
        return True
    return False


def prepare_out(out: Path, request: dict[str, Any]) -> None:
    """Create ``out`` or check it is the same batch as ``request``; refuse anything else."""
    if out.is_dir():
        clean_partial(out)
    if check_out(out, request):
        return
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(out / MARKER, (json.dumps(request, indent=2, sort_keys=True) + "\n").encode())


def clean_partial(out: Path) -> None:
    """Remove temporary folders left by an interrupted run (never a completed persona)."""
    for p in out.iterdir():
        if p.name.startswith(".") and p.name.endswith((".tmp", ".old", ".tmp.npz")):
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p, ignore_errors=True)
            else:
                p.unlink(missing_ok=True)


def manifest_line(out: Path, seed: int) -> dict[str, Any]:
    doc = load_persona_doc(out / str(seed))
    return {"seed": seed, "folder": str(seed), "traits": doc.traits.model_dump(exclude_none=True),
            "face": doc.face, "voice": doc.voice,
            "lines": [{"text": ln.text, "audio": ln.audio, "duration_s": ln.duration_s} for ln in doc.lines]}


def write_manifest(out: Path, seeds: Sequence[int]) -> Path:
    """``manifest.jsonl`` (one persona per line, seed order) and the ``index.html`` gallery."""
    from .gallery import write_gallery

    rows = [manifest_line(out, s) for s in seeds]
    path = out / "manifest.jsonl"
    atomic_write_bytes(path, "".join(json.dumps(r, sort_keys=True) + "\n" for r in rows).encode())
    if rows:
        write_gallery(out, rows)
    return path


def run_batch(out: Path, seeds: Sequence[int], request: dict[str, Any], make: Callable[[int], Any],
              progress: bool = True, lipsync: Sequence[str] = ()) -> tuple[int, int]:
    """Make every persona of ``seeds`` not yet in ``out``; returns (made, skipped). ``lipsync``:
    lip-sync formats written beside each WAV (``Persona.save``)."""
    prepare_out(out, request)
    clean_partial(out)
    todo = [s for s in seeds if not (out / str(s) / "persona.json").is_file()]
    skipped = len(seeds) - len(todo)
    from tqdm import tqdm

    for seed in tqdm(todo, desc="personas", unit="persona", disable=not progress, initial=0, total=len(todo)):
        make(seed).save(out / str(seed), lipsync=tuple(lipsync))
    write_manifest(out, seeds)
    return len(todo), skipped


def merge_batches(parts: Sequence[Path], out: Path) -> int:
    """Merge shard folders into ``out``: persona folders copied, one manifest in seed order."""
    requests = []
    for p in parts:
        m = p / MARKER
        if not m.is_file():
            raise PersonaError(f"{p} is not a batch folder (no {MARKER})")
        req = json.loads(m.read_text())
        req.pop("shard", None)
        requests.append(req)
    if any(r != requests[0] for r in requests):
        raise PersonaError("the folders come from different batches (seeds, lines or options differ)")
    request = requests[0]
    seeds = parse_seeds(request["seeds"])
    prepare_out(out, request)
    missing = []
    for s in seeds:
        src = next((p / str(s) for p in parts if (p / str(s) / "persona.json").is_file()), None)
        if src is None:
            missing.append(s)
            continue
        dst = out / str(s)
        if not (dst / "persona.json").is_file():
            tmp = out / f".{s}.tmp"
            shutil.rmtree(tmp, ignore_errors=True)
            shutil.copytree(src, tmp)
            tmp.replace(dst)
    if missing:
        raise PersonaError(f"{len(missing)} personas are in none of the shards (first: {missing[0]}); "
                           "finish those shards first")
    write_manifest(out, seeds)
    return len(seeds)
