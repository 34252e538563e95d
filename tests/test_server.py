"""The HTTP service: in-process (httpx over ASGI) for the API, and once for real with uvicorn."""

import asyncio
import base64
import io
import json
import threading
import time

import httpx
import numpy as np
import pytest
import soundfile as sf

from digitalhuman.persona import VISEMES
from digitalhuman.pipeline import PersonaPipeline
from digitalhuman.server import create_app, is_loopback
from digitalhuman.voice.limits import MAX_TEXT_CHARS
from tests.service_proc import free_port, running_service

BAD_SEEDS = [-1, 2**64, "x", 1.5, True, None]


def run(app, *requests):
    """Send ``(method, url, kwargs)`` requests concurrently to ``app``; return the responses in order."""

    async def go():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test", timeout=60) as c:
            return await asyncio.gather(*(c.request(m, u, **kw) for m, u, kw in requests))

    return asyncio.run(go())


def one(app, method, url, **kw) -> httpx.Response:
    return run(app, (method, url, kw))[0]


def check_wav(data: bytes) -> np.ndarray:
    assert data[:4] == b"RIFF" and data[8:12] == b"WAVE"
    info = sf.info(io.BytesIO(data))
    assert (info.samplerate, info.channels, info.subtype) == (24000, 1, "PCM_16")
    audio, _ = sf.read(io.BytesIO(data), dtype="int16")
    assert len(audio) > 0.2 * 24000 and np.abs(audio).max() > 100
    return audio


def check_visemes(visemes, duration_s):
    assert visemes[0]["t_start"] == 0 and abs(visemes[-1]["t_end"] - duration_s) < 0.002
    assert all(a["t_end"] == b["t_start"] for a, b in zip(visemes, visemes[1:]))
    assert {v["viseme"] for v in visemes} <= set(VISEMES)


def check_error(r: httpx.Response, status: int, *words: str):
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"error", "detail"} and isinstance(body["error"], str)
    assert "Traceback" not in r.text
    for w in words:
        assert w in (body["error"] + json.dumps(body["detail"])), body


@pytest.fixture(scope="module")
def pipe(tiny_weights):
    return PersonaPipeline.from_pretrained(tiny_weights)


@pytest.fixture(scope="module")
def app(pipe):
    return create_app(pipe, warm_up=False)


def test_persona_json_links_face_and_lines(app, pipe):
    r = one(app, "POST", "/personas", json={"seed": 42, "gender": "female", "age": 60,
                                            "lines": ["The mines are cursed.", "Welcome back."]})
    assert r.status_code == 200, r.text
    body = r.json()
    doc = body["persona"]
    # the same document `digitalhuman create` writes
    expected = pipe(seed=42, gender="female", age=60.0, lines=["The mines are cursed.", "Welcome back."])
    assert doc == json.loads(expected.files()["persona.json"])
    assert doc["traits"]["gender"] == "female" and doc["traits"]["age"] == 60 and doc["voice"]["female"] == 1.0
    assert body["face_url"] == "/personas/42/face.png?gender=female&age=60"
    assert len(body["audio_urls"]) == 2

    face, wav0, wav1 = run(app, ("GET", body["face_url"], {}), ("GET", body["audio_urls"][0], {}),
                           ("GET", body["audio_urls"][1], {}))
    assert face.headers["content-type"] == "image/png" and face.content == expected.face_png_bytes()
    assert wav0.headers["content-type"] == "audio/wav" and wav0.content == expected.lines[0].wav_bytes()
    check_wav(wav1.content)
    for line in doc["lines"]:
        check_visemes(line["visemes"], line["duration_s"])


def test_say_and_say_json_agree(app):
    req = {"text": "Good morning, 3 apples!", "gender": "male", "race": "asian"}
    wav, js = run(app, ("POST", "/personas/7/say", {"json": req}), ("POST", "/personas/7/say.json", {"json": req}))
    assert wav.status_code == js.status_code == 200
    audio = check_wav(wav.content)
    body = js.json()
    assert base64.b64decode(body["audio_base64"]) == wav.content
    assert body["sample_rate"] == 24000 and abs(body["duration_s"] - len(audio) / 24000) < 1e-3
    check_visemes(body["visemes"], body["duration_s"])
    # the constraints are part of who speaks: another gender is another voice
    other = one(app, "POST", "/personas/7/say", json={**req, "gender": "female"})
    assert other.status_code == 200 and other.content != wav.content


def test_concurrent_requests_give_the_serial_bytes(pipe):
    app2 = create_app(pipe, inference_threads=2, cache_size=0, warm_up=False)
    reqs = [("GET", f"/personas/{s}/face.png?age=30", {}) for s in range(4)]
    reqs += [("POST", f"/personas/{s}/say", {"json": {"text": f"Line {s}."}}) for s in range(4)]
    together = run(app2, *reqs)
    alone = [one(app2, m, u, **kw) for m, u, kw in reqs]
    assert [r.status_code for r in together] == [200] * len(reqs)
    assert [r.content for r in together] == [r.content for r in alone]


