#!/usr/bin/env bash
# Install Debian's Chromium (/usr/bin/chromium) for the headless gallery test
# (tests/test_gallery.py); the test skips when it is absent.
#
#   bash scripts/install-chromium.sh
#
# Idempotent and quiet: exits 0 at once when /usr/bin/chromium is already there. Needs root (CI
# runs as root) or sudo. Playwright's own browser download cannot be used here: only Debian's
# package is reachable.
set -euo pipefail

if [ -x /usr/bin/chromium ]; then
    exit 0
fi
SUDO=
if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { echo "error: installing chromium needs root (or sudo)" >&2; exit 2; }
    SUDO=sudo
fi
export DEBIAN_FRONTEND=noninteractive
LOG=$(mktemp)
trap 'rm -f "$LOG"' EXIT
# apt's chatter goes to a log, shown only if a step fails
if ! { $SUDO apt-get update -qq && $SUDO apt-get install -y -qq --no-install-recommends chromium; } >"$LOG" 2>&1; then
    cat "$LOG" >&2
    echo "error: apt-get could not install chromium (see above)" >&2
    exit 1
fi
[ -x /usr/bin/chromium ] || { echo "error: apt-get installed chromium but /usr/bin/chromium is missing" >&2; exit 1; }
echo "installed $(/usr/bin/chromium --version 2>/dev/null || echo chromium)"
