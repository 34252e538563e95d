"""The ``README.txt`` of an ONNX export: every formula an engine needs, with the export's numbers."""

from __future__ import annotations

from typing import Any

__all__ = ["readme_text", "FACE_FILE", "VOICE_FILE", "BASE_VOICE_FILE", "VISEME_MAP_FILE", "LIPSYNC_MAP_FILE",
           "REFERENCE_SCRIPT"]

FACE_FILE = "face_generator.onnx"
VOICE_FILE = "voice_prior_decoder.onnx"
BASE_VOICE_FILE = "base_voice_seeded.onnx"
VISEME_MAP_FILE = "phoneme_to_viseme.json"
LIPSYNC_MAP_FILE = "lipsync_mapping.json"
REFERENCE_SCRIPT = "face_from_persona.py"


def readme_text(manifest: dict[str, Any]) -> str:
    f, v = manifest["files"][FACE_FILE], manifest["files"][VOICE_FILE]
    face_src, voice_src = f["source_model"], v["source_model"]
    R = f["resolution"]
    zs = f["z_from_persona"]
    face_lic = face_src.get("licence", "not stated in the weights card; check where the weights came from")
    voice_lic = voice_src.get("licence", "not stated in the weights card; check where the weights came from")
    return f"""digitalhuman {manifest['package_version']} ONNX export
{'=' * 40}

{FACE_FILE}
    z (B,{f['z_dim']}) float32 standard normal, cond (B,8) float32 -> image (B,3,{R},{R}) float32 in [-1, 1] (RGB, NCHW).
    cond = [male, female, age_n, white, black, asian, indian, other], computed in float32 as:
      female = 0.5 + {f['gender_strength']:g} * (f - 0.5)    (f = persona female in [0,1]; {f['gender_strength']:g} = gender_strength)
      male   = 1 - female
      age_n  = log1p(clamp(age_years, 0, 116)) / log1p(100) * 2 - 1
      c      = the age_n of {f['age_center_years']:g} years (age_center_years)
      age_n  = clamp(c + {f['age_strength']:g} * (age_n - c), -1, 1)    ({f['age_strength']:g} = age_strength)
      group  = one-hot (or soft weights summing to 1) over white black asian indian other.
    A persona made in Python: z = persona.json latent[{zs['latent_slice'][0]}:{zs['latent_slice'][1]}] * {zs['psi']:g}, f = traits.female,
    age_years = traits.age, group = traits.race (null = white); then, when manifest.json has them, z moves
    by its age_shift (age_shifted) and age_years goes through its age_map (age_mapped).
    Pixels: uint8 = round((clamp(x, -1, 1) + 1) * 127.5), channel-major, row 0 at the top.
    {REFERENCE_SCRIPT} does all of this with numpy + onnxruntime only (no torch):
      python {REFERENCE_SCRIPT} . path/to/npc42 --out faces/
    Weights: {face_src['id']}. Licence: {face_lic}

{VOICE_FILE}
    cond (B,2) = [female, (max(age_years, 16) - {v['age_center']:g}) / {v['age_scale']:g}] (female = persona traits.female),
    eps (B,{v['latent_dim']}) standard normal (a Python persona: latent[132:148]) -> features (B,{len(v['feature_names'])}) in original units,
    columns: {', '.join(v['feature_names'])}.
    The graph presents age itself: the prior is asked for age x = 45 + {v['age_strength']:g} * (age - 45) (age_strength),
    brought smoothly inside its speakers' 16-85 as 50.5 + 34.5 * tanh((x - 50.5) / 34.5). The renderer that turns these features into a persona's voice is not
    in ONNX: a persona's own voice is rendered by digitalhuman (its WAVs, or the HTTP service at run time).
    Weights: {voice_src['id']}. Licence: {voice_lic}

{BASE_VOICE_FILE} (+ {BASE_VOICE_FILE}.json: Piper config with the phoneme id map)
    Piper voice en_US-joe-medium (https://huggingface.co/rhasspy/piper-voices), dataset licence CC0
    (base_voice_MODEL_CARD.txt). The card says the voice was fine-tuned from Piper's lessac voice,
    whose training data has its own licence terms: check them for your use. Edited so that
    its noise is an input (noise_0, noise_1) and its durations an output (durations): the same
    phoneme ids, scales and noise give the same audio. 22,050 Hz, 256 samples per frame.

{VISEME_MAP_FILE}: the voice's phoneme symbols -> the 15 Oculus/Meta visemes (the map digitalhuman uses).
{LIPSYNC_MAP_FILE}: the co-articulation formula and the viseme -> ARKit (52 blendshapes), VRM 1.0 and
    Rhubarb mappings behind digitalhuman's lip-sync files.
manifest.json: sha256, inputs/outputs, opsets, versions, the numbers above and the onnxruntime-vs-PyTorch parity.
Only onnxruntime {manifest['onnxruntime_version']} (CPU, Python) was used to check these files.
The digitalhuman code is MIT licensed.
"""
