"""scripts/install-chromium.sh and install-engines.sh (the first steps of the README's test command) with a stub apt-get:
it skips apt when chromium is there, waits while another program holds apt's lock, and still
fails loudly when the install fails."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "install-chromium.sh"
LOCK_ERROR = ("E: Could not get lock /var/lib/dpkg/lock-frontend. It is held by process 4242 (unattended-upgr)\n"
              "E: Unable to acquire the dpkg frontend lock (/var/lib/dpkg/lock-frontend), is another process using it?")


def _stubs(tmp_path: Path, locked_calls: int, fail: str = "") -> dict:
    """PATH with a fake apt-get (lock errors for its first ``locked_calls`` calls; ``fail``: an
    install error) and a sudo that just runs the command; CHROMIUM points into ``tmp_path``."""
    bin_ = tmp_path / "bin"
    bin_.mkdir()
    chromium = tmp_path / "chromium"
    (bin_ / "apt-get").write_text(f"""#!/usr/bin/env bash
echo "$*" >> {tmp_path}/calls
n=$(wc -l < {tmp_path}/calls)
if [ "$n" -le {locked_calls} ]; then printf '%s\\n' "{LOCK_ERROR}" >&2; exit 100; fi
case "$*" in *install*)
  if [ -n "{fail}" ]; then echo "E: {fail}" >&2; exit 100; fi
  printf '#!/bin/sh\\necho Chromium 1.0\\n' > {chromium}; chmod +x {chromium};;
esac
""")
    (bin_ / "sudo").write_text('#!/usr/bin/env bash\nexec "$@"\n')
    for f in bin_.iterdir():
        f.chmod(0o755)
    return {**os.environ, "PATH": f"{bin_}:{os.environ['PATH']}", "CHROMIUM": str(chromium),
            "APT_LOCK_POLL": "0.1", "APT_LOCK_WAIT": "20"}


def _run(env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(SCRIPT)], env=env, capture_output=True, text=True, timeout=60)


def _calls(tmp_path: Path) -> list[str]:
    f = tmp_path / "calls"
    return f.read_text().splitlines() if f.is_file() else []


def test_present_chromium_means_no_apt_at_all(tmp_path):
    env = _stubs(tmp_path, locked_calls=99)
    Path(env["CHROMIUM"]).write_text("#!/bin/sh\n")
    Path(env["CHROMIUM"]).chmod(0o755)
    r = _run(env)
    assert r.returncode == 0 and r.stdout == r.stderr == ""
    assert _calls(tmp_path) == []  # apt-get never ran, so a held lock cannot matter


def test_a_held_lock_is_waited_for(tmp_path):
    env = _stubs(tmp_path, locked_calls=3)  # the first three tries of `update` find the lock held
    r = _run(env)
    assert r.returncode == 0, r.stderr
    assert "waiting for another program" in r.stderr and "installed Chromium 1.0" in r.stdout
    calls = _calls(tmp_path)
    assert ["install" in c for c in calls] == [False] * 4 + [True], calls  # update x4, then install once
    assert all("DPkg::Lock::Timeout=20" in c for c in calls)


@pytest.mark.parametrize("locked_calls,fail,msg", [
    (0, "Unable to locate package chromium", "Unable to locate package chromium"),
    (10_000, "", "Could not get lock"),  # still held when the wait runs out
])
def test_failures_are_loud(tmp_path, locked_calls, fail, msg):
    env = _stubs(tmp_path, locked_calls=locked_calls, fail=fail)
    env["APT_LOCK_WAIT"] = "1"
    r = _run(env)
    assert r.returncode == 1 and msg in r.stderr and "error: apt-get" in r.stderr
    assert not Path(env["CHROMIUM"]).exists()


ENGINES = SCRIPT.with_name("install-engines.sh")


def test_engines_wait_for_a_held_lock_too(tmp_path):
    env = _stubs(tmp_path, locked_calls=2)
    bin_ = tmp_path / "bin"
    # the stub apt-get "installs" the two tools into the stub bin
    apt = (bin_ / "apt-get").read_text().replace(
        "printf '#!/bin/sh\\necho Chromium 1.0\\n'",
        f"for t in stub-godot3 stub-mcs; do printf '#!/bin/sh\\necho 1.0\\n' > {bin_}/$t; chmod +x {bin_}/$t; done; "
        "printf '#!/bin/sh\\necho Chromium 1.0\\n'")
    (bin_ / "apt-get").write_text(apt)
    env.update(GODOT3_SERVER="stub-godot3", MCS="stub-mcs")
    r = subprocess.run(["bash", str(ENGINES)], env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "waiting for another program" in r.stderr and "installed godot3-server 1.0" in r.stdout
    calls = _calls(tmp_path)
    assert ["install" in c for c in calls] == [False] * 3 + [True], calls
    r2 = subprocess.run(["bash", str(ENGINES)], env=env, capture_output=True, text=True, timeout=60)
    assert r2.returncode == 0 and r2.stdout == "" and len(_calls(tmp_path)) == 4  # present: no apt at all
