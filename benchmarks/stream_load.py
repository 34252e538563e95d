"""Streaming speech over HTTP: first-chunk latency vs the whole call, and many concurrent streams.

  python benchmarks/stream_load.py [--weights DIR] [--clients 20] [--streams 3] [--pairs 5]

Starts ``digitalhuman serve`` on a free loopback port (the given weights, default the shipped
ones) and waits for ``/health``; one warm-up stream and one warm-up ``say``. Then:

1. **Latency** (``--pairs`` times, one request at a time): a 3-sentence line streamed from
   ``POST /personas/{seed}/say/stream`` (time until the first chunk's line arrives) and the same
   line from ``POST /personas/{seed}/say`` for another seed (time until the whole WAV arrived).
   Every request uses a new seed, so nothing comes from the service's cache. For the first pair,
   the streamed PCM joined is compared with the WAV of the same seed.
2. **Load**: ``--clients`` concurrent clients each stream ``--streams`` lines (new seeds). Every
   stream is checked: chunks numbered 0..n-1, ``t_start`` = samples so far, visemes contiguous
   from 0, and a final ``{"done": true}`` whose duration matches the PCM. Reports errors (the exit
   status is 1 unless 0), first-chunk latency p50/p95, whole-stream p50/p95 and the server's peak RSS.

Prints a table, then one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import io
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from load_service import PeakRSS, free_port, percentile, wait_healthy  # noqa: E402

THREE = ("The old mill by the river has been closed for twenty years. Bring me three barrels of salted fish "
         "before the winter comes, and I will pay you well. Go now, before the bell rings.")
LOAD_LINES = ["Welcome back, traveller. The roads are quiet tonight.",
              "Have you seen my goat? She ran off towards the mill, and I cannot leave the stall.",
              "The mines are cursed. Nobody who went down last spring came back."]


def start_server(weights: str | None, port: int, log_path: Path):
    import os
    import subprocess

    code = f"from digitalhuman.service import serve; serve(port={port}, weights={weights!r}, log_level='warning')"
    return subprocess.Popen([sys.executable, "-c", code], stdout=open(log_path, "w"), stderr=subprocess.STDOUT,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})


def check_stream(lines: list[bytes]) -> tuple[bytes, int]:
    """Validate one NDJSON stream; return (joined PCM bytes, chunks)."""
    docs = [json.loads(x) for x in lines if x.strip()]
    if not docs or docs[-1].get("done") is not True:
        raise AssertionError(f"no done line: {str(docs[-1:])[:200]}")
    chunks, done = docs[:-1], docs[-1]
    pcm, samples, last_end = b"", 0, 0.0
    for i, c in enumerate(chunks):
        if c.get("chunk") != i or c["sample_rate"] != 22050 or abs(c["t_start"] - samples / 22050) > 1e-5:
            raise AssertionError(f"chunk {i} out of order or misplaced: {str(c)[:200]}")
        data = base64.b64decode(c["pcm16"])
        for v in c["visemes"]:
            if abs(v["t_start"] - last_end) > 1e-9 or v["t_end"] <= v["t_start"]:
                raise AssertionError(f"visemes not contiguous at {v}")
            last_end = v["t_end"]
        pcm += data
        samples += len(data) // 2
    if done["chunks"] != len(chunks) or abs(done["duration_s"] - samples / 22050) > 1e-3 \
            or abs(last_end - samples / 22050) > 1e-3:
        raise AssertionError(f"done line does not match the chunks: {done}")
    return pcm, len(chunks)


async def stream_once(client: httpx.AsyncClient, seed: int, text: str) -> tuple[float, float, bytes, int]:
    """-> (seconds to the first chunk line, seconds to the end, PCM, chunks)."""
    t0 = time.perf_counter()
    first = None
    lines: list[bytes] = []
    async with client.stream("POST", f"/personas/{seed}/say/stream", json={"text": text}) as r:
        if r.status_code != 200:
            raise AssertionError(f"status {r.status_code}: {(await r.aread())[:200]!r}")
        async for line in r.aiter_lines():
            if first is None and line.strip():
                first = time.perf_counter() - t0
            lines.append(line.encode())
    total = time.perf_counter() - t0
    pcm, n = check_stream(lines)
    return first or total, total, pcm, n


async def say_once(client: httpx.AsyncClient, seed: int, text: str) -> tuple[float, bytes]:
    t0 = time.perf_counter()
    r = await client.post(f"/personas/{seed}/say", json={"text": text})
    if r.status_code != 200:
        raise AssertionError(f"say: status {r.status_code}")
    return time.perf_counter() - t0, r.content


def wav_pcm(data: bytes) -> bytes:
    import soundfile as sf

    pcm, _ = sf.read(io.BytesIO(data), dtype="int16")
    return pcm.astype("<i2").tobytes()


async def main_async(args) -> int:
    port = free_port()
    log_path = Path(tempfile.mkdtemp(prefix="dh-stream-")) / "server.log"
    proc = start_server(args.weights, port, log_path)
    rss = PeakRSS(proc.pid)
    seed = 1000
    out: dict = {"benchmark": "stream_load", "clients": args.clients, "streams_per_client": args.streams,
                 "machine": platform.processor() or platform.machine()}
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=args.timeout) as client:
            out["startup_s"] = round(await wait_healthy(client, proc, 300), 2)
            await stream_once(client, 1, THREE)  # warm-up: gruut, onnxruntime, renderer caches
            await say_once(client, 2, THREE)
            # 1. latency, one request at a time, new seeds (no cache)
            firsts, wholes, stream_totals = [], [], []
            for k in range(args.pairs):
                first, total, pcm, n = await stream_once(client, seed, THREE)
                whole, wav = await say_once(client, seed + 1, THREE)
                if k == 0:
                    _, same = await say_once(client, seed, THREE)  # cached now: the same line's WAV
                    out["pcm_equal"] = pcm == wav_pcm(same)
                    out["chunks"] = n
                firsts.append(first)
                wholes.append(whole)
                stream_totals.append(total)
                seed += 2
            out["latency"] = {"first_chunk_ms": [round(x * 1000) for x in firsts],
                              "whole_say_ms": [round(x * 1000) for x in wholes],
                              "whole_stream_ms": [round(x * 1000) for x in stream_totals],
                              "first_chunk_median_ms": round(statistics.median(firsts) * 1000),
                              "whole_say_median_ms": round(statistics.median(wholes) * 1000),
                              "ratio_median": round(statistics.median(f / w for f, w in zip(firsts, wholes)), 3),
                              "ratio_max": round(max(f / w for f, w in zip(firsts, wholes)), 3)}

            # 2. load
            errors: list[str] = []
            firsts, totals = [], []
            t_load = time.perf_counter()

            async def client_task(i: int):
                for j in range(args.streams):
                    try:
                        f, t, _, _ = await stream_once(client, 10_000 + i * 100 + j,
                                                       LOAD_LINES[(i + j) % len(LOAD_LINES)])
                        firsts.append(f)
                        totals.append(t)
                    except Exception as e:  # noqa: BLE001 - every failure is counted and reported
                        errors.append(f"{type(e).__name__}: {str(e)[:200]}")

            await asyncio.wait_for(asyncio.gather(*(client_task(i) for i in range(args.clients))), args.timeout)
            out["load"] = {"streams": args.clients * args.streams, "errors": len(errors), "first_errors": errors[:5],
                           "wall_s": round(time.perf_counter() - t_load, 1),
                           "first_chunk_p50_ms": round(percentile(firsts, 50) * 1000) if firsts else None,
                           "first_chunk_p95_ms": round(percentile(firsts, 95) * 1000) if firsts else None,
                           "stream_p50_ms": round(percentile(totals, 50) * 1000) if totals else None,
                           "stream_p95_ms": round(percentile(totals, 95) * 1000) if totals else None}
    finally:
        peak, how = rss.read()
        proc.terminate()
        proc.wait(timeout=30)
    out["server_peak_rss_mib"] = round(peak / 2**20) if peak else None
    out["rss_source"] = how
    lat, load = out["latency"], out["load"]
    print(f"first chunk (3 sentences, warm): median {lat['first_chunk_median_ms']} ms vs whole say "
          f"{lat['whole_say_median_ms']} ms -> ratio median {lat['ratio_median']} (max {lat['ratio_max']}); "
          f"streamed PCM = WAV PCM: {out.get('pcm_equal')} ({out.get('chunks')} chunks)")
    print(f"{args.clients} clients x {args.streams} streams: {load['errors']} errors in {load['wall_s']} s; first chunk "
          f"p50 {load['first_chunk_p50_ms']} ms, p95 {load['first_chunk_p95_ms']} ms; whole stream p50 "
          f"{load['stream_p50_ms']} ms, p95 {load['stream_p95_ms']} ms; server peak RSS {out['server_peak_rss_mib']} MiB")
    print(json.dumps(out))
    return 0 if load["errors"] == 0 and out.get("pcm_equal") else 1


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--weights", default=None, help="weights folder (default: the shipped weights)")
    ap.add_argument("--clients", type=int, default=20)
    ap.add_argument("--streams", type=int, default=3, help="streams per client")
    ap.add_argument("--pairs", type=int, default=5, help="stream/say pairs for the latency figure")
    ap.add_argument("--timeout", type=float, default=900)
    return asyncio.run(main_async(ap.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
