"""``PersonaPipeline``: the one entry point. Load the shipped weights once, then call it per persona.

>>> pipe = PersonaPipeline.from_pretrained()
>>> p = pipe(seed=42, gender="female", age=60, lines=["The mines are cursed."])
>>> p.save("npc42/")
>>> line = pipe.say(p, "Welcome back.")
>>> for chunk in pipe.stream(p, "Welcome back. The mines are cursed."): play(chunk.audio)

Every random draw flows from the persona (its seed -> latent, and per line a generator keyed by
the latent and the text), so the same seed, constraints, text and version give identical bytes.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Iterator, Sequence

import numpy as np

from . import __version__
from . import api_checks as checks
from .fusion import RACES, TraitPrior, fuse
from .persona import Persona, PersonaDoc, PersonaError, SpokenLine, check_seed, persona_latent
from .weights_card import CARD_FILE, ModelEntry, ModelNotAvailable, read_card, weights_folder

if TYPE_CHECKING:
    from .voice.stream import SpeechChunk

DEFAULT_PSI = 0.9  # face truncation: 1 = full diversity, lower = more typical faces (0.8 before 0.5.0)
AGE_RANGE = (0, 100)  # years a persona may be asked for (``age=``) or aged to (``aged``)


def aged_range(age: float) -> tuple[float, float]:
    """The ``years`` that ``PersonaPipeline.aged`` accepts for a persona of ``age``."""
    return round(AGE_RANGE[0] - float(age), 2), round(AGE_RANGE[1] - float(age), 2)


def _group_weights(race: str | None) -> np.ndarray:
    """One-hot (5,) appearance group of the face generator (``None``: the default, white)."""
    from .fusion import RACES

    w = np.zeros(len(RACES), np.float32)
    w[RACES.index(race or "white")] = 1.0
    return w


def _check_image(image: np.ndarray) -> np.ndarray:
    img = np.asarray(image)
    if img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3 or min(img.shape[:2]) < 16 \
            or max(img.shape[:2]) > 4096:
        raise PersonaError(f"expected an RGB face crop uint8 (H, W, 3), 16-4096 px, got {img.dtype} {img.shape}")
    return img


def portrait(image: np.ndarray, size: int) -> np.ndarray:
    """uint8 (H, W, 3) -> (size, size, 3): the centred square crop, resized with Lanczos."""
    from PIL import Image

    h, w = image.shape[:2]
    s = min(h, w)
    top, left = (h - s) // 2, (w - s) // 2
    crop = Image.fromarray(np.ascontiguousarray(image[top : top + s, left : left + s]))
    return np.asarray(crop if s == size else crop.resize((size, size), Image.LANCZOS))


def text_rng(latent: np.ndarray, text: str, salt: str = "line") -> np.random.Generator:
    """A generator owned by (persona, text): saying the same line again gives the same audio."""
    h = hashlib.sha256(np.asarray(latent, np.float64).tobytes() + salt.encode() + text.encode("utf-8")).digest()
    return np.random.Generator(np.random.PCG64(int.from_bytes(h[:16], "little")))


def _chunk_rngs(latent: np.ndarray, text: str):
    """Chunk ``i`` of a line draws from its own generator, keyed by (persona, text, i)."""
    return lambda i: text_rng(latent, text, salt=f"line/chunk{i}")


DEFAULT_NEAR = 0.4  # share of a persona's own voice kept around a voice_like mix
PITCH_LIMIT = 6.0  # semitones a voice may be nudged
PACE_RANGE = (0.7, 1.4)  # x speaking rate
ACCENTS = ("us", "gb")
MAX_MIX = 4


def parse_voice_mix(voice_like: str | dict[str, float]) -> dict[str, float]:
    """``"af_heart"``, ``"af_heart:0.7,bf_emma:0.3"`` or ``{"af_heart": 0.7, ...}`` -> ``{name: weight}``
    (weights > 0, 1-4 voices, normalised to sum 1)."""
    if isinstance(voice_like, str):
        mix: dict[str, float] = {}
        for part in voice_like.split(","):
            name, _, w = part.strip().partition(":")
            try:
                mix[name.strip()] = mix.get(name.strip(), 0.0) + (float(w) if w.strip() else 1.0)
            except ValueError:
                raise PersonaError(f"voice_like: {part.strip()[:40]!r} is not NAME or NAME:WEIGHT") from None
    elif isinstance(voice_like, dict):
        mix = dict(voice_like)
    else:
        raise PersonaError(f"voice_like must be a stock voice name, 'NAME:W,NAME:W' or a dict, got "
                           f"{type(voice_like).__name__}")
    if not 1 <= len(mix) <= MAX_MIX:
        raise PersonaError(f"voice_like mixes 1 to {MAX_MIX} stock voices, got {len(mix)}")
    for name, w in mix.items():
        if not isinstance(name, str) or not name.replace("_", "").isalnum() or len(name) > 40:
            raise PersonaError(f"voice_like: {str(name)[:40]!r} is not a stock voice name")
        checks.check_number(f"the weight of {name}", w, 1e-6, 100.0)
    total = sum(float(w) for w in mix.values())
    return {name: round(float(w) / total, 6) for name, w in sorted(mix.items())}


def accent_of(latent: np.ndarray) -> str:
    """The accent a persona speaks with when none is asked for: British English for a share
    ``ACCENT_BRITISH_SHARE`` of latents (from a delivery number no other trait reads)."""
    from .fusion import SL_STYLE, _phi
    from .voice.persona_voice import ACCENT_BRITISH_SHARE

    return "gb" if float(_phi(np.asarray(latent, np.float64)[SL_STYLE.stop - 1])) < ACCENT_BRITISH_SHARE else "us"


def _word_dicts(words) -> list[dict]:
    return [{"word": w, "t_start": round(a, 3), "t_end": round(b, 3)} for w, a, b in words]


class PersonaPipeline:
    def __init__(self, face=None, voice=None, prior: TraitPrior | None = None,
                 models: dict[str, ModelEntry] | None = None, psi: float = DEFAULT_PSI, attributes=None,
                 source: Path | None = None, portrait=None):
        self.attributes = attributes
        self.portrait = portrait  # portrait.PortraitDirections: the mouth-shape atlas (None: no atlas)
        self.source = source  # the weights folder the models came from (named in errors)
        self.face = face
        self.voice = voice
        self.prior = prior
        self.models = models or {}
        self.psi = psi

    # ----------------------------------------------------------------------------------- loading
    @classmethod
    def from_pretrained(cls, path: str | Path | None = None, *, face: bool = True, voice: bool = True,
                        verify: bool = True) -> "PersonaPipeline":
        """Load models listed in ``path/card.json`` (default: the weights shipped in the package).

        Each file's sha256 is checked against the card (``verify``). Models not shipped stay
        ``None``; asking for their output raises :class:`ModelNotAvailable`.
        """
        checks.pretrained_args(path, face, voice, verify)
        entries = read_card(path)
        sha = lambda e: e.sha256 if verify else None  # noqa: E731
        prior = None
        if "fusion" in entries:
            prior = TraitPrior.load(entries["fusion"].file, sha(entries["fusion"]))
        face_model = None
        if face and "face" in entries:
            from .face.model import FaceModel

            face_model = FaceModel.load(entries["face"].file, sha(entries["face"]))
        voice_model = None
        if voice and "voice_prior" in entries:
            from .voice.persona_voice import PersonaVoice

            vae = entries.get("voice")
            voice_model = PersonaVoice.load(entries["voice_prior"].file, sha(entries["voice_prior"]),
                                            vae.file if vae else None, sha(vae) if vae else None)
        directions = None
        if face and "portrait" in entries:
            from .portrait import PortraitDirections

            directions = PortraitDirections.load(entries["portrait"].file, sha(entries["portrait"]))
        attributes = None
        if face and "face_attributes" in entries:
            from .face.attributes import load_attributes

            attributes = load_attributes(entries["face_attributes"].file, sha(entries["face_attributes"]))
        return cls(face_model, voice_model, prior, entries, attributes=attributes, source=weights_folder(path),
                   portrait=directions)

    def _need(self, what: str):
        model = {"face": self.face, "voice": self.voice, "fusion": self.prior,
                 "face_attributes": self.attributes}[what]
        if model is None:
            if what != "fusion" and {"voice": "voice_prior"}.get(what, what) in self.models:  # on the card, unloaded
                flag = "voice" if what == "voice" else "face"
                raise ModelNotAvailable(f"the {what} model was not loaded (from_pretrained({flag}=False)); "
                                        f"load it, or ask for no {flag} here ({flag}=False)")
            where = f"{self.source}/{CARD_FILE}" if self.source is not None else "the models given to PersonaPipeline"
            raise ModelNotAvailable(
                f"no trained {what} model (looked in {where}); "
                f"train one with `digitalhuman train {what}` or install a release with weights"
            )
        return model

    def model_refs(self, names: Iterable[str]) -> dict[str, dict[str, str]]:
        return {n: {"id": self.models[n].id, "sha256": self.models[n].sha256} for n in names if n in self.models}

    # ---------------------------------------------------------------------------------- personas
    def __call__(self, seed: int, gender: str | None = None, age: float | None = None, race: str | None = None,
                 lines: Sequence[str] = (), *, face: bool = True, voice: bool = True, accent: str | None = None,
                 voice_like: str | dict[str, float] | None = None, near: float = DEFAULT_NEAR, pitch: float = 0.0,
                 pace: float = 1.0, mouths: bool = True) -> Persona:
        """Create the persona of ``seed``; constraints override the sampled traits.

        Voice casting: ``accent`` ``"us"`` / ``"gb"`` (default: drawn from the seed); ``voice_like`` a
        stock voice (``"af_heart"``) or a weighted mix (``{"af_heart": 0.7, "bf_emma": 0.3}``, or
        ``"af_heart:0.7,bf_emma:0.3"``) whose voice the persona's is made near, keeping ``near``
        (0-1) of its own; ``pitch`` in semitones (-6..6) and ``pace`` (0.7-1.4 x) nudge it.
        ``mouths``: make the mouth-shape atlas of the face (``persona.atlas``; default True)."""
        checks.call_args(seed, gender, age, race, lines, face, voice)
        seed = check_seed(seed)
        if gender is not None and gender not in ("female", "male"):
            raise PersonaError(f"gender must be 'female' or 'male', got {gender!r}")
        if age is not None and not (isinstance(age, (int, float)) and AGE_RANGE[0] <= age <= AGE_RANGE[1]):
            raise PersonaError(f"age must be a number of years between 0 and 100, got {age!r}")
        if race is not None and race not in RACES:
            raise PersonaError(f"race must be one of {', '.join(RACES)}, got {race!r}")
        options = self.voice_options(voice_like, near, pitch, pace)
        if accent is not None and accent not in ACCENTS:
            raise PersonaError(f"accent must be one of {', '.join(ACCENTS)}, got {accent!r}")
        latent = persona_latent(seed)
        traits = fuse(self._need("fusion"), latent, gender=gender, age=age, race=race).traits
        if accent is not None:
            traits["accent"] = accent
        constraints = {k: v for k, v in (("gender", gender), ("age", age), ("race", race), ("accent", accent))
                       if v is not None}
        origin = ({"constraints": constraints} if constraints else {}) | ({"voice": options} if options else {})
        return self.render(latent, traits, lines, seed=seed, origin=origin, face=face, voice=voice,
                           voice_options=options, mouths=mouths)

    def voice_options(self, voice_like: str | dict[str, float] | None = None, near: float = DEFAULT_NEAR,
                      pitch: float = 0.0, pace: float = 1.0) -> dict[str, Any]:
        """Checked voice casting options (``__call__``) as ``PersonaVoice.params`` takes them; ``{}``
        for the defaults."""
        out: dict[str, Any] = {}
        if voice_like is not None:
            mix = parse_voice_mix(voice_like)
            known = self.voice.prior.names if self.voice is not None else None
            if known is not None and (unknown := sorted(set(mix) - set(known))):
                raise PersonaError(f"unknown stock voice(s) {', '.join(unknown)}; known: {', '.join(known)}")
            out["like"] = mix
            out["near"] = checks.check_number("near", near, 0.0, 1.0)
        elif near != DEFAULT_NEAR:
            raise PersonaError("near is the share of the persona's own voice kept around voice_like: give voice_like")
        p = checks.check_number("pitch", pitch, -PITCH_LIMIT, PITCH_LIMIT, "semitones")
        s = checks.check_number("pace", pace, *PACE_RANGE)
        if p != 0.0:
            out["pitch"] = p
        if s != 1.0:
            out["pace"] = s
        return out

    def render(self, latent: np.ndarray, traits: dict[str, Any], lines: Sequence[str] = (), *, seed: int = 0,
               origin: dict[str, Any] | None = None, face: bool = True, voice: bool = True,
               face_image: np.ndarray | None = None, face_groups: np.ndarray | None = None,
               voice_options: dict[str, Any] | None = None, mouths: bool = True) -> Persona:
        """Build a persona from a latent and explicit traits (used by blends, siblings, from-face ...).

        ``face_groups``: (5,) weights of the appearance groups for the face instead of
        ``traits["race"]`` alone (a blend's face mixes its two groups). ``voice_options``: ``like``
        (a mix of stock voices), ``near``, ``pitch``, ``pace`` (``PersonaVoice.params``). A missing
        ``traits["accent"]`` is drawn from the latent (``accent_of``)."""
        from .fusion import SL_FACE, SL_STYLE, SL_VOICE

        latent = np.asarray(latent, np.float64)
        used = ["fusion"]
        img, atlas = face_image, None
        if face and img is None:
            group = (traits.get("race") or "white") if face_groups is None else np.asarray(face_groups)[None]
            img = self._need("face").generate(latent[SL_FACE][None], traits["female"], traits["age"], group,
                                              psi=self.psi)[0]
            used.append("face")
            if mouths and self.portrait is not None:
                from .portrait import make_atlas

                atlas = make_atlas(self.face, self.portrait, latent, traits, self.psi, groups=face_groups)
                used.append("portrait")
        params: dict[str, float] = {}
        if voice:
            vm = self._need("voice")
            traits = dict(traits)
            traits.setdefault("accent", accent_of(latent))
            params = vm.params(traits["female"], traits["age"], latent[SL_VOICE], latent[SL_STYLE],
                               accent=traits["accent"], **(voice_options or {}))
            used += ["voice_prior"]
        p = Persona(seed=seed, latent=latent, traits=dict(traits), voice=params, models=self.model_refs(used),
                    face=img, origin=dict(origin or {}), atlas=atlas)
        for text in lines:
            p.lines.append(self.say(p, text))
        return p

    # ------------------------------------------------------------------------ the other ways in
    def from_face(self, image: np.ndarray, seed: int = 0, lines: Sequence[str] = (), *, keep_face: bool = False,
                  voice: bool = True) -> Persona:
        """A persona whose traits are read from a face crop (uint8 (H, W, 3)): a matching voice,
        and its own generated portrait, or with ``keep_face`` the given image as the portrait:
        centre-cropped to a square and resized (Lanczos) to the face generator's resolution, so
        every persona's ``face.png`` has one size."""
        checks.from_face_args(image, seed, lines, keep_face, voice)
        img = _check_image(image)
        att = self._need("face_attributes").predict(img[None])
        from .fusion import RACES as GROUPS

        female = float(att["female"][0])
        traits = {"gender": "female" if female >= 0.5 else "male", "female": round(female, 4),
                  "age": round(float(np.clip(att["age"][0], 1, 100)), 2), "race": GROUPS[int(att["race"][0])]}
        latent = persona_latent(check_seed(seed))
        return self.render(latent, traits, lines, seed=seed, voice=voice,
                           origin={"from_face": {"female_prob": round(female, 4)}},
                           face_image=portrait(img, self._need("face").cfg.out_resolution) if keep_face else None)

    def from_voice(self, audio: np.ndarray, sample_rate: int, seed: int = 0, lines: Sequence[str] = (),
                   *, face: bool = True) -> Persona:
        """A persona from a voice clip: traits inferred by the speech VAE (Bayes over its conditional
        prior), its voice code taken from the clip's posterior so it sounds like the clip, and a
        generated face that matches the traits."""
        checks.from_voice_args(audio, sample_rate, seed, lines, face)
        from .fusion import SL_VOICE
        from .voice.features import voice_features

        vm = self._need("voice")
        if vm.vae is None:
            raise ModelNotAvailable("no speech VAE in the weights: it reads a clip's gender and age for --from-voice")
        feats = voice_features(np.asarray(audio, np.float32), int(sample_rate))[None]
        p_female, age = vm.vae.infer_traits(feats)
        female = float(p_female[0])
        gender = "female" if female >= 0.5 else "male"
        latent = persona_latent(check_seed(seed))
        traits = fuse(self._need("fusion"), latent, gender=gender, age=float(np.clip(age[0], 16, 90))).traits
        traits["female"] = round(float(np.clip(female, 0.0, 1.0)), 4)
        latent = latent.copy()
        code = vm.voice_code_of(feats[0], female)
        latent[SL_VOICE.start : SL_VOICE.start + len(code)] = code
        return self.render(latent, traits, lines, seed=seed, face=face,
                           origin={"from_voice": {"female_prob": round(female, 4), "age": round(float(age[0]), 1)}})

    def blend(self, a: Persona, b: Persona, t: float, lines: Sequence[str] = ()) -> Persona:
        """Interpolate two personas, face and voice together (t=0 -> a, t=1 -> b)."""
        checks.blend_args(a, b, t, lines)
        from .fusion import blend_latent

        t = float(t)
        if not 0.0 <= t <= 1.0:
            raise PersonaError(f"t must be in [0, 1], got {t}")
        female = (1 - t) * a.traits["female"] + t * b.traits["female"]
        traits = {"gender": "female" if female >= 0.5 else "male", "female": round(female, 4),
                  "age": round((1 - t) * a.traits["age"] + t * b.traits["age"], 2),
                  "race": (a if t < 0.5 else b).traits.get("race")}
        groups = (1 - t) * _group_weights(a.traits.get("race")) + t * _group_weights(b.traits.get("race"))
        return self.render(blend_latent(a.latent, b.latent, t), traits, lines, seed=a.seed, face_groups=groups,
                           origin={"blend": {"a": a.seed, "b": b.seed, "t": t,
                                             "groups": [round(float(g), 6) for g in groups]}})

    def sibling(self, persona: Persona, k: int, lines: Sequence[str] = (), resemblance: float | None = None,
                gender: str | None = "same", *, face: bool = True, voice: bool = True) -> Persona:
        """Family member ``k`` (1, 2, ...): shares the group, is within 6 years of the persona's age,
        and shares ``resemblance`` of the variance of the face and voice codes (default: 0.5 of the
        face code's, so siblings look related but are not copies, and 0.8 of the voice code's).

        ``gender``: ``"same"`` (default) the persona's, ``"female"`` / ``"male"`` that one, ``None``
        drawn from the trait prior as a new persona's is (brothers and sisters at random). ``face`` /
        ``voice`` False: leave that one out.
        """
        checks.sibling_args(persona, k, lines, resemblance, face, voice)
        from .fusion import SIBLING_FACE_RESEMBLANCE, SIBLING_RESEMBLANCE, SL_TRAITS, _phi, sibling_latent

        if gender == "same":
            gender = persona.traits["gender"]
        elif gender is not None and gender not in ("female", "male"):
            raise PersonaError(f"gender must be 'same', 'female', 'male' or None, got {gender!r}")
        if resemblance is not None and not (isinstance(resemblance, (int, float)) and 0.0 <= resemblance <= 1.0):
            raise PersonaError(f"resemblance must be within [0, 1], got {resemblance!r}")
        voice_r = SIBLING_RESEMBLANCE if resemblance is None else float(resemblance)
        face_r = SIBLING_FACE_RESEMBLANCE if resemblance is None else float(resemblance)
        lat = sibling_latent(persona.latent, k, voice_r, face_r)
        u = _phi(lat[SL_TRAITS])
        constraints = {"race": persona.traits.get("race")} | ({"gender": gender} if gender else {})
        traits = fuse(self._need("fusion"), lat, **constraints).traits
        traits["age"] = round(float(np.clip(persona.traits["age"] + 12 * (u[1] - 0.5), 16, 90)), 2)
        return self.render(lat, traits, lines, seed=persona.seed, origin={"sibling_of": persona.seed, "k": int(k)},
                           face=face, voice=voice)

    def aged(self, persona: Persona, years: float, lines: Sequence[str] = (), *, face: bool = True,
             voice: bool = True) -> Persona:
        """The same person ``years`` older (or younger, if negative), in face and voice (``face`` /
        ``voice`` False: leave that one out).

        The new age must be within ``AGE_RANGE`` (0-100 years, as an ``age`` constraint): ``years``
        outside ``aged_range(persona)`` raises ``PersonaError`` (never a silent clamp)."""
        checks.aged_args(persona, years, lines, face, voice)
        lo, hi = aged_range(persona.traits["age"])
        if not (isinstance(years, (int, float)) and lo <= years <= hi):
            raise PersonaError(f"this persona is {persona.traits['age']:g} years old: years must be between "
                               f"{lo:g} and {hi:g} (ages {AGE_RANGE[0]}-{AGE_RANGE[1]}), got {years!r}")
        traits = dict(persona.traits)
        traits["age"] = round(float(traits["age"] + float(years)), 2)
        return self.render(persona.latent, traits, lines, seed=persona.seed,
                           origin={**persona.origin, "aged": float(years)},
                           face=face, voice=voice, voice_options=persona.origin.get("voice"))

    @staticmethod
    def _voice_of(persona: Persona | PersonaDoc) -> tuple[np.ndarray, dict[str, float]]:
        if isinstance(persona, PersonaDoc):
            latent, params = np.asarray(persona.latent, np.float64), dict(persona.voice)
        else:
            latent, params = persona.latent, persona.voice
        if not params:
            raise PersonaError("this persona has no voice parameters (it was made with --no-voice)")
        return latent, params

    def say(self, persona: Persona | PersonaDoc, text: str) -> SpokenLine:
        """Render ``text`` in the persona's voice (audio + viseme track)."""
        checks.say_args(persona, text)
        vm = self._need("voice")
        latent, params = self._voice_of(persona)
        audio, sr, visemes, words, starts = vm.speak(text, params, _chunk_rngs(latent, text))
        return SpokenLine(text=text, audio=audio, sample_rate=sr, visemes=visemes, words=_word_dicts(words),
                          chunk_starts=starts)

    def stream(self, persona: Persona | PersonaDoc, text: str) -> Iterator[SpeechChunk]:
        """Render ``text`` in the persona's voice chunk by chunk, yielding each as soon as it is done.

        Chunks are cut at sentence and phrase boundaries, the first one short. Their audio joined is
        exactly ``say(persona, text).audio``; each chunk's ``visemes`` and ``words`` are in seconds
        from the start of the line (``voice.stream``)."""
        checks.say_args(persona, text)
        vm = self._need("voice")
        latent, params = self._voice_of(persona)
        return vm.speak_chunks(text, params, _chunk_rngs(latent, text))

    def video(self, persona: Persona, line: SpokenLine | int = 0, fmt: str = "mp4") -> bytes:
        """The talking portrait of one of the persona's lines (a ``SpokenLine`` or an index into
        ``persona.lines``) as MP4 (H.264 + AAC) or WebM (VP9 + Opus) bytes; the blinks are placed by
        a generator keyed by the persona and the text."""
        from .portrait import render_video

        if persona.atlas is None:
            raise PersonaError("this persona has no mouth-shape atlas (made without a face, from a kept "
                               "portrait, or with mouths=False)")
        if isinstance(line, int) and not isinstance(line, bool):
            if not 0 <= line < len(persona.lines):
                raise PersonaError(f"line must be an index into the persona's {len(persona.lines)} lines, got {line}")
            line = persona.lines[line]
        if not isinstance(line, SpokenLine):
            raise PersonaError(f"line must be a SpokenLine or an index, got {type(line).__name__}")
        if fmt not in ("mp4", "webm"):
            raise PersonaError(f"fmt must be 'mp4' or 'webm', got {fmt!r}")
        seed = int(text_rng(persona.latent, line.text, salt="blinks").integers(2**31))
        return render_video(persona.atlas, line.audio, line.sample_rate, line.visemes, seed, fmt=fmt)

    def info(self) -> dict[str, Any]:
        return {"package_version": __version__,
                "models": {n: {k: v for k, v in e.info.items()} for n, e in self.models.items()}}
