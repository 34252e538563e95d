"""What cutting a line's first sentence for streaming costs in words (Whisper tiny.en), on fresh lines.

  python benchmarks/wer_first_chunk.py [--personas 4] [--seed 70000]

``say`` renders a line as the chunks that ``stream`` yields (``voice/stream.plan_chunks``): the first
sentence's head is rendered on its own so that the first sound comes sooner. This renders the 20
``FRESH_LINES`` below (written for this check, never used to design the cut, unlike the held-out lines
of ``eval_lines.py``) for ``--personas`` personas twice: as shipped, and with the first sentence
whole (``_split_head`` replaced by the plain packing). Prints the word error rate of each (numbers
normalised, as ``evaluate voices`` does), the lines whose errors differ, and one JSON line.
Needs the judges (``scripts/install-judges.sh``).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

FRESH_LINES = (
    "Keep to the road after sunset, because the wolves hunt in the valley.",
    "The harbour master wants a word with you about the missing crates.",
    "If you find my ring, bring it to the chapel and ask for Brother Tomas.",
    "Nobody in this town remembers the name of the first mayor.",
    "Two loaves and a wheel of cheese, that will be 14 coins.",
    "The mountain pass is blocked by snow until the end of March.",
    "I heard singing from the old well last night, and then nothing at all.",
    "Sit down, traveller, and tell me what news you bring from the capital.",
    "My brother sold the farm to a merchant from across the sea.",
    "The lighthouse keeper has not been seen for nine days.",
    "Watch your step on the stairs; the third one is rotten.",
    "We could use a strong arm at the mill before the harvest begins.",
    "The queen's letter arrived this morning with a broken seal.",
    "Tell the captain that the prisoners escaped through the kitchen.",
    "A cup of tea costs 2 silver here, and the soup is free on Sundays.",
    "Those mushrooms are poisonous unless you boil them twice.",
    "Every spring the river floods the lower fields near the bridge.",
    "Why would anyone build a tower in the middle of the swamp?",
    "Leave your weapons at the door and speak only when you are spoken to.",
    "The library closes at noon while the scholars argue about the calendar.",
)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--personas", type=int, default=4)
    ap.add_argument("--seed", type=int, default=70_000, help="first persona seed")
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()

    import digitalhuman.voice.persona_voice as pv
    from digitalhuman.evaluate.voice_judges import VoiceJudges
    from digitalhuman.evaluate.voice_metrics import word_errors
    from digitalhuman.pipeline import PersonaPipeline
    from digitalhuman.voice import stream

    pipe = PersonaPipeline.from_pretrained(face=True)
    judges = VoiceJudges(a.threads)
    shipped_plan = stream.plan_chunks

    def whole_first_sentence(chunks, first=stream.FIRST_CHUNK_SYMBOLS, limit=stream.CHUNK_SYMBOLS):
        out = []
        for chunk in chunks:
            out.extend((p, j == 0) for j, p in enumerate(stream._repack(chunk, limit)))
        return out

    personas = [pipe(seed=a.seed + k) for k in range(a.personas)]
    rows, t = [], time.time()
    for variant, plan in (("shipped", shipped_plan), ("whole_first_sentence", whole_first_sentence)):
        pv.plan_chunks = plan  # speak_chunks looks the planner up in its module
        edits = words = 0
        for p in personas:
            for line in FRESH_LINES:
                said = pipe.say(p, line)
                hyp = judges.transcribe(said.audio, said.sample_rate)
                e, n = word_errors(line, hyp)
                edits, words = edits + e, words + n
                rows.append({"variant": variant, "seed": p.seed, "line": line, "edits": e, "transcript": hyp})
        print(f"{variant:22s} WER {edits / words:.4f} ({edits} edits / {words} words, {time.time() - t:.0f} s)", flush=True)
    pv.plan_chunks = shipped_plan
    by = {(r["seed"], r["line"]): r for r in rows if r["variant"] == "whole_first_sentence"}
    for r in rows:
        o = by[(r["seed"], r["line"])]
        if r["variant"] == "shipped" and r["edits"] != o["edits"]:
            print(f"  seed {r['seed']}: {r['edits']} vs {o['edits']} | {r['transcript']} | {o['transcript']}")
    out = {}
    for v in ("shipped", "whole_first_sentence"):
        rs = [r for r in rows if r["variant"] == v]
        out[v] = {"edits": sum(r["edits"] for r in rs)}
    print(json.dumps({"personas": a.personas, "seed": a.seed, "lines": len(FRESH_LINES), **out}))


if __name__ == "__main__":
    main()
