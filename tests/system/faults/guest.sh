#!/bin/bash
# The fault suite (issue 9, item 9) in one lab guest:
#
#   tests/system/vm run --systemd --media-size 16G tests/system/faults/guest.sh GROUP|CASE...
#
# GROUP is a line of tests/system/faults/groups; a CASE is named as in cases.sh. At the first boot it
# builds the host (lib.sh: setup_host), then runs the cases one after another on it, each ending
# with the same checks. A power-cut case cuts the power in the middle; the lab boots the guest again
# and this script carries on at the same case (its progress is in the results share), so one guest
# run chains many power cuts. Each case prints one line
#   FAULTCASE {"case": ..., "outcome": "pass"|"fail", "heal_s": ..., "duration_s": ..., "notes": ...}
# that tests/system/faults/report turns into FAULTS.md. Exit status: 0 when every case passed.
source "$(dirname "$0")/lib.sh"
source "$FX/cases.sh"
source "$FX/more-cases.sh"

expand() {
  local a
  for a in "$@"; do
    if grep -q "^$a:" "$FX/groups"; then
      sed -n "s/^$a: *//p" "$FX/groups" | tr -s ' ' '\n'
    else
      echo "$a"
    fi
  done
}
mapfile -t CASES < <(expand "$@" | grep .)
((${#CASES[@]} > 0)) || { echo "usage: guest.sh GROUP|CASE..." >&2; exit 2; }
PROGRESS=$FSTATE/progress

# guest_progress PHASE: where the suite is, for the next boot (a power-cut case says "after").
guest_progress() { printf '%s %s %s\n' "$CUR" "$1" "$CUR_START" >"$PROGRESS"; }

case_run() { # NAME PHASE
  local name=$1 phase=$2 action op step
  case $name in
    cut:* | kill:* | restart:*)
      IFS=: read -r action op step <<<"$name"
      if [[ $phase == after ]]; then
        fault_case_after "$action" "$op" "$step"
      else
        fault_case "$action" "$op" "$step"
      fi
      ;;
    *)
      declare -F "case_${name//-/_}" >/dev/null || fail "no such case: $name"
      "case_${name//-/_}" "$phase"
      ;;
  esac
}

# A command that failed outside a check: the case fails with it (fail() says why otherwise).
err_trap() {
  [[ -e $FSTATE/case.fail ]] && return
  printf 'command failed (status %s) at %s:%s: %s\n' "$1" "${BASH_SOURCE[1]##*/}" "${BASH_LINENO[0]}" \
    "$BASH_COMMAND" >"$FSTATE/case.fail"
}

# After a failed case: no fault left armed, lvkeeperd running, the volumes mounted, so that the
# next case starts from a host that works (its own checks say whether it does). Never fails.
recover() {
  log "recovering after the failed case"
  (set +e; recover_host) || true
}
recover_host() {
  rm -f "$FAULTS"/pause-* "$FAULTS"/hold-after-* "$FAULTS"/held-after-* "$FAULTS"/fail-* "$FAULTS"/commands-*
  rm -f /etc/systemd/system/lvkeeperd.service.d/lab-faults-*.conf
  systemctl daemon-reload
  mount -a 2>/dev/null || true
  lvk_active || systemctl restart lvkeeperd
  local i
  for i in $(seq 1 300); do lvk_active && return 0; sleep 0.2; done
  log "lvkeeperd is not active after the recovery"
}

result() { # NAME RC
  python3 - "$1" "$2" "$CUR_START" "$FSTATE" <<'PY'
import json, os, sys, time
name, rc, start, state = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
def read(f):
    try:
        return open(os.path.join(state, f)).read().strip()
    except OSError:
        return ""
heal = read("case.heal")
notes = [n for n in read("case.notes").splitlines() if n]
failure = read("case.fail")
if rc and not failure:
    failure = "exited with status %d" % rc
row = {"case": name, "outcome": "fail" if rc else "pass", "heal_s": float(heal) if heal else None,
       "duration_s": round(time.time() - start, 1), "notes": "; ".join(([failure] if failure else []) + notes)}
line = json.dumps(row)
print("FAULTCASE " + line, flush=True)
with open(os.path.join(state, "results.jsonl"), "a") as f:
    f.write(line + "\n")
PY
}

if [[ $LAB_BOOT == 1 ]]; then
  rm -rf "$FSTATE"
  mkdir -p "$FSTATE"
  xfs=0
  printf '%s\n' "${CASES[@]}" | grep -q grow-xfs && xfs=1
  step setup_host "$xfs"
  index=0 phase=start
else
  read -r index phase CUR_START <"$PROGRESS"
  log "boot $LAB_BOOT: carrying on at case $((index + 1)) (${CASES[index]}, $phase)"
fi

for ((CUR = index; CUR < ${#CASES[@]}; CUR++)); do
  name=${CASES[CUR]}
  if [[ $phase != after ]]; then
    CUR_START=$EPOCHREALTIME
    rm -f "$FSTATE"/case.* "$FSTATE"/expect.* "$FSTATE"/reply*
    rm -f "$FAULTS/commands.log"
    guest_progress start
  fi
  log "=== case $((CUR + 1))/${#CASES[@]}: $name${phase:+ ($phase)}"
  set +e
  (set -eE; trap 'err_trap $?' ERR; case_run "$name" "$phase")
  rc=$?
  set -e
  result "$name" "$rc"
  ((rc == 0)) || recover
  phase=start
done
guest_progress done

# The results of every boot of this run.
python3 - "$FSTATE/results.jsonl" <<'PY'
import json, sys
rows = [json.loads(line) for line in open(sys.argv[1])]
failed = sum(r["outcome"] != "pass" for r in rows)
print("=== fault suite: %d cases, %d failed" % (len(rows), failed))
for r in rows:
    heal = "%.1f s" % r["heal_s"] if r["heal_s"] is not None else "-"
    print("  %-4s %-34s heal %-8s %6.1f s  %s" % (r["outcome"], r["case"], heal, r["duration_s"], r["notes"][:100]))
sys.exit(1 if failed else 0)
PY
