"""The service parts behind the studio, in-process with the tiny models: the access token, the shape
fields (voice casting, blend, family member, ageing), the export zip, the studio's static files."""

import io
import json
import zipfile

import pytest

from digitalhuman.gallery import read_manifest
from digitalhuman.persona import load_persona_doc
from digitalhuman.server import create_app
from digitalhuman.service.app import ServeError, serve
from digitalhuman.service.pages import CSP
from tests.test_server import check_error, one

TOKEN = "studio-test-token-0123456789"


@pytest.fixture(scope="module")
def app(tiny_weights):
    return create_app(tiny_weights, warm_up=False)


@pytest.fixture(scope="module")
def locked(tiny_weights):
    return create_app(tiny_weights, warm_up=False, token=TOKEN)


def test_token_required_for_everything_but_health(locked, monkeypatch):
    calls = []
    svc = locked.state.service
    monkeypatch.setattr(svc, "persona", lambda *a, **k: calls.append(a))  # nothing may be generated
    assert one(locked, "GET", "/health").status_code == 200
    assert one(locked, "HEAD", "/health").status_code == 200
    for method, url, kw in [("GET", "/studio/", {}), ("GET", "/studio/studio.js", {}), ("GET", "/", {}),
                            ("GET", "/info", {}), ("GET", "/openapi.json", {}),
                            ("GET", "/personas/3/face.png", {}), ("GET", "/personas/3/mouths.json", {}),
                            ("POST", "/personas", {"json": {"seed": 3}}),
                            ("POST", "/personas/3/say/stream", {"json": {"text": "Hi there."}}),
                            ("POST", "/export.zip", {"json": {"personas": [{"seed": 3}]}}),
                            ("GET", "/nope", {})]:
        for headers in ({}, {"authorization": "Bearer wrong-token-0123456789"}, {"authorization": "Bearer "},
                        {"authorization": f"Basic {TOKEN}"}, {"cookie": "digitalhuman_token=wrong"},
                        {"authorization": f"Bearer {TOKEN}x"}):
            r = one(locked, method, url, headers=headers, **kw)
            check_error(r, 401)
            assert r.headers["www-authenticate"] == "Bearer"
        check_error(one(locked, method, url + "?token=wrong", **kw), 401)
    assert calls == []


def test_token_bearer_and_cookie(locked):
    ok = one(locked, "GET", "/personas/3/face.png", headers={"authorization": f"Bearer {TOKEN}"})
    assert ok.status_code == 200 and ok.headers["content-type"] == "image/png"
    # a browser: ?token= once -> 303 without it, setting the cookie the page's requests then carry
    r = one(locked, "GET", f"/studio/?token={TOKEN}")
    assert r.status_code == 303 and r.headers["location"] == "/studio/"
    cookie = r.headers["set-cookie"]
    assert cookie.startswith(f"digitalhuman_token={TOKEN};") and "HttpOnly" in cookie and "SameSite=Strict" in cookie
    r = one(locked, "GET", f"/personas/3/face.png?gender=male&token={TOKEN}")
    assert r.status_code == 303 and r.headers["location"] == "/personas/3/face.png?gender=male"
    page = one(locked, "GET", "/studio/", headers={"cookie": f"other=1; digitalhuman_token={TOKEN}"})
    assert page.status_code == 200 and "Persona Studio" in page.text
    assert one(locked, "POST", "/personas", json={"seed": 3},
               headers={"cookie": f"digitalhuman_token={TOKEN}"}).status_code == 200


def test_serve_refuses_lan_without_token(monkeypatch, capsys):
    monkeypatch.delenv("DIGITALHUMAN_TOKEN", raising=False)
    for host in ("0.0.0.0", "192.168.1.20", "::"):
        with pytest.raises(ServeError, match="needs an access token.*DIGITALHUMAN_TOKEN"):
            serve(host=host, port=0)
    with pytest.raises(ServeError, match="16-256 characters"):
        serve(host="0.0.0.0", port=0, token="short")
    monkeypatch.setenv("DIGITALHUMAN_TOKEN", "too short")
    with pytest.raises(ServeError, match="16-256 characters"):
        serve(host="0.0.0.0", port=0)
    with pytest.raises(ValueError, match="16-256"):
        create_app(None, token="x")  # checked before any model loads


def test_studio_files_are_served_with_a_strict_policy(app):
    r = one(app, "GET", "/studio")
    assert r.status_code == 307 and r.headers["location"] == "/studio/"
    assert one(app, "GET", "/").headers["location"] == "/studio/"
    for name, kind in [("", "text/html"), ("studio.js", "text/javascript"), ("studio.css", "text/css")]:
        r = one(app, "GET", f"/studio/{name}")
        assert r.status_code == 200 and r.headers["content-type"].startswith(kind)
        assert r.headers["content-security-policy"] == CSP and "connect-src 'self'" in CSP
        assert "http://" not in r.text and "https://" not in r.text  # nothing from another host
    head = one(app, "HEAD", "/studio/")  # link checkers and curl -I: the page's headers, no body
    assert head.status_code == 200 and head.headers["content-type"].startswith("text/html") and head.content == b""
    for bad in ("nope.js", "..%2Fapp.py", "__init__.py"):
        assert one(app, "GET", f"/studio/{bad}").status_code == 404
    assert "/studio/" not in json.dumps(one(app, "GET", "/openapi.json").json()["paths"])


