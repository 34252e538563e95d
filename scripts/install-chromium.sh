#!/usr/bin/env bash
# Install Debian's Chromium (/usr/bin/chromium) for the headless gallery test
# (tests/test_gallery.py); the test skips when it is absent.
#
#   bash scripts/install-chromium.sh
#
# Idempotent and quiet: exits 0 at once, without touching apt, when /usr/bin/chromium is already
# there. Needs root (CI runs as root) or sudo. Playwright's own browser download cannot be used
# here: only Debian's package is reachable.
#
# Another program (unattended-upgrades, a second CI job) may hold apt's or dpkg's lock: then this
# waits for it, up to APT_LOCK_WAIT seconds (default 300), instead of failing at once. It still
# fails loudly (apt's log, non-zero exit) when the install itself fails or the wait runs out.
set -euo pipefail

CHROMIUM=${CHROMIUM:-/usr/bin/chromium}  # where Debian's package puts it (the tests override it)
if [ -x "$CHROMIUM" ]; then
    exit 0
fi
APT_WHAT=chromium
source "$(dirname "${BASH_SOURCE[0]}")/apt-lock-wait.sh"

apt_step update -qq
apt_step install -y -qq --no-install-recommends chromium
[ -x "$CHROMIUM" ] || { echo "error: apt-get installed chromium but $CHROMIUM is missing" >&2; exit 1; }
echo "installed $("$CHROMIUM" --version 2>/dev/null || echo chromium)"
