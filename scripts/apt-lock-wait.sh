#!/usr/bin/env bash
# Sourced by scripts/install-*.sh: `apt_step ARGS...` runs one apt-get step (with $SUDO) and,
# while it fails only because another program (unattended-upgrades, a second CI job) holds apt's
# or dpkg's lock, waits and retries, up to APT_LOCK_WAIT seconds (default 300; poll APT_LOCK_POLL,
# default 5). It fails loudly (apt's log, exit 1) when the step itself fails or the wait runs out.
# Sourcing it also picks sudo when not root (APT_WHAT names what is installed, for the error) and
# exports DEBIAN_FRONTEND=noninteractive.
SUDO=
if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { echo "error: installing ${APT_WHAT:-packages} needs root (or sudo)" >&2; exit 2; }
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

