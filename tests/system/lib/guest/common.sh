# shellcheck shell=bash
# Shared helpers for the in-guest lab scripts. Source it; it does not set shell options.
#
# Everything the scenario leaves behind lives in three places:
#   /var/lib/lab   persistent facts (manifest, scenario.env, markers)
#   /run/lab       pids and probe state
#   /var/log/lab   logs of detached helpers

LAB_GUEST_LIB=${LAB_GUEST_LIB:-$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)}
LAB_STATE_DIR=${LAB_STATE_DIR:-/var/lib/lab}
LAB_RUN_DIR=${LAB_RUN_DIR:-/run/lab}
LAB_LOG_DIR=${LAB_LOG_DIR:-/var/log/lab}
LAB_MANIFEST=${LAB_MANIFEST:-$LAB_STATE_DIR/manifest.sha256}
LAB_SCENARIO_ENV=${LAB_SCENARIO_ENV:-$LAB_STATE_DIR/scenario.env}

# LVM complains about every inherited descriptor; the lab runner leaks a few.
export LVM_SUPPRESS_FD_WARNINGS=1

# No date(1) here: every fork costs a noticeable fraction of a second in the
# emulated guest, so timestamps come from bash itself.
lab_log() { printf '[%(%T)T] %s\n' -1 "$*" >&2; }
lab_die() { printf '[%(%T)T] ERROR: %s\n' -1 "$*" >&2; exit 1; }

# lab_run CMD...: log the command, run it, die with its output on failure.
lab_run() {
    lab_log "+ $*"
    "$@" || lab_die "command failed (rc=$?): $*"
}

lab_mkdirs() { mkdir -p "$LAB_STATE_DIR" "$LAB_RUN_DIR" "$LAB_LOG_DIR"; }

# Without a running udevd, libdevmapper would wait forever for udev cookies.
# Let it create /dev/mapper and /dev/VG nodes itself instead.
lab_setup_udev_env() {
    if [[ -S /run/udev/control ]]; then
        unset DM_DISABLE_UDEV
    else
        export DM_DISABLE_UDEV=1
    fi
}

# Milliseconds since the epoch, for step timings.
lab_now_ms() {
    local t=${EPOCHREALTIME/[.,]/}
    echo $((t / 1000))
}

# lab_timed LABEL CMD...: run CMD, then print "time: LABEL Nms" on stderr.
lab_timed() {
    local label=$1 t0 rc=0
    shift
    t0=$(lab_now_ms)
    "$@" || rc=$?
    printf 'time: %s %dms\n' "$label" $(( $(lab_now_ms) - t0 )) >&2
    return "$rc"
}

# Pids of processes holding a deleted file whose path is $1.  One find, not a
# readlink per descriptor: every process costs a fraction of a second in the
# emulated guest.
lab_holders_of_deleted() {
    find /proc/[0-9]*/fd -maxdepth 1 -lname "$1 (deleted)" 2>/dev/null | cut -d/ -f3 | sort -un
}

# Bytes available to unprivileged users on the filesystem holding $1.
lab_df_avail() { df -B1 --output=avail "$1" | tail -n 1 | tr -d ' '; }
