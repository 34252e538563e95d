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
    digitalhuman say --persona npc42/ --text "Welcome back." --out hello.wav --lipsync arkit,vrm
    digitalhuman info
    digitalhuman serve --port 8080                                  # HTTP service on 127.0.0.1
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from . import __version__
from .cli_args import (CLIError, aged_arg, age_arg, check_writable, default_data, lipsync_arg, out_arg, port_arg,
                       positive_int, read_audio, read_image, seed_arg, text_arg, train_seed_arg, unit_arg)
from .cli_persona import _check_aged, _prior_age, _voice_options, cmd_voices

EPILOG = __doc__.split("Examples::", 1)[1]


def add_lipsync_option(parser) -> None:
    """``--lipsync FORMATS`` (create, batch, say): one or more formats; an empty list is refused."""
    parser.add_argument("--lipsync", type=lipsync_arg, default=(), metavar="FORMATS",
                        help="lip-sync files beside each WAV: oculus,arkit,vrm,rhubarb (comma-separated) or all")


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
        add_lipsync_option(sp)
        vo = sp.add_argument_group("voice casting (digitalhuman voices lists the stock voices)")
        vo.add_argument("--accent", choices=["us", "gb"], help="American or British English (default: from the seed)")
        vo.add_argument("--voice-like", metavar="MIX", help="a voice near a stock voice or a mix: af_heart or "
                        "af_heart:0.7,bf_emma:0.3")
        vo.add_argument("--near", type=unit_arg, help="with --voice-like: share of its own voice kept (0-1, default 0.4)")
        vo.add_argument("--pitch", type=float, default=0.0, help="nudge the pitch, semitones (-6..6)")
        vo.add_argument("--pace", type=float, default=1.0, help="nudge the speaking rate (0.7-1.4 x)")

    c = sub.add_parser("create", help="create one persona into a folder")
    c.add_argument("--seed", type=seed_arg, default=None, help="required unless --from-face/--from-voice (then 0)")
    c.add_argument("--out", type=out_arg, required=True)
    c.add_argument("--overwrite", action="store_true", help="replace the persona already in --out (atomically)")
    src = c.add_mutually_exclusive_group()
    src.add_argument("--from-face", type=Path, metavar="IMAGE", help="read the traits from a face crop")
    src.add_argument("--from-voice", type=Path, metavar="CLIP",
                     help="read the traits and voice from a clip (WAV; FLAC and OGG are read too)")
    c.add_argument("--keep-face", action="store_true",
                   help="with --from-face: face.png is the given image, centre-cropped and resized to the generated faces' size")
    c.add_argument("--video", action="store_true", help="also write each --say line's talking portrait (voice_NN.mp4)")
    c.add_argument("--no-mouths", action="store_true", help="no mouth-shape atlas (mouths.png + mouths.json)")
    c.add_argument("--aged", type=aged_arg, metavar="YEARS",
                   help="the same person YEARS older (negative: younger); the new age must be 0-100")
    constraints(c)

    bl = sub.add_parser("blend", help="a persona between two others, face and voice together")
    bl.add_argument("--a", type=seed_arg, required=True, help="seed of the first persona")
    bl.add_argument("--b", type=seed_arg, required=True, help="seed of the second persona")
    bl.add_argument("--t", type=unit_arg, default=0.5, help="0 = a, 1 = b (default 0.5)")
    bl.add_argument("--out", type=out_arg, required=True)
    bl.add_argument("--overwrite", action="store_true", help="replace the persona already in --out (atomically)")
    bl.add_argument("--say", action="append", type=text_arg, default=[], metavar="TEXT")

    fa = sub.add_parser("family", help="a persona and K relatives who resemble it in face and voice")
    fa.add_argument("--seed", type=seed_arg, required=True)
    fa.add_argument("--members", type=positive_int, default=3, help="relatives to make (default 3, max 20)")
    fa.add_argument("--out", type=out_arg, required=True, help="OUT/0 is the persona, OUT/1.. its relatives")
    fa.add_argument("--gender", choices=["same", "any", "female", "male"], default="same",
                    help="relatives' gender: the persona's (default), drawn at random (any), or this one")
    fa.add_argument("--say", action="append", type=text_arg, default=[], metavar="TEXT")

    b = sub.add_parser("batch", help="create many personas: OUT/<seed>/ + manifest.jsonl; resumable")
    b.add_argument("--seeds", required=True, help="e.g. 0-499,600,700-710")
    b.add_argument("--out", type=out_arg, required=True)
    b.add_argument("--no-voice", action="store_true", help="faces and traits only")
    b.add_argument("--no-mouths", action="store_true", help="no mouth-shape atlas (mouths.png + mouths.json)")
    b.add_argument("--shard", metavar="K/N|auto",
                   help="make only worker K's share of N; auto: K and N from SLURM_ARRAY_TASK_ID/_COUNT, "
                        "RANK/WORLD_SIZE or JOB_COMPLETION_INDEX (docs/scale-out.md)")
    b.add_argument("--shards", type=positive_int, metavar="N",
                   help="with --shard auto: the number of workers (needed for Kubernetes Indexed Jobs)")
    b.add_argument("--quiet", action="store_true", help="no progress bar")
    constraints(b)

    m = sub.add_parser("merge", help="merge the folders of sharded batches")
    m.add_argument("parts", nargs="+", type=Path)
    m.add_argument("--out", type=out_arg, required=True)

    s = sub.add_parser("say", help="render a new line in a persona's voice")
    s.add_argument("--persona", type=Path, required=True, help="a persona folder (with persona.json)")
    s.add_argument("--text", type=text_arg, required=True)
    s.add_argument("--out", type=out_arg, help="WAV file to write (default: PERSONA/say_<hash>.wav)")
    add_lipsync_option(s)
    s.add_argument("--overwrite", action="store_true", help="replace an existing WAV (and its .visemes.json)")

    vs = sub.add_parser("voices", help="the stock voices a persona's voice can be cast near (--voice-like)")
    vs.add_argument("--json", action="store_true")
    i = sub.add_parser("info", help="package version, models, training data, licences and figures")
    i.add_argument("--json", action="store_true", help="everything (the whole model card) as JSON")

    t = sub.add_parser("train", help="train a model on your own licensed data")
    tsub = t.add_subparsers(dest="model", required=True, metavar="MODEL")
    tf = tsub.add_parser("face", help="the conditional face GAN (numbered run folder in --out)")
    tf.add_argument("--data", type=Path, default=default_data("utkface128"), help="face folder: images/ + labels.csv")
    tf.add_argument("--out", type=out_arg, required=True, help="parent folder of the numbered run folders")
    tf.add_argument("--resume", action="store_true", help="continue the newest face run in --out")
    tf.add_argument("--resume-from", type=Path, metavar="FILE",
                    help="start a new run in --out from a compact resume point (scripts/pack_face_resume.py)")
    tf.add_argument("--steps", type=positive_int, help="stop at this many steps (default 200000)")
    tf.add_argument("--minutes", type=float, default=0.0, help="stop after this wall time")
    tf.add_argument("--resolution", type=int, choices=[32, 64, 128], default=64)
    tf.add_argument("--batch", type=positive_int, default=64)
    tf.add_argument("--grow-from", type=Path, metavar="WEIGHTS",
                    help="start G from a generator at half the resolution (face_generator.safetensors)")
    tf.add_argument("--age-balance", type=float, default=0.0, metavar="B",
                    help="draw faces with weight count(age bin)^-B (0.5: more children and old faces; default 0)")
    tf.add_argument("--g-channels", type=positive_int, help="G channels at full resolution (default 32; 16 when growing)")
    tf.add_argument("--d-channels", type=positive_int, help="D channels at full resolution (default 32)")
    tf.add_argument("--cache", type=Path, help="folder to cache decoded images in")
    tf.add_argument("--threads", type=positive_int, default=2, help="torch CPU threads (default 2)")
    tf.add_argument("--seed", type=train_seed_arg, default=0,
                    help="initialisation and data order of a new run (default 0; --resume keeps the run's)")
    tv = tsub.add_parser("voice", help="the speech VAE over real speakers")
    tv.add_argument("--data", type=Path, default=default_data("commonvoice61"))
    tv.add_argument("--out", type=out_arg, required=True)
    tv.add_argument("--resume", action="store_true")
    tv.add_argument("--cache", type=Path, help="folder to cache extracted voice features in")
    tv.add_argument("--epochs", type=positive_int, help="stop at this many epochs (default 300)")
    sv = sub.add_parser("serve", help="HTTP service (loopback by default; docs/http.md)")
    sv.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1: this machine only)")
    sv.add_argument("--port", type=port_arg, default=8080)
    sv.add_argument("--workers", type=positive_int, default=1, help="processes, each with its own models")
    sv.add_argument("--token", help="access token (or env DIGITALHUMAN_TOKEN); required off loopback")
    ex = sub.add_parser("export", help="export models for game engines")
    exsub = ex.add_subparsers(dest="format", required=True, metavar="FORMAT")
    eo = exsub.add_parser("onnx", help="the face generator as ONNX; the voice: Kokoro named, its voice prior as arrays")
    eo.add_argument("--out", type=out_arg, required=True)
    eo.add_argument("--opset", type=int, choices=[15, 17], default=17, help="15 for Unity Sentis (default 17)")
    ev = sub.add_parser("evaluate", help="judge the models (faces, voices, fusion need scripts/install-judges.sh)",
                        description="Judge the models with outside judges; install them first with "
                                    "scripts/install-judges.sh. `digitalhuman evaluate WHAT --help` lists WHAT's options.")
    ev.add_argument("what", choices=["faces", "voices", "fusion", "voice_age", "constraints", "portraits"])
    ev.add_argument("rest", nargs=argparse.REMAINDER, help="options of the evaluation (see its --help)")
    tz = tsub.add_parser("fusion", help="the trait prior (joint gender / group / age distribution of the faces)")
    tz.add_argument("--data", type=Path, default=default_data("utkface128"))
    tz.add_argument("--out", type=out_arg, required=True)
    p.commands = sub.choices  # each command's own parser, for usage errors found after parsing
    return p


