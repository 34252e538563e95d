"""The voice part of the ONNX export: what an engine needs to speak with a persona's voice.

Kokoro-82M itself is not copied (92 MB, and it installs from PyPI): the manifest names it (id,
sha256, bytes, the four part packages joined in order, its inputs and outputs, the ``durations``
output digitalhuman adds). Written beside it:

- ``kokoro_vocab.json``: Kokoro's phoneme table ``{symbol: token id}`` (digitalhuman's copy);
- ``voice_packs.npy``: the voice prior's stock packs, float32 ``(V, 510, 256)`` (the shipped float16
  values, exactly);
- ``voice_prior.json``: the stock voices' names and groups, ``A_spk``, ``sd_spk``, ``A_pro``,
  ``sd_pro`` (float64 values written so that they read back exactly);
- ``voice_style_from_persona.py``: persona.json -> the persona's style (numpy only).

``export_voice`` checks that the reference script, run on the written files, gives
``PersonaVoice``'s style bit for bit (float32) for personas of each gender and accent, a child and
a mix of stock voices, at several utterance lengths.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from .checkpoint import atomic_write_bytes, sha256_file
from .export_readme import KOKORO_VOCAB_FILE, VOICE_PACKS_FILE, VOICE_PRIOR_FILE, VOICE_REFERENCE_SCRIPT

__all__ = ["export_voice", "kokoro_entry", "style_parity", "PARITY_LENGTHS"]

PARITY_LENGTHS = (1, 2, 17, 100, 509, 510, 600)  # symbols; 600 is past the packs' last row (clamped)
ROUND_TENSOR = "/encoder/Round_output_0"


def _write(path: Path, data: bytes) -> None:
    atomic_write_bytes(path, data)
    path.chmod(0o644)


def _entry(path: Path, extra: dict[str, Any]) -> dict[str, Any]:
    return {"file": path.name, "sha256": sha256_file(path), "bytes": path.stat().st_size, **extra}


def kokoro_entry(io_spec) -> dict[str, Any]:
    """The Kokoro model as the manifest names it; ``io_spec(model) -> {"inputs", "outputs"}``."""
    import importlib.metadata as md

    import onnx

    from .voice import kokoro

    blob = kokoro.model_bytes()  # sha256-checked
    model = onnx.load_from_string(blob)
    spec = io_spec(model)
    packages = [p.replace("_", "-") for p in kokoro.PART_PACKAGES]
    versions = {}
    for p in packages:
        try:
            versions[p] = md.version(p)
        except md.PackageNotFoundError:  # the parts were found as modules (model_bytes), not as installed dists
            versions[p] = None
    return {
        "id": kokoro.MODEL_ID,
        "included": False,
        "sha256": kokoro.KOKORO_SHA256,
        "bytes": len(blob),
        "source": {"pypi_packages": [f"{p}=={v}" if v else p for p, v in versions.items()],
                   "file_in_each": "part.bin",
                   "join": "the four part.bin files' bytes concatenated in order 1, 2, 3, 4 = the model; "
                           "check the sha256 (onnxruntime can load the model from those bytes)"},
        "licence": "weights Apache-2.0 (hexgrad/Kokoro-82M); int8 ONNX export MIT (kokoro-onnx)",
        "opset": {(o.domain or "ai.onnx"): o.version for o in model.opset_import},
        "ir_version": model.ir_version,
        "non_standard_ops": sorted({f"{n.domain}.{n.op_type}" for n in model.graph.node
                                    if n.domain not in ("", "ai.onnx")}),
        "runtime_note": "the non-standard operators are onnxruntime's own (com.microsoft): run it with onnxruntime "
                        "(its C API or bindings); its shapes depend on the input (NonZero, ScatterND, CumSum, Range)",
        "inputs": spec["inputs"],
        "outputs": spec["outputs"],
        "tokens": "int64 (1, n + 2): 0, the n phoneme ids of the chunk (kokoro_vocab.json), 0; 1 <= n <= "
                  f"{kokoro.MAX_SYMBOLS}",
        "style": "float32 (1, 256): the persona's style for n symbols (see style below)",
        "speed": "float32 (1,): persona.json voice.speed",
        "audio": f"float32 samples at {kokoro.SAMPLE_RATE} Hz",
        "sample_rate": kokoro.SAMPLE_RATE,
        "max_symbols": kokoro.MAX_SYMBOLS,
        "durations": {"tensor": ROUND_TENSOR, "output": kokoro.DURATIONS, "hop_samples": kokoro.HOP,
                      "added_by": "digitalhuman, in memory: an Identity node from the tensor to a graph output "
                                  "'durations' (float, (1, n + 2))",
                      "meaning": f"frames per token, the two pads included; x {kokoro.HOP} samples each: the "
                                 "audio's length is exactly 600 * sum(durations); digitalhuman times visemes "
                                 "and words with them"},
        "determinism": "no noise: the same tokens, style and speed give the same samples, for any thread count",
    }


STYLE_STEPS = [
    "voice = persona.json 'voice'; V stock voices, K_S = len(sd_spk), K_P = len(sd_pro) (voice_prior.json); "
    "all arithmetic in float64",
    "centre c (V,) = 0; with mix_<name> keys: c[index of name] += weight for each key in the file's order, "
    "then c = c / sum(c)",
    "without mix_ keys: for (fv, fw) in ((true, female), (false, 1 - female)), for (bv, bw) in ((true, british), "
    "(false, 1 - british)): m = the voices with female == fv and british == bv; if fw * bw > 0 and m is not "
    "empty: c[m] += fw * bw * centre_weights[m] / sum(centre_weights[m])",
    "z_spk[k] = voice['s%02d' % k] for k < K_S, z_pro[k] = voice['p%02d' % k] for k < K_P (0 when absent)",
    "w_spk = c + (z_spk * sd_spk) @ A_spk; w_pro = c + (z_pro * sd_pro) @ A_pro   ((V,) each)",
    "for a chunk of n symbols: row = float64(packs[:, clamp(n, 1, 510) - 1, :])   ((V, 256))",
    "style = float32(concat(w_spk @ row[:, :128], w_pro @ row[:, 128:]))   ((256,); Kokoro's input (1, 256))",
]


def _prior_doc(prior, source: dict[str, Any]) -> dict[str, Any]:
    from .voice.prior import GROUPS

    groups = {g: [n for n, f, b in zip(prior.names, prior.female, prior.british) if 2 * int(f) + int(b) == i]
              for i, g in enumerate(GROUPS)}
    V, P, D = prior.packs.shape
    f64 = lambda a: np.asarray(a, np.float64).tolist()  # noqa: E731  (json writes floats that read back exactly)
    return {"format_version": 1, "source_model": source, "names": list(prior.names),
            "female": [bool(x) for x in prior.female], "british": [bool(x) for x in prior.british],
            "groups": groups, "centre_weights": f64(prior.centre_weights), "k_spk": prior.k_spk, "k_pro": prior.k_pro,
            "A_spk": f64(prior.A_spk), "sd_spk": f64(prior.sd_spk), "A_pro": f64(prior.A_pro),
            "sd_pro": f64(prior.sd_pro),
            "packs": {"file": VOICE_PACKS_FILE, "dtype": "float32", "shape": [V, P, D],
                      "row": "packs[v, n - 1, :] is stock voice v's style for n symbols"}}


def _parity_voices(pv) -> list[dict[str, float]]:
    """Voice parameters as the pipeline makes them: each gender and accent, a child, an old man, and
    two mixes of stock voices (codes from PCG64(seed))."""
    names = pv.prior.names
    cases = [(0.9, 30.0, "us", None), (0.1, 45.0, "us", None), (0.8, 70.0, "gb", None), (0.2, 75.0, "gb", None),
             (0.1, 9.0, "us", None), (0.6, 25.0, "us", {names[0]: 0.7, names[-1]: 0.3}),
             (0.2, 40.0, "gb", {names[len(names) // 2]: 1.0})]
    out = []
    for seed, (female, age, accent, like) in enumerate(cases):
        rng = np.random.Generator(np.random.PCG64(seed))
        code, sty = rng.standard_normal(pv.prior.k_spk), rng.standard_normal(pv.prior.k_pro + 1)
        out.append(pv.params(female, age, code, sty, accent=accent, like=like))
    return out


def style_parity(pv, export_dir: Path) -> tuple[bool, int]:
    """Does the reference script, on the files in ``export_dir``, give ``pv``'s styles bit for bit?
    -> (identical, number of styles compared)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("_dh_voice_reference", export_dir / VOICE_REFERENCE_SCRIPT)
    ref = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ref)
    prior = ref.load_prior(export_dir)
    same, n = True, 0
    for params in _parity_voices(pv):
        w = pv.weights(params)
        r = ref.voice_weights(prior, json.loads(json.dumps(params)))  # as read back from persona.json
        for length in PARITY_LENGTHS:
            a, b = pv.prior.style(*w, length), ref.style(prior, *r, length)
            same = same and a.dtype == b.dtype == np.float32 and a.tobytes() == b.tobytes()
            n += 1
    return same, n


