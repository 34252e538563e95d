"""HTTP contract: streaming (NDJSON), lip-sync files, HEAD, ETag/Cache-Control, 422 for undecodable
bodies and unknown query parameters, exact seed bounds and typed responses in the OpenAPI schema."""

import base64
import io
import json

import numpy as np
import pytest
import soundfile as sf

from digitalhuman.lipsync import render
from digitalhuman.persona import MAX_SEED
from digitalhuman.server import create_app
from digitalhuman.service.streaming import join_stream
from tests.test_server import app, check_error, one, pipe, run  # noqa: F401  (app, pipe: the same fixtures)

THREE = "Well met, stranger. The road north is closed since the storm. Ask at the inn."


def wav_pcm(data: bytes) -> np.ndarray:
    pcm, sr = sf.read(io.BytesIO(data), dtype="int16")
    assert sr == 24000
    return pcm


# --------------------------------------------------------------------------------------- streaming
def test_stream_is_the_wav_in_chunks(pipe):
    app = create_app(pipe, warm_up=False)  # its own cache: the first stream renders, the second is cut from cache
    body = {"text": THREE, "gender": "female", "age": 40}
    streamed = one(app, "POST", "/personas/9/say/stream", json=body)
    assert streamed.status_code == 200 and streamed.headers["content-type"].startswith("application/x-ndjson")
    pcm, chunks, done = join_stream(streamed.text.splitlines())
    wav = one(app, "POST", "/personas/9/say", json=body)
    assert pcm.tobytes() == wav_pcm(wav.content).tobytes()
    assert done == {"done": True, "duration_s": round(len(pcm) / 24000, 4), "chunks": len(chunks)} and len(chunks) >= 3
    assert [c["chunk"] for c in chunks] == list(range(len(chunks)))
    starts = np.cumsum([0] + [len(base64.b64decode(c["pcm16"])) // 2 for c in chunks])
    assert [c["t_start"] for c in chunks] == [round(s / 24000, 6) for s in starts[:-1]]
    visemes = [v for c in chunks for v in c["visemes"]]
    assert visemes[0]["t_start"] == 0 and all(a["t_end"] == b["t_start"] for a, b in zip(visemes, visemes[1:]))
    assert all(v["t_end"] > v["t_start"] for v in visemes) and abs(visemes[-1]["t_end"] - len(pcm) / 24000) < 0.001
    # the first chunk is short: well under a third of the line
    assert len(base64.b64decode(chunks[0]["pcm16"])) < 0.35 * 2 * len(pcm)
    # a second stream of the same line comes from the cache, chunk for chunk the same
    again = one(app, "POST", "/personas/9/say/stream", json=body)
    assert again.text == streamed.text


def test_stream_refuses_bad_input_before_streaming(app):
    check_error(one(app, "POST", "/personas/1/say/stream", json={"text": "!!!"}), 422, "speakable")
    check_error(one(app, "GET", "/personas/1/say.wav?text=%C2%B7%26"), 422, "letter")
    check_error(one(app, "POST", "/personas/1/say/stream", json={"text": "Hi.", "lipsync": ["arkit"]}), 422, "lipsync")


# ----------------------------------------------------------------------------------------- lipsync
def test_persona_lipsync_urls_and_say_json(app, pipe):
    r = one(app, "POST", "/personas", json={"seed": 3, "lines": ["Hello there."], "lipsync": ["rhubarb", "arkit"]})
    assert r.status_code == 200, r.text
    body = r.json()
    line = body["persona"]["lines"][0]
    assert line["lipsync"] == {"arkit": "voice_00.arkit.csv", "rhubarb": "voice_00.rhubarb.tsv"}
    assert [w["word"] for w in line["words"]] == ["Hello", "there"]
    urls = body["lipsync_urls"][0]
    assert set(urls) == {"arkit", "rhubarb"}
    spoken = pipe.say(pipe(seed=3), "Hello there.")
    for fmt, url in urls.items():
        got = one(app, "GET", url)
        assert got.status_code == 200 and got.content == render(spoken, fmt)
    assert one(app, "GET", urls["arkit"]).headers["content-type"].startswith("text/csv")
    j = one(app, "POST", "/personas/3/say.json", json={"text": "Hello there.", "lipsync": ["vrm"]}).json()
    assert set(j["lipsync"]) == {"vrm"} and json.loads(j["lipsync"]["vrm"])["fps"] == 60
    check_error(one(app, "GET", "/personas/3/lipsync/maya?text=Hi."), 422)


# ---------------------------------------------------------------------------- caching, HEAD, query
@pytest.mark.parametrize("url", ["/personas/5/face.png?gender=male", "/personas/5/say.wav?text=Hi.",
                                 "/personas/5/lipsync/vrm?text=Hi."])
def test_etag_cache_control_head_and_304(app, url):
    get = one(app, "GET", url)
    assert get.status_code == 200 and get.content
    etag = get.headers["etag"]
    assert etag.startswith('"') and "max-age" in get.headers["cache-control"]
    head = one(app, "HEAD", url)
    assert head.status_code == 200 and head.content == b""
    assert head.headers["etag"] == etag and head.headers["content-length"] == str(len(get.content))
    assert head.headers["content-type"] == get.headers["content-type"]
    cond = one(app, "GET", url, headers={"If-None-Match": etag})
    assert cond.status_code == 304 and cond.content == b"" and cond.headers["etag"] == etag
    other = one(app, "GET", url.replace("/5/", "/6/"))
    assert other.headers["etag"] != etag  # another persona, another tag


def test_head_on_health_and_info(app):
    for url in ("/health", "/info"):
        r = one(app, "HEAD", url)
        assert r.status_code == 200 and r.content == b"" and r.headers["content-type"] == "application/json"


def test_unknown_query_parameters_are_refused(app):
    r = one(app, "GET", "/personas/1/face.png?gendr=male")
    check_error(r, 422, "gendr", "unknown query parameter")
    check_error(one(app, "POST", "/personas?debug=1", json={"seed": 1}), 422, "debug")
    check_error(one(app, "GET", "/health?x=1"), 422)
    assert one(app, "GET", "/personas/1/face.png?gender=male").status_code == 200


@pytest.mark.parametrize("body", [b"\xff\xfe\x00{", b'{"seed": 1, "x": "\xc3\x28"}'])
def test_undecodable_body_is_422(app, body):
    r = one(app, "POST", "/personas", content=body, headers={"content-type": "application/json"})
    check_error(r, 422, "not valid JSON")


# -------------------------------------------------------------------------------------- the schema
def test_openapi_exact_seed_bounds_and_typed_objects(app):
    spec = one(app, "GET", "/openapi.json")
    assert '"maximum": 1.8446744073709552e+19' not in spec.text.replace(":", ": ").replace(":  ", ": ")
    doc = spec.json()
    seed = doc["components"]["schemas"]["PersonaRequest"]["properties"]["seed"]
    assert seed["maximum"] == MAX_SEED and seed["minimum"] == 0
    assert isinstance(seed["maximum"], int) and str(MAX_SEED) in spec.text
    persona = doc["components"]["schemas"]["PersonaResponse"]["properties"]["persona"]
    assert persona["$ref"].endswith("PersonaDoc")
    line_ref = json.dumps(doc["components"]["schemas"]["Line"])
    assert "Viseme" in line_ref and "Word" in line_ref
    assert set(doc["paths"]["/personas/{seed}/face.png"]) == {"get", "head"}
    assert "application/x-ndjson" in doc["paths"]["/personas/{seed}/say/stream"]["post"]["responses"]["200"]["content"]


def test_the_largest_seed_the_schema_allows_is_served(app):
    r = one(app, "POST", "/personas", json={"seed": MAX_SEED})
    assert r.status_code == 200, r.text
    check_error(one(app, "POST", "/personas", json={"seed": MAX_SEED + 1}), 422)


def test_streams_and_gets_run_side_by_side(app):
    rs = run(app, ("POST", "/personas/2/say/stream", {"json": {"text": "One. Two."}}),
             ("GET", "/health", {}), ("POST", "/personas/2/say/stream", {"json": {"text": "One. Two."}}))
    assert [r.status_code for r in rs] == [200, 200, 200] and rs[0].text == rs[2].text
