"""The service's state: the shared pipeline, its inference threads, caches and representation tags."""

import asyncio
import base64
import dataclasses
import hashlib
import json
import logging
import threading
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Iterator

from .. import __version__
from ..lipsync import MEDIA_TYPES, file_names, render
from ..persona import Persona, PersonaError, SpokenLine
from ..pipeline import ModelNotAvailable, PersonaPipeline
from ..voice.stream import SpeechChunk, join_tracks, split_line
from ..voice.text import TextError
from .middleware import ApiError
from .models import PersonaKey

__all__ = ["PersonaService", "LINE_CACHE_BYTES", "VIDEO_TYPES"]

log = logging.getLogger("digitalhuman.service")

VIDEO_TYPES = {"mp4": "video/mp4", "webm": "video/webm"}
LINE_CACHE_BYTES = 64 * 2**20  # audio kept in the cache of recent lines (a 2000-character line is minutes)


class _LRU:
    """At most ``size`` entries and ``max_bytes`` of ``weight(value)``; not thread-safe on its own."""

    def __init__(self, size: int, max_bytes: int = 0, weight: Callable[[Any], int] = lambda v: 0):
        self.size, self.max_bytes, self.weight = size, max_bytes, weight
        self.data: OrderedDict = OrderedDict()
        self.bytes = 0

    def get(self, key):
        if key in self.data:
            self.data.move_to_end(key)
            return self.data[key]
        return None

    def put(self, key, value):
        w = self.weight(value)
        if self.size <= 0 or key in self.data or (self.max_bytes and w > self.max_bytes):
            return
        self.data[key] = value
        self.bytes += w
        while len(self.data) > self.size or (self.max_bytes and self.bytes > self.max_bytes):
            self.bytes -= self.weight(self.data.popitem(last=False)[1])


