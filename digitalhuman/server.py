"""The HTTP service, kept importable under its old name: it lives in ``digitalhuman.service``
(``app``, ``routes``, ``models``, ``core``, ``streaming``, ``middleware``)."""

from .service.app import (CONFIG_ENV, DEFAULT_MAX_BODY, DEFAULT_MAX_LINES, DEFAULT_MAX_PENDING, _app_from_env,
                          create_app, is_loopback, serve)
from .service.core import _LRU, LINE_CACHE_BYTES, PersonaService
from .service.middleware import BODY_TIMEOUT_S, HEAD_TIMEOUT_S, ApiError, BodyLimit, HeadTimeoutH11Protocol

__all__ = ["create_app", "serve", "is_loopback", "DEFAULT_MAX_BODY", "DEFAULT_MAX_LINES", "DEFAULT_MAX_PENDING",
           "CONFIG_ENV", "BODY_TIMEOUT_S", "HEAD_TIMEOUT_S", "ApiError", "BodyLimit", "HeadTimeoutH11Protocol",
           "PersonaService", "LINE_CACHE_BYTES", "_LRU", "_app_from_env"]