def _pipeline(args, **kw):
    from .pipeline import PersonaPipeline

    return PersonaPipeline.from_pretrained(args.weights, **kw)


def cmd_create(args) -> int:
    from .persona import check_persona_out

    # everything that can be checked without the models first: a mistake answers in a second
    if args.from_face is None and args.from_voice is None and args.seed is None:
        raise CLIError("create needs --seed (or --from-face / --from-voice)")
    if args.keep_face and args.from_face is None:
        raise CLIError("--keep-face only goes with --from-face")
    if args.from_face is not None and (args.gender or args.age is not None or args.race):
        raise CLIError("--from-face reads gender, age and group from the image; drop --gender/--age/--race")
    if args.from_voice is not None and (args.gender or args.age is not None):
        raise CLIError("--from-voice reads gender and age from the clip; drop --gender/--age")
    voice = _voice_options(args)
    if args.video and (not args.say or args.no_mouths or args.keep_face):
        raise CLIError("--video makes each --say line's talking portrait from the mouth-shape atlas of a generated "
                       "face: give --say, and not --no-mouths / --keep-face")
    if (args.from_face is not None or args.from_voice is not None) and (
            args.accent or args.voice_like or voice["pitch"] != 0 or voice["pace"] != 1):
        raise CLIError("voice casting options (--accent, --voice-like, --pitch, --pace) go with --seed, "
                       "not --from-face / --from-voice")
    check_persona_out(args.out, args.overwrite)
    check_writable(args.out, renamed=True)
    image = read_image(args.from_face) if args.from_face is not None else None
    audio = read_audio(args.from_voice) if args.from_voice is not None else None
    if args.aged is not None and image is None and audio is None:  # the age needs the trait prior only
        age = args.age if args.age is not None else _prior_age(args)
        if age is not None:
            _check_aged(age, args.aged)
    pipe = _pipeline(args)
    if image is not None:
        persona = pipe.from_face(image, seed=args.seed or 0, lines=[] if args.aged is not None else args.say,
                                 keep_face=args.keep_face)
    elif audio is not None:
        persona = pipe.from_voice(*audio, seed=args.seed or 0, lines=[] if args.aged is not None else args.say)
    else:
        persona = pipe(seed=args.seed, gender=args.gender, age=args.age, race=args.race, accent=args.accent,
                       lines=[] if args.aged is not None else args.say, mouths=not args.no_mouths, **voice)
    if args.aged is not None:
        _check_aged(persona.traits["age"], args.aged)
        persona = pipe.aged(persona, args.aged, lines=args.say)
    if args.no_mouths:
        persona.atlas = None
    videos = {f"voice_{i:02d}.mp4": pipe.video(persona, i) for i in range(len(persona.lines))} if args.video else None
    persona.save(args.out, lipsync=args.lipsync, overwrite=args.overwrite, extra=videos)
    t = persona.traits
    print(f"{args.out}: {t['gender']}, {t['age']:.0f} years, {len(persona.lines)} line(s)")
    return 0


