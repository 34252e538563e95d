"""A static gallery of a batch: ``OUT/index.html``, one card per persona, opened from ``file://``.

The page is self-contained (inline CSS and JS, no external resource, no network, no server): each
card shows the face (``<folder>/face.png``, drawn at 128 px: the shipped generator's own size;
smaller faces are scaled up with ``image-rendering: pixelated``), the traits (gender, age, group)
and one ``<audio controls preload="none">`` per line with its text. A filter bar hides the cards outside a gender and an age range and counts
"N of M shown"; the filter is kept in the URL fragment (``index.html#gender=female&min=20&max=40``)
so a filtered view can be bookmarked. The filter reads ``data-gender`` / ``data-age`` on each card.
A persona folder with a mouth-shape atlas (``mouths.png``, the talking portrait's frames in one row)
shows it on hover: the face is swapped for the atlas stepped through frame by frame (CSS only).

Every text is HTML-escaped (line texts come from users), every link is a relative URL to a plain
file name inside the persona folder, and a Content-Security-Policy lets only the page's own script
and style run: even a text that slipped through escaping could not run script or load anything
from the network. Same rows -> same bytes (no timestamps), written atomically.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import math
from pathlib import Path
from typing import Any, Collection, Sequence
from urllib.parse import quote

from .checkpoint import atomic_write_bytes
from .persona import safe_file_name

INDEX = "index.html"
FACE_PX = 128  # the shipped faces' size; smaller ones (other weights) are drawn pixelated
ATLAS = "mouths.png"  # a persona's talking-portrait atlas (digitalhuman.portrait)
ATLAS_FRAMES = 12  # its frames in one row: len(digitalhuman.portrait.FRAMES), not imported (no numpy here)

_CSS = """\
:root { color-scheme: light dark; --fg: #1d1d1f; --bg: #f4f4f6; --card: #fff; --muted: #666; --line: #ddd; }
@media (prefers-color-scheme: dark) {
  :root { --fg: #eee; --bg: #151517; --card: #222226; --muted: #aaa; --line: #3a3a3e; }
}
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.4 system-ui, sans-serif; color: var(--fg); background: var(--bg); }
header { position: sticky; top: 0; z-index: 1; display: flex; flex-wrap: wrap; gap: 12px 20px;
  align-items: center; padding: 10px 16px; background: var(--card); border-bottom: 1px solid var(--line); }
header h1 { font-size: 16px; margin: 0; }
header label { display: inline-flex; gap: 6px; align-items: center; }
header input[type=number] { width: 5em; }
#count { color: var(--muted); margin-left: auto; }
main { display: grid; grid-template-columns: repeat(auto-fill, minmax(260px, 1fr)); gap: 16px; padding: 16px; }
.card { background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: 12px; }
.card[hidden] { display: none; }
.top { display: flex; gap: 12px; align-items: flex-start; }
.face, .noface { width: 128px; height: 128px; flex: none; border-radius: 4px; background: var(--line); }
.face { image-rendering: crisp-edges; image-rendering: pixelated; }
.noface { display: flex; align-items: center; justify-content: center; color: var(--muted); }
.card h2 { font-size: 15px; margin: 0 0 6px; }
.card h2 a { color: inherit; }
dl { display: grid; grid-template-columns: auto 1fr; gap: 2px 8px; margin: 0; }
dt { color: var(--muted); }
dd { margin: 0; }
ol { list-style: none; margin: 10px 0 0; padding: 0; }
li { margin-top: 8px; }
li p { margin: 0 0 4px; overflow-wrap: anywhere; }
li .dur { color: var(--muted); }
audio { width: 100%; height: 32px; }
.atlas { display: none; width: 128px; height: 128px; flex: none; overflow: hidden; border-radius: 4px; }
.atlas img { display: block; width: ATLAS_WIDTHpx; height: 128px; max-width: none;
  image-rendering: crisp-edges; image-rendering: pixelated; animation: talk ATLAS_SECONDSs steps(ATLAS_FRAMES) infinite; }
.talks:hover .face { display: none; }
.talks:hover .atlas { display: block; }
@keyframes talk { to { transform: translateX(-ATLAS_WIDTHpx); } }
.novoice, .empty { color: var(--muted); }
"""

_CSS = (_CSS.replace("ATLAS_WIDTH", str(ATLAS_FRAMES * FACE_PX)).replace("ATLAS_FRAMES", str(ATLAS_FRAMES))
        .replace("ATLAS_SECONDS", f"{ATLAS_FRAMES * 0.15:g}"))

_JS = """\
(() => {
  "use strict";
  const cards = Array.from(document.querySelectorAll("main .card"));
  const gender = document.getElementById("f-gender");
  const ageMin = document.getElementById("f-age-min");
  const ageMax = document.getElementById("f-age-max");
  const count = document.getElementById("count");
  const num = (el) => { const v = parseFloat(el.value); return Number.isFinite(v) ? v : null; };

  function apply() {
    const g = gender.value, lo = num(ageMin), hi = num(ageMax);
    let shown = 0;
    for (const c of cards) {
      const age = Math.floor(parseFloat(c.dataset.age));  // whole years, as the card shows
      const ok = (g === "all" || c.dataset.gender === g) && (lo === null || age >= lo) && (hi === null || age <= hi);
      c.hidden = !ok;
      if (ok) shown++;
      else for (const a of c.querySelectorAll("audio")) a.pause();
    }
    count.textContent = shown + " of " + cards.length + " shown";
    const q = [];
    if (g !== "all") q.push("gender=" + g);
    if (lo !== null) q.push("min=" + lo);
    if (hi !== null) q.push("max=" + hi);
    try { history.replaceState(null, "", q.length ? "#" + q.join("&") : location.pathname + location.search); }
    catch (e) { /* some browsers refuse history on file:// pages: the filter still works */ }
  }

  function fromHash() {
    const p = new URLSearchParams(location.hash.slice(1));
    const g = p.get("gender");
    gender.value = g === "female" || g === "male" ? g : "all";
    ageMin.value = p.has("min") && Number.isFinite(parseFloat(p.get("min"))) ? parseFloat(p.get("min")) : "";
    ageMax.value = p.has("max") && Number.isFinite(parseFloat(p.get("max"))) ? parseFloat(p.get("max")) : "";
  }

  gender.addEventListener("change", apply);
  ageMin.addEventListener("input", apply);
  ageMax.addEventListener("input", apply);
  window.addEventListener("hashchange", () => { fromHash(); apply(); });
  // one voice at a time
  document.addEventListener("play", (e) => {
    for (const a of document.querySelectorAll("audio")) if (a !== e.target) a.pause();
  }, true);
  fromHash();
  apply();
})();
"""


def _csp_hash(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


# Only the page's own script and style; files of the batch folder; nothing else, no network.
_CSP = ("default-src 'none'; "
        f"script-src {_csp_hash(_JS)}; style-src {_csp_hash(_CSS)}; "
        "img-src 'self' file:; media-src 'self' file:; base-uri 'none'; form-action 'none'")


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _href(folder: str, name: str) -> str:
    return _e(quote(folder, safe="") + "/" + quote(name, safe=""))


def _card(i: int, row: dict[str, Any], atlas: bool = False) -> str:
    try:
        seed = int(row["seed"])
        folder = safe_file_name(str(row.get("folder", seed)))
        traits = row["traits"]
        gender = str(traits["gender"])
        age = float(traits["age"])
    except (KeyError, TypeError, ValueError) as e:
        raise ValueError(f"manifest row {i} is not a persona row (needs seed, folder, traits.gender, "
                         f"traits.age): {e}") from None
    if not math.isfinite(age):
        raise ValueError(f"manifest row {i}: traits.age is not a number")
    group = traits.get("race")
    face = row.get("face")
    lines = row.get("lines") or []

    out = [f'<article class="card" id="p{seed}" data-seed="{seed}" data-gender="{_e(gender)}" '
           f'data-age="{age!r}" data-group="{_e(group or "")}">',
           f'<div class="top{" talks" if atlas and face else ""}">']
    if face:
        out.append(f'<img class="face" src="{_href(folder, safe_file_name(face))}" width="{FACE_PX}" '
                   f'height="{FACE_PX}" alt="face of persona {seed}" loading="lazy" decoding="async">')
        if atlas:
            out.append(f'<div class="atlas"><img src="{_href(folder, ATLAS)}" alt="mouth shapes of persona {seed}" '
                       'loading="lazy" decoding="async"></div>')
    else:
        out.append('<div class="noface">no face</div>')
    out.append(f'<div><h2><a href="{_href(folder, "persona.json")}">Persona {seed}</a></h2><dl>'
               f"<dt>gender</dt><dd>{_e(gender)}</dd>"
               f"<dt>age</dt><dd>{math.floor(age)}</dd>"
               f"<dt>group</dt><dd>{_e(group) if group else '&ndash;'}</dd></dl></div></div>")
    if lines:
        out.append("<ol>")
        for ln in lines:
            dur = ln.get("duration_s")
            dur_s = f' <span class="dur">({float(dur):.1f} s)</span>' if isinstance(dur, (int, float)) else ""
            src = _href(folder, safe_file_name(ln["audio"]))
            out.append(f"<li><p>{_e(ln['text'])}{dur_s}</p>"
                       f'<audio controls preload="none" src="{src}"></audio></li>')
        out.append("</ol>")
    else:
        out.append('<p class="novoice">no voice lines</p>')
    out.append("</article>")
    return "\n".join(out)


def _has_atlas(row: dict[str, Any], atlases: Collection[str]) -> bool:
    files = row.get("files")
    return str(row.get("folder", row.get("seed"))) in atlases or (isinstance(files, list) and ATLAS in files)


def render_gallery(manifest_rows: Sequence[dict[str, Any]], title: str = "digitalhuman personas",
                   atlases: Collection[str] = ()) -> str:
    """The page's HTML for ``manifest_rows`` (rows of ``manifest.jsonl``, shown in their order);
    ``atlases``: the folders that hold a ``mouths.png`` (a row listing it in ``files`` counts too)."""
    cards = [_card(i, row, _has_atlas(row, atlases)) for i, row in enumerate(manifest_rows)]
    n = len(cards)
    body = "\n".join(cards) if cards else '<p class="empty">no personas in this batch</p>'
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{_e(_CSP)}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>{_e(title)} ({n})</title>
<style>{_CSS}</style>
</head>
<body>
<header>
<h1>{_e(title)}</h1>
<label>gender <select id="f-gender"><option value="all">all</option><option value="female">female</option><option value="male">male</option></select></label>
<label>age <input id="f-age-min" type="number" min="0" max="120" step="1" placeholder="min" aria-label="minimum age"></label>
<label>to <input id="f-age-max" type="number" min="0" max="120" step="1" placeholder="max" aria-label="maximum age"></label>
<span id="count" role="status">{n} of {n} shown</span>
</header>
<main>
{body}
</main>
<script>{_JS}</script>
</body>
</html>
"""


def write_gallery(out: Path, manifest_rows: list[dict]) -> Path:
    """Write ``out/index.html`` for the personas of ``manifest_rows`` (atomically); return its path.

    Links are relative (``<folder>/face.png``, ``<folder>/voice_NN.wav``), so the page works opened
    from disk and travels with the batch folder.
    """
    path = Path(out) / INDEX
    atlases = set()
    for row in manifest_rows:
        try:
            folder = safe_file_name(str(row.get("folder", row.get("seed"))))
        except (ValueError, TypeError):
            continue  # render_gallery says what is wrong with the row
        if (Path(out) / folder / ATLAS).is_file():
            atlases.add(folder)
    atomic_write_bytes(path, render_gallery(manifest_rows, atlases=atlases).encode("utf-8"))
    return path


def read_manifest(out: Path) -> list[dict]:
    """The rows of ``out/manifest.jsonl`` (one JSON object a line; blank lines ignored)."""
    path = Path(out) / "manifest.jsonl"
    rows = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if line.strip():
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                raise ValueError(f"{path}:{n} is not JSON ({e.msg})") from None
            if not isinstance(row, dict):
                raise ValueError(f"{path}:{n} is not a JSON object")
            rows.append(row)
    return rows
