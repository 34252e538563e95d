"""Slow clients against the real service (uvicorn in a subprocess, loopback): clients that never
send their headers, trickle them, trickle a body, or never read their answer. The service must keep
answering ``/health`` and real requests, drop the slow ones on its deadlines, and stay bounded."""

import asyncio
import socket
import time
from pathlib import Path

import httpx

from tests.service_proc import free_port, running_service

HEAD_TIMEOUT = 2.0
BODY_TIMEOUT = 3.0
SILENT, TRICKLE_HEAD, TRICKLE_BODY, NO_READ = 60, 60, 20, 10


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def silent(port):
    """Connect and say nothing: the server must hang up after its head deadline."""
    # timed from before the connect: with 150 clients starting at once this coroutine may resume
    # from open_connection long after the server accepted (and started its deadline); a fresh-clone
    # run measured all 60 at 1.26 s that way, under the 1.5 s lower bound
    t0 = time.monotonic()
    r, w = await asyncio.open_connection("127.0.0.1", port)
    data = await asyncio.wait_for(r.read(), 30)  # EOF when the server closes
    w.close()
    return time.monotonic() - t0, data


async def trickle_head(port):
    """Send a request head one byte every 0.2 s, never finishing it."""
    r, w = await asyncio.open_connection("127.0.0.1", port)
    t0 = time.monotonic()
    head = b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 500
    try:
        for i in range(len(head)):
            w.write(head[i : i + 1])
            await w.drain()
            await asyncio.sleep(0.2)
            if r.at_eof() or w.is_closing():
                break
            try:  # the server closing shows up as EOF on read
                if await asyncio.wait_for(r.read(1), 0.01) == b"":
                    break
            except asyncio.TimeoutError:
                pass
    except (ConnectionError, OSError):
        pass
    w.close()
    return time.monotonic() - t0


async def trickle_body(port):
    """A POST whose declared 200-byte body arrives 5 bytes per 0.5 s: 408 on the body deadline."""
    r, w = await asyncio.open_connection("127.0.0.1", port)
    w.write(b"POST /personas HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 200\r\n\r\n")
    await w.drain()
    t0 = time.monotonic()
    try:
        for _ in range(40):
            w.write(b"     ")
            await w.drain()
            await asyncio.sleep(0.5)
            if r.at_eof():
                break
            try:
                line = await asyncio.wait_for(r.readline(), 0.01)
                if line:
                    w.close()
                    return time.monotonic() - t0, line
            except asyncio.TimeoutError:
                pass
    except (ConnectionError, OSError):
        pass
    line = await asyncio.wait_for(r.readline(), 10)
    w.close()
    return time.monotonic() - t0, line


def no_read(port, text):
    """Ask for a WAV through a tiny receive buffer and never read it."""
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect(("127.0.0.1", port))
    s.sendall(f"GET /personas/5/say.wav?text={text} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    return s


def test_slow_clients_do_not_stop_the_service(tiny_weights, tmp_path):
    port = free_port()
    code = ("import digitalhuman.server as s; "
            f"s.HeadTimeoutH11Protocol.timeout = {HEAD_TIMEOUT}; "
            f"s.serve(port={port}, weights={str(tiny_weights)!r}, body_timeout={BODY_TIMEOUT}, log_level='warning')")
    log_path = tmp_path / "server.log"
    base = f"http://127.0.0.1:{port}"
    sockets = []
    try:
        with running_service(code, port, log_path) as proc, httpx.Client(base_url=base, timeout=60) as c:
            text = "The+mines+are+cursed,+they+say.+" * 8
            assert c.get(f"/personas/5/say.wav?text={text}").status_code == 200  # the same work once, to compare
            rss_before = peak_rss_mb(proc.pid)
            sockets = [no_read(port, text) for _ in range(NO_READ)]

            async def abuse():
                tasks = ([asyncio.create_task(silent(port)) for _ in range(SILENT)]
                         + [asyncio.create_task(trickle_head(port)) for _ in range(TRICKLE_HEAD)]
                         + [asyncio.create_task(trickle_body(port)) for _ in range(TRICKLE_BODY)])
                health = []
                async with httpx.AsyncClient(base_url=base, timeout=30) as ac:
                    await asyncio.sleep(0.5)  # every slow client is connected
                    for _ in range(12):  # throughout the abuse
                        t0 = time.monotonic()
                        r = await ac.get("/health")
                        health.append((r.status_code, time.monotonic() - t0))
                        await asyncio.sleep(0.25)
                    real = await ac.post("/personas", json={"seed": 3, "lines": ["Hello there."]})
                return await asyncio.gather(*tasks), health, real

            results, health, real = asyncio.run(abuse())
            assert real.status_code == 200, real.text
            assert all(code == 200 for code, _ in health), health
            assert max(t for _, t in health) < 5.0, health  # answered while 150 slow clients hang on
            silent_res = results[:SILENT]
            head_res = results[SILENT : SILENT + TRICKLE_HEAD]
            body_res = results[SILENT + TRICKLE_HEAD :]
            # the server hung up on the silent and the trickling clients at its head deadline
            assert all(data == b"" and HEAD_TIMEOUT - 0.5 < t < HEAD_TIMEOUT + 5 for t, data in silent_res), silent_res
            assert all(t < HEAD_TIMEOUT + 5 for t in head_res), head_res  # not the 100 s the trickle wanted
            # the trickled bodies got 408 at the body deadline
            assert all(line.startswith(b"HTTP/1.1 408") and t < BODY_TIMEOUT + 5 for t, line in body_res), body_res
            assert c.get("/health").status_code == 200
            rss_after = peak_rss_mb(proc.pid)
            print(f"slow clients: {SILENT + TRICKLE_HEAD + TRICKLE_BODY + NO_READ}; /health max "
                  f"{max(t for _, t in health) * 1000:.0f} ms; peak RSS {rss_before:.0f} -> {rss_after:.0f} MB")
            assert rss_after - rss_before < 200, (rss_before, rss_after)
    finally:
        for s in sockets:
            s.close()
    assert "Traceback" not in log_path.read_text()
