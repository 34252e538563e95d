"""The engine readers' atlas mode: Godot 3 (headless) and the Unity C# reader (compiled by mcs and
run by mono against the Unity stubs) show the atlas frame of the current viseme at the middle of
every viseme segment. Skips without the tools (``bash scripts/install-engines.sh``)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from digitalhuman.voice.visemes import VISEMES

REPO = Path(__file__).resolve().parents[1]
ENGINE = REPO / "samples" / "engine"
GODOT3 = shutil.which("godot3-server")
MCS, MONO = shutil.which("mcs"), shutil.which("mono")
INSTALL = "install it with `bash scripts/install-engines.sh`"


def random_track(seed: int = 0, n: int = 60) -> list[dict]:
    """A contiguous track over every viseme, segments 40-250 ms, no two neighbours alike."""
    rng = np.random.default_rng(seed)
    out, t, prev = [], 0.0, None
    for i in range(n):
        v = VISEMES[i % len(VISEMES)] if i < len(VISEMES) else str(rng.choice([x for x in VISEMES if x != prev]))
        if v == prev:
            v = "aa" if prev != "aa" else "E"
        d = float(rng.uniform(0.04, 0.25))
        out.append({"t_start": round(t, 3), "t_end": round(t + d, 3), "viseme": v})
        t, prev = round(t + d, 3), v
    return out


@pytest.fixture(scope="module")
def persona_dir(tmp_path_factory):
    """A persona folder written by hand (persona.json with one line, its WAV) plus the atlas of a
    shipped-weights persona: the voice is not needed to test the readers' atlas mode."""
    import soundfile as sf

    from digitalhuman.fusion import fuse
    from digitalhuman.persona import persona_latent
    from digitalhuman.pipeline import DEFAULT_PSI, PersonaPipeline
    from digitalhuman.portrait import load_directions, make_atlas

    folder = tmp_path_factory.mktemp("atlas") / "npc"
    folder.mkdir()
    pipe = PersonaPipeline.from_pretrained(voice=False)
    latent = persona_latent(21)
    atlas = make_atlas(pipe.face, load_directions(), latent, fuse(pipe.prior, latent).traits, DEFAULT_PSI)
    (folder / "mouths.png").write_bytes(atlas.png_bytes())
    (folder / "mouths.json").write_bytes(atlas.json_bytes())
    track = random_track()
    sr = 22050
    dur = track[-1]["t_end"]
    t = np.arange(int(sr * dur)) / sr
    sf.write(folder / "voice_00.wav", (0.2 * np.sin(2 * np.pi * 200 * t)).astype(np.float32), sr, subtype="PCM_16")
    doc = {"schema_version": 2, "seed": 21, "traits": {}, "face": "face.png",
           "lines": [{"text": "test", "audio": "voice_00.wav", "sample_rate": sr, "duration_s": dur,
                      "visemes": track, "words": []}]}
    (folder / "persona.json").write_text(json.dumps(doc))
    return folder


def expected_frames(folder: Path) -> tuple[list[dict], dict]:
    table = json.loads((folder / "mouths.json").read_text())
    track = json.loads((folder / "persona.json").read_text())["lines"][0]["visemes"]
    return track, table


@pytest.mark.skipif(GODOT3 is None, reason=f"godot3-server is not installed; {INSTALL}")
def test_godot3_atlas_mode_shows_the_visemes_frame(persona_dir, tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    res = subprocess.run([GODOT3, "--path", str(ENGINE / "godot3"), "--", f"--persona={persona_dir}", "--line=0",
                          "--atlas=1"], capture_output=True, text=True, timeout=180,
                         env={**os.environ, "HOME": str(home), "XDG_DATA_HOME": str(home)})
    out = [ln for ln in res.stdout.splitlines() if ln.startswith("DH_RESULT ")]
    assert out, f"no result from Godot (exit {res.returncode}):\n{res.stdout[-2000:]}\n{res.stderr[-2000:]}"
    r = json.loads(out[-1][len("DH_RESULT "):])
    assert r["error"] == "" and r["atlas_error"] == ""
    track, table = expected_frames(persona_dir)
    mids = r["atlas_midpoints"]
    assert len(mids) == len(track)
    right = [m["frame"] == table["viseme_to_frame"][seg["viseme"]]
             and m["region_x"] == table["frames"][m["frame"]]["x"] for m, seg in zip(mids, track)]
    assert np.mean(right) >= 0.95, [(m, s) for m, s, ok in zip(mids, track, right) if not ok][:5]


@pytest.mark.skipif(MCS is None or MONO is None, reason=f"mono-mcs is not installed; {INSTALL}")
def test_unity_atlas_reader_compiles_and_picks_the_visemes_frame(persona_dir, tmp_path):
    track, table = expected_frames(persona_dir)
    cs_track = ", ".join(f'new Viseme {{ t_start = {s["t_start"]}f, t_end = {s["t_end"]}f, viseme = "{s["viseme"]}" }}'
                         for s in track)
    cs_table = ", ".join(f'new VisemeFrame {{ viseme = "{d["viseme"]}", frame = {d["frame"]} }}'
                         for d in table["viseme_frames"])
    main = tmp_path / "Main.cs"
    main.write_text(f"""using System;
static class Check {{
    static void Main() {{
        var track = new Viseme[] {{ {cs_track} }};
        var table = new VisemeFrame[] {{ {cs_table} }};
        foreach (var v in track) {{
            float mid = (v.t_start + v.t_end) / 2f;
            Console.WriteLine(PersonaMouthAtlas.FrameAt(track, table, mid, {table["rest_frame"]}));
        }}
    }}
}}
""")
    exe = tmp_path / "check.exe"
    res = subprocess.run([MCS, "-warnaserror-", f"-out:{exe}", str(ENGINE / "PersonaLipSync.cs"),
                          str(ENGINE / "unity_stubs" / "UnityEngine.cs"), str(main)],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stdout + res.stderr
    run = subprocess.run([MONO, str(exe)], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    got = [int(x) for x in run.stdout.split()]
    want = [table["viseme_to_frame"][s["viseme"]] for s in track]
    assert len(got) == len(want) and np.mean(np.array(got) == np.array(want)) >= 0.95
