// Persona Studio: an ordinary client of the digitalhuman HTTP API (docs/http.md). No library, no
// other host: faces from face.png, the talking portrait from mouths.png + mouths.json switched by the
// viseme track of say/stream, the shortlist in localStorage, the export from POST export.zip.
"use strict";
(() => {
  const API = new URL("../", location.href);       // the service root (works behind a root_path)
  const PAGE = 12;                                  // faces per browse page
  const LIST_KEY = "digitalhuman.studio.shortlist";
  const $ = (id) => document.getElementById(id);
  const studio = window.studio = {                  // state the browser test reads
    scriptMs: performance.now(), firstFaceMs: null, speakMs: null, firstAudioMs: null, framesSeen: [], frame: null,
    playing: false, chunks: 0, ended: 0, errors: [], lastExport: null,
  };

  // ------------------------------------------------------------------ the persona being shaped
  const num = (el) => (el.value.trim() === "" ? null : Number(el.value));
  function shape() {
    const s = {seed: num($("s-seed")) ?? 0};
    const put = (k, v) => { if (v !== null && v !== "" && !Number.isNaN(v)) s[k] = v; };
    put("gender", $("s-gender").value);
    put("age", num($("s-age")));
    put("accent", $("s-accent").value);
    put("blend", num($("s-blend")));
    if (s.blend !== undefined) s.blend_t = Number($("s-blend-t").value);
    put("family", $("s-family").value === "" ? null : Number($("s-family").value));
    const aged = num($("s-aged"));
    if (aged) s.aged = aged;
    return s;
  }
  function query(s, extra = {}) {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(s)) if (k !== "seed" && k !== "lines") q.set(k, String(v));
    for (const [k, v] of Object.entries(extra)) q.set(k, v);
    const t = q.toString();
    return t ? "?" + t : "";
  }
  const url = (path) => new URL(path, API).href;
  const faceUrl = (s) => url(`personas/${s.seed}/face.png${query(s)}`);
  const describe = (s) => Object.entries(s).filter(([k]) => k !== "lines").map(([k, v]) => `${k} ${v}`).join(", ");

  function say(msg) { $("status").textContent = msg; }
  async function apiError(r) {
    try { const b = await r.json(); return b.error || r.statusText; } catch { return r.statusText; }
  }

  // ------------------------------------------------------------------------------- browse grid
  function browse() {
    const start = Math.max(0, num($("b-start")) ?? 0), gender = $("b-gender").value, age = num($("b-age"));
    const grid = $("grid");
    grid.replaceChildren();
    for (let seed = start; seed < start + PAGE; seed++) {
      const s = {seed};
      if (gender) s.gender = gender;
      if (age !== null) s.age = age;
      const li = document.createElement("li"), b = document.createElement("button"), img = new Image(80, 80);
      b.type = "button";
      b.dataset.seed = seed;
      b.setAttribute("aria-pressed", "false");
      img.alt = "";
      img.decoding = "async";
      img.className = "face";
      img.addEventListener("load", () => {
        if (studio.firstFaceMs === null) studio.firstFaceMs = performance.now();
      }, {once: true});
      img.src = faceUrl(s);
      const cap = document.createElement("span");
      cap.textContent = `seed ${seed}`;
      b.setAttribute("aria-label", `Shape seed ${seed}` + (gender ? `, ${gender}` : "") + (age !== null ? `, age ${age}` : ""));
      b.append(img, cap);
      b.addEventListener("click", () => {
        $("s-seed").value = seed;
        $("s-gender").value = gender;
        $("s-age").value = age === null ? "" : age;
        for (const x of grid.querySelectorAll("button")) x.setAttribute("aria-pressed", String(x === b));
        redraw();
        $("shape").focus();
      });
      li.append(b);
      grid.append(li);
    }
    say(`Seeds ${start}-${start + PAGE - 1}` + (gender ? `, ${gender}` : "") + (age !== null ? `, age ${age}` : ""));
  }

  // ----------------------------------------------------------------------- portrait and atlas
  const canvas = $("portrait"), g2d = canvas.getContext("2d");
  let atlas = null;          // {img, doc} of the current persona
  let current = null;        // the shape shown
  let redrawId = 0;
  function loadImage(src) {
    return new Promise((ok, fail) => {
      const i = new Image();
      i.onload = () => ok(i);
      i.onerror = () => fail(new Error("image failed: " + src));
      i.src = src;
    });
  }
  async function fetchImage(href) {  // an image, or the service's own error message
    const r = await fetch(href);
    if (!r.ok) throw new Error(await apiError(r));
    const src = URL.createObjectURL(await r.blob());
    try { return await loadImage(src); } finally { URL.revokeObjectURL(src); }
  }
  function draw(frame) {
    if (!atlas) return;
    const [w, h] = atlas.doc.frame_size, f = atlas.doc.frames[frame];
    g2d.imageSmoothingEnabled = true;
    g2d.drawImage(atlas.img, f.x, f.y, w, h, 0, 0, canvas.width, canvas.height);
    if (studio.frame !== frame) {
      studio.frame = frame;
      if (studio.playing && !studio.framesSeen.includes(frame)) studio.framesSeen.push(frame);
    }
  }
  async function redraw() {
    const s = shape(), id = ++redrawId;
    current = s;
    $("s-blend-t-v").textContent = $("s-blend-t").value;
    say(`Seed ${s.seed}…`);
    try {
      const face = await fetchImage(faceUrl(s));   // fast: shown before the atlas is made
      if (id !== redrawId) return;
      g2d.drawImage(face, 0, 0, canvas.width, canvas.height);
      if (studio.firstFaceMs === null) studio.firstFaceMs = performance.now();
      const r = await fetch(url("personas"), {method: "POST", headers: {"content-type": "application/json"},
                                              body: JSON.stringify(s)});
      if (!r.ok) throw new Error(await apiError(r));
      const doc = (await r.json()).persona, t = doc.traits;
      if (id !== redrawId) return;
      $("traits").textContent = `${t.gender}, ${Math.round(t.age)} years, ${t.race || "mixed"}, accent ${t.accent || "?"}` +
        (doc.origin && doc.origin.blend ? `, blend of ${doc.origin.blend.a} and ${doc.origin.blend.b}` : "");
      canvas.setAttribute("aria-label", `Portrait of seed ${s.seed}: ${$("traits").textContent}`);
      const born = t.age - (s.aged || 0);  // the ages ageing may reach: 0-100
      $("s-aged").min = Math.ceil(-born);
      $("s-aged").max = Math.floor(100 - born);
      const [img, ad] = await Promise.all([fetchImage(url(`personas/${s.seed}/mouths.png${query(s)}`)),
                                           fetch(url(`personas/${s.seed}/mouths.json${query(s)}`)).then(async (r2) => {
                                             if (!r2.ok) throw new Error(await apiError(r2));
                                             return r2.json();
                                           })]);
      if (id !== redrawId) return;
      atlas = {img, doc: ad};
      rng = s.seed % 2147483647 || 1;
      draw(ad.rest_frame);
      studio.shown = JSON.stringify(s);
      showLines();
      say(`Seed ${s.seed}: ${$("traits").textContent}`);
    } catch (e) {
      if (id === redrawId) say(`Seed ${s.seed}: ${e.message}`);
    }
  }

  // --------------------------------------------------------------- speak: stream + lip-sync
  let ctx = null, track = [], blinkAt = 0, blinkUntil = 0, rng = 1, endAt = 0;
  function random() {  // mulberry32: blinks at seeded times
    rng = (rng + 0x6D2B79F5) | 0;
    let t = Math.imul(rng ^ (rng >>> 15), 1 | rng);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  function frameAt(now) {
    if (!atlas) return null;
    const d = atlas.doc;
    if (now >= blinkAt && now < blinkUntil) {
      const k = (now - blinkAt) / (blinkUntil - blinkAt);
      return d.blink_frames[k < 0.3 || k > 0.7 ? 0 : d.blink_frames.length - 1];
    }
    if (now >= blinkUntil) { blinkAt = now + 2 + 3 * random(); blinkUntil = blinkAt + 0.15; }
    for (const v of track) if (now >= v.a && now < v.b) return d.viseme_to_frame[v.viseme] ?? d.rest_frame;
    return d.rest_frame;
  }
  function animate() {
    const now = ctx ? ctx.currentTime : performance.now() / 1000;
    const f = frameAt(now);
    if (f !== null) draw(f);
    if (studio.playing && ctx && now > endAt && studio.ended === studio.chunks && studio.done) {
      studio.playing = false;
      say("Done speaking.");
    }
    requestAnimationFrame(animate);
  }
  function pcmBuffer(b64, sr) {
    const bin = atob(b64), n = bin.length >> 1, buf = ctx.createBuffer(1, n, sr), out = buf.getChannelData(0);
    for (let i = 0; i < n; i++) {
      let v = bin.charCodeAt(2 * i) | (bin.charCodeAt(2 * i + 1) << 8);
      if (v >= 32768) v -= 65536;
      out[i] = v / 32768;
    }
    return buf;
  }
  let speaking = false;
  async function speak(text, s = current) {
    if (!s || speaking) return;   // one line at a time (Enter while the button is disabled)
    const pressed = performance.now();
    text = text.trim();
    if (!/[A-Za-z]/.test(text)) { say("Type a line with at least one letter."); return; }
    speaking = true;
    ctx = ctx || new AudioContext();
    try { await ctx.resume(); } catch { /* played when the browser allows */ }
    studio.speakMs = pressed;
    studio.firstAudioMs = null;
    studio.framesSeen = [];
    studio.chunks = studio.ended = 0;
    studio.done = false;
    track = [];
    $("s-speak").disabled = true;
    say("Speaking…");
    try {
      let rest = "", t0 = null;
      const onLine = (line) => {
        const c = JSON.parse(line);
        if (c.error) throw new Error(c.error);
        if (c.done) { studio.done = true; return; }
        if (t0 === null) t0 = ctx.currentTime + 0.05;
        const at = Math.max(t0 + c.t_start, ctx.currentTime + 0.02), shift = at - c.t_start;
        if (shift > t0) t0 = shift;   // a late chunk moves the rest of the line (and its visemes) with it
        const src = ctx.createBufferSource();
        src.buffer = pcmBuffer(c.pcm16, c.sample_rate);
        src.connect(ctx.destination);
        src.onended = () => { studio.ended++; };
        src.start(at);
        studio.chunks++;
        if (studio.firstAudioMs === null) {
          studio.firstAudioMs = performance.now();
          studio.playing = true;
        }
        endAt = at + src.buffer.duration;
        for (const v of c.visemes) track.push({a: shift + v.t_start, b: shift + v.t_end, viseme: v.viseme});
      };
      const feed = (text) => {
        rest += text;
        let nl;
        while ((nl = rest.indexOf("\n")) >= 0) {
          const line = rest.slice(0, nl);
          rest = rest.slice(nl + 1);
          if (line.trim()) onLine(line);
        }
      };
      await streamLines(url(`personas/${s.seed}/say/stream`), JSON.stringify({...strip(s), text}), feed);
      addLine(s, text);
    } catch (e) {
      studio.errors.push(String(e.message));
      say(`Could not speak: ${e.message}`);
    } finally {
      speaking = false;
      $("s-speak").disabled = false;
    }
  }
  // POST and hand each piece of the answer to feed() as it arrives. XMLHttpRequest's progress events
  // rather than a fetch body reader: Chromium reports a fetch stream read to its end as an aborted
  // request now and then (a race in its loader), which would hide real failures in the request log.
  function streamLines(href, body, feed) {
    return new Promise((resolve, reject) => {
      const x = new XMLHttpRequest();
      let seen = 0, failed = false;
      const pump = () => {
        if (failed || x.status !== 200) return;
        const t = x.responseText;
        if (t.length > seen) {
          const part = t.slice(seen);
          seen = t.length;
          try { feed(part); } catch (e) { failed = true; reject(e); }
        }
      };
      x.open("POST", href);
      x.setRequestHeader("content-type", "application/json");
      x.onprogress = pump;
      x.onload = () => {
        if (x.status !== 200) {
          let msg = x.statusText;
          try { msg = JSON.parse(x.responseText).error || msg; } catch { /* not JSON */ }
          reject(new Error(msg));
          return;
        }
        pump();
        if (!failed) resolve();
      };
      x.onerror = () => reject(new Error("the connection failed"));
      x.send(body);
    });
  }
  const strip = (s) => { const o = {...s}; delete o.seed; delete o.lines; return o; };

  // ------------------------------------------------------------------ lines, shortlist, export
  const sameShape = (a, b) => JSON.stringify(strip(a)) === JSON.stringify(strip(b)) && a.seed === b.seed;
  const lines = [];   // {shape, text} spoken in this session
  function addLine(s, text) {
    if (!lines.some((l) => sameShape(l.shape, s) && l.text === text)) lines.push({shape: {...s}, text});
    showLines();
  }
  function showLines() {
    const ul = $("lines");
    ul.replaceChildren();
    for (const l of lines.filter((x) => current && sameShape(x.shape, current))) {
      const li = document.createElement("li"), sp = document.createElement("span"), b = document.createElement("button");
      sp.textContent = l.text;
      b.type = "button";
      b.className = "plain";
      b.textContent = "Play";
      b.setAttribute("aria-label", `Play the line: ${l.text}`);
      b.addEventListener("click", () => speak(l.text, l.shape));
      li.append(sp, b);
      ul.append(li);
    }
  }
  function loadList() {
    try { const v = JSON.parse(localStorage.getItem(LIST_KEY) || "[]"); return Array.isArray(v) ? v : []; }
    catch { return []; }
  }
  function saveList(list) { localStorage.setItem(LIST_KEY, JSON.stringify(list)); showList(); }
  function keep() {
    if (!current) return;
    const list = loadList().filter((x) => !sameShape(x, current));
    const texts = lines.filter((l) => sameShape(l.shape, current)).map((l) => l.text).slice(0, 8);
    list.push({...current, lines: texts});
    saveList(list);
    say(`Kept seed ${current.seed} (${list.length} in the shortlist).`);
  }
  function showList() {
    const ul = $("shortlist"), list = loadList();
    ul.replaceChildren();
    list.forEach((p, i) => {
      const li = document.createElement("li"), img = new Image(48, 48), sp = document.createElement("span");
      img.alt = "";
      img.src = faceUrl(p);
      sp.textContent = `seed ${describe(p)}` + (p.lines && p.lines.length ? ` - ${p.lines.length} line(s)` : "");
      const open = document.createElement("button"), del = document.createElement("button");
      open.type = del.type = "button";
      open.className = del.className = "plain";
      open.textContent = "Open";
      del.textContent = "Remove";
      open.setAttribute("aria-label", `Open seed ${p.seed}`);
      del.setAttribute("aria-label", `Remove seed ${p.seed} from the shortlist`);
      open.addEventListener("click", () => { setShape(p); redraw(); $("shape").focus(); });
      del.addEventListener("click", () => { const l = loadList(); l.splice(i, 1); saveList(l); });
      li.append(img, sp, open, del);
      ul.append(li);
    });
    $("export").disabled = list.length === 0;
    $("clear").disabled = list.length === 0;
  }
  function setShape(p) {
    $("s-seed").value = p.seed;
    $("s-gender").value = p.gender || "";
    $("s-age").value = p.age ?? "";
    $("s-accent").value = p.accent || "";
    $("s-aged").value = p.aged || 0;
    $("s-family").value = p.family ? String(p.family) : "";
    $("s-blend").value = p.blend ?? "";
    $("s-blend-t").value = p.blend_t ?? 0.5;
    for (const l of p.lines || []) addLine(p, l);
  }
  async function exportList() {
    const list = loadList();
    if (!list.length) return;
    $("export").disabled = true;
    say(`Exporting ${list.length} persona(s)…`);
    try {
      const r = await fetch(url("export.zip"), {method: "POST", headers: {"content-type": "application/json"},
                                                 body: JSON.stringify({personas: list})});
      if (!r.ok) throw new Error(await apiError(r));
      const blob = await r.blob();
      studio.lastExport = blob;
      const a = document.createElement("a");
      a.href = URL.createObjectURL(blob);
      a.download = "personas.zip";
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(a.href), 60000);
      say(`Exported ${list.length} persona(s) as personas.zip.`);
    } catch (e) {
      studio.errors.push(String(e.message));
      say(`Export failed: ${e.message}`);
    } finally {
      $("export").disabled = false;
    }
  }

  // ------------------------------------------------------------------------------------ wiring
  for (const id of ["b-start", "b-gender", "b-age"]) $(id).addEventListener("change", browse);
  $("browse-form").addEventListener("submit", (e) => { e.preventDefault(); browse(); });
  $("b-prev").addEventListener("click", () => { $("b-start").value = Math.max(0, (num($("b-start")) ?? 0) - PAGE); browse(); });
  $("b-next").addEventListener("click", () => { $("b-start").value = (num($("b-start")) ?? 0) + PAGE; browse(); });
  for (const id of ["s-seed", "s-gender", "s-age", "s-accent", "s-aged", "s-family", "s-blend", "s-blend-t"])
    $(id).addEventListener("change", redraw);
  $("s-blend-t").addEventListener("input", () => { $("s-blend-t-v").textContent = $("s-blend-t").value; });
  $("shape-form").addEventListener("submit", (e) => { e.preventDefault(); redraw(); });
  $("s-another").addEventListener("click", () => {
    $("s-seed").value = Math.floor(Math.random() * 1e6);
    redraw();
  });
  $("say-form").addEventListener("submit", (e) => { e.preventDefault(); speak($("s-text").value); });
  $("s-keep").addEventListener("click", keep);
  $("export").addEventListener("click", exportList);
  $("clear").addEventListener("click", () => saveList([]));
  studio.clock = () => (ctx ? ctx.currentTime : 0);
  studio.audioState = () => (ctx ? ctx.state : "none");
  studio.speak = speak;
  studio.redraw = redraw;
  studio.exportList = exportList;

  browse();
  redraw();
  showList();
  requestAnimationFrame(animate);
})();
