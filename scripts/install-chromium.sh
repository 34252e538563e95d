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
SUDO=
if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { echo "error: installing chromium needs root (or sudo)" >&2; exit 2; }
    SUDO=sudo
fi
export DEBIAN_FRONTEND=noninteractive
WAIT=${APT_LOCK_WAIT:-300}
POLL=${APT_LOCK_POLL:-5}
case "$WAIT" in ''|*[!0-9]*) echo "error: APT_LOCK_WAIT must be a number of seconds, got '$WAIT'" >&2; exit 2;; esac
LOG=$(mktemp)
trap 'rm -f "$LOG"' EXIT

# run one apt-get step; while it fails only because a lock is held, wait and retry (apt's own
# DPkg::Lock::Timeout covers dpkg's lock; the retry also covers the package lists' lock of `update`)
apt_step() {
    local deadline=$((SECONDS + WAIT)) said=
    while true; do
        if $SUDO apt-get -o DPkg::Lock::Timeout="$WAIT" "$@" >>"$LOG" 2>&1; then
            return 0
        fi
        # apt's final error lines ("E: ..."), not its "Waiting for cache lock" notes
        if grep -qE '^E: (Could not get lock|Unable to acquire the dpkg frontend lock|Unable to lock directory)' "$LOG" \
                && [ "$SECONDS" -lt "$deadline" ]; then
            [ -n "$said" ] || { echo "waiting for another program to release apt's lock (up to ${WAIT}s) ..." >&2; said=1; }
            : >"$LOG"
            sleep "$POLL"
            continue
        fi
        cat "$LOG" >&2
        echo "error: apt-get $* failed (see above)" >&2
        exit 1
    done
}

apt_step update -qq
apt_step install -y -qq --no-install-recommends chromium
[ -x "$CHROMIUM" ] || { echo "error: apt-get installed chromium but $CHROMIUM is missing" >&2; exit 1; }
echo "installed $("$CHROMIUM" --version 2>/dev/null || echo chromium)"
