#!/usr/bin/env bash
# Install what the engine-reader tests need, from Debian's packages:
#   godot3-server  Godot 3.2 headless: runs samples/engine/godot3/ (tests/test_engines.py)
#   mono-mcs       the C# compiler: compiles the Unity reader and the docs/engines.md sketch
#                  against the stubs in samples/engine/unity_stubs/
#
#   bash scripts/install-engines.sh
#
# Idempotent and quiet: exits 0 at once when both are there; waits for apt's lock like
# install-chromium.sh (scripts/apt-lock-wait.sh). Needs root (CI runs as root) or sudo.
# The tests skip (with the reason) when a tool is absent, so a machine without them still runs
# the rest of the suite; CI runs this script first (.ci/run), so there they run.
set -euo pipefail

GODOT=${GODOT3_SERVER:-godot3-server}  # command names (the tests point them at stubs)
MCS=${MCS:-mcs}
if command -v "$GODOT" >/dev/null && command -v "$MCS" >/dev/null; then
    exit 0
fi
APT_WHAT=godot3-server/mono-mcs
source "$(dirname "${BASH_SOURCE[0]}")/apt-lock-wait.sh"  # waits while another program holds apt's lock

apt_step update -qq
apt_step install -y -qq --no-install-recommends godot3-server mono-mcs
for tool in "$GODOT" "$MCS"; do
    command -v "$tool" >/dev/null || { echo "error: apt-get ran but $tool is missing" >&2; exit 1; }
done
echo "installed godot3-server $("$GODOT" --version 2>/dev/null | head -1) and $("$MCS" --version 2>/dev/null | head -1)"
