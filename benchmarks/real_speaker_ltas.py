"""How much of the speaker judge's distance between two real people is their long-term spectrum?

Issue "voices v2" asks for personas as far apart as real speakers (resemblyzer cosine <= 0.65 within a
gender). The renderer can give each persona its own long-term spectrum (vocal-tract scale + a static
filter), so this measures what that can buy on real voices: for random pairs of Common Voice speakers
of one gender (clips over 4 s), speaker B's long-term average spectrum is equalised to speaker A's (a
static filter on 80 mel bands, clipped at +-24 dB: the renderer's own ``dsp.mel_band_gains_filter``,
so B's fine structure is kept)
and the cosine to A is measured again.

    python benchmarks/real_speaker_ltas.py [--pairs 24] [--data ../shared/data/commonvoice61]

Measured here (2026-11-28, 24 pairs, 12 of each gender): cosine A-B 0.615, A-(B equalised to A) 0.676,
B-(B equalised) 0.819; the spectra differed by 6.4 dB (mean absolute, over bands). Matching the whole
long-term spectrum closes 0.06 of the 0.385 that separates two real people: the rest is in what
changes over time and in the excitation, which one base voice shares across all personas.
Needs the judges (``scripts/install-judges.sh``).
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

SR, N_FFT, HOP, N_MELS, FMIN, FMAX = 22050, 1024, 256, 80, 60.0, 7600.0
CLIP_DB = 24.0


def ltas_db(y: np.ndarray, mel: np.ndarray) -> np.ndarray:
    """Long-term average spectrum (N_MELS,) in dB: power averaged over frames, then the log."""
    import librosa

    power = np.abs(librosa.stft(y, n_fft=N_FFT, hop_length=HOP)) ** 2
    return 10 * np.log10(mel @ power.mean(1) + 1e-10)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pairs", type=int, default=24)
    ap.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared" / "data" / "commonvoice61"))
    ap.add_argument("--seed", type=int, default=5)
    a = ap.parse_args()
    import librosa

    from digitalhuman.evaluate.voice_judges import VoiceJudges
    from digitalhuman.voice import dsp

    root = Path(a.data)
    rows = [r for r in csv.DictReader(open(root / "clips.csv", newline="")) if float(r["duration_s"]) > 4]
    mel = librosa.filters.mel(sr=SR, n_fft=N_FFT, n_mels=N_MELS, fmin=FMIN, fmax=FMAX)
    judges, rng, out = VoiceJudges(threads=1), np.random.default_rng(a.seed), []
    for k in range(a.pairs):
        gender = "female" if k % 2 else "male"
        cand = [r for r in rows if r["gender"] == gender]
        i, j = rng.choice(len(cand), 2, replace=False)
        if cand[i]["speaker_id"] == cand[j]["speaker_id"]:
            continue
        ya, _ = librosa.load(root / cand[i]["file"], sr=SR)
        yb, _ = librosa.load(root / cand[j]["file"], sr=SR)
        d = ltas_db(ya, mel) - ltas_db(yb, mel)
        d = np.clip(d - d.mean(), -CLIP_DB, CLIP_DB)
        yq = dsp.apply_fir(yb, dsp.mel_band_gains_filter(d, SR, FMIN, FMAX))
        ea, eb, eq = (judges.embed(y, SR) for y in (ya, yb, yq))
        out.append((float(ea @ eb), float(ea @ eq), float(eb @ eq), float(np.abs(d).mean())))
        print(f"{gender:>6}: A-B {out[-1][0]:.3f}  A-B equalised {out[-1][1]:.3f}  "
              f"B-B equalised {out[-1][2]:.3f}  |spectrum difference| {out[-1][3]:.1f} dB", flush=True)
    m = np.mean(out, 0)
    print(f"mean over {len(out)} pairs: A-B {m[0]:.3f}, A-(B equalised to A) {m[1]:.3f}, B-(B equalised) {m[2]:.3f}, "
          f"spectra {m[3]:.1f} dB apart")
    return 0


if __name__ == "__main__":
    sys.exit(main())
