"""``POST /personas/{seed}/say/stream``: a line as NDJSON, one object per rendered chunk.

Each chunk line is ``{"chunk": i, "t_start": s, "sample_rate": sr, "pcm16": base64 little-endian
mono PCM16, "visemes": [{t_start, t_end, viseme}], "words": [{word, t_start, t_end}]}`` with times in
seconds from the start of the line; the last line is ``{"done": true, "duration_s": s, "chunks": n}``.
The chunks' PCM joined is the PCM of ``POST /personas/{seed}/say`` for the same body.

The first chunk is rendered before the response starts, so invalid input is a normal JSON error
(422/503); an error after that (a bug) ends the stream with ``{"error": ..., "detail": ...}``.
The stream holds one waiting slot of the service while it runs; its chunks take turns with other
requests on the inference threads.
"""

import base64
import json
import logging

import numpy as np
from fastapi.responses import StreamingResponse

from ..persona import pcm16
from ..voice.stream import SpeechChunk
from .core import PersonaService
from .middleware import ApiError
from .models import PersonaKey

__all__ = ["NDJSON", "stream_response", "chunk_line"]

log = logging.getLogger("digitalhuman.service")
NDJSON = "application/x-ndjson"


def chunk_line(c: SpeechChunk) -> bytes:
    pcm = pcm16(c.audio).astype("<i2", copy=False)
    doc = {"chunk": c.index, "t_start": round(c.start / c.sample_rate, 6), "sample_rate": c.sample_rate,
           "pcm16": base64.b64encode(pcm.tobytes()).decode("ascii"), "visemes": c.visemes,
           "words": [{"word": w, "t_start": round(a, 3), "t_end": round(b, 3)} for w, a, b in c.words]}
    return (json.dumps(doc, separators=(",", ":")) + "\n").encode()


async def stream_response(svc: PersonaService, key: PersonaKey, text: str) -> StreamingResponse:
    svc.reserve()
    try:
        chunks, first, cached = await svc.call(svc.start_stream, key, text)
    except BaseException:
        svc.release()
        raise

    async def body():
        done: list[SpeechChunk] = []
        c = first
        try:
            while c is not None:
                done.append(c)
                yield chunk_line(c)
                c = await svc.call(svc.next_chunk, chunks)
            total = sum(len(x.audio) for x in done)
            sr = done[0].sample_rate if done else 24000
            yield (json.dumps({"done": True, "duration_s": round(total / sr, 4), "chunks": len(done)}) + "\n").encode()
            if done and not cached:
                svc.remember_line(key, svc.assemble(text, done))
        except ApiError as e:
            yield (json.dumps({"error": e.error, "detail": e.detail}) + "\n").encode()
        finally:
            svc.release()

    return StreamingResponse(body(), media_type=NDJSON, headers={"Cache-Control": "no-store",
                                                                  "X-Content-Type-Options": "nosniff"})


def join_stream(lines: list[bytes] | list[str]) -> tuple[np.ndarray, list[dict], dict]:
    """Client-side helper (tests, benchmarks): NDJSON lines -> (PCM16, chunk docs, done doc)."""
    docs = [json.loads(x) for x in lines if x.strip()]
    chunks = [d for d in docs if "chunk" in d]
    pcm = np.concatenate([np.frombuffer(base64.b64decode(d["pcm16"]), "<i2") for d in chunks]) if chunks \
        else np.zeros(0, np.int16)
    return pcm, chunks, docs[-1] if docs else {}
