"""Can joe's own VITS decoder make personas distinct? A constant per-persona offset of its input z (issue "voices v2").

Multi-speaker VITS tells speakers apart by a per-speaker vector added inside the decoder. joe is
single-speaker, but his decoder can still be pushed: this probe adds a constant 192-D offset to the
decoder input z (``/Mul_7_output_0`` of the Piper graph, after the flow) for every frame of a
persona's speech, then renders the persona as shipped (PSOLA, formant warp, EQ). Directions:

- ``utt``: joe's own between-utterance variation (top 8 principal components of per-utterance mean
  z over the English Common Voice sentences), combined by a per-persona random draw;
- ``iso``: isotropic random directions.

It reports, on tuning personas (seeds 40000+, 6 women and 6 men) and two tuning lines, the mean
cosine between different personas of a gender, to bare joe, DNSMOS OVRL and the share of lines with
any word misheard by Whisper. Needs the judges (``scripts/install-judges.sh``) and the voice data.

    python benchmarks/vits_latent_offsets.py --norms 0,8,12,16 --directions utt
    python benchmarks/vits_latent_offsets.py --norms 20,28,36 --directions iso

Measured here (2026-11-28; per-channel std of z over joe's frames: median 1.17):

| offset | women diff | men diff | to joe | DNSMOS women / men | misheard |
|---|---|---|---|---|---|
| none (0.4.2) | 0.856 | 0.815 | 0.716 | 3.127 / 3.127 | 0.25 |
| utt, norm 8 | 0.805 | 0.771 | 0.691 | 3.037 / 3.067 | 0.58 |
| utt, norm 12 | 0.743 | 0.739 | 0.656 | 3.017 / 3.042 | 0.79 |
| utt, norm 16 | 0.691 | 0.688 | 0.612 | 2.759 / 2.816 | 0.92 |
| iso, norm 20 | 0.815 | 0.756 | 0.684 | 3.011 / 3.041 | 0.33 |
| iso, norm 28 | 0.776 | 0.739 | 0.670 | 2.942 / 2.957 | 0.42 |
| iso, norm 36 | 0.751 | 0.717 | 0.653 | 2.862 / 2.878 | 0.38 |

The judge moves, but quality and intelligibility fall first: the offset takes the decoder off the
speech it was trained on. On bare joe (3 lines) the loss is in the speech itself, not in the
pauses: DNSMOS of ``utt`` 12 was 3.107 with the offset everywhere and 3.131 with joe's own pauses
put back (joe 3.373). In variants of this probe (not kept), the same offset after ``conv_pre`` (256 channels, per-channel std ~15) needed
a norm of 360 to reach women 0.788, at DNSMOS 2.10; a per-channel gain of z (up to +-36%) moved
nothing (0.853). For comparison, the renderer's vocal-tract scale moves the judge as far (1.2:
0.709 to joe) at no DNSMOS cost (``voice_levers.py``). joe's decoder, never trained on other
speakers, has no direction that is a different speaker: it would need training with a speaker code.
"""

from __future__ import annotations

import argparse
import csv
import re
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

LINES = (
    "The blacksmith wants his hammer back before the market opens tomorrow.",
    "Did you hear that noise coming from the old well last night?",
)
Z_NAME = "/Mul_7_output_0"  # decoder input z (B, 192, T) in Piper's VITS graph
Z_DIM = 192


def offset_graph(model, seeded_graph):
    """``seeded_graph(model)`` (``base.seeded_voice_graph``) plus an input ``z_off`` (192,) added to z
    at every frame, and z as an output."""
    from onnx import TensorProto, helper, numpy_helper

    m, names = seeded_graph(model)
    g = m.graph
    g.input.append(helper.make_tensor_value_info("z_off", TensorProto.FLOAT, [Z_DIM]))
    g.initializer.append(numpy_helper.from_array(np.array([1, Z_DIM, 1], np.int64), "z_off_shape"))
    nodes = list(g.node)
    for n in nodes:
        for i, x in enumerate(n.input):
            if x == Z_NAME:
                n.input[i] = Z_NAME + "_off"
    at = next(i for i, n in enumerate(nodes) if Z_NAME in n.output) + 1
    nodes[at:at] = [helper.make_node("Reshape", ["z_off", "z_off_shape"], ["z_off_r"], name="dh_zoff_r"),
                    helper.make_node("Add", [Z_NAME, "z_off_r"], [Z_NAME + "_off"], name="dh_zoff_add")]
    del g.node[:]
    g.node.extend(nodes)
    g.output.append(helper.make_tensor_value_info(Z_NAME, TensorProto.FLOAT, [1, Z_DIM, "T"]))
    return m, names


