"""The batch gallery (index.html): escaping and determinism, then the page in a real headless Chromium.

The browser test drives Debian's /usr/bin/chromium (``scripts/install-chromium.sh``) over the
DevTools protocol on a pipe (``--remote-debugging-pipe``: NUL-separated JSON on fds 3 and 4), so it
needs neither Playwright's browser download nor a websocket client. It skips when Chromium is absent.
"""

from __future__ import annotations

import contextlib
import html
import json
import os
import re
import select
import shutil
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from digitalhuman.gallery import read_manifest, render_gallery, write_gallery

CHROMIUM = Path("/usr/bin/chromium")
HOSTILE = "<script>alert(1)</script> \"quoted\" & 'single' <img src=x onerror=\"window.pwned=1\">"


def _rows() -> list[dict]:
    """Four personas: 2 female, 2 male, ages 8-71; one without a face, one without lines."""
    def row(seed, gender, age, race, face=True, texts=()):
        return {"seed": seed, "folder": str(seed),
                "traits": {"gender": gender, "female": 0.9 if gender == "female" else 0.1, "age": age, "race": race},
                "face": "face.png" if face else None, "voice": {"pitch": 1.0},
                "lines": [{"text": t, "audio": f"voice_{i:02d}.wav", "duration_s": 0.5} for i, t in enumerate(texts)]}

    return [row(3, "female", 41.2, "asian", texts=(HOSTILE, "The mines are cursed.")),
            row(7, "male", 29.9, "white", texts=("Welcome back.",)),
            row(12, "female", 71.0, "black", face=False, texts=("Hm.",)),
            row(20, "male", 8.5, None)]


# ------------------------------------------------------------------------------------------ pure
def test_gallery_escapes_and_is_deterministic(tmp_path):
    rows = _rows()
    path = write_gallery(tmp_path, rows)
    assert path == tmp_path / "index.html"
    page = path.read_text(encoding="utf-8")

    # N cards, with the filter data, in row order
    cards = re.findall(r'<article class="card" id="p(\d+)" data-seed="\d+" data-gender="(\w+)" '
                       r'data-age="([\d.]+)"', page)
    assert cards == [("3", "female", "41.2"), ("7", "male", "29.9"), ("12", "female", "71.0"), ("20", "male", "8.5")]
    assert "4 of 4 shown" in page
    # hostile text appears only escaped; the only <script> is the page's own
    assert html.escape(HOSTILE, quote=True) in page
    assert "<script>alert" not in page and "onerror=\"window" not in page and page.count("<script>") == 1
    # relative links, lazy players, the pixelated face, no remote resource
    assert '<img class="face" src="3/face.png" width="128" height="128"' in page
    assert page.count('<audio controls preload="none"') == 4
    assert 'src="3/voice_01.wav"' in page and 'src="12/voice_00.wav"' in page
    assert "image-rendering: pixelated" in page
    assert "no face" in page and "no voice lines" in page
    assert not re.search(r"(src|href)=\"(https?:)?//", page)
    # no temporary file left; the same rows give the same bytes
    assert sorted(p.name for p in tmp_path.iterdir()) == ["index.html"]
    first = path.read_bytes()
    write_gallery(tmp_path, [dict(r) for r in rows])
    assert path.read_bytes() == first == render_gallery(rows).encode()

    # empty batch and bad rows
    assert "0 of 0 shown" in render_gallery([])
    with pytest.raises(ValueError, match="row 0"):
        render_gallery([{"seed": 1, "folder": "1", "traits": {"gender": "female"}}])
    with pytest.raises(ValueError, match="unsafe file name"):
        render_gallery([dict(rows[0], folder="../etc")])
    with pytest.raises(ValueError, match="unsafe file name"):
        render_gallery([dict(rows[1], lines=[{"text": "x", "audio": "/etc/passwd"}])])


def test_read_manifest_round_trip(tmp_path):
    rows = _rows()
    (tmp_path / "manifest.jsonl").write_text("".join(json.dumps(r, sort_keys=True) + "\n" for r in rows))
    assert read_manifest(tmp_path) == rows
    (tmp_path / "manifest.jsonl").write_text("{not json\n")
    with pytest.raises(ValueError, match="manifest.jsonl:1"):
        read_manifest(tmp_path)