def cmd_blend(args) -> int:
    if not 0.0 <= args.t <= 1.0:
        raise CLIError(f"--t must be between 0 and 1, got {args.t}")
    from .persona import check_persona_out

    check_persona_out(args.out, args.overwrite)
    check_writable(args.out, renamed=True)
    pipe = _pipeline(args)
    p = pipe.blend(pipe(seed=args.a, voice=True), pipe(seed=args.b, voice=True), args.t, lines=args.say)
    p.save(args.out, overwrite=args.overwrite)
    print(f"{args.out}: {p.traits['gender']}, {p.traits['age']:.0f} years (t={args.t} between {args.a} and {args.b})")
    return 0


def cmd_family(args) -> int:
    if args.members > 20:
        raise CLIError("--members is at most 20")
    if args.out.exists() and (not args.out.is_dir() or any(args.out.iterdir())):
        raise CLIError(f"--out {args.out} is not an empty folder")
    from .persona import check_persona_out

    check_persona_out(args.out)
    check_writable(args.out)
    pipe = _pipeline(args)
    base = pipe(seed=args.seed, lines=args.say)
    base.save(args.out / "0")
    for k in range(1, args.members + 1):
        gender = None if args.gender == "any" else args.gender
        pipe.sibling(base, k, lines=args.say, gender=gender).save(args.out / str(k))
    print(f"{args.out}: persona {args.seed} and {args.members} relatives")
    return 0


