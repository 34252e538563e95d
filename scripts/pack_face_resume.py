"""Pack a face training run into a compact resume point (EMA generator + discriminator, fp16).

    python scripts/pack_face_resume.py RUN_FOLDER OUT.safetensors

Run folders live outside the repository and do not outlive a CPU session here; this file (~25 MB
for the 128 px run) carries the run to the next one:

    digitalhuman train face --resume-from OUT.safetensors --out RUNS/ --data ../shared/data/utkface128
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from digitalhuman.face.train import pack_resume  # noqa: E402

if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    print(pack_resume(sys.argv[1], sys.argv[2]))