@pytest.mark.parametrize("seed", BAD_SEEDS)
def test_bad_seed_is_422(app, seed):
    check_error(one(app, "POST", "/personas", json={"seed": seed}), 422, "seed")


@pytest.mark.parametrize("seed", ["-1", str(2**64), "x"])
def test_bad_seed_in_path_is_422(app, seed):
    check_error(one(app, "GET", f"/personas/{seed}/face.png"), 422, "seed")
    check_error(one(app, "POST", f"/personas/{seed}/say", json={"text": "Hi."}), 422, "seed")


def test_largest_seed_works(app):
    assert one(app, "GET", f"/personas/{2**64 - 1}/face.png").status_code == 200


@pytest.mark.parametrize("body, word", [
    ({"seed": 1, "gender": "robot"}, "gender"),
    ({"seed": 1, "age": 101}, "age"),
    ({"seed": 1, "age": "old"}, "age"),
    ({"seed": 1, "race": "martian"}, "race"),
    ({"seed": 1, "colour": "red"}, "colour"),
    ({"seed": 1, "lines": ["x"] * 9}, "lines"),
    ({"seed": 1, "lines": ["a" * (MAX_TEXT_CHARS + 1)]}, "2000"),
    ({"seed": 1, "lines": [""]}, "lines"),
    ({"gender": "female"}, "seed"),
])
def test_invalid_persona_request_is_422(app, body, word):
    check_error(one(app, "POST", "/personas", json=body), 422, word)


def test_text_limits(app):
    check_error(one(app, "POST", "/personas/1/say", json={"text": "a" * (MAX_TEXT_CHARS + 1)}), 422,
                "at most 2000 characters")
    check_error(one(app, "POST", "/personas/1/say", json={"text": "?!"}), 422, "speakable", "letter")
    check_error(one(app, "GET", "/personas/1/say.wav", params={"text": "a" * (MAX_TEXT_CHARS + 1)}), 422, "text")
    check_error(one(app, "GET", "/personas/1/face.png?age=nan"), 422, "age")


def test_invalid_json_and_routes(app):
    headers = {"content-type": "application/json"}
    check_error(one(app, "POST", "/personas", content=b'{"seed": 1,', headers=headers), 422, "not valid JSON")
    check_error(one(app, "POST", "/personas", content=b"[1, 2]", headers=headers), 422)
    check_error(one(app, "POST", "/personas", content=b'{"seed": 1}', headers={"content-type": "text/plain"}),
                422, "application/json")
    check_error(one(app, "GET", "/nope"), 404, "/nope")
    check_error(one(app, "GET", "/personas/1/face.jpg"), 404)
    check_error(one(app, "DELETE", "/personas"), 405)


def test_body_limit_is_413_before_parsing(pipe):
    small = create_app(pipe, max_body=1000, warm_up=False)
    check_error(one(small, "POST", "/personas", content=b"x" * 1001, headers={"content-type": "application/json"}),
                413, "1000")

    async def chunks():  # no Content-Length: the streamed size is counted
        for _ in range(20):
            yield b"x" * 100

    check_error(one(small, "POST", "/personas/1/say", content=chunks()), 413)
    just_under = {"text": "Hi." + " " * 900}  # ~920 bytes; the spaces are cleaned away before speaking
    ok = one(small, "POST", "/personas/1/say", json=just_under)
    assert ok.status_code == 200 and len(json.dumps(just_under)) < 1000


def test_health_info_and_openapi(app):
    h, i, o = run(app, ("GET", "/health", {}), ("GET", "/info", {}), ("GET", "/openapi.json", {}))
    assert h.json() == {"status": "ok"}
    info = i.json()
    assert info["package_version"] and set(info["models"]) >= {"face", "voice", "fusion"}
    assert info["limits"]["max_text_chars"] == MAX_TEXT_CHARS and info["available"]["voice"]
    schema = o.json()["components"]["schemas"]
    assert schema["PersonaRequest"]["properties"]["lines"]["maxItems"] == 8
    assert schema["SayRequest"]["properties"]["text"]["maxLength"] == MAX_TEXT_CHARS


def test_missing_models_are_503(tiny_weights_no_voice, tmp_path):
    faces_only = create_app(tiny_weights_no_voice, warm_up=False)
    r = one(faces_only, "POST", "/personas", json={"seed": 3})
    assert r.status_code == 200 and r.json()["persona"]["voice"] == {}
    assert one(faces_only, "GET", r.json()["face_url"]).status_code == 200
    check_error(one(faces_only, "POST", "/personas/3/say", json={"text": "Hi."}), 503, "voice")
    check_error(one(faces_only, "POST", "/personas", json={"seed": 3, "lines": ["Hi."]}), 503, "voice")
    nothing = create_app(tmp_path, warm_up=False)  # a folder without card.json: no models at all
    check_error(one(nothing, "GET", "/personas/3/face.png"), 503, "model not available")
    assert one(nothing, "GET", "/health").json() == {"status": "ok"}


