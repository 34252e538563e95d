"""HTTP service: personas, faces, new lines of dialogue (whole or streamed) and lip-sync files.

>>> app = create_app("path/to/weights")          # models load here, once per process
>>> serve(port=8080)                             # uvicorn on 127.0.0.1:8080 (the shipped weights)

Endpoints (``docs/http.md`` has the details and curl examples; ``/docs`` the OpenAPI page):

- ``POST /personas``                   {seed, gender?, age?, race?, lines?, lipsync?} -> persona.json + links
- ``GET  /personas/{seed}/face.png``   ?gender&age&race -> image/png (ETag, HEAD)
- ``POST /personas/{seed}/say``        {text, gender?, age?, race?} -> audio/wav
- ``POST /personas/{seed}/say.json``   same body + lipsync? -> {text, sample_rate, duration_s, visemes, words, ...}
- ``POST /personas/{seed}/say/stream`` same body as say -> application/x-ndjson, one object per rendered chunk
- ``GET  /personas/{seed}/say.wav``    ?text&gender&age&race -> audio/wav (what ``audio_urls`` point to)
- ``GET  /personas/{seed}/lipsync/{format}`` ?text&gender&age&race -> the line's oculus/arkit/vrm/rhubarb file
- ``GET  /personas/{seed}/mouths.png`` / ``mouths.json`` -> the talking portrait's atlas (ETag, HEAD)
- ``POST /personas/{seed}/video``      {text, format?} -> video/mp4 or video/webm (also ``GET .../video/{format}?text``)
- ``POST /export.zip``                 {personas: [{seed, ..., lines?}]} -> the personas as a ``batch`` folder, zipped
- ``GET  /studio/``                    the Persona Studio page (``studio/``: HTML, CSS, JS; ``pages``)
- ``GET  /health``, ``GET /info``

Every persona endpoint takes the shape fields besides the seed (gender, age, race, accent, voice_like,
pitch, pace, blend, blend_t, family, aged). With an access token (``serve(token=...)`` or
``DIGITALHUMAN_TOKEN``; required off loopback) every request but ``/health`` must carry it (``auth``).

Everything is stateless: a persona is its seed plus constraints, so every URL regenerates the same
bytes (a small LRU cache only saves the work). Generation runs on a dedicated thread pool
(``inference_threads``, default 1) so the event loop, and ``/health``, stay responsive; at most
``max_pending`` generations may wait, beyond that the answer is 503 with ``Retry-After``.

Modules: ``app`` (create_app, serve), ``routes`` (endpoints), ``models`` (request/response types),
``core`` (the pipeline, threads and caches), ``streaming`` (NDJSON), ``middleware`` (errors, body
limit, HEAD, strict query strings, head deadline), ``auth`` (the access token), ``pages`` (the studio).
"""

from .app import DEFAULT_MAX_BODY, DEFAULT_MAX_LINES, DEFAULT_MAX_PENDING, create_app, is_loopback, serve

__all__ = ["create_app", "serve", "is_loopback", "DEFAULT_MAX_BODY", "DEFAULT_MAX_LINES", "DEFAULT_MAX_PENDING"]
