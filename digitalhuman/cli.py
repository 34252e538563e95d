"""Command line: a thin layer over :class:`digitalhuman.PersonaPipeline`.

Examples::

    digitalhuman create --seed 42 --gender female --age 60 --say "The mines are cursed." --out npc42/
    digitalhuman batch --seeds 0-499 --out npcs/
    digitalhuman batch --seeds 0-999 --shard 0/4 --out part0/      # one of 4 workers
    digitalhuman merge part0/ part1/ part2/ part3/ --out npcs/
    digitalhuman create --from-face portrait.png --say "Hello." --out npc_f/    # a voice that fits the face
    digitalhuman create --from-voice clip.wav --out npc_v/                     # a face that fits the voice
    digitalhuman create --seed 42 --aged 30 --out npc42_old/                   # the same person 30 years on
    digitalhuman blend --a 1 --b 2 --t 0.5 --out mix/
    digitalhuman family --seed 42 --members 3 --out family42/
    digitalhuman say --persona npc42/ --text "Welcome back." --out hello.wav
    digitalhuman info
    digitalhuman serve --port 8080                                  # HTTP service on 127.0.0.1
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from . import __version__
from .cli_args import (CLIError, age_arg, default_data, port_arg, positive_int, read_audio, read_image, seed_arg,
                       text_arg, train_seed_arg)

EPILOG = __doc__.split("Examples::", 1)[1]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="digitalhuman", description="Seeded NPC personas: a face and a matching voice.",
                                epilog="examples:" + EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--version", action="version", version=f"digitalhuman {__version__}")
    p.add_argument("--weights", type=Path, default=None, help="weights folder with card.json (default: shipped)")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def constraints(sp):
        sp.add_argument("--gender", choices=["female", "male"])
        sp.add_argument("--age", type=age_arg, help="years (0-100); the voice data has no speakers under 16")
        sp.add_argument("--race", choices=["white", "black", "asian", "indian", "other"],
                        help="appearance group of the face (the labels of the face data)")
        sp.add_argument("--say", action="append", type=text_arg, default=[], metavar="TEXT",
                        help="a line of dialogue (repeatable)")

    c = sub.add_parser("create", help="create one persona into a folder")
    c.add_argument("--seed", type=seed_arg, default=None, help="required unless --from-face/--from-voice (then 0)")
    c.add_argument("--out", type=Path, required=True)
    src = c.add_mutually_exclusive_group()
    src.add_argument("--from-face", type=Path, metavar="IMAGE", help="read the traits from a face crop")
    src.add_argument("--from-voice", type=Path, metavar="CLIP", help="read the traits and voice from a clip")
    c.add_argument("--keep-face", action="store_true", help="with --from-face: use the given image as face.png")
    c.add_argument("--aged", type=float, metavar="YEARS", help="the same person YEARS older (negative: younger)")
    constraints(c)

    bl = sub.add_parser("blend", help="a persona between two others, face and voice together")
    bl.add_argument("--a", type=seed_arg, required=True, help="seed of the first persona")
    bl.add_argument("--b", type=seed_arg, required=True, help="seed of the second persona")
    bl.add_argument("--t", type=float, default=0.5, help="0 = a, 1 = b (default 0.5)")
    bl.add_argument("--out", type=Path, required=True)
    bl.add_argument("--say", action="append", type=text_arg, default=[], metavar="TEXT")

    fa = sub.add_parser("family", help="a persona and K relatives who resemble it in face and voice")
    fa.add_argument("--seed", type=seed_arg, required=True)
    fa.add_argument("--members", type=positive_int, default=3, help="relatives to make (default 3, max 20)")
    fa.add_argument("--out", type=Path, required=True, help="OUT/0 is the persona, OUT/1.. its relatives")
    fa.add_argument("--gender", choices=["same", "any", "female", "male"], default="same",
                    help="relatives' gender: the persona's (default), drawn at random (any), or this one")
    fa.add_argument("--say", action="append", type=text_arg, default=[], metavar="TEXT")

    b = sub.add_parser("batch", help="create many personas: OUT/<seed>/ + manifest.jsonl; resumable")
    b.add_argument("--seeds", required=True, help="e.g. 0-499,600,700-710")
    b.add_argument("--out", type=Path, required=True)
    b.add_argument("--no-voice", action="store_true", help="faces and traits only")
    b.add_argument("--shard", help="K/N: make only this worker's share of the seeds")
    b.add_argument("--quiet", action="store_true", help="no progress bar")
    constraints(b)

    m = sub.add_parser("merge", help="merge the folders of sharded batches")
    m.add_argument("parts", nargs="+", type=Path)
    m.add_argument("--out", type=Path, required=True)

    s = sub.add_parser("say", help="render a new line in a persona's voice")
    s.add_argument("--persona", type=Path, required=True, help="a persona folder (with persona.json)")
    s.add_argument("--text", type=text_arg, required=True)
    s.add_argument("--out", type=Path, help="WAV file to write (default: PERSONA/say_<hash>.wav)")

    sub.add_parser("info", help="package version, models, training data and licences")

    t = sub.add_parser("train", help="train a model on your own licensed data")
    tsub = t.add_subparsers(dest="model", required=True, metavar="MODEL")
    tf = tsub.add_parser("face", help="the conditional face GAN (numbered run folder in --out)")
    tf.add_argument("--data", type=Path, default=default_data("utkface128"), help="face folder: images/ + labels.csv")
    tf.add_argument("--out", type=Path, required=True, help="parent folder of the numbered run folders")
    tf.add_argument("--resume", action="store_true", help="continue the newest face run in --out")
    tf.add_argument("--steps", type=positive_int, help="stop at this many steps (default 200000)")
    tf.add_argument("--minutes", type=float, default=0.0, help="stop after this wall time")
    tf.add_argument("--resolution", type=int, choices=[32, 64, 128], default=64)
    tf.add_argument("--batch", type=positive_int, default=64)
    tf.add_argument("--grow-from", type=Path, metavar="WEIGHTS",
                    help="start G from a generator at half the resolution (face_generator.safetensors)")
    tf.add_argument("--g-channels", type=positive_int, help="G channels at full resolution (default 32; 16 when growing)")
    tf.add_argument("--d-channels", type=positive_int, help="D channels at full resolution (default 32)")
    tf.add_argument("--cache", type=Path, help="folder to cache decoded images in")
    tf.add_argument("--threads", type=positive_int, default=2, help="torch CPU threads (default 2)")
    tf.add_argument("--seed", type=train_seed_arg, default=0,
                    help="initialisation and data order of a new run (default 0; --resume keeps the run's)")
    tv = tsub.add_parser("voice", help="the speech VAE over real speakers")
    tv.add_argument("--data", type=Path, default=default_data("commonvoice61"))
    tv.add_argument("--out", type=Path, required=True)
    tv.add_argument("--resume", action="store_true")
    tv.add_argument("--cache", type=Path, help="folder to cache extracted voice features in")
    tv.add_argument("--epochs", type=positive_int, help="stop at this many epochs (default 300)")
    sv = sub.add_parser("serve", help="HTTP service (loopback by default; docs/http.md)")
    sv.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1: this machine only)")
    sv.add_argument("--port", type=port_arg, default=8080)
    sv.add_argument("--workers", type=positive_int, default=1, help="processes, each with its own models")
    ex = sub.add_parser("export", help="export models for game engines")
    exsub = ex.add_subparsers(dest="format", required=True, metavar="FORMAT")
    eo = exsub.add_parser("onnx", help="face generator, voice prior+decoder and the seeded base voice as ONNX")
    eo.add_argument("--out", type=Path, required=True)
    eo.add_argument("--opset", type=int, choices=[15, 17], default=17, help="15 for Unity Sentis (default 17)")
    ev = sub.add_parser("evaluate", help="judge the models with outside judges (needs scripts/install-judges.sh)",
                        description="Judge the models with outside judges; install them first with "
                                    "scripts/install-judges.sh. `digitalhuman evaluate WHAT --help` lists WHAT's options.")
    ev.add_argument("what", choices=["faces", "voices", "fusion"])
    ev.add_argument("rest", nargs=argparse.REMAINDER, help="options of the evaluation (see its --help)")
    tz = tsub.add_parser("fusion", help="the trait prior (joint gender / group / age distribution of the faces)")
    tz.add_argument("--data", type=Path, default=default_data("utkface128"))
    tz.add_argument("--out", type=Path, required=True)
    return p


def _pipeline(args, **kw):
    from .pipeline import PersonaPipeline

    return PersonaPipeline.from_pretrained(args.weights, **kw)


def cmd_create(args) -> int:
    pipe = _pipeline(args)
    if args.from_face is not None:
        if args.gender or args.age is not None or args.race:
            raise CLIError("--from-face reads gender, age and group from the image; drop --gender/--age/--race")
        persona = pipe.from_face(read_image(args.from_face), seed=args.seed or 0, lines=args.say,
                                 keep_face=args.keep_face)
    elif args.from_voice is not None:
        if args.gender or args.age is not None:
            raise CLIError("--from-voice reads gender and age from the clip; drop --gender/--age")
        audio, sr = read_audio(args.from_voice)
        persona = pipe.from_voice(audio, sr, seed=args.seed or 0, lines=args.say)
    else:
        if args.seed is None:
            raise CLIError("create needs --seed (or --from-face / --from-voice)")
        if args.keep_face:
            raise CLIError("--keep-face only goes with --from-face")
        persona = pipe(seed=args.seed, gender=args.gender, age=args.age, race=args.race,
                       lines=[] if args.aged is not None else args.say)
    if args.aged is not None:
        persona = pipe.aged(persona, args.aged, lines=args.say)
    persona.save(args.out)
    t = persona.traits
    print(f"{args.out}: {t['gender']}, {t['age']:.0f} years, {len(persona.lines)} line(s)")
    return 0


def cmd_blend(args) -> int:
    if not 0.0 <= args.t <= 1.0:
        raise CLIError(f"--t must be between 0 and 1, got {args.t}")
    pipe = _pipeline(args)
    p = pipe.blend(pipe(seed=args.a, voice=True), pipe(seed=args.b, voice=True), args.t, lines=args.say)
    p.save(args.out)
    print(f"{args.out}: {p.traits['gender']}, {p.traits['age']:.0f} years (t={args.t} between {args.a} and {args.b})")
    return 0


def cmd_family(args) -> int:
    if args.members > 20:
        raise CLIError("--members is at most 20")
    pipe = _pipeline(args)
    base = pipe(seed=args.seed, lines=args.say)
    if args.out.exists() and any(args.out.iterdir()):
        raise CLIError(f"--out {args.out} is not empty")
    base.save(args.out / "0")
    for k in range(1, args.members + 1):
        gender = None if args.gender == "any" else args.gender
        pipe.sibling(base, k, lines=args.say, gender=gender).save(args.out / str(k))
    print(f"{args.out}: persona {args.seed} and {args.members} relatives")
    return 0


def cmd_batch(args) -> int:
    from .batch import parse_seeds, parse_shard, run_batch, shard_seeds

    seeds = parse_seeds(args.seeds)
    shard = parse_shard(args.shard)
    mine = shard_seeds(seeds, shard)
    request = {"seeds": args.seeds.replace(" ", ""), "say": args.say, "no_voice": args.no_voice,
               "gender": args.gender, "age": args.age, "race": args.race, "version": __version__}
    if shard:
        request["shard"] = args.shard
    pipe = _pipeline(args, voice=not args.no_voice)
    make = lambda seed: pipe(seed=seed, gender=args.gender, age=args.age, race=args.race,  # noqa: E731
                             lines=args.say, voice=not args.no_voice)
    made, skipped = run_batch(args.out, mine, request, make, progress=not args.quiet)
    print(f"{args.out}: {made} made, {skipped} already there, manifest.jsonl has {len(mine)}")
    return 0


def cmd_merge(args) -> int:
    from .batch import merge_batches

    n = merge_batches(args.parts, args.out)
    print(f"{args.out}: {n} personas")
    return 0


def cmd_say(args) -> int:
    import hashlib

    from .checkpoint import atomic_write_bytes
    from .persona import load_persona_doc

    doc = load_persona_doc(args.persona)
    pipe = _pipeline(args, face=False)
    line = pipe.say(doc, args.text)
    out = args.out or args.persona / f"say_{hashlib.sha256(args.text.encode()).hexdigest()[:10]}.wav"
    if out.suffix.lower() != ".wav":
        raise CLIError(f"--out must be a .wav file, got {out}")
    out.parent.mkdir(parents=True, exist_ok=True)
    # atomic writes replace a planted symlink instead of writing through it
    atomic_write_bytes(out, line.wav_bytes())
    atomic_write_bytes(out.with_suffix(".visemes.json"), json.dumps(
        {"text": line.text, "sample_rate": line.sample_rate, "duration_s": round(line.duration_s, 4),
         "visemes": line.visemes}, indent=1).encode())
    print(f"{out}: {line.duration_s:.2f} s")
    return 0


def cmd_info(args) -> int:
    from .weights_card import WEIGHTS_DIR, read_card

    entries = read_card(args.weights)
    print(f"digitalhuman {__version__}")
    print(f"weights: {args.weights or WEIGHTS_DIR}")
    if not entries:
        print("  no trained models shipped yet")
    for name, e in entries.items():
        info = e.info
        print(f"  {name}: {e.id}  sha256 {e.sha256[:12]}...")
        for key in ("trained_on", "licence", "quality"):
            if key in info:
                print(f"    {key}: {info[key]}")
    return 0


def cmd_train(args) -> int:
    if args.data is None or not Path(args.data).is_dir():
        raise CLIError(f"--data {args.data} is not a folder; give the training data folder")
    if args.model == "face":
        import dataclasses

        from .face.gan import FaceGANConfig
        from .face.train import FaceTrainConfig, train

        model = FaceGANConfig(resolution=args.resolution)
        grow = ""
        if args.grow_from is not None:
            from .face.model import load_generator

            if not args.grow_from.is_file():
                raise CLIError(f"--grow-from {args.grow_from}: no such file")
            lower = load_generator(args.grow_from)[0].cfg
            if lower.resolution * 2 != args.resolution:
                raise CLIError(f"--grow-from is {lower.resolution}px: give --resolution {lower.resolution * 2}")
            model = dataclasses.replace(model, g_channels=lower.g_channels // 2, z_dim=lower.z_dim,
                                        cond_embed=lower.cond_embed, max_channels=lower.max_channels,
                                        extra_levels=lower.extra_levels, skip_rgb=True)
            grow = str(args.grow_from.resolve())
        if args.g_channels:
            model = dataclasses.replace(model, g_channels=args.g_channels)
        if args.d_channels:
            model = dataclasses.replace(model, d_channels=args.d_channels)
        cfg = FaceTrainConfig(model=model, batch=args.batch, minutes=args.minutes, threads=args.threads,
                              seed=args.seed, grow_from=grow)
        if args.steps:
            cfg = dataclasses.replace(cfg, steps=args.steps)
        run = train(str(args.data), str(args.out), resume=args.resume, cfg=cfg,
                    cache_dir=str(args.cache) if args.cache else None)
    elif args.model == "voice":
        from .voice.train import train_voice

        run = train_voice(str(args.data), str(args.out), resume=args.resume,
                          cache_dir=str(args.cache) if args.cache else None, epochs=args.epochs)
    else:
        from .train_fusion import train_fusion

        run = train_fusion(args.data, args.out)
    print(f"run folder: {run}")
    return 0


def cmd_serve(args) -> int:
    try:
        from .server import serve
    except ImportError as e:
        raise CLIError(f"the HTTP service needs the 'serve' extra: pip install 'digitalhuman[serve]' ({e})") from None
    serve(host=args.host, port=args.port, weights=args.weights, workers=args.workers)
    return 0


def cmd_export(args) -> int:
    from .export import export_onnx

    manifest = export_onnx(args.out, args.weights, opset=args.opset)
    parity = manifest.get("parity", {})
    if parity:
        print("parity, ONNX vs PyTorch:")
        for name, fig in parity.items():
            print(f"  {name}: {fig}")
    print(f"{args.out}: {', '.join(sorted(manifest.get('files', {})))}")
    return 0


def cmd_evaluate(args) -> int:
    import importlib

    module = importlib.import_module(f".evaluate.{args.what}", __package__)
    return int(module.main(args.rest) or 0)


COMMANDS = {"create": cmd_create, "batch": cmd_batch, "merge": cmd_merge, "say": cmd_say, "info": cmd_info, "train": cmd_train, "evaluate": cmd_evaluate, "serve": cmd_serve, "blend": cmd_blend, "family": cmd_family, "export": cmd_export}


def main(argv: list[str] | None = None) -> int:
    from .checkpoint import CheckpointError
    from .persona import PersonaError
    from .pipeline import ModelNotAvailable

    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except (CLIError, PersonaError, ModelNotAvailable, CheckpointError, ValueError) as e:
        print(f"digitalhuman: error: {e}", file=sys.stderr)
        return 1
    except BrokenPipeError:  # e.g. `digitalhuman info | head`
        return 0
    except OSError as e:
        print(f"digitalhuman: error: {e.strerror or e}: {e.filename or ''}".rstrip(": "), file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("digitalhuman: interrupted (finished personas are kept; rerun to resume)", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
