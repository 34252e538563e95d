"""Face -> voice, voice -> face and persona algebra through the pipeline (tiny models)."""

import json

import numpy as np
import pytest
from PIL import Image

from digitalhuman.cli import main
from digitalhuman.persona import PersonaError
from digitalhuman.pipeline import PersonaPipeline, portrait


@pytest.fixture(scope="module")
def pipe(tiny_weights):
    return PersonaPipeline.from_pretrained(tiny_weights)


def test_from_face_keeps_or_generates_portrait(pipe):
    img = (np.random.default_rng(0).random((40, 40, 3)) * 255).astype(np.uint8)
    kept = pipe.from_face(img, seed=1, keep_face=True, voice=False)
    made = pipe.from_face(img, seed=1, voice=False)
    # the kept portrait takes the generator's size (from its config; 16 px for the tiny model)
    assert kept.face.shape == made.face.shape == (pipe.face.cfg.resolution,) * 2 + (3,) == (16, 16, 3)
    assert kept.traits["gender"] in ("female", "male") and made.traits == kept.traits
    assert np.array_equal(kept.face, portrait(img, 16)) and not np.array_equal(kept.face, made.face)
    # a 300x240 (W x H) picture: the centred 240x240 square, resized
    wide = (np.random.default_rng(1).random((240, 300, 3)) * 255).astype(np.uint8)
    wide[:, :30] = 0  # the 30 px on each side that the crop drops
    wide[:, -30:] = 0
    out = pipe.from_face(wide, seed=1, keep_face=True, voice=False).face
    assert np.array_equal(out, np.asarray(Image.fromarray(wide[:, 30:270]).resize((16, 16), Image.LANCZOS)))
    with pytest.raises(PersonaError):
        pipe.from_face(np.zeros((4, 4, 3), np.uint8))


def test_from_voice_takes_traits_and_voice_from_the_clip(pipe):
    clip = pipe.say(pipe(seed=9, face=False), "Hello there, my friend, how are you today?")
    p = pipe.from_voice(clip.audio, clip.sample_rate, seed=3, lines=["Yes."])
    assert p.traits["gender"] in ("female", "male") and 16 <= p.traits["age"] <= 90
    assert "from_voice" in p.origin and len(p.lines) == 1 and p.face is not None


def test_blend_sibling_aged(pipe):
    a, b = pipe(seed=10, gender="female", age=30), pipe(seed=11, gender="male", age=70)
    mid = pipe.blend(a, b, 0.5)
    assert 45 <= mid.traits["age"] <= 55 and {k: mid.origin["blend"][k] for k in "abt"} == {"a": 10, "b": 11, "t": 0.5}
    assert sum(mid.origin["blend"]["groups"]) == pytest.approx(1.0)  # face_from_persona.py rebuilds blends from it
    assert np.array_equal(pipe.blend(a, b, 0.0).face, a.face)
    c, d = pipe(seed=12, race="asian"), pipe(seed=13, race="black")
    half = pipe.blend(c, d, 0.5)  # the face mixes the two groups; traits name the one of b from t = 0.5
    assert half.traits["race"] == "black"
    assert not np.array_equal(half.face, pipe.render(half.latent, half.traits, voice=False).face)
    assert np.array_equal(pipe.blend(c, d, 1.0).face, pipe.render(pipe.blend(c, d, 1.0).latent, d.traits, voice=False).face)
    with pytest.raises(PersonaError):
        pipe.blend(a, b, 1.5)
    s1, s2 = pipe.sibling(a, 1), pipe.sibling(a, 2)
    assert s1.traits["race"] == a.traits["race"] and not np.array_equal(s1.face, s2.face)
    assert s1.traits["gender"] == s2.traits["gender"] == "female"  # the persona's gender by default
    assert all(abs(s.traits["age"] - 30) <= 6 for s in (s1, s2))
    brothers = [pipe.sibling(a, k, gender="male") for k in (1, 2, 3)]
    assert all(s.traits["gender"] == "male" and s.traits["female"] < 0.5 for s in brothers)
    assert np.array_equal(brothers[0].latent, s1.latent)  # same relative, other gender
    drawn = {pipe.sibling(a, k, gender=None).traits["gender"] for k in range(1, 13)}
    assert drawn == {"female", "male"}
    with pytest.raises(PersonaError, match="gender"):
        pipe.sibling(a, 1, gender="sister")
    old = pipe.aged(a, 30)
    assert old.traits["age"] == 60 and old.traits["gender"] == "female" and np.array_equal(old.latent, a.latent)


def test_cli_fusion_commands(tiny_weights, tmp_path, capsys):
    w = ["--weights", str(tiny_weights)]
    from PIL import Image

    Image.fromarray((np.random.default_rng(1).random((32, 32, 3)) * 255).astype(np.uint8)).save(tmp_path / "f.png")
    assert main(w + ["create", "--from-face", str(tmp_path / "f.png"), "--keep-face", "--out", str(tmp_path / "ff")]) == 0
    with Image.open(tmp_path / "ff" / "face.png") as im:
        assert im.size == (16, 16)  # the tiny generator's size, not the 32x32 given
    assert main(w + ["blend", "--a", "1", "--b", "2", "--t", "0.25", "--out", str(tmp_path / "bl")]) == 0
    assert main(w + ["family", "--seed", "4", "--members", "2", "--out", str(tmp_path / "fam")]) == 0
    assert sorted(p.name for p in (tmp_path / "fam").iterdir()) == ["0", "1", "2"]
    assert main(w + ["family", "--seed", "4", "--members", "1", "--gender", "female", "--out", str(tmp_path / "f2")]) == 0
    assert json.loads((tmp_path / "f2" / "1" / "persona.json").read_text())["traits"]["gender"] == "female"
    assert main(w + ["create", "--seed", "4", "--aged", "10", "--out", str(tmp_path / "old")]) == 0
    (tmp_path / "bad.png").write_bytes(b"not an image")
    assert main(w + ["create", "--from-face", str(tmp_path / "bad.png"), "--out", str(tmp_path / "x")]) == 1
    assert "not a readable image" in capsys.readouterr().err
    assert main(w + ["create", "--out", str(tmp_path / "y")]) == 1
    assert main(w + ["blend", "--a", "1", "--b", "2", "--t", "2", "--out", str(tmp_path / "z")]) == 1
