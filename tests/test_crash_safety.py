"""Crash safety of ``digitalhuman batch``: SIGKILL at random points, then resume.

A real ``python -m digitalhuman batch`` process (tiny weights) is killed with SIGKILL three times:
once after a random delay from its start of 5-50% of the time an uninterrupted process takes on
this machine (imports, model loading or the batch itself; relative, so a fast machine cannot finish
the batch before the kill),
once a random 1-3 personas after the previous run stopped (plus a few ms of jitter), and once the
moment a half-written persona (a hidden ``.N.*.tmp`` folder) is visible. Delays are drawn from a
seeded generator; the kill points are still wherever the process happens to be, which is the point.

After every kill, every *visible* folder whose name is a seed must be a complete persona
(``persona.json`` that parses, its face and every line's WAV, nothing else), and a manifest, if
present, must be whole. Then the batch is rerun to completion (in this process) and the folder is
compared byte for byte with an uninterrupted run made elsewhere: ``manifest.jsonl``,
``index.html``, the batch marker and every persona file.

Deterministic companions simulate the two states a kill can leave inside an atomic write of a
single file (``atomic_write_bytes``: a ``.NAME.XXXX.tmp`` file next to the target).
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from digitalhuman.cli import main
from digitalhuman.persona import load_persona_doc

REPO = Path(__file__).resolve().parents[1]
PROCESS_TIMEOUT_S = 240  # per child; generous for a loaded CI machine, never reached on an idle one

VARIANTS = {
    "no-voice": dict(seeds="0-23", extra=["--no-voice"], weights="tiny_weights_no_voice"),
    "voice": dict(seeds="0-5", extra=["--say", "Hello there, traveller."], weights="tiny_weights"),
}


def _seeds(spec: str) -> list[int]:
    lo, hi = spec.split("-")
    return list(range(int(lo), int(hi) + 1))


def _argv(weights: Path, out: Path, variant: dict) -> list[str]:
    return ["--weights", str(weights), "batch", "--seeds", variant["seeds"], "--quiet", "--out", str(out),
            *variant["extra"]]


def _complete(out: Path) -> int:
    return sum(1 for p in out.iterdir() if p.name.isdigit() and (p / "persona.json").is_file()) if out.is_dir() else 0


def _partials(out: Path) -> set[str]:
    """Hidden temporary folders of half-written personas (``.N.*.tmp``)."""
    if not out.is_dir():
        return set()
    return {p.name for p in out.iterdir() if p.name.startswith(".") and p.name.endswith(".tmp") and p.is_dir()}


def _partial_visible(out: Path) -> bool:
    return bool(_partials(out))


def check_visible_state(out: Path, seeds: list[int], lines: int) -> int:
    """Assert every visible entry of ``out`` is whole; return the number of complete personas."""
    if not out.exists():
        return 0
    import soundfile as sf
    from PIL import Image

    n = 0
    for p in sorted(out.iterdir()):
        if p.name.startswith("."):
            continue  # hidden: the batch marker and temporary names, never shown as results
        if p.name == "manifest.jsonl":
            rows = [json.loads(line) for line in p.read_text().splitlines()]
            assert [r["seed"] for r in rows] == seeds
            continue
        if p.name == "index.html":
            assert p.read_text().rstrip().endswith("</html>")
            continue
        assert p.is_dir() and p.name.isdigit() and int(p.name) in seeds, f"unexpected entry {p.name}"
        doc = load_persona_doc(p)  # parses and validates
        want = {"persona.json"} | ({doc.face} if doc.face else set()) | {ln.audio for ln in doc.lines}
        assert {f.name for f in p.iterdir()} == want, (p.name, sorted(f.name for f in p.iterdir()))
        assert len(doc.lines) == lines
        if doc.face:
            with Image.open(p / doc.face) as im:
                im.verify()
        for ln in doc.lines:
            audio, sr = sf.read(p / ln.audio)
            assert sr == ln.sample_rate and len(audio) > 0
        n += 1
    return n


def tree_bytes(out: Path) -> dict[str, str]:
    """sha256 of every file the batch shows (plus its marker); temporary names are left out."""
    files = {}
    for p in sorted(out.rglob("*")):
        rel = p.relative_to(out)
        if p.is_file() and (not rel.parts[0].startswith(".") or rel.name == ".digitalhuman-batch.json"):
            files[str(rel)] = hashlib.sha256(p.read_bytes()).hexdigest()
    return files


def _child_env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}


def _timed_uninterrupted_run(argv: list[str], out: Path) -> float:
    """Run the batch to completion in a child process, as the killed runs do; return its wall time."""
    t0 = time.monotonic()
    subprocess.run([sys.executable, "-m", "digitalhuman", *argv], env=_child_env(), cwd=out.parent, check=True,
                   stdout=subprocess.DEVNULL, timeout=PROCESS_TIMEOUT_S)
    return time.monotonic() - t0


def _run_and_kill(argv: list[str], out: Path, rule, rng: random.Random, log: list) -> None:
    env = _child_env()
    t0 = time.monotonic()
    done_before = _complete(out)
    partials_before = _partials(out)  # left by the previous kill; the rerun removes them
    with open(out.parent / "child.log", "ab") as logf:
        proc = subprocess.Popen([sys.executable, "-m", "digitalhuman", *argv], stdout=logf, stderr=logf, env=env,
                                cwd=out.parent)
    try:
        kind = rule[0]
        if kind == "delay":
            deadline = t0 + rule[1]
            while time.monotonic() < deadline and proc.poll() is None:
                time.sleep(0.005)
        elif kind == "progress":
            target = done_before + rule[1]
            while _complete(out) < target and proc.poll() is None:
                if time.monotonic() - t0 > PROCESS_TIMEOUT_S:
                    pytest.fail(f"no progress in {PROCESS_TIMEOUT_S} s")
                time.sleep(0.001)
            time.sleep(rng.uniform(0.0, 0.005))
        else:  # "partial": kill while a persona is being written (by this process, not the last one)
            while not (_partials(out) - partials_before) and proc.poll() is None:
                if time.monotonic() - t0 > PROCESS_TIMEOUT_S:
                    pytest.fail(f"no persona started in {PROCESS_TIMEOUT_S} s")
                time.sleep(0.0005)
        finished = proc.poll() is not None
        if not finished:
            proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    log.append({"rule": rule, "seconds": round(time.monotonic() - t0, 2), "finished_before_kill": finished,
                "complete_after": _complete(out), "partial_left": _partial_visible(out)})


@pytest.mark.parametrize("name", list(VARIANTS))
def test_sigkill_at_random_points_then_resume_gives_the_same_bytes(name, request, tmp_path):
    variant = VARIANTS[name]
    weights = request.getfixturevalue(variant["weights"])
    seeds = _seeds(variant["seeds"])
    lines = 0 if "--no-voice" in variant["extra"] else 1
    t_start = time.monotonic()

    ref = tmp_path / "ref" / "out"
    ref.parent.mkdir()
    full_s = _timed_uninterrupted_run(_argv(weights, ref, variant), ref)
    assert check_visible_state(ref, seeds, lines) == len(seeds)

    out = tmp_path / "killed" / "out"
    out.parent.mkdir()
    rng = random.Random(20240601 + len(name))
    rules = [("delay", full_s * rng.uniform(0.05, 0.5)), ("progress", rng.randint(1, 3)), ("partial",)]
    log: list[dict] = []
    for rule in rules:
        _run_and_kill(_argv(weights, out, variant), out, rule, rng, log)
        check_visible_state(out, seeds, lines)
    assert main(_argv(weights, out, variant)) == 0  # resume to completion
    assert check_visible_state(out, seeds, lines) == len(seeds)

    got, want = tree_bytes(out), tree_bytes(ref)
    assert sorted(got) == sorted(want)
    assert {k for k in got if got[k] != want[k]} == set()
    leftovers = sorted(p.name for p in out.iterdir() if p.name.startswith(".") and p.is_dir())
    assert leftovers == [], f"temporary folders left behind: {leftovers}"
    print(f"{name}: uninterrupted {full_s:.2f} s; kills {json.dumps(log)}; {time.monotonic() - t_start:.1f} s in all")
    assert any(not e["finished_before_kill"] for e in log), f"no kill landed while the batch ran: {log}"


def test_a_kill_while_the_batch_marker_is_written_leaves_a_resumable_folder(tiny_weights_no_voice, tmp_path):
    """A kill inside ``prepare_out``'s atomic write of ``.digitalhuman-batch.json`` leaves only its
    temporary file (``.digitalhuman-batch.json.XXXX.tmp``) in OUT. Rerunning the same command must
    resume, not refuse the folder as "not empty and not a previous batch"."""
    out = tmp_path / "out"
    out.mkdir()
    (out / ".digitalhuman-batch.json.k1ll3d.tmp").write_text('{"seeds": "0-1"')
    argv = ["--weights", str(tiny_weights_no_voice), "batch", "--seeds", "0-1", "--no-voice", "--quiet",
            "--out", str(out)]
    assert main(argv) == 0
    assert (out / "0" / "persona.json").is_file() and (out / "1" / "persona.json").is_file()


def test_a_rerun_removes_temporary_files_of_killed_atomic_writes(tiny_weights_no_voice, tmp_path):
    """Kills inside ``atomic_write_bytes`` (manifest, gallery) leave ``.NAME.XXXX.tmp`` files; the
    rerun cleans temporary folders of half-written personas, and should clean these files too."""
    out = tmp_path / "out"
    argv = ["--weights", str(tiny_weights_no_voice), "batch", "--seeds", "0-1", "--no-voice", "--quiet",
            "--out", str(out)]
    assert main(argv) == 0
    for name in (".manifest.jsonl.abc123.tmp", ".index.html.def456.tmp"):
        (out / name).write_text("half")
    (out / ".1.gh789.tmp").mkdir()
    (out / ".1.gh789.tmp" / "face.png").write_bytes(b"\x89PNG")
    assert main(argv) == 0
    left = sorted(p.name for p in out.iterdir() if p.name.startswith(".") and p.name != ".digitalhuman-batch.json")
    assert left == [], f"left behind: {left}"
