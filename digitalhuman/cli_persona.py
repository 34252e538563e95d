"""The parts of the CLI that read a persona's traits and voice options before any model loads:
voice casting (``--voice-like`` ... checked against the voice prior's metadata), ``voices`` (the
stock voices), and the age checks of ``--aged``."""

from __future__ import annotations

from .cli_args import CLIError


def _prior_age(args) -> float | None:
    """The age of persona ``args.seed`` from the trait prior alone (no torch, no model load);
    None when the weights have no trait prior (the full load then says so)."""
    from .fusion import TraitPrior, fuse
    from .persona import persona_latent
    from .weights_card import read_card

    entry = read_card(args.weights).get("fusion")
    if entry is None:
        return None
    prior = TraitPrior.load(entry.file, entry.sha256)
    return fuse(prior, persona_latent(args.seed), gender=args.gender, race=args.race).traits["age"]


def _check_aged(age: float, years: float) -> None:
    from .pipeline import AGE_RANGE, aged_range

    lo, hi = aged_range(age)
    if not lo <= years <= hi:
        raise CLIError(f"--aged {years:g}: this persona is {age:g} years old, so --aged must be between {lo:g} and "
                       f"{hi:g} (ages {AGE_RANGE[0]}-{AGE_RANGE[1]})")


def _voice_options(args) -> dict:
    """The voice casting options, checked before any model loads (stock voice names from the voice
    prior's metadata)."""
    from . import api_checks as checks
    from .persona import PersonaError
    from .pipeline import DEFAULT_NEAR, PACE_RANGE, PITCH_LIMIT, parse_voice_mix

    if args.voice_like is None and args.near is not None:
        raise CLIError("--near goes with --voice-like")
    try:
        out: dict = {"pitch": checks.check_number("--pitch", args.pitch, -PITCH_LIMIT, PITCH_LIMIT, "semitones"),
                     "pace": checks.check_number("--pace", args.pace, *PACE_RANGE)}
        if args.voice_like is not None:
            out["voice_like"] = parse_voice_mix(args.voice_like)
            out["near"] = DEFAULT_NEAR if args.near is None else args.near
            known = _stock_voices(args)
            if known and (unknown := sorted(set(out["voice_like"]) - set(known))):
                raise CLIError(f"--voice-like: unknown stock voice(s) {', '.join(unknown)} "
                               f"(digitalhuman voices lists them)")
    except PersonaError as e:
        raise CLIError(str(e)) from None
    return out


def _stock_voices(args) -> list[str]:
    """Names of the stock voices in the voice prior's metadata (no model load); [] without one."""
    import json

    from safetensors import safe_open

    from .weights_card import read_card

    entry = read_card(args.weights).get("voice_prior")
    if entry is None:
        return []
    with safe_open(str(entry.file), framework="np") as f:
        meta = json.loads((f.metadata() or {}).get("digitalhuman", "{}"))
    return list(json.loads(meta.get("config", "{}")).get("names", []))


def cmd_voices(args) -> int:
    import json

    names = _stock_voices(args)
    if not names:
        raise CLIError("no voice prior in the weights: nothing to list")
    rows = [{"name": n, "gender": "female" if n[1] == "f" else "male", "accent": "gb" if n[0] == "b" else "us"}
            for n in names]
    if args.json:
        print(json.dumps(rows))
    else:
        print("Kokoro-82M v1.0 stock voices (Apache-2.0, hexgrad): --voice-like NAME or NAME:W,NAME:W")
        for r in rows:
            print(f"  {r['name']:<14} {r['gender']:<7} {'British' if r['accent'] == 'gb' else 'American'}")
    return 0


