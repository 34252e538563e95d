"""A persona's Kokoro style from the ONNX export alone: numpy only (no torch, no digitalhuman).

``digitalhuman export onnx`` copies this file into the export folder as the reference for engine
code. It reads ``voice_prior.json``, ``voice_packs.npy`` and a ``persona.json`` and writes, per
persona, its voice as a Kokoro voice pack: ``OUT_DIR/<persona folder name>.voice.npy``, float32
``(510, 1, 256)``, row ``n - 1`` = the style for a chunk of ``n`` phoneme symbols (the layout of
Kokoro's own stock voices), and ``<name>.voice.json`` (speed, accent, the age cues)::

    python voice_style_from_persona.py EXPORT_DIR PERSONA_DIR [PERSONA_DIR ...] --out OUT_DIR

The arithmetic is digitalhuman's (``PersonaVoice.weights`` + ``VoicePrior.style``), in float64,
then float32; the same numpy gives the same bytes. With ``voice`` = persona.json's ``voice``:

- centre ``c`` (V,): with ``mix_<stock voice>`` keys, ``c[v] += weight`` in the file's order, then
  ``c /= c.sum()``; otherwise the gender / accent mix of the four groups' means: for
  ``(fv, fw)`` in ``((1, female), (0, 1 - female))`` and ``(bv, bw)`` in ``((1, british), (0, 1 - british))``,
  the voices ``m`` with ``female == fv`` and ``british == bv`` get
  ``c[m] += fw * bw * centre_weights[m] / sum(centre_weights[m])``
  (when ``fw * bw > 0`` and ``m`` is not empty);
- ``z_spk[k] = voice["s%02d" % k]`` for ``k < K_S``, ``z_pro[k] = voice["p%02d" % k]`` for ``k < K_P``
  (0 when absent); ``w_spk = c + (z_spk * sd_spk) @ A_spk``, ``w_pro = c + (z_pro * sd_pro) @ A_pro``;
- for ``n`` symbols: ``row = packs[:, clamp(n, 1, 510) - 1, :]`` as float64 (V, 256);
  ``style = float32(concat(w_spk @ row[:, :128], w_pro @ row[:, 128:]))``.

Not here (engines must do their own or use digitalhuman's WAVs): ``pitch_st``, which digitalhuman
applies inside Kokoro (its F0 curve ``/encoder/Squeeze_output_0`` times ``2 ** (pitch_st / 12)``),
a child's age cues (``child``, ``f0_hz``, ``formant``: TD-PSOLA pitch change and resampling after
Kokoro), the loudness normalisation and the pauses between sentences. A persona made with
another voice prior (persona.json ``models.voice_prior.sha256`` is not the export's) is refused:
its coefficients would name other directions, i.e. another voice.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

PRIOR_FILE = "voice_prior.json"
PACKS_FILE = "voice_packs.npy"
STYLE_HALF = 128  # the first 128 numbers carry who speaks, the last 128 the prosody


def load_prior(export_dir: str | Path) -> dict:
    """``voice_prior.json`` with its arrays as numpy: ``names`` (V,), ``female`` / ``british`` (V,)
    bool, ``A_spk`` (K_S, V), ``sd_spk`` (K_S,), ``A_pro`` (K_P, V), ``sd_pro`` (K_P,) float64,
    ``packs`` (V, 510, 256) float32."""
    export_dir = Path(export_dir)
    doc = json.loads((export_dir / PRIOR_FILE).read_text(encoding="utf-8"))
    prior = {"names": list(doc["names"]), "sha256": doc["source_model"]["sha256"],
             "female": np.asarray(doc["female"], bool), "british": np.asarray(doc["british"], bool),
             "centre_weights": np.asarray(doc.get("centre_weights", [1.0] * len(doc["names"])), np.float64)}
    for k in ("A_spk", "sd_spk", "A_pro", "sd_pro"):
        prior[k] = np.asarray(doc[k], np.float64)
    prior["packs"] = np.asarray(np.load(export_dir / doc["packs"]["file"]), np.float32)
    V = len(prior["names"])
    if prior["packs"].shape[0] != V or prior["A_spk"].shape[1] != V or prior["A_pro"].shape[1] != V:
        raise ValueError(f"{PRIOR_FILE} and {doc['packs']['file']} disagree on the number of stock voices")
    return prior


def voice_weights(prior: dict, voice: dict) -> tuple[np.ndarray, np.ndarray]:
    """``(w_spk, w_pro)`` (V,) float64: the persona's weights over the stock packs."""
    names = prior["names"]
    mix = {k[4:]: v for k, v in voice.items() if k.startswith("mix_")}
    c = np.zeros(len(names))
    if mix:
        unknown = sorted(set(mix) - set(names))
        if unknown:
            raise ValueError(f"unknown stock voice(s) {', '.join(unknown)} in the voice mix")
        for name, x in mix.items():
            c[names.index(name)] += float(x)
        c = c / c.sum()
    else:
        female, british = float(voice["female"]), float(voice["british"])
        for f_on, fw in ((True, female), (False, 1.0 - female)):
            for b_on, bw in ((True, british), (False, 1.0 - british)):
                m = (prior["female"] == f_on) & (prior["british"] == b_on)
                if fw * bw > 0 and m.any():
                    c[m] += fw * bw * prior["centre_weights"][m] / prior["centre_weights"][m].sum()
    z = np.array([voice.get(f"s{i:02d}", 0.0) for i in range(len(prior["sd_spk"]))])
    zp = np.array([voice.get(f"p{i:02d}", 0.0) for i in range(len(prior["sd_pro"]))])
    w_spk = c + (np.asarray(z, np.float64) * prior["sd_spk"]) @ prior["A_spk"]
    w_pro = c + (np.asarray(zp, np.float64) * prior["sd_pro"]) @ prior["A_pro"]
    return w_spk, w_pro


