"""Talking portraits (digitalhuman.portrait): the atlas and the video, on a few personas of the
shipped face generator and portrait directions (fast: three faces per atlas, one short video)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from digitalhuman.checkpoint import CheckpointError
from digitalhuman.fusion import fuse
from digitalhuman.persona import persona_latent
from digitalhuman.pipeline import DEFAULT_PSI, PersonaPipeline
from digitalhuman.portrait import FRAMES, SHAPES, VISEME_TO_SHAPE, load_directions, make_atlas, render_video
from digitalhuman.portrait.atlas import atlas_masks
from digitalhuman.portrait.video import FPS, blink_times, decode_video, render_frames
from digitalhuman.voice.visemes import VISEMES


@pytest.fixture(scope="module")
def pipe():
    return PersonaPipeline.from_pretrained(voice=False)


@pytest.fixture(scope="module")
def directions():
    return load_directions()


def atlas_of(pipe, directions, seed):
    latent = persona_latent(seed)
    traits = fuse(pipe.prior, latent).traits
    return make_atlas(pipe.face, directions, latent, traits, DEFAULT_PSI), latent, traits


@pytest.fixture(scope="module")
def atlas(pipe, directions):
    return atlas_of(pipe, directions, 3)


def regions(directions, latent, traits, R):
    mouth, eyes = atlas_masks(directions, latent, traits, R)
    return mouth > 0, eyes > 0


def test_atlas_frames_size_and_neutral_is_the_portrait(pipe, atlas):
    a, latent, _ = atlas
    p = pipe(seed=3, voice=False)
    assert a.frames.shape == (len(FRAMES), 128, 128, 3) and a.frames.dtype == np.uint8
    assert np.array_equal(a.frame("neutral"), p.face)  # frame 0 is face.png, bit for bit
    assert a.image().shape == (128, 128 * len(FRAMES), 3)


def test_atlas_is_deterministic(pipe, directions, atlas):
    again, _, _ = atlas_of(pipe, directions, 3)
    assert again.png_bytes() == atlas[0].png_bytes() and again.json_bytes() == atlas[0].json_bytes()
    other, _, _ = atlas_of(pipe, directions, 4)
    assert other.png_bytes() != atlas[0].png_bytes()


def test_mouth_frames_change_the_mouth_only(directions, atlas):
    a, latent, traits = atlas
    mouth, eyes = regions(directions, latent, traits, a.size)
    neutral = a.frame("neutral").astype(int)
    for s in SHAPES:
        d = np.abs(a.frame(s).astype(int) - neutral).max(-1)
        assert d[~mouth].max() == 0, s  # outside the mouth region: the neutral face's pixels
    closed, wide_open = a.frame("X").astype(int), a.frame("D").astype(int)
    d = np.abs(closed - wide_open).mean(-1)
    assert d[mouth].mean() > 8 and d[~mouth].max() == 0
    for b in ("blink_half", "blink"):
        d = np.abs(a.frame(b).astype(int) - closed).max(-1)
        assert d[~eyes].max() == 0 and d[eyes].mean() > 2, b
    assert np.abs(a.frame("blink").astype(int) - closed)[eyes].mean() > np.abs(a.frame("blink_half").astype(int)
                                                                               - closed)[eyes].mean()


def test_atlas_json_maps_every_viseme(atlas, tmp_path):
    a = atlas[0]
    assert a.save(tmp_path) == ["mouths.png", "mouths.json"]
    assert (tmp_path / "mouths.png").read_bytes() == a.png_bytes()
    j = json.loads((tmp_path / "mouths.json").read_bytes())
    assert j["frame_size"] == [128, 128] and len(j["frames"]) == len(FRAMES)
    assert set(j["viseme_to_frame"]) == set(VISEMES)
    for v, i in j["viseme_to_frame"].items():
        assert j["frames"][i]["name"] == VISEME_TO_SHAPE[v] and j["frames"][i]["x"] == i * 128
    assert j["frames"][j["rest_frame"]]["name"] == "X" and [j["frames"][i]["name"] for i in j["blink_frames"]] == [
        "blink_half", "blink"]


def track(duration):
    names = ["sil", "PP", "aa", "SS", "oh", "E", "ou", "nn", "sil"]
    edges = np.linspace(0, duration, len(names) + 1)
    return [{"t_start": round(float(a), 3), "t_end": round(float(b), 3), "viseme": v}
            for a, b, v in zip(edges[:-1], edges[1:], names)]


def test_frames_follow_the_track(atlas):
    a = atlas[0]
    dur = 2.7
    vis = track(dur)
    seed = 11
    frames = render_frames(a, vis, dur, seed)
    assert len(frames) == int(np.ceil(dur * FPS))
    blinking = {int(round(t * FPS)) + j for t in blink_times(dur, seed) for j in range(3)}
    hits = 0
    for seg in vis:
        i = int(((seg["t_start"] + seg["t_end"]) / 2) * FPS)
        if i in blinking:
            continue
        hits += 1
        assert np.array_equal(frames[i], a.frame(VISEME_TO_SHAPE[seg["viseme"]])), seg
    assert hits >= 6


def test_video_decodes_with_the_line_duration_and_is_deterministic(atlas):
    a = atlas[0]
    sr, dur = 22050, 2.0
    t = np.arange(int(sr * dur)) / sr
    audio = (0.3 * np.sin(2 * np.pi * 220 * t) * (np.sin(2 * np.pi * 2 * t) > 0)).astype(np.float32)
    vis = track(dur)
    data = render_video(a, audio, sr, vis, seed=5)
    assert data == render_video(a, audio, sr, vis, seed=5)
    assert data != render_video(a, audio, sr, vis, seed=6)  # blinks elsewhere
    frames, fps, dec, dsr = decode_video(data)
    assert fps == FPS and len(frames) == int(np.ceil(dur * FPS)) and frames.shape[1:] == (256, 256, 3)
    assert dsr == sr and abs(len(dec) / dsr - dur) < 0.1
    assert np.corrcoef(np.abs(dec[:len(audio)]), np.abs(audio[:len(dec)]))[0, 1] > 0.5  # the line's own sound
    assert data[4:8] == b"ftyp"


def test_directions_refuse_other_files(tmp_path):
    from digitalhuman.portrait.directions import PortraitDirections
    from digitalhuman.weights_card import WEIGHTS_DIR

    with pytest.raises(CheckpointError):
        PortraitDirections.load(WEIGHTS_DIR / "fusion.safetensors")


def test_gallery_shows_the_atlas_on_hover_only_where_there_is_one(tmp_path):
    from digitalhuman.gallery import ATLAS_FRAMES, read_manifest, write_gallery

    assert ATLAS_FRAMES == len(FRAMES)
    rows = [{"seed": s, "folder": f"p{s}", "face": "face.png", "traits": {"gender": "female", "age": 30.0}}
            for s in (1, 2)]
    for r in rows:
        (tmp_path / r["folder"]).mkdir()
    (tmp_path / "p1" / "mouths.png").write_bytes(b"png")
    (tmp_path / "manifest.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    page = write_gallery(tmp_path, read_manifest(tmp_path)).read_text()
    assert page.count('class="top talks"') == 1 and page.count("p1/mouths.png") == 1 and "p2/mouths.png" not in page
    assert f"steps({len(FRAMES)})" in page


def test_jaw_follows_the_loudness_and_only_in_open_shapes(atlas):
    a = atlas[0]
    sr, dur = 16000, 2.0
    t = np.arange(int(sr * dur)) / sr
    audio = (0.5 * np.sin(2 * np.pi * 200 * t) * (t < 1.0) + 0.05 * np.sin(2 * np.pi * 200 * t) * (t >= 1.0))
    for viseme, moves in (("aa", True), ("PP", False)):
        vis = [{"t_start": 0.0, "t_end": dur, "viseme": viseme}]
        loud_quiet = render_frames(a, vis, dur, seed=3, audio=audio, sample_rate=sr)
        plain = render_frames(a, vis, dur, seed=3, audio=audio, sample_rate=sr, jaw=False)
        blinking = {int(round(b * FPS)) + j for b in blink_times(dur, 3) for j in range(3)}
        i_loud, i_quiet = (next(i for i in r if i not in blinking) for r in (range(5, 20), range(30, 45)))
        diff = np.abs(loud_quiet[i_loud].astype(int) - loud_quiet[i_quiet].astype(int)).mean()
        assert (diff > 0.5) == moves, (viseme, diff)
        assert np.array_equal(plain[i_loud], plain[i_quiet])  # without the jaw: the atlas frame itself