def export_voice(entry, out: Path, io_spec) -> tuple[dict[str, dict[str, Any]], dict[str, Any], dict[str, Any]]:
    """Write the voice files for the voice prior of card entry ``entry``.

    -> (manifest file entries, the manifest's ``voice`` section, parity figures)."""
    import io

    from .voice.persona_voice import PersonaVoice
    from .voice.prior import VoicePrior

    prior = VoicePrior.load(entry.file, entry.sha256)
    source = {"id": entry.id, "sha256": entry.sha256,
              **{k: entry.info[k] for k in ("trained_on", "licence") if k in entry.info}}
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(prior.packs, np.float32))
    _write(out / VOICE_PACKS_FILE, buf.getvalue())
    _write(out / VOICE_PRIOR_FILE, (json.dumps(_prior_doc(prior, source), indent=1) + "\n").encode())
    vocab = Path(__file__).resolve().parent / "voice" / "kokoro_vocab.json"
    _write(out / KOKORO_VOCAB_FILE, vocab.read_bytes())
    shutil.copyfile(Path(__file__).resolve().parent / VOICE_REFERENCE_SCRIPT, out / VOICE_REFERENCE_SCRIPT)

    V, P, D = prior.packs.shape
    files = {
        VOICE_PACKS_FILE: _entry(out / VOICE_PACKS_FILE, {"dtype": "float32", "shape": [V, P, D],
                                                          "what": "the voice prior's stock voice packs"}),
        VOICE_PRIOR_FILE: _entry(out / VOICE_PRIOR_FILE, {"what": "stock voice names and groups, A_spk, sd_spk, "
                                                                  "A_pro, sd_pro", "source_model": source}),
        KOKORO_VOCAB_FILE: _entry(out / KOKORO_VOCAB_FILE, {"what": "Kokoro's phoneme table {'vocab': {symbol: "
                                                                    "token id}}; id 0 is the pad"}),
        VOICE_REFERENCE_SCRIPT: _entry(out / VOICE_REFERENCE_SCRIPT, {"what": "persona.json -> the persona's "
                                                                              "style, numpy only"}),
    }
    section = {
        "model": kokoro_entry(io_spec),
        "vocabulary": KOKORO_VOCAB_FILE,
        "prior": {"source_model": source, "packs": VOICE_PACKS_FILE, "arrays": VOICE_PRIOR_FILE,
                  "stock_voices": list(prior.names)},
        "style": STYLE_STEPS,
        "persona_voice_keys": "female, british (0-1), mix_<stock voice> (optional weights), s00.. (speaker), "
                              "p00.. (prosody), speed, pitch_st, child, f0_hz, formant",
        "prior_must_match": "persona.json models.voice_prior.sha256 == prior.source_model.sha256; another prior's "
                            "coefficients give another voice",
        "phonemes": "the engine's job: English text -> Kokoro phoneme symbols (misaki's us / gb lexicons, Kokoro's "
                    "own G2P, or digitalhuman's text front end); lexicon gb when voice.british >= 0.5, else us; "
                    "symbols not in kokoro_vocab.json are dropped",
        "chunks": "digitalhuman cuts a line at sentence / phrase boundaries into chunks of at most 400 symbols; "
                  "each chunk gets the style of its own length; a chunk that starts a new sentence follows "
                  "0.15 s of silence",
        "not_in_export": [
            "pitch: voice.pitch_st (semitones; women's voices carry the pitch map, old voices their age) "
            "multiplies Kokoro's F0 curve inside the model (the tensor /encoder/Squeeze_output_0 times "
            "2 ** (pitch_st / 12) before the decoder: digitalhuman.voice.kokoro.graph_with_durations adds "
            "that input, f0_scale, to this model); an engine that runs the model as it is gives the voice "
            "Kokoro's own pitch",
            "age cues: voice.child > 0 (child F0 f0_hz and vocal-tract scale formant, with pitch_st) are "
            "TD-PSOLA pitch changes and resampling digitalhuman applies after Kokoro; an engine that skips "
            "them gives children the adult voice",
            "loudness: each chunk scaled to -20 dBFS RMS over its samples with |x| > 1e-3, then peaks "
            "kept at or below 0.891",
            "text to phonemes (see phonemes)",
        ],
        "reference": f"{VOICE_REFERENCE_SCRIPT}: the style arithmetic with numpy, persona.json -> "
                     "<name>.voice.npy (510, 1, 256) float32, a Kokoro voice pack",
    }
    same, n = style_parity(PersonaVoice(prior), out)
    return files, section, {"voice_style_bit_identical": same, "voice_style_compared": n}