# ---------------------------------------------------------------------------------------- browser
class DevTools:
    """A minimal DevTools-protocol client over Chromium's --remote-debugging-pipe (fds 3 in, 4 out)."""

    def __init__(self, proc: subprocess.Popen):
        self.proc, self.buf, self.next_id, self.events = proc, b"", 0, []
        self.out = proc.stdout.fileno()

    def _recv(self, deadline: float) -> dict:
        while b"\0" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.out], [], [], left)[0]:
                raise TimeoutError("Chromium did not answer in time")
            chunk = os.read(self.out, 1 << 16)
            if not chunk:
                raise RuntimeError(f"Chromium exited (code {self.proc.poll()})")
            self.buf += chunk
        msg, _, self.buf = self.buf.partition(b"\0")
        return json.loads(msg)

    def call(self, method: str, params: dict | None = None, session: str | None = None, timeout: float = 10.0):
        self.next_id += 1
        msg = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        self.proc.stdin.write(json.dumps(msg).encode() + b"\0")
        self.proc.stdin.flush()
        deadline = time.monotonic() + timeout
        while True:
            m = self._recv(deadline)
            if m.get("id") == self.next_id:
                if "error" in m:
                    raise RuntimeError(f"{method}: {m['error']}")
                return m["result"]
            self.events.append(m)

    def wait_event(self, method: str, timeout: float = 10.0) -> dict:
        deadline = time.monotonic() + timeout
        for i, m in enumerate(self.events):
            if m.get("method") == method:
                return self.events.pop(i)
        while True:
            m = self._recv(deadline)
            if m.get("method") == method:
                return m
            self.events.append(m)

    def js(self, session: str, expression: str, timeout: float = 10.0):
        r = self.call("Runtime.evaluate", {"expression": expression, "awaitPromise": True, "returnByValue": True},
                      session, timeout)
        if "exceptionDetails" in r:
            raise AssertionError(f"page JS failed: {r['exceptionDetails']}")
        return r["result"].get("value")


@contextlib.contextmanager
def headless_chromium(tmp_path: Path, profile: Path):
    """Debian's chromium, headless, on a DevTools pipe, its first page attached: yields ``(cdp,
    session, version)``; the browser's whole process group is killed and ``profile`` removed after."""
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--disable-extensions", "--no-default-browser-check", f"--user-data-dir={profile}",
             "--autoplay-policy=no-user-gesture-required", "--window-size=1280,1000",
             "--remote-debugging-pipe", "about:blank"]
    log = open(tmp_path / "chromium.log", "wb")
    # the shell puts our stdin/stdout pipes on fds 3/4, where --remote-debugging-pipe talks
    proc = subprocess.Popen(["sh", "-c", 'exec "$0" "$@" 3<&0 4>&1 0</dev/null 1>&2', str(CHROMIUM), *flags],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, start_new_session=True)
    try:
        cdp = DevTools(proc)
        version = cdp.call("Browser.getVersion", timeout=20)["product"]
        page = next(t for t in cdp.call("Target.getTargets")["targetInfos"] if t["type"] == "page")
        s = cdp.call("Target.attachToTarget", {"targetId": page["targetId"], "flatten": True})["sessionId"]
        yield cdp, s, version
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # the session we started: the browser and any helper left
        except ProcessLookupError:
            pass
        proc.wait(timeout=10)
        log.close()
        shutil.rmtree(profile, ignore_errors=True)