def test_shape_fields(app):
    def face(q):
        r = one(app, "GET", f"/personas/3/face.png{q}")
        assert r.status_code == 200, r.text
        return r.content, r.headers["etag"]

    plain = face("")
    shaped = {q: face(q) for q in ("?aged=20", "?blend=9", "?blend=9&blend_t=0.25", "?family=1", "?accent=gb",
                                   "?pitch=2&pace=1.2")}
    assert len({plain[1], *(e for _, e in shaped.values())}) == 7  # each its own resource
    assert shaped["?accent=gb"][0] == plain[0]  # voice casting leaves the face alone
    assert shaped["?blend=9"][1] == face("?blend=9&blend_t=0.5")[1]  # 0.5 is the default weight
    for q, words in [("?blend_t=0.3", "blend_t needs blend"), ("?aged=200", "aged"), ("?family=0", "family"),
                     ("?accent=fr", "accent"), ("?pitch=7", "pitch"), ("?pace=2", "pace"),
                     ("?voice_like=AF%20heart", "voice_like"), ("?aged=-99", "years must be between")]:
        check_error(one(app, "GET", f"/personas/3/face.png{q}"), 422, words)
    # the POST body takes the same fields, and the links carry them back
    r = one(app, "POST", "/personas", json={"seed": 3, "accent": "gb", "aged": 10, "pitch": -2.0})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["face_url"] == "/personas/3/face.png?accent=gb&pitch=-2&aged=10"
    doc = body["persona"]
    assert doc["traits"]["accent"] == "gb" and doc["origin"]["aged"] == 10.0
    assert doc["origin"]["voice"] == {"pitch": -2.0}
    check_error(one(app, "POST", "/personas", json={"seed": 3, "blend_t": 0.5}), 422, "blend_t needs blend")
    check_error(one(app, "POST", "/personas", json={"seed": 3, "famliy": 1}), 422, "famliy")


def test_export_zip_is_a_batch_digitalhuman_reads(app, tmp_path):
    r = one(app, "POST", "/export.zip", json={"personas": [
        {"seed": 3, "gender": "female", "lines": ["Welcome back."]}, {"seed": 3, "aged": 5}, {"seed": 12}]})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/zip" and "personas.zip" in r.headers["content-disposition"]
    with zipfile.ZipFile(io.BytesIO(r.content)) as z:
        names = z.namelist()
        z.extractall(tmp_path)
    assert {"manifest.jsonl", "index.html", "3/persona.json", "3/face.png", "3/voice_00.wav",
            "3-2/persona.json", "12/persona.json"} <= set(names)
    rows = read_manifest(tmp_path)
    assert [(x["seed"], x["folder"]) for x in rows] == [(3, "3"), (3, "3-2"), (12, "12")]
    assert load_persona_doc(tmp_path / "3").traits.gender == "female"
    assert load_persona_doc(tmp_path / "3").lines[0].text == "Welcome back."
    assert load_persona_doc(tmp_path / "3-2").origin["aged"] == 5.0
    again = one(app, "POST", "/export.zip", json={"personas": [
        {"seed": 3, "gender": "female", "lines": ["Welcome back."]}, {"seed": 3, "aged": 5}, {"seed": 12}]})
    assert again.content == r.content  # same shortlist, same bytes
    check_error(one(app, "POST", "/export.zip", json={"personas": []}), 422)
    check_error(one(app, "POST", "/export.zip", json={"personas": [{"seed": 1}] * 33}), 422)
    check_error(one(app, "POST", "/export.zip", json={"personas": [{"seed": 1, "lines": ["Hi."] * 8}] * 5}), 422,
                "at most 32 lines")


def test_atlas_and_video_need_portrait_directions(app):
    # the tiny test weights have none: 503, as for any missing model (tests/test_studio.py has the real ones)
    check_error(one(app, "GET", "/personas/3/mouths.png"), 503, "portrait")
    check_error(one(app, "GET", "/personas/3/mouths.json"), 503, "portrait")
    check_error(one(app, "POST", "/personas/3/video", json={"text": "Hello there."}), 503, "portrait")
    check_error(one(app, "POST", "/personas/3/video", json={"text": "a" * 501}), 422, "500")
    check_error(one(app, "GET", "/personas/3/video/mp4?text=" + "a" * 501), 422, "500")


def test_serve_with_token_says_so_and_passes_it_on(monkeypatch, capsys):
    import uvicorn

    from digitalhuman.service import app as app_module

    made, ran = [], []
    monkeypatch.setattr(app_module, "create_app", lambda weights, **kw: made.append(kw) or "app")
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: ran.append((app, kw)))
    monkeypatch.setenv("DIGITALHUMAN_TOKEN", TOKEN)
    serve(host="0.0.0.0", port=8080)
    assert made[0]["token"] == TOKEN and ran[0][0] == "app" and ran[0][1]["host"] == "0.0.0.0"
    err = capsys.readouterr().err
    assert "access token is required" in err and TOKEN not in err  # said at start, never printed
    made.clear()
    serve(host="127.0.0.1", port=8080, token="another-token-0123456789")  # the argument wins over the variable
    assert made[0]["token"] == "another-token-0123456789"