def cmd_batch(args) -> int:
    import os

    from .batch import auto_shard, check_out, parse_seeds, parse_shard, run_batch, shard_seeds

    seeds = parse_seeds(args.seeds)
    spec = args.shard
    if spec == "auto":
        k, n, where = auto_shard(os.environ, args.shards)
        spec = f"{k}/{n}"
        print(f"shard {spec} (from {where})", file=sys.stderr)
    shard = parse_shard(spec)
    mine = shard_seeds(seeds, shard)
    voice = _voice_options(args)
    request = {"seeds": args.seeds.replace(" ", ""), "say": args.say, "no_voice": args.no_voice,
               "gender": args.gender, "age": args.age, "race": args.race, "version": __version__}
    request.update({"accent": args.accent} if args.accent else {}, **({"no_mouths": True} if args.no_mouths else {}))
    request.update({"voice": voice} if voice != {"pitch": 0.0, "pace": 1.0} else {})
    if shard:
        request["shard"] = spec
    if args.lipsync:
        request["lipsync"] = list(args.lipsync)
    check_out(args.out, request)  # before the models load: a wrong folder answers at once
    check_writable(args.out)
    pipe = _pipeline(args, voice=not args.no_voice)
    make = lambda seed: pipe(seed=seed, gender=args.gender, age=args.age, race=args.race,  # noqa: E731
                             accent=args.accent, lines=args.say, voice=not args.no_voice,
                             mouths=not args.no_mouths, **voice)
    made, skipped = run_batch(args.out, mine, request, make, progress=not args.quiet, lipsync=args.lipsync)
    print(f"{args.out}: {made} made, {skipped} already there, manifest.jsonl has {len(mine)}")
    return 0


