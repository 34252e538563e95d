"""Fit the pitch map of ``digitalhuman/voice/persona_voice.py`` (``PITCH_MAP``).

    python scripts/fit_voice_pitch.py [--n 200] [--seed 50000] [--cv ../shared/data/commonvoice61] --cache DIR

Kokoro side: the own pitch (``PersonaVoice.own_f0``: Kokoro's predicted F0 on ``PITCH_LINES``) of
``--n`` adult personas of each gender from tuning seeds (``--seed``.., never the evaluation seeds
0-10999), age 35, through the shipped voice prior; log F0 mean and sd per gender.

The package maps women only: see ``PITCH_MAP``'s comment for why men keep their own pitch.
Real side: the Common Voice training speakers (``voice.train.is_holdout_speaker`` false) labelled
female or male, one value per speaker (the median of its clips' log F0, as ``voice.features``
measures it); log F0 median and sd (interquartile range / 1.349: mislabelled clips and octave
errors widen the plain sd) per gender. ``--cache``: the judges' cache of the real clips
(``evaluate voices --cache-dir``), which holds their log F0.

Prints ``PITCH_MAP`` to paste, with the figures it came from.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=200, help="personas of each gender")
    ap.add_argument("--seed", type=int, default=50_000, help="first tuning seed")
    ap.add_argument("--cv", default="../shared/data/commonvoice61")
    ap.add_argument("--cache", required=True)
    a = ap.parse_args()

    from digitalhuman.evaluate.voice_judges import real_clips
    from digitalhuman.fusion import SL_STYLE, SL_VOICE
    from digitalhuman.persona import persona_latent
    from digitalhuman.pipeline import PersonaPipeline, accent_of
    from digitalhuman.voice import persona_voice as pv

    identity = {g: {"kokoro": (0.0, 1.0), "real": (0.0, 1.0)} for g in ("female", "male")}
    pv.PITCH_MAP.update(identity)  # own pitch only: the map must not move what it is fitted on
    vm = PersonaPipeline.from_pretrained(face=False).voice
    out: dict = {}
    for g, female in (("female", True), ("male", False)):
        logs = []
        for k in range(a.n):
            lat = persona_latent(a.seed + 2 * k + (0 if female else 1))
            params = vm.params(1.0 if female else 0.0, 35.0, lat[SL_VOICE], lat[SL_STYLE], accent=accent_of(lat))
            logs.append(np.log(vm.own_f0(params)))
        logs = np.array(logs)
        out[g] = {"kokoro": (round(float(np.nanmean(logs)), 4), round(float(np.nanstd(logs)), 4))}
        print(f"personas {g}: n {np.isfinite(logs).sum()}, median {np.exp(np.nanmedian(logs)):.1f} Hz, "
              f"5-95% {np.exp(np.nanpercentile(logs, 5)):.0f}-{np.exp(np.nanpercentile(logs, 95)):.0f} Hz")

    real, _ = real_clips(None, a.cv, a.cache)
    tr = ~real.holdout & np.isfinite(real.log_f0)
    for g, code in (("female", 1), ("male", 0)):
        m = tr & (real.female == code)
        per = np.array([np.median(real.log_f0[m & (real.speaker == s)]) for s in sorted(set(real.speaker[m].tolist()))])
        q1, med, q3 = np.percentile(per, [25, 50, 75])  # robust: labels and F0 tracks of real clips err
        out[g]["real"] = (round(float(med), 4), round(float((q3 - q1) / 1.349), 4))
        out[g]["max"] = round(float(np.percentile(per, 90)), 4)  # the highest a voice is moved to
        print(f"real {g}: {len(per)} speakers, median {np.exp(np.median(per)):.1f} Hz, "
              f"5-95% {np.exp(np.percentile(per, 5)):.0f}-{np.exp(np.percentile(per, 95)):.0f} Hz")
    print("PITCH_MAP = " + json.dumps(out).replace("[", "(").replace("]", ")"))


if __name__ == "__main__":
    main()