def test_internal_error_does_not_leak(tiny_weights):
    class Broken(PersonaPipeline):
        def say(self, persona, text):
            raise RuntimeError("secret /internal/path")

    broken = create_app(Broken.from_pretrained(tiny_weights), warm_up=False)
    r = one(broken, "POST", "/personas/1/say", json={"text": "Hi."})
    check_error(r, 500)
    assert "secret" not in r.text


def test_health_answers_while_generation_waits_and_queue_is_bounded(tiny_weights):
    gate = threading.Event()

    class Slow(PersonaPipeline):
        def say(self, persona, text):
            gate.wait(30)
            return super().say(persona, text)

    slow = create_app(Slow.from_pretrained(tiny_weights), max_pending=1, warm_up=False)

    async def go():
        transport = httpx.ASGITransport(app=slow)
        async with httpx.AsyncClient(transport=transport, base_url="http://test", timeout=60) as c:
            first = asyncio.create_task(c.post("/personas/1/say", json={"text": "Hi."}))
            await asyncio.sleep(0.2)
            t = time.perf_counter()
            health = await c.get("/health")
            health_s = time.perf_counter() - t
            busy = await c.post("/personas/2/say", json={"text": "Hi."})
            gate.set()
            return health, health_s, busy, await first

    health, health_s, busy, first = asyncio.run(go())
    assert health.status_code == 200 and health_s < 1.0
    check_error(busy, 503, "busy")
    assert busy.headers["retry-after"] == "1"
    assert first.status_code == 200


def test_loopback_detection():
    assert all(map(is_loopback, ["127.0.0.1", "localhost", "::1", "[::1]", "127.1.2.3"]))
    assert not any(map(is_loopback, ["0.0.0.0", "::", "192.168.1.10", "example.com"]))


def test_create_app_checks_its_arguments(pipe):
    for kw in ({"max_body": 0}, {"max_lines": -1}, {"inference_threads": 0}, {"max_pending": True}):
        with pytest.raises(ValueError):
            create_app(pipe, **kw)


# ------------------------------------------------------------------------------ the real service
def test_real_service_with_uvicorn(tiny_weights, tmp_path):
    port = free_port()
    code = (f"from digitalhuman.server import serve; "
            f"serve(port={port}, weights={str(tiny_weights)!r}, log_level='warning')")
    base = f"http://127.0.0.1:{port}"
    with running_service(code, port, tmp_path / "server.log"), httpx.Client(base_url=base, timeout=60) as c:
        r = c.post("/personas", json={"seed": 11, "age": 35, "lines": ["Hello there, traveller."]})
        assert r.status_code == 200, r.text
        body = r.json()
        face = c.get(body["face_url"])
        assert face.status_code == 200 and face.content[:8] == b"\x89PNG\r\n\x1a\n"
        wav = c.get(body["audio_urls"][0])
        assert wav.status_code == 200 and wav.headers["content-type"] == "audio/wav"
        check_wav(wav.content)
        line = body["persona"]["lines"][0]
        check_visemes(line["visemes"], line["duration_s"])
        assert len({v["viseme"] for v in line["visemes"]}) > 4
        js = c.post("/personas/11/say.json", json={"text": "Hello there, traveller.", "age": 35}).json()
        assert base64.b64decode(js["audio_base64"]) == wav.content

        for seed in BAD_SEEDS[:3]:
            check_error(c.post("/personas", json={"seed": seed}), 422, "seed")
        check_error(c.get(f"/personas/{2**64}/face.png"), 422, "seed")
        check_error(c.post("/personas/1/say", json={"text": "a" * (MAX_TEXT_CHARS + 1)}), 422, "2000")
        check_error(c.get("/no/such/route"), 404)
        check_error(c.post("/personas", content=b"{oops", headers={"content-type": "application/json"}), 422,
                    "JSON")
        check_error(c.post("/personas", content=b" " * 70_000, headers={"content-type": "application/json"}), 413)
        assert c.get("/health").json() == {"status": "ok"}  # still serving after the errors
    assert "Traceback" not in (tmp_path / "server.log").read_text()


def test_line_cache_is_bounded_in_bytes():
    from digitalhuman.server import _LRU

    lru = _LRU(10, max_bytes=100, weight=len)
    for k in "abcd":
        lru.put(k, "x" * 40)
    assert list(lru.data) == ["c", "d"] and lru.bytes == 80
    lru.put("huge", "x" * 101)
    assert "huge" not in lru.data and lru.get("c") is not None
    lru.put("e", "x" * 40)
    assert list(lru.data) == ["c", "e"]
