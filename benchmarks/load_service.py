"""Load test of the HTTP service: many concurrent clients against one server process.

  python benchmarks/load_service.py [--weights DIR] [--clients 50] [--requests 10] [--timeout 600]

Starts ``digitalhuman.server.serve`` on a free loopback port (the given weights, default the
shipped ones), waits for ``/health``, sends one warm-up request per endpoint, then runs
``--clients`` concurrent clients (httpx, asyncio) of ``--requests`` requests each. Client ``i``'s
request ``j`` is endpoint ``(i + j) % 4`` of: ``POST /personas`` (no lines), ``GET face.png``,
``POST say`` (a short line), ``GET /health``; seeds are new each time unless ``--seed-pool N``
draws them from N seeds (cache hits). Every response is checked (status, PNG/WAV magic, JSON).
The whole run is bounded by ``--timeout`` seconds.

Reports errors (must be 0: the exit status is 1 otherwise), median / p95 / max latency per
endpoint and overall, throughput, and the server's peak RSS (``VmHWM`` from /proc; psutil's
sampled RSS elsewhere). Prints a table, then one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import platform
import random
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

LINES = ["Welcome back, traveller.", "The mines are cursed.", "Bring me three barrels of fish.",
         "Good morning!", "Have you seen my goat?"]
ENDPOINTS = ("POST /personas", "GET face.png", "POST say", "GET /health")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def percentile(xs: list[float], q: float) -> float:
    """Nearest-rank percentile (q in [0, 100]) of a non-empty list."""
    s = sorted(xs)
    return s[max(0, math.ceil(q / 100 * len(s)) - 1)]


class PeakRSS:
    """Peak resident memory of a process: /proc VmHWM where it exists, else psutil sampled every 0.2 s."""

    def __init__(self, pid: int):
        self.pid, self.sampled, self._stop = pid, 0, threading.Event()
        self.proc_status = Path(f"/proc/{pid}/status")
        self._thread = None
        if not self.proc_status.exists():
            try:
                import psutil

                p = psutil.Process(pid)
                self._thread = threading.Thread(target=self._sample, args=(p,), daemon=True)
                self._thread.start()
            except ImportError:
                pass

    def _sample(self, p) -> None:
        while not self._stop.wait(0.2):
            try:
                self.sampled = max(self.sampled, p.memory_info().rss)
            except Exception:  # noqa: BLE001 - process gone
                return

    def read(self) -> tuple[int | None, str]:
        """-> (bytes or None, method)."""
        if self.proc_status.exists():
            for line in self.proc_status.read_text().splitlines():
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024, "VmHWM"
        self._stop.set()
        return (self.sampled or None), "psutil sampled rss"


def start_server(weights: str | None, port: int, inference_threads: int, log_path: Path) -> subprocess.Popen:
    code = ("from digitalhuman.server import serve; "
            f"serve(port={port}, weights={weights!r}, inference_threads={inference_threads}, "
            "log_level='warning')")
    log = open(log_path, "w")
    return subprocess.Popen([sys.executable, "-c", code], stdout=log, stderr=subprocess.STDOUT,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})


async def wait_healthy(client: httpx.AsyncClient, proc: subprocess.Popen, timeout: float) -> float:
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < timeout:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with status {proc.returncode}")
        try:
            if (await client.get("/health")).status_code == 200:
                return time.perf_counter() - t0
        except httpx.TransportError:
            pass
        await asyncio.sleep(0.2)
    raise TimeoutError(f"server not healthy after {timeout:.0f} s")


def make_request(kind: int, seed: int, text: str) -> tuple[str, str, dict]:
    if kind == 0:
        return "POST", "/personas", {"json": {"seed": seed}}
    if kind == 1:
        return "GET", f"/personas/{seed}/face.png", {}
    if kind == 2:
        return "POST", f"/personas/{seed}/say", {"json": {"text": text}}
    return "GET", "/health", {}


def check(kind: int, r: httpx.Response) -> str | None:
    """An error message, or None when the response is right."""
    if r.status_code != 200:
        return f"{r.status_code} {r.text[:200]}"
    if kind == 0 and "persona" not in r.json():
        return "no persona in the response"
    if kind == 1 and not r.content.startswith(b"\x89PNG"):
        return "not a PNG"
    if kind == 2 and not (r.content[:4] == b"RIFF" and r.content[8:12] == b"WAVE"):
        return "not a WAV"
    if kind == 3 and r.json() != {"status": "ok"}:
        return f"health: {r.text[:100]}"
    return None


async def one_client(client: httpx.AsyncClient, i: int, n: int, seed_pool: int, results: list) -> None:
    rng = random.Random(i)
    for j in range(n):
        kind = (i + j) % 4
        seed = rng.randrange(seed_pool) if seed_pool else rng.randrange(2**63)
        method, url, kw = make_request(kind, seed, rng.choice(LINES))
        t = time.perf_counter()
        try:
            r = await client.request(method, url, **kw)
            err = check(kind, r)
        except httpx.HTTPError as e:
            err = f"{type(e).__name__}: {e}"
        results.append((ENDPOINTS[kind], time.perf_counter() - t, err))


async def run_load(base: str, proc: subprocess.Popen, a) -> dict:
    limits = httpx.Limits(max_connections=a.clients, max_keepalive_connections=a.clients)
    async with httpx.AsyncClient(base_url=base, timeout=a.timeout, limits=limits) as client:
        startup_s = await wait_healthy(client, proc, a.start_timeout)
        warm = {}
        for kind in range(4):  # first call of each endpoint (loads lazy state); not in the figures
            method, url, kw = make_request(kind, 10**9 + kind, LINES[0])
            t = time.perf_counter()
            r = await client.request(method, url, **kw)
            warm[ENDPOINTS[kind]] = round(time.perf_counter() - t, 3)
            if (err := check(kind, r)) is not None:
                raise RuntimeError(f"warm-up {ENDPOINTS[kind]} failed: {err}")
        results: list = []
        t0 = time.perf_counter()
        tasks = [asyncio.create_task(one_client(client, i, a.requests, a.seed_pool, results)) for i in range(a.clients)]
        done, pending = await asyncio.wait(tasks, timeout=a.timeout)
        for task in pending:
            task.cancel()
        wall = time.perf_counter() - t0
    return {"startup_s": round(startup_s, 2), "warmup_s": warm, "wall_s": wall, "results": results,
            "timed_out": bool(pending), "unfinished": a.clients * a.requests - len(results)}


def summarise(results: list) -> dict:
    rows = {}
    for name in (*ENDPOINTS, "overall"):
        rs = [r for r in results if name == "overall" or r[0] == name]
        if not rs:
            continue
        lat = [r[1] * 1000 for r in rs]
        rows[name] = {"n": len(rs), "errors": sum(r[2] is not None for r in rs),
                      "median_ms": round(percentile(lat, 50), 1), "p95_ms": round(percentile(lat, 95), 1),
                      "max_ms": round(max(lat), 1)}
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--weights", default=None, help="weights folder with card.json (default: the shipped weights)")
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--requests", type=int, default=10, help="requests per client")
    ap.add_argument("--timeout", type=float, default=600.0, help="seconds for the whole load run")
    ap.add_argument("--start-timeout", type=float, default=120.0, help="seconds for the server to come up")
    ap.add_argument("--inference-threads", type=int, default=1, help="the server's generation threads")
    ap.add_argument("--seed-pool", type=int, default=0, help="draw seeds from this many (0: a new seed each time)")
    a = ap.parse_args(argv)
    if not (1 <= a.clients <= 1000 and 1 <= a.requests <= 1000):
        ap.error("--clients and --requests must be within 1..1000")
    weights = str(Path(a.weights).resolve()) if a.weights else None

    port = free_port()
    log_path = Path(tempfile.mkdtemp(prefix="dh-load-")) / "server.log"
    proc = start_server(weights, port, a.inference_threads, log_path)
    rss = PeakRSS(proc.pid)
    try:
        run = asyncio.run(run_load(f"http://127.0.0.1:{port}", proc, a))
        peak, peak_how = rss.read()
    except (RuntimeError, TimeoutError) as e:
        print(f"load_service: {e}\n--- server log ({log_path}) ---\n{log_path.read_text()[-3000:]}", file=sys.stderr)
        return 1
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    rows = summarise(run["results"])
    errors = sum(r["errors"] for n, r in rows.items() if n != "overall") + run["unfinished"]
    total = len(run["results"])
    print(f"digitalhuman service load: {a.clients} clients x {a.requests} requests, weights {weights or 'shipped'}, "
          f"inference threads {a.inference_threads}, {os.cpu_count()} CPUs")
    print(f"server up in {run['startup_s']} s; first call per endpoint (s): {run['warmup_s']}")
    print(f"{'endpoint':<16}{'n':>6}{'errors':>8}{'median ms':>11}{'p95 ms':>10}{'max ms':>10}")
    for name, r in rows.items():
        print(f"{name:<16}{r['n']:>6}{r['errors']:>8}{r['median_ms']:>11}{r['p95_ms']:>10}{r['max_ms']:>10}")
    print(f"{total} requests in {run['wall_s']:.1f} s = {total / run['wall_s']:.1f} req/s; "
          f"unfinished {run['unfinished']}{' (TIMED OUT)' if run['timed_out'] else ''}; errors {errors}")
    print(f"server peak RSS: {peak / 2**20:.0f} MiB ({peak_how})" if peak else "server peak RSS: unknown")
    shown = [r for r in run["results"] if r[2]][:5]
    for name, _, err in shown:
        print(f"  error on {name}: {err}")
    print(json.dumps({"benchmark": "load_service", "clients": a.clients, "requests_per_client": a.requests,
                      "weights": weights or "shipped", "inference_threads": a.inference_threads,
                      "seed_pool": a.seed_pool, "cpus": os.cpu_count(), "python": platform.python_version(),
                      "startup_s": run["startup_s"], "warmup_s": run["warmup_s"], "wall_s": round(run["wall_s"], 2),
                      "requests_per_s": round(total / run["wall_s"], 2), "errors": errors,
                      "timed_out": run["timed_out"], "endpoints": rows, "peak_rss_bytes": peak,
                      "peak_rss_method": peak_how}))
    return 0 if errors == 0 and not run["timed_out"] else 1


if __name__ == "__main__":
    sys.exit(main())