class PersonaService:
    """The shared pipeline, its inference threads and caches (one per process)."""

    def __init__(self, pipe: PersonaPipeline, inference_threads: int, max_pending: int, cache_size: int):
        self.pipe = pipe
        self.inference_threads = inference_threads
        self.executor = ThreadPoolExecutor(max_workers=inference_threads, thread_name_prefix="digitalhuman-infer")
        self.max_pending = max_pending
        self.pending = 0  # touched only on the event loop thread
        self._lock = threading.Lock()  # guards the caches (worker threads)
        self._personas = _LRU(cache_size)
        self._lines = _LRU(cache_size, LINE_CACHE_BYTES, lambda ln: ln.audio.nbytes)
        # what the bytes of a deterministic resource depend on besides the request: version and weights
        self._build = json.dumps([__version__, sorted((n, e.sha256) for n, e in pipe.models.items())])

    # ------------------------------------------------------------------------------- scheduling
    def reserve(self) -> None:
        """Take a waiting slot (event loop thread only) or answer 503 busy."""
        if self.pending >= self.max_pending:
            raise ApiError(503, "busy", f"{self.pending} requests are waiting; retry shortly", {"Retry-After": "1"})
        self.pending += 1

    def release(self) -> None:
        self.pending -= 1

    async def run(self, fn: Callable[..., Any], *args: Any) -> Any:
        self.reserve()
        try:
            return await self.call(fn, *args)
        finally:
            self.release()

    async def call(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run ``fn`` on an inference thread, inside a slot the caller already holds."""
        return await asyncio.get_running_loop().run_in_executor(self.executor, self._guard, fn, args)

    @staticmethod
    def _guard(fn, args):
        try:
            return fn(*args)
        except ModelNotAvailable as e:
            raise ApiError(503, "model not available", str(e)) from None
        except (PersonaError, TextError) as e:
            raise ApiError(422, f"invalid request: {e}", str(e)) from None
        except ApiError:
            raise
        except Exception:
            log.exception("generation failed")
            raise ApiError(500, "internal error", "generation failed; see the server log") from None

    def etag(self, *parts: Any) -> str:
        """A strong ETag for a deterministic resource: the bytes depend only on these parts, the
        package version and the weights, so it is known before anything is generated."""
        h = hashlib.sha256(json.dumps([self._build, *parts], default=str).encode()).hexdigest()
        return f'"{h[:32]}"'

    # ------------------------------------------------------------ the methods below run on the inference threads
    def persona(self, key: PersonaKey, mouths: bool = False) -> Persona:
        """The persona of ``key``; ``mouths``: with its mouth-shape atlas (made on first need: the
        faces of a browsed grid do without it, 0.03 s instead of 0.2 s each)."""
        want_atlas = mouths and self.pipe.face is not None and self.pipe.portrait is not None
        with self._lock:
            p = self._personas.get(key)
        if p is None or (want_atlas and p.atlas is None):
            p = self._make(key, want_atlas)
            with self._lock:
                self._personas.data.pop(key, None)
                self._personas.put(key, p)
        return p

    def _make(self, key: PersonaKey, mouths: bool) -> Persona:
        """seed + constraints + voice casting, then blend, family member and ageing, in that order."""
        pipe, face, voice = self.pipe, self.pipe.face is not None, self.pipe.voice is not None
        derived = key.blend is not None or key.family is not None or key.aged is not None
        p = pipe(seed=key.seed, gender=key.gender, age=key.age, race=key.race, accent=key.accent,
                 voice_like=key.voice_like, pitch=0.0 if key.pitch is None else key.pitch,
                 pace=1.0 if key.pace is None else key.pace, face=face and not derived,
                 voice=voice and not derived, mouths=mouths)  # a derived persona is rendered again below
        if key.blend is not None:
            other = pipe(seed=key.blend, face=False, voice=False)
            p = pipe.blend(p, other, key.blend_t if key.blend_t is not None else 0.5)
        if key.family is not None:
            p = pipe.sibling(p, key.family, face=face, voice=voice)
        if key.aged is not None:
            p = pipe.aged(p, key.aged, face=face, voice=voice)
        return p

    def _need_voice(self) -> None:
        if self.pipe.voice is None:
            raise ModelNotAvailable("no voice model in the weights folder; this service makes faces only")

    def cached_line(self, key: PersonaKey, text: str) -> SpokenLine | None:
        with self._lock:
            return self._lines.get((key, text))

    def remember_line(self, key: PersonaKey, line: SpokenLine) -> None:
        with self._lock:
            self._lines.put((key, line.text), line)

    def line(self, key: PersonaKey, text: str) -> SpokenLine:
        self._need_voice()
        ln = self.cached_line(key, text)
        if ln is None:
            ln = self.pipe.say(self.persona(key), text)
            self.remember_line(key, ln)
        return ln

    def persona_doc(self, key: PersonaKey, lines: list[str], lipsync: list[str]) -> dict[str, Any]:
        if lines and self.pipe.voice is None:
            raise ModelNotAvailable("no voice model in the weights folder; ask without lines")
        p = self.persona(key, mouths=True)  # the document names mouths.png as `create` writes it
        spoken = [self.line(key, t) for t in lines]
        return dataclasses.replace(p, lines=spoken).to_doc(lipsync).model_dump(mode="json")

    def face_png(self, key: PersonaKey) -> bytes:
        if self.pipe.face is None:
            raise ModelNotAvailable("no face model in the weights folder")
        return self.persona(key).face_png_bytes()

    def atlas(self, key: PersonaKey):
        if self.pipe.face is None or self.pipe.portrait is None:
            raise ModelNotAvailable("no face model or no portrait directions in the weights folder: no mouth-shape atlas")
        p = self.persona(key, mouths=True)
        if p.atlas is None:
            raise ModelNotAvailable("this persona has no mouth-shape atlas")
        return p.atlas

    def mouths_png(self, key: PersonaKey) -> bytes:
        return self.atlas(key).png_bytes()

    def mouths_json(self, key: PersonaKey) -> bytes:
        return self.atlas(key).json_bytes()

    def video(self, key: PersonaKey, text: str, fmt: str) -> tuple[bytes, str]:
        self.atlas(key)
        return self.pipe.video(self.persona(key, mouths=True), self.line(key, text), fmt), VIDEO_TYPES[fmt]

    def export_zip(self, items: list[tuple[PersonaKey, list[str]]]) -> bytes:
        """The personas as one zip in the ``batch`` layout: ``<seed>/`` folders (``<seed>-2/`` ... for
        a seed shortlisted again with another shape), ``manifest.jsonl`` and the ``index.html`` gallery."""
        import io
        import tempfile
        import zipfile
        from pathlib import Path

        from ..batch import manifest_line
        from ..gallery import write_gallery
        from ..persona import load_persona_doc

        for key, lines in items:
            if lines:
                self._need_voice()
        rows, used = [], set()
        with tempfile.TemporaryDirectory(prefix="digitalhuman-export-") as tmp:
            root = Path(tmp)
            for key, lines in items:
                name, n = str(key.seed), 1
                while name in used:
                    n += 1
                    name = f"{key.seed}-{n}"
                used.add(name)
                p = self.persona(key, mouths=True)
                dataclasses.replace(p, lines=[self.line(key, t) for t in lines]).save(root / name)
                row = manifest_line(root, key.seed) if name == str(key.seed) else None
                if row is None:
                    doc = load_persona_doc(root / name)
                    row = {"seed": key.seed, "folder": name, "traits": doc.traits.model_dump(exclude_none=True),
                           "face": doc.face, "voice": doc.voice,
                           "lines": [{"text": ln.text, "audio": ln.audio, "duration_s": ln.duration_s}
                                     for ln in doc.lines]}
                rows.append(row)
            (root / "manifest.jsonl").write_text("".join(json.dumps(r, sort_keys=True) + "\n" for r in rows))
            write_gallery(root, rows)
            buf = io.BytesIO()
            with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
                for f in sorted(x for x in root.rglob("*") if x.is_file()):
                    info = zipfile.ZipInfo(f.relative_to(root).as_posix(), date_time=(2020, 1, 1, 0, 0, 0))
                    info.compress_type, info.external_attr = zipfile.ZIP_DEFLATED, 0o644 << 16
                    z.writestr(info, f.read_bytes())
            return buf.getvalue()

    def wav(self, key: PersonaKey, text: str) -> bytes:
        return self.line(key, text).wav_bytes()

    def lipsync_file(self, key: PersonaKey, text: str, fmt: str) -> tuple[bytes, str]:
        return render(self.line(key, text), fmt), MEDIA_TYPES[fmt]

    def say_json(self, key: PersonaKey, text: str, lipsync: list[str]) -> dict[str, Any]:
        ln = self.line(key, text)
        return {"text": ln.text, "sample_rate": ln.sample_rate, "duration_s": round(ln.duration_s, 4),
                "visemes": ln.visemes, "words": ln.words,
                "audio_base64": base64.b64encode(ln.wav_bytes()).decode("ascii"),
                "lipsync": {f: render(ln, f).decode("utf-8") for f in file_names("line", lipsync)}}

    def start_stream(self, key: PersonaKey, text: str) -> tuple[Iterator[SpeechChunk], SpeechChunk | None, bool]:
        """-> (chunks, first chunk, cached). A cached line is cut back into its chunks; otherwise
        the first chunk is rendered here, so invalid text fails before any byte is sent."""
        self._need_voice()
        ln = self.cached_line(key, text)
        if ln is not None:
            chunks = iter(split_line(ln))
            return chunks, next(chunks, None), True
        chunks = iter(self.pipe.stream(self.persona(key), text))
        return chunks, next(chunks, None), False

    @staticmethod
    def next_chunk(chunks: Iterator[SpeechChunk]) -> SpeechChunk | None:
        return next(chunks, None)

    @staticmethod
    def assemble(text: str, chunks: list[SpeechChunk]) -> SpokenLine:
        """The line a finished stream rendered (what ``say`` would have returned)."""
        import numpy as np

        from ..pipeline import _word_dicts

        return SpokenLine(text=text, audio=np.concatenate([c.audio for c in chunks]),
                          sample_rate=chunks[0].sample_rate, visemes=join_tracks(c.visemes for c in chunks),
                          words=_word_dicts(w for c in chunks for w in c.words), chunk_starts=[c.start for c in chunks])

    def warm_up(self) -> None:
        """Load lazily built state (gruut's lexicon, per thread) before the first request."""
        try:
            if self.pipe.prior is not None and self.pipe.voice is not None:
                self.pipe.say(self.pipe(seed=0, face=False), "Hello.")
        except Exception:  # noqa: BLE001 - a warm-up failure shows up again on the first real request
            log.warning("warm-up failed", exc_info=True)
