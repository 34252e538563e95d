"""The real service in a subprocess (uvicorn on loopback), for the tests that need real sockets."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def running_service(code: str, port: int, log_path: Path, timeout_s: float = 90):
    """Run ``code`` (which must serve on ``port``) in a subprocess; yield the process once
    ``/health`` answers; stop it afterwards. ``log_path`` gets the server's output."""
    with open(log_path, "w+") as log:
        proc = subprocess.Popen([sys.executable, "-c", code], stdout=log, stderr=subprocess.STDOUT, cwd=REPO,
                                env={**os.environ, "PYTHONUNBUFFERED": "1"})
        try:
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as c:
                deadline = time.monotonic() + timeout_s
                while True:
                    assert proc.poll() is None, log_path.read_text()
                    try:
                        if c.get("/health").status_code == 200:
                            break
                    except httpx.TransportError:
                        pass
                    assert time.monotonic() < deadline, "service did not come up"
                    time.sleep(0.2)
            yield proc
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