def cmd_merge(args) -> int:
    from .batch import merge_batches

    check_writable(args.out)
    n = merge_batches(args.parts, args.out)
    print(f"{args.out}: {n} personas")
    return 0


def cmd_say(args) -> int:
    import hashlib

    from .api_checks import check_voice_params
    from .persona import check_line_out, load_persona_doc

    out = args.out or args.persona / f"say_{hashlib.sha256(args.text.encode()).hexdigest()[:10]}.wav"
    check_line_out(out, args.overwrite)
    doc = load_persona_doc(args.persona)
    check_voice_params(doc.voice)  # a hostile or broken persona.json answers before the voice loads
    check_writable(out)
    pipe = _pipeline(args, face=False)
    line = pipe.say(doc, args.text)
    line.save(out, lipsync=args.lipsync, overwrite=args.overwrite)  # WAV + sidecars, each atomically
    print(f"{out}: {line.duration_s:.2f} s")
    return 0


def cmd_info(args) -> int:
    from .info import info_dict, summary_lines

    if args.json:
        print(json.dumps(info_dict(args.weights), indent=2))
    else:
        print("\n".join(summary_lines(args.weights)))
    return 0


def cmd_train(args) -> int:
    if args.data is None or not Path(args.data).is_dir():
        raise CLIError(f"--data {args.data} is not a folder; give the training data folder")
    check_writable(args.out)
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
        if not 0.0 <= args.age_balance <= 1.0:
            raise CLIError(f"--age-balance must be within 0-1, got {args.age_balance}")
        cfg = FaceTrainConfig(model=model, batch=args.batch, minutes=args.minutes, threads=args.threads,
                              seed=args.seed, grow_from=grow, age_balance=args.age_balance)
        if args.steps:
            cfg = dataclasses.replace(cfg, steps=args.steps)
        if args.resume_from is not None and (args.resume or not args.resume_from.is_file()):
            raise CLIError("--resume-from takes an existing resume file and does not go with --resume")
        run = train(str(args.data), str(args.out), resume=args.resume, cfg=cfg,
                    cache_dir=str(args.cache) if args.cache else None,
                    resume_from=str(args.resume_from) if args.resume_from else None)
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
        raise CLIError(f"the HTTP service needs the 'serve' extra: pip install -e '.[serve]' in the project folder ({e})") from None
    serve(host=args.host, port=args.port, weights=args.weights, workers=args.workers, token=args.token)
    return 0


def cmd_export(args) -> int:
    from .export import export_onnx

    check_writable(args.out)

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


WEIGHTS_COMMANDS = ("create", "batch", "say", "info", "voices", "serve", "blend", "family", "export")  # those that read --weights
COMMANDS = {"create": cmd_create, "batch": cmd_batch, "merge": cmd_merge, "say": cmd_say, "info": cmd_info, "voices": cmd_voices, "train": cmd_train, "evaluate": cmd_evaluate, "serve": cmd_serve, "blend": cmd_blend, "family": cmd_family, "export": cmd_export}


def main(argv: list[str] | None = None) -> int:
    from .api_checks import check_weights
    from .checkpoint import CheckpointError
    from .persona import PersonaError
    from .pipeline import ModelNotAvailable

    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "batch" and args.no_voice and args.say:
        parser.commands["batch"].error("--say needs a voice: drop --no-voice or drop --say")
    if args.command == "batch" and args.shards is not None and args.shard != "auto":
        parser.commands["batch"].error("--shards goes with --shard auto")
    try:
        if args.command in WEIGHTS_COMMANDS:
            check_weights(args.weights)
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
