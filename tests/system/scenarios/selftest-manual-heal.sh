#!/bin/bash
# Lab test (run with tests/system/vm run): proves the scenario, the probe and
# the acceptance check right, independently of lvkeeper.
#   1. seed-incident builds the broken host;
#   2. the probe starts;
#   3. manual-heal heals it by hand while the probe runs;
#   4. acceptance check must PASS, the probe must have seen zero failures;
#   5. acceptance fill: with a toy grower standing in for lvkeeperd it must
#      PASS (the probe still running); then, on a small filesystem nobody
#      grows, it must FAIL fast on ENOSPC.
# Usage: selftest-manual-heal.sh [--no-fill] [seed-incident options...]
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
LIB=$(cd "$HERE/../lib/guest" && pwd)
# shellcheck source=../lib/guest/common.sh source-path=SCRIPTDIR
source "$LIB/common.sh"

FILL=1
if [[ ${1:-} == --no-fill ]]; then
    FILL=0
    shift
fi

T0=$(lab_now_ms)
phase() { echo; echo "##### $* (+$(( $(lab_now_ms) - T0 ))ms)"; }

phase "seed-incident"
lab_timed seed-incident "$HERE/seed-incident" "$@"
# shellcheck source=/dev/null
source "$LAB_SCENARIO_ENV"

phase "probe start"
lab_timed probe-start "$LIB/probe" start --url "$SERVER_URL" --manifest "$MANIFEST"

phase "manual-heal"
lab_timed manual-heal "$HERE/manual-heal" --keep-probe --skip-check

phase "acceptance check"
lab_timed acceptance-check "$LIB/acceptance" check
"$LIB/acceptance" lvm-summary >"$LAB_LOG_DIR/lvm-summary.txt"
lvs -o lv_name,lv_size,seg_pe_ranges "$VG"

if ((FILL)); then
    phase "acceptance fill, grown by a toy grower"
    # The ballast starts the fill near the grower's threshold, so only a few
    # 100M files are needed.
    grower_log=$LAB_LOG_DIR/toy-grower.log
    (
        # The incident's autoresize.sh, bounded: +500M at >= 90% use.
        end=$((SECONDS + 300))
        while ((SECONDS < end)); do
            pct=$(df --output=pcent "$DATA" | tail -n 1 | tr -d ' %')
            if ((pct >= 90)); then
                echo "$(date +%T) ${pct}% used: lvextend +500M"
                lvextend -L +500M -r "$VG/$LV" || exit 1
            fi
            sleep 0.5
        done
    ) >"$grower_log" 2>&1 &
    grower=$!
    rc=0
    lab_timed acceptance-fill "$LIB/acceptance" fill --target-gib 4.2 --ballast-mib 3400 || rc=$?
    kill "$grower" 2>/dev/null || true
    wait "$grower" 2>/dev/null || true
    cat "$grower_log"
    ((rc == 0)) || lab_die "acceptance fill did not pass with a grower running"
    rm -rf "$DATA/test"
fi

phase "probe stop"
"$LIB/probe" stop

if ((FILL)); then
    phase "acceptance fill must fail fast on ENOSPC when nothing grows"
    small=$MEDIA/fill-enospc.img
    mnt=/mnt/fill-enospc
    truncate -s 48M "$small"
    mkfs.ext4 -q -F -E nodiscard "$small"
    mkdir -p "$mnt"
    mount -o loop "$small" "$mnt"
    t=$(lab_now_ms)
    out=$("$LIB/acceptance" fill --mount "$mnt" --target-gib 1 --file-mib 8 --timeout-per-file 30 2>&1) && rc=0 || rc=$?
    elapsed=$(( $(lab_now_ms) - t ))
    while IFS= read -r line; do echo "  (expected) $line"; done <<<"$out"
    umount "$mnt"
    rm -f "$small"
    printf 'time: acceptance-fill-enospc %dms\n' "$elapsed" >&2
    ((rc != 0)) || lab_die "acceptance fill passed on a full filesystem"
    grep -q '^FAIL: .*No space left on device' <<<"$out" || lab_die "acceptance fill did not report ENOSPC"
fi

phase "selftest-manual-heal: PASS"
printf 'time: selftest-total %dms\n' $(( $(lab_now_ms) - T0 )) >&2
