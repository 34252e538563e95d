"""The studio's two timings (issue 27), warm server, a real headless Chromium:

  python benchmarks/bench_studio.py [--runs 9] [--threads 0]

Starts ``serve`` on loopback as a user does (the shipped weights; ``--threads 0``: torch's default,
one per core), warms it with one line, then per run: opens ``/studio/`` in a fresh tab (page load ->
first face shown: ``studio.firstFaceMs``), picks a seed, types one of the held-out lines and presses
Enter (Speak -> first audio: ``studio.firstAudioMs - studio.speakMs``, the page's own clocks), and
waits for the line to play out. Lines rotate through ``eval_lines.EVAL_LINES``; seeds run from 100.
Prints a table of medians (min, max), then one JSON line. Needs Debian's chromium
(``scripts/install-chromium.sh``).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from digitalhuman.eval_lines import EVAL_LINES  # noqa: E402
from tests.service_proc import free_port, running_service  # noqa: E402
from tests.test_gallery import CHROMIUM, headless_chromium  # noqa: E402
from tests.test_studio import _wait  # noqa: E402  (polls a page expression; fails with the page's status)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=9)
    ap.add_argument("--threads", type=int, default=0, help="torch/onnxruntime threads of the server (0: default)")
    a = ap.parse_args()
    if not CHROMIUM.is_file():
        sys.exit(f"no {CHROMIUM}: run scripts/install-chromium.sh")
    import httpx

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    setup = f"import torch; torch.set_num_threads({a.threads})\n" if a.threads else ""
    code = setup + f"from digitalhuman.service import serve\nserve(port={port}, log_level='warning')"
    face, audio, ttfb = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        with running_service(code, port, tmp / "server.log", timeout_s=180):
            with httpx.Client(base_url=base, timeout=120) as c:
                c.post("/personas/1/say", json={"text": "Warm up."}).raise_for_status()
            profile = tmp / "profile"
            profile.mkdir()
            with headless_chromium(tmp, profile) as (cdp, s, version):
                cdp.call("Page.enable", session=s)
                for k in range(a.runs):
                    cdp.call("Page.navigate", {"url": f"{base}/studio/"}, s)
                    face.append(_wait(cdp, s, "window.studio && window.studio.firstFaceMs", 60))
                    seed = 100 + k
                    cdp.js(s, f"{{ const c = document.getElementById('s-seed'); c.value = '{seed}';"
                              "c.dispatchEvent(new Event('change')); }")
                    _wait(cdp, s, f"window.studio.shown === JSON.stringify({{seed: {seed}}})", 60)
                    line = EVAL_LINES[k % len(EVAL_LINES)]
                    cdp.js(s, "(() => { const t = document.getElementById('s-text'); t.value = ''; t.focus(); })()")
                    cdp.call("Input.insertText", {"text": line}, s)
                    for kind in ("keyDown", "keyUp"):
                        cdp.call("Input.dispatchKeyEvent", {"type": kind, "key": "Enter", "code": "Enter",
                                                            "windowsVirtualKeyCode": 13,
                                                            "text": "\r" if kind == "keyDown" else ""}, s)
                    _wait(cdp, s, "window.studio.firstAudioMs", 60)
                    audio.append(cdp.js(s, "window.studio.firstAudioMs - window.studio.speakMs"))
                    _wait(cdp, s, "window.studio.done", 60)
                    ttfb.append(cdp.js(s, "(() => { const e = performance.getEntriesByType('resource')"
                                          ".filter(x => x.name.includes('/say/stream')).pop();"
                                          " return e ? e.responseStart - e.requestStart : -1; })()"))
                    _wait(cdp, s, "window.studio.done && window.studio.ended === window.studio.chunks"
                                  " && !window.studio.playing", 120)
                    print(f"run {k + 1}/{a.runs}: first face {face[-1]:.0f} ms, Speak -> first audio "
                          f"{audio[-1]:.0f} ms (server's first byte {ttfb[-1]:.0f} ms; {line!r})", flush=True)

    def row(v):
        return {"median": round(statistics.median(v)), "min": round(min(v)), "max": round(max(v))}

    out = {"runs": a.runs, "threads": a.threads or "default", "cpus": os.cpu_count(),
           "loadavg_1min": round(os.getloadavg()[0], 2), "browser": version,
           "first_face_ms": row(face), "speak_to_first_audio_ms": row(audio),
           "stream_first_byte_ms": row(ttfb)}
    print(f"\nstudio, warm server ({out['threads']} threads, {out['cpus']} cpus, load {out['loadavg_1min']}), "
          f"{a.runs} runs:")
    for name, key, bar in (("page load -> first face", "first_face_ms", 1000),
                           ("Speak -> first audio", "speak_to_first_audio_ms", 1500),
                           ("  server's first byte", "stream_first_byte_ms", 1500)):
        r = out[key]
        print(f"  {name:24s} median {r['median']:5d} ms  ({r['min']}-{r['max']})  bar {bar} ms")
    print(json.dumps(out))


if __name__ == "__main__":
    main()