def _gallery_folder(root: Path) -> list[dict]:
    """Real 64x64 PNG faces and 0.5 s 220 Hz PCM_16 WAV lines for the rows of _rows()."""
    import soundfile as sf
    from PIL import Image

    rows = _rows()
    t = np.arange(int(0.5 * 22050)) / 22050
    tone = (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
    for k, row in enumerate(rows):
        folder = root / row["folder"]
        folder.mkdir(parents=True)
        if row["face"]:
            img = np.zeros((64, 64, 3), np.uint8)
            img[..., k % 3] = 200
            img[16:48, 16:48] = 255
            Image.fromarray(img).save(folder / row["face"])
        for ln in row["lines"]:
            sf.write(folder / ln["audio"], tone, 22050, subtype="PCM_16")
    write_gallery(root, rows)
    return rows


@pytest.mark.skipif(not CHROMIUM.is_file(),
                    reason="no /usr/bin/chromium: run scripts/install-chromium.sh (Debian's chromium)")
def test_gallery_in_headless_chromium(tmp_path):
    root = tmp_path / "batch"
    rows = _gallery_folder(root)
    url = (root / "index.html").resolve().as_uri()
    profile = tmp_path / "profile"
    profile.mkdir()
    with headless_chromium(tmp_path, profile) as (cdp, s, version):
        for domain in ("Page", "Network", "Runtime"):
            cdp.call(f"{domain}.enable", session=s)
        cdp.call("Page.navigate", {"url": url}, s)
        cdp.wait_event("Page.loadEventFired", timeout=15)

        # every face loaded, drawn at 128 px, pixelated (so the hashed inline style applied too)
        faces = cdp.js(s, """new Promise(done => {
            const t0 = Date.now();
            const poll = () => {
              const imgs = Array.from(document.images);
              if (imgs.every(i => i.complete) || Date.now() - t0 > 5000)
                done(imgs.map(i => ({w: i.naturalWidth, shown: i.getBoundingClientRect().width,
                                     pix: getComputedStyle(i).imageRendering})));
              else setTimeout(poll, 50);
            };
            poll();
          })""")
        n_faces = sum(1 for r in rows if r["face"])
        assert faces == [{"w": 64, "shown": 128, "pix": "pixelated"}] * n_faces, (version, faces)

        def state():
            return cdp.js(s, """({cards: document.querySelectorAll('main .card').length,
                shown: Array.from(document.querySelectorAll('main .card')).filter(c => c.offsetParent !== null)
                         .map(c => +c.dataset.seed),
                count: document.getElementById('count').textContent, hash: location.hash})""")

        assert state() == {"cards": 4, "shown": [3, 7, 12, 20], "count": "4 of 4 shown", "hash": ""}
        # hostile text shown as text, never run
        assert cdp.js(s, "document.querySelector('#p3 li p').textContent.startsWith('<script>alert(1)</script>')")
        assert cdp.js(s, "typeof window.pwned") == "undefined"

        # the filter bar, driven as a user would (events from the controls)
        def set_control(id_, value, event):
            cdp.js(s, f"{{ const c = document.getElementById('{id_}'); c.value = '{value}';"
                      f"c.dispatchEvent(new Event('{event}')); }}")

        set_control("f-gender", "female", "change")
        assert state() == {"cards": 4, "shown": [3, 12], "count": "2 of 4 shown", "hash": "#gender=female"}
        set_control("f-age-max", "50", "input")
        assert state()["shown"] == [3] and state()["count"] == "1 of 4 shown"
        set_control("f-gender", "all", "change")
        set_control("f-age-min", "29", "input")
        assert state() == {"cards": 4, "shown": [3, 7], "count": "2 of 4 shown", "hash": "#min=29&max=50"}
        # a bookmarked filter (URL fragment) is applied
        cdp.js(s, "new Promise(r => { addEventListener('hashchange', () => setTimeout(r, 0), {once: true});"
                  "location.hash = 'gender=male&max=20'; })")
        assert state()["shown"] == [20] and state()["count"] == "1 of 4 shown"
        cdp.js(s, "new Promise(r => { addEventListener('hashchange', () => setTimeout(r, 0), {once: true});"
                  "location.hash = 'gender=all'; })")
        assert state()["shown"] == [3, 7, 12, 20]

        # a player plays its line (muted): play() resolves and the clock moves
        played = cdp.js(s, """(async () => {
            const a = document.querySelector('#p7 audio');
            a.muted = true;
            await a.play();
            const t0 = Date.now();
            while (a.currentTime === 0 && Date.now() - t0 < 5000) await new Promise(r => setTimeout(r, 50));
            await new Promise(r => setTimeout(r, 200));
            return {t: a.currentTime, duration: a.duration, ready: a.readyState, error: a.error && a.error.code,
                    src: a.currentSrc.split('/').slice(-2).join('/')};
          })()""", timeout=15)
        assert played["error"] is None and played["ready"] >= 2 and played["t"] > 0, (version, played)
        assert played["src"] == "7/voice_00.wav" and abs(played["duration"] - 0.5) < 0.01
        # the other players stayed unloaded (preload="none"), and nothing left file://
        assert cdp.js(s, "Array.from(document.querySelectorAll('audio')).filter(a => a.readyState > 0).length") == 1
        urls = [e["params"]["request"]["url"] for e in cdp.events if e.get("method") == "Network.requestWillBeSent"]
        # (data: URLs are the icons of Chromium's own media controls)
        assert all(u.startswith(("file://", "data:")) for u in urls), urls
        local = sorted({u.split("/batch/", 1)[1] for u in urls if u.startswith("file://")})
        assert local == ["20/face.png", "3/face.png", "7/face.png", "7/voice_00.wav", "index.html"], local
        try:
            cdp.call("Browser.close", timeout=5)
        except (RuntimeError, TimeoutError):
            pass
        cdp.proc.wait(timeout=10)
