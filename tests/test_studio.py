"""The Persona Studio (``/studio/``) in a real headless Chromium against a real ``serve`` on loopback.

Drives Debian's /usr/bin/chromium over the DevTools protocol on a pipe (``DevTools`` of
test_gallery.py): open ``/studio/?token=`` (the service has an access token, as on a LAN), load, change seed / age / gender, type a line and press Enter, hear it (the audio
clock advances, every chunk plays to its end), see the portrait's mouth frame change, keep two
personas, export the zip and read it with ``digitalhuman``. No console error, no failed request, no
request to another host; axe-core (npm, ``scripts/install-axe.sh``): no serious or critical
violation. The shipped weights (the tiny test models have no portrait directions). Skips without
Chromium (``scripts/install-chromium.sh``).

Prints the two timings of issue 27 (warm server): page load -> first face shown, Speak -> first audio.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

from digitalhuman.gallery import read_manifest
from digitalhuman.persona import load_persona_doc
from tests.service_proc import REPO, free_port, running_service
from tests.test_gallery import CHROMIUM, headless_chromium

FIRST_FACE_MS = 1000  # issue 27: warm server, page load -> first face shown
FIRST_AUDIO_MS = 1500  # Speak -> first audio
# the bars times SLACK: CI machines are shared (measured 2.8x the bar at load average 8 on 2 cores);
# DIGITALHUMAN_STUDIO_SLACK=1 checks the bars themselves on a quiet machine
SLACK = float(os.environ.get("DIGITALHUMAN_STUDIO_SLACK", "4"))


def _wait(cdp, s, expr: str, timeout: float = 20.0, what: str = ""):
    deadline = time.monotonic() + timeout
    while True:
        v = cdp.js(s, expr)
        if v:
            return v
        status = cdp.js(s, "document.getElementById('status').textContent")
        assert time.monotonic() < deadline, f"timed out waiting for {what or expr}: {status}"
        time.sleep(0.05)


TOKEN = "studio-browser-test-token-42"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """``serve`` on loopback with the shipped weights (1 inference thread, 1 BLAS thread), warm, with an
    access token as on a LAN (so the browser goes through the token's cookie)."""
    import httpx

    port = free_port()
    code = (f"import os; os.environ.setdefault('OMP_NUM_THREADS', '1')\n"
            f"from digitalhuman.service import serve\nserve(port={port}, log_level='warning', token={TOKEN!r})")
    base = f"http://127.0.0.1:{port}"
    with running_service(code, port, tmp_path_factory.mktemp("studio") / "server.log", timeout_s=180):
        with httpx.Client(base_url=base, timeout=120) as c:  # the warm-up has run once a line is said
            assert c.get("/studio/").status_code == 401
            assert c.post("/personas/1/say", json={"text": "Warm up."}, headers=AUTH).status_code == 200
        yield base


def test_atlas_and_video_resources(server):
    """Issue 26 item 4: mouths.png / mouths.json / a line's video, with face.png's caching rules."""
    import httpx

    with httpx.Client(base_url=server, timeout=120, headers=AUTH) as c:
        q = "?gender=female&age=60"
        png = c.get(f"/personas/7/mouths.png{q}")
        assert png.status_code == 200 and png.headers["content-type"] == "image/png", png.text
        doc = c.get(f"/personas/7/mouths.json{q}")
        assert doc.status_code == 200 and doc.headers["content-type"] == "application/json"
        d = doc.json()
        from PIL import Image
        import io

        img = Image.open(io.BytesIO(png.content))
        assert img.size == (d["frame_size"][0] * d["columns"], d["frame_size"][1] * d["rows"])
        assert set(d["viseme_to_frame"]) == {"sil", "PP", "FF", "TH", "DD", "kk", "CH", "SS", "nn", "RR", "aa", "E",
                                             "ih", "oh", "ou"} and d["blink_frames"] and "rest_frame" in d
        # frame 0 is face.png, pixel for pixel
        face = Image.open(io.BytesIO(c.get(f"/personas/7/face.png{q}").content))
        assert img.crop((0, 0, *d["frame_size"])).tobytes() == face.convert("RGB").tobytes()
        for r in (png, doc):  # caching: strong ETag, 304, HEAD, same bytes again
            assert r.headers["cache-control"] == "public, max-age=86400" and r.headers["etag"].startswith('"')
        url = f"/personas/7/mouths.png{q}"
        assert c.get(url, headers={"If-None-Match": png.headers["etag"]}).status_code == 304
        head = c.head(url)
        assert head.status_code == 200 and head.content == b"" and head.headers["etag"] == png.headers["etag"]
        assert c.get(url).content == png.content
        assert c.get("/personas/7/mouths.png?gender=female&age=61").headers["etag"] != png.headers["etag"]
        assert c.get("/personas/7/mouths.png?gendr=female").status_code == 422

        text = "Hello there."
        v = c.get(f"/personas/7/video/mp4{q}&text=Hello+there.")
        assert v.status_code == 200 and v.headers["content-type"] == "video/mp4" and v.content[4:8] == b"ftyp"
        assert c.get(f"/personas/7/video/mp4{q}&text=Hello+there.",
                     headers={"If-None-Match": v.headers["etag"]}).status_code == 304
        p = c.post("/personas/7/video", json={"text": text, "gender": "female", "age": 60, "format": "mp4"})
        assert p.status_code == 200 and p.content == v.content  # same line, same bytes
        w = c.post("/personas/7/video", json={"text": text, "gender": "female", "age": 60, "format": "webm"})
        assert w.status_code == 200 and w.headers["content-type"] == "video/webm" and w.content[:4] == b"\x1aE\xdf\xa3"
        assert c.post("/personas/7/video", json={"text": text, "format": "avi"}).status_code == 422
        assert c.get("/personas/7/video/avi?text=Hi").status_code == 422


@pytest.mark.skipif(not CHROMIUM.is_file(),
                    reason="no /usr/bin/chromium: run scripts/install-chromium.sh (Debian's chromium)")
def test_studio_in_headless_chromium(tmp_path, server):
    _drive(tmp_path, server, _axe())


def _axe() -> str | None:
    """axe-core's script (npm, installed outside the package by scripts/install-axe.sh), or None without npm."""
    if shutil.which("npm") is None:
        return None
    out = subprocess.run(["bash", str(REPO / "scripts" / "install-axe.sh")], check=True, capture_output=True, text=True)
    return Path(out.stdout.strip().splitlines()[-1]).read_text()


def test_axe_core_can_be_installed():
    """The accessibility check of the browser test needs npm; say so rather than pass silently."""
    if shutil.which("npm") is None:
        pytest.skip("no npm: the studio test ran without axe-core (apt-get install npm)")
    assert "axe" in _axe()[:2000]


def _drive(tmp_path: Path, base: str, axe_js: str | None) -> None:
    profile, downloads = tmp_path / "profile", tmp_path / "downloads"
    profile.mkdir()
    downloads.mkdir()
    with headless_chromium(tmp_path, profile) as (cdp, s, version):
        for domain in ("Page", "Network", "Runtime", "Log"):
            cdp.call(f"{domain}.enable", session=s)
        cdp.call("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads),
                                                  "eventsEnabled": True})
        cdp.call("Page.navigate", {"url": f"{base}/studio/?token={TOKEN}"}, s)  # -> 303, the token as a cookie
        cdp.wait_event("Page.loadEventFired", timeout=20)

        # the first face, then the shaped persona's atlas (seed 0)
        first_face_ms = _wait(cdp, s, "window.studio && window.studio.firstFaceMs", what="first face")
        script_ms = cdp.js(s, "window.studio.scriptMs")  # the page's own share: HTML, CSS, script
        _wait(cdp, s, "window.studio.shown === JSON.stringify({seed: 0})", 30, "persona 0's atlas")
        assert cdp.js(s, "location.href") == f"{base}/studio/"  # the token left the URL for a cookie
        faces = cdp.js(s, "Array.from(document.querySelectorAll('#grid img')).map(i => i.complete && i.naturalWidth)")
        assert len(faces) == 12

        def set_control(id_, value):  # as a user does: the control's change event
            cdp.js(s, f"{{ const c = document.getElementById('{id_}'); c.value = '{value}';"
                      "c.dispatchEvent(new Event('change')); }")

        # browse: the filters constrain the page's faces, the next page moves the seeds on
        set_control("b-gender", "male")
        set_control("b-age", "30")
        cdp.js(s, "document.getElementById('b-next').click()")
        grid = _wait(cdp, s, "(() => { const i = Array.from(document.querySelectorAll('#grid img'));"
                             " return i.every(x => x.complete && x.naturalWidth) &&"
                             " i.map(x => x.src.split('/personas/')[1]); })()", 30, "the filtered page")
        assert grid == [f"{k}/face.png?gender=male&age=30" for k in range(12, 24)], grid

        # shape: change seed, age, gender

        set_control("s-seed", "7")
        _wait(cdp, s, "window.studio.shown === JSON.stringify({seed: 7})", 30, "seed 7")
        set_control("s-age", "60")
        set_control("s-gender", "female")
        want = json.dumps({"seed": 7, "gender": "female", "age": 60}, separators=(",", ":"))
        _wait(cdp, s, f"window.studio.shown === {json.dumps(want)}", 30, "seed 7, female, 60")
        traits = cdp.js(s, "document.getElementById('traits').textContent")
        assert traits.startswith("female, 60 years"), traits

        # type a line and press Enter
        cdp.js(s, "(() => { const t = document.getElementById('s-text'); t.value = ''; t.focus(); })()")
        cdp.call("Input.insertText", {"text": "Welcome back, friend. The mines are cursed."}, s)
        for kind in ("keyDown", "keyUp"):
            cdp.call("Input.dispatchKeyEvent", {"type": kind, "key": "Enter", "code": "Enter",
                                                "windowsVirtualKeyCode": 13, "text": "\r" if kind == "keyDown" else ""}, s)
        _wait(cdp, s, "window.studio.firstAudioMs", 30, "first audio")
        first_audio_ms = cdp.js(s, "window.studio.firstAudioMs - window.studio.speakMs")
        # the audio plays: the clock advances while the line's chunks play to their end
        clock = cdp.js(s, "(async () => { const c = []; for (let i = 0; i < 5; i++) {"
                          " c.push(window.studio.clock()); await new Promise(r => setTimeout(r, 100)); } return c; })()")
        assert all(b > a for a, b in zip(clock, clock[1:])), clock
        _wait(cdp, s, "window.studio.done && window.studio.chunks > 0 && window.studio.ended === window.studio.chunks"
                      " && !window.studio.playing", 40, "the line to play out")
        # the server's share: the stream request's time to its first byte (Resource Timing, once it is complete)
        ttfb_ms = cdp.js(s, "(() => { const e = performance.getEntriesByType('resource')"
                            ".filter(x => x.name.includes('/say/stream')).pop();"
                            " return e ? e.responseStart - e.requestStart : null; })()")
        played = cdp.js(s, "({chunks: studio.chunks, frames: studio.framesSeen, errors: studio.errors,"
                           " state: studio.audioState(), lines: document.querySelectorAll('#lines li').length})")
        assert played["errors"] == [] and played["state"] == "running", played
        assert len(played["frames"]) >= 3, played  # the mouth moved through several shapes
        assert played["lines"] == 1

        # keep two personas, export, read the zip with digitalhuman
        cdp.js(s, "document.getElementById('s-keep').click()")
        set_control("s-seed", "9")
        set_control("s-gender", "")
        set_control("s-age", "")
        set_control("s-aged", "12")
        want = json.dumps({"seed": 9, "aged": 12}, separators=(",", ":"))
        _wait(cdp, s, f"window.studio.shown === {json.dumps(want)}", 30, "seed 9 aged 12")
        cdp.js(s, "document.getElementById('s-keep').click()")
        assert cdp.js(s, "JSON.parse(localStorage.getItem('digitalhuman.studio.shortlist')).length") == 2
        cdp.js(s, "document.getElementById('export').click()")
        zpath = downloads / "personas.zip"
        deadline = time.monotonic() + 60
        while not (zpath.is_file() and zipfile.is_zipfile(zpath)):
            assert time.monotonic() < deadline, cdp.js(s, "document.getElementById('status').textContent")
            time.sleep(0.1)
        out = tmp_path / "export"
        with zipfile.ZipFile(zpath) as z:
            z.extractall(out)
        rows = read_manifest(out)
        assert [(r["seed"], r["folder"]) for r in rows] == [(7, "7"), (9, "9")]
        a, b = load_persona_doc(out / "7"), load_persona_doc(out / "9")
        assert a.traits.gender == "female" and a.traits.age == 60 and a.origin["constraints"]["age"] == 60
        assert [ln.text for ln in a.lines] == ["Welcome back, friend. The mines are cursed."]
        assert (out / "7" / a.lines[0].audio).is_file() and (out / "7" / "mouths.png").is_file()
        assert b.origin["aged"] == 12 and b.lines == []

        # accessibility: axe-core, serious and critical violations (on the page as used: grid, lines, shortlist)
        if axe_js is not None:
            cdp.js(s, axe_js + "; true", timeout=30)
            violations = cdp.js(s, "axe.run(document, {resultTypes: ['violations']}).then(r => r.violations.map("
                                   "v => ({id: v.id, impact: v.impact, nodes: v.nodes.map(n => n.target.join(' '))})))",
                                timeout=60)
            bad = [v for v in violations if v["impact"] in ("serious", "critical")]
            assert bad == [], bad
            print(f"\naxe-core: {len(violations)} violations of lesser impact: {[(v['id'], v['impact']) for v in violations]}")

        # nothing failed, nothing left the server
        events = cdp.events
        urls = [e["params"]["request"]["url"] for e in events if e.get("method") == "Network.requestWillBeSent"]
        foreign = [u for u in urls if not u.startswith((base + "/", "data:", "blob:" + base))]
        assert foreign == [], foreign
        sent = {e["params"]["requestId"]: e["params"]["request"]["url"] for e in events
                if e.get("method") == "Network.requestWillBeSent"}
        failed = [(sent.get(e["params"]["requestId"]), e["params"]["errorText"]) for e in events
                  if e.get("method") == "Network.loadingFailed"]
        if failed:
            ids = {e["params"]["requestId"] for e in events if e.get("method") == "Network.loadingFailed"}
            trail = [(e["method"], e["params"].get("timestamp"), e["params"].get("errorText"),
                      e["params"].get("dataLength")) for e in events
                     if e.get("method", "").startswith("Network.") and e["params"].get("requestId") in ids]
            (tmp_path.parent / "failed_trail.json").write_text(json.dumps(trail, indent=1))
        assert failed == [], failed
        bad_status = [(e["params"]["response"]["url"], e["params"]["response"]["status"]) for e in events
                      if e.get("method") == "Network.responseReceived" and e["params"]["response"]["status"] >= 400]
        assert bad_status == [], bad_status
        console = [e["params"] for e in events
                   if (e.get("method") == "Runtime.consoleAPICalled" and e["params"]["type"] in ("error", "assert"))
                   or e.get("method") == "Runtime.exceptionThrown"
                   or (e.get("method") == "Log.entryAdded" and e["params"]["entry"]["level"] == "error")]
        assert console == [], console

        print(f"\nstudio ({version}): page load -> first face {first_face_ms:.0f} ms (script ran at {script_ms:.0f} ms); "
              f"Speak -> first audio {first_audio_ms:.0f} ms (stream's first byte {ttfb_ms:.0f} ms after its request); "
              f"{len(urls)} requests; load average {os.getloadavg()[0]:.1f}")
        assert first_face_ms <= FIRST_FACE_MS * SLACK, first_face_ms
        assert first_audio_ms <= FIRST_AUDIO_MS * SLACK, first_audio_ms
        try:
            cdp.call("Browser.close", timeout=5)
        except (RuntimeError, TimeoutError):
            pass
        cdp.proc.wait(timeout=10)


def test_serve_on_lan_without_token_refuses_to_start(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "DIGITALHUMAN_TOKEN"}
    r = subprocess.run([sys.executable, "-m", "digitalhuman", "serve", "--host", "0.0.0.0", "--port", str(free_port())],
                       capture_output=True, text=True, timeout=120, env=env, cwd=REPO)
    assert r.returncode == 1
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "needs an access token" in lines[0] and "DIGITALHUMAN_TOKEN" in lines[0], r.stderr
