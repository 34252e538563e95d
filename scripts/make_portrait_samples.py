"""Write samples/portrait/: the mouth-shape atlases of the batch sample's personas 0-2 and a video
of persona 0 saying its first line (its committed samples/batch/0/voice_00.wav and viseme track).

    python scripts/make_portrait_samples.py
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    import soundfile as sf

    from digitalhuman.fusion import fuse
    from digitalhuman.persona import persona_latent
    from digitalhuman.pipeline import PersonaPipeline
    from digitalhuman.portrait import load_directions, make_atlas, render_video

    out = ROOT / "samples" / "portrait"
    out.mkdir(exist_ok=True)
    pipe = PersonaPipeline.from_pretrained(voice=False)
    directions = load_directions()
    for seed in (0, 1, 2):
        latent = persona_latent(seed)
        atlas = make_atlas(pipe.face, directions, latent, fuse(pipe.prior, latent).traits, pipe.psi)
        (out / f"{seed}.mouths.png").write_bytes(atlas.png_bytes())
        (out / f"{seed}.mouths.json").write_bytes(atlas.json_bytes())
        if seed == 0:
            doc = json.loads((ROOT / "samples" / "batch" / "0" / "persona.json").read_text())
            line = doc["lines"][0]
            audio, sr = sf.read(ROOT / "samples" / "batch" / "0" / line["audio"], dtype="float32")
            (out / "0.voice_00.mp4").write_bytes(render_video(atlas, audio, sr, line["visemes"], seed=seed))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