class OffsetVoice:
    """A ``BaseVoice`` whose decoder input gets ``self.offset``; the z of the last chunk is kept."""

    def __init__(self):
        from digitalhuman.voice import base

        orig = base.seeded_voice_graph
        base.seeded_voice_graph = lambda model: offset_graph(model, orig)
        try:
            self.voice = base.BaseVoice.load()
        finally:
            base.seeded_voice_graph = orig
        self.offset = np.zeros(Z_DIM, np.float32)
        self.z = None
        self.voice._outputs = self.voice._outputs + [Z_NAME]
        run = self.voice.session.run

        def run_with_offset(outputs, feeds):
            res = run(outputs, dict(feeds, z_off=self.offset))
            self.z = res[-1][0]
            return res[:-1]

        self.voice.session.run = run_with_offset


def joe_directions(ov: OffsetVoice, data: Path, k: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """Top ``k`` principal components (192, k) and variances (k,) of joe's per-utterance mean z
    over the English Common Voice sentences of 5-16 words."""
    with open(data / "clips.csv", newline="") as f:
        sents = [r["sentence"] for r in csv.DictReader(f) if r["lang"] == "en" and 5 <= len(r["sentence"].split()) <= 16]
    means = []
    for i, s in enumerate(sents):
        try:
            ov.voice.synthesize(s, rng=np.random.Generator(np.random.PCG64(100 + i)))
        except ValueError:  # text the front end cannot speak
            continue
        means.append(ov.z.mean(1))
    w, v = np.linalg.eigh(np.cov(np.array(means).T))
    return v[:, ::-1][:, :k], w[::-1][:k]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--norms", default="0,8,12,16", help="offset norms, comma-separated")
    ap.add_argument("--directions", choices=("utt", "iso"), default="utt")
    ap.add_argument("--personas", type=int, default=6, help="per gender")
    ap.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared" / "data" / "commonvoice61"))
    a = ap.parse_args()
    import torch

    torch.set_num_threads(1)
    from digitalhuman.evaluate.voice_judges import VoiceJudges
    from digitalhuman.pipeline import PersonaPipeline

    pipe = PersonaPipeline.from_pretrained(None, face=False)
    ov = OffsetVoice()
    pipe.voice.base = ov.voice
    judges = VoiceJudges(1)
    vecs, var = joe_directions(ov, Path(a.data))
    words = lambda s: re.sub(r"[^a-z ]", "", s.lower()).split()  # noqa: E731
    personas = [pipe(40000 + k, gender=g, face=False) for g in ("female", "male") for k in range(a.personas)]
    joe = []
    ov.offset = np.zeros(Z_DIM, np.float32)
    for t in LINES:
        sp = ov.voice.synthesize(t, rng=np.random.Generator(np.random.PCG64(5)))
        joe.append(judges.embed(sp.audio, sp.sample_rate))
    for norm in (float(x) for x in a.norms.split(",")):
        emb, mos, to_joe, misheard = {}, [], [], []
        for p in personas:
            draw = np.random.default_rng(int(p.seed) + 777)
            d = vecs @ (draw.standard_normal(len(var)) * np.sqrt(var)) if a.directions == "utt" else draw.standard_normal(Z_DIM)
            ov.offset = (norm * d / np.linalg.norm(d)).astype(np.float32)
            for li, t in enumerate(LINES):
                ln = pipe.say(p, t)
                e = judges.embed(ln.audio, ln.sample_rate)
                emb[(p.seed, p.traits["female"] >= 0.5, li)] = e
                mos.append(judges.dnsmos(ln.audio, ln.sample_rate)["ovrl"])
                to_joe.append(float(e @ joe[li]))
                misheard.append(float(words(judges.transcribe(ln.audio, ln.sample_rate)) != words(t)))
        diff = []
        for fem in (True, False):
            ks = [k for k in emb if k[1] == fem]
            diff.append(np.mean([emb[x] @ emb[y] for i, x in enumerate(ks) for y in ks[i + 1:] if x[0] != y[0] and x[2] == y[2]]))
        q = np.array(mos).reshape(len(personas), len(LINES))
        n = a.personas
        print(f"{a.directions} norm {norm:g}: women diff {diff[0]:.3f}, men diff {diff[1]:.3f}, to joe {np.mean(to_joe):.3f}; "
              f"DNSMOS women {q[:n].mean():.3f} / men {q[n:].mean():.3f}; misheard {np.mean(misheard):.2f}", flush=True)


if __name__ == "__main__":
    main()