def style(prior: dict, w_spk: np.ndarray, w_pro: np.ndarray, n_symbols: int) -> np.ndarray:
    """The (256,) float32 style for a chunk of ``n_symbols`` phoneme symbols."""
    packs = prior["packs"]
    row = packs[:, min(max(int(n_symbols), 1), packs.shape[1]) - 1, :].astype(np.float64)  # (V, 256)
    return np.concatenate([w_spk @ row[:, :STYLE_HALF], w_pro @ row[:, STYLE_HALF:]]).astype(np.float32)


def voice_pack(prior: dict, voice: dict) -> np.ndarray:
    """The persona's voice as a Kokoro voice pack (510, 1, 256) float32: row ``n - 1`` is ``style(n)``."""
    w_spk, w_pro = voice_weights(prior, voice)
    rows = [style(prior, w_spk, w_pro, n) for n in range(1, prior["packs"].shape[1] + 1)]
    return np.stack(rows)[:, None, :]


def persona_voice(prior: dict, persona: dict, other_prior: bool = False) -> dict:
    """persona.json's ``voice``, checked against the export's voice prior."""
    voice = persona.get("voice")
    if not isinstance(voice, dict) or "s00" not in voice or "speed" not in voice:
        raise ValueError("persona.json has no Kokoro voice (made before digitalhuman's voices v3?)")
    made_with = ((persona.get("models") or {}).get("voice_prior") or {}).get("sha256")
    if made_with is not None and made_with != prior["sha256"] and not other_prior:
        raise ValueError(f"the persona was made with voice prior {made_with[:12]}..., this export holds "
                         f"{prior['sha256'][:12]}...: its numbers would give another voice (--other-prior to "
                         "compute it anyway)")
    return voice


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("export_dir", type=Path)
    ap.add_argument("personas", type=Path, nargs="+", help="persona folders (with persona.json)")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--other-prior", action="store_true",
                    help="compute the style even when the persona was made with another voice prior")
    args = ap.parse_args(argv)
    prior = load_prior(args.export_dir)
    jobs, names = [], {}
    for folder in dict.fromkeys(p.resolve() for p in args.personas):  # all checked before anything is written
        if folder.name in names:
            ap.error(f"two persona folders are named {folder.name!r} ({names[folder.name]}, {folder})")
        names[folder.name] = folder
        try:
            voice = persona_voice(prior, json.loads((folder / "persona.json").read_text(encoding="utf-8")),
                                  args.other_prior)
            pack = voice_pack(prior, voice)
        except (ValueError, KeyError, TypeError, OSError) as e:
            ap.error(f"{folder}: {str(e)[:300]}")
        jobs.append((folder.name, voice, pack))
    args.out.mkdir(parents=True, exist_ok=True)
    for name, voice, pack in jobs:
        np.save(args.out / f"{name}.voice.npy", pack)
        info = {"speed": float(voice["speed"]), "lexicon": "gb" if float(voice["british"]) >= 0.5 else "us",
                "age_cues": {k: float(voice.get(k, d)) for k, d in (("child", 0.0), ("f0_hz", 0.0),
                                                                     ("formant", 1.0), ("pitch_st", 0.0))},
                "age_cues_needed": float(voice.get("child", 0.0)) > 0 or float(voice.get("pitch_st", 0.0)) != 0}
        (args.out / f"{name}.voice.json").write_text(json.dumps(info, indent=1) + "\n", encoding="utf-8")
    print(f"{args.out}: {len(jobs)} voice pack(s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
