# Shared helpers for lvkeeper's system tests; sourced by scripts that run INSIDE the lab guest.
set -euo pipefail
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

LK_REPO=${LAB_REPO:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)}
LK_SCEN=$LK_REPO/tests/system/scenarios
LK_GUEST=$LK_REPO/tests/system/lib/guest
# Time since boot, in ms: the guest's wall clock may be stepped while a test runs.
lk_uptime_ms() { awk '{ printf "%d", $1 * 1000 }' /proc/uptime; }
LK_T0=$(lk_uptime_ms)
LK_MON=/run/lk-monitor.log
BUSNAME=org.lvkeeper.Keeper1
OBJ=/org/lvkeeper/Keeper1
MGR=org.lvkeeper.Keeper1.Manager

lk_ms() { echo $(($(lk_uptime_ms) - LK_T0)); }
log() { printf '[%6.1fs] %s\n' "$(awk "BEGIN{print $(lk_ms)/1000}")" "$*" >&2; }
pass() { log "PASS: $*"; }
fail() {
  log "FAIL: $*"
  echo "--- journal of lvkeeperd (last 40 lines)"
  journalctl -u lvkeeperd --no-pager -n 40 -o cat 2>/dev/null || true
  exit 1
}
# Runs a command, prints it, times it.
step() {
  local t=$(lk_ms)
  log "\$ $*"
  "$@"
  log "  ($(( $(lk_ms) - t )) ms)"
}

# busctl as an admin types it.
call() { busctl call "$BUSNAME" "$OBJ" "$MGR" "$@"; }
vol_prop() { busctl get-property "$BUSNAME" "$OBJ/volumes/${2:-data}" org.lvkeeper.Keeper1.Volume "$1" | cut -d' ' -f2-; }
# dbus-send shows the D-Bus error name, busctl only the message.
call_error() {
  local method=$1
  shift
  local args=()
  for a in "$@"; do args+=("string:$a"); done
  dbus-send --system --print-reply --dest="$BUSNAME" "$OBJ" "$MGR.$method" "${args[@]}" 2>&1 && return 1
  return 0
}
expect_error() {
  local name=$1
  shift
  local out
  out=$(call_error "$@") || fail "$* succeeded, expected $name"
  grep -q "org.lvkeeper.Keeper1.Error.$name" <<<"$out" || fail "$*: expected $name, got: $out"
  pass "$1 -> $name: ${out#*: }"
}

# busctl monitor through `timeline`: a readable line per signal on the console, JSON in $LK_MON.
monitor_start() {
  : >"$LK_MON"
  LK_T0=$LK_T0 stdbuf -oL busctl --json=short monitor "$BUSNAME" 2>/dev/null \
    | "$(dirname "${BASH_SOURCE[0]}")/timeline" "$LK_MON" &
  LK_MON_PID=$!
  sleep 1
}
monitor_stop() {
  pkill -f "busctl --json=short monitor $BUSNAME" 2>/dev/null || true
  wait "${LK_MON_PID:-}" 2>/dev/null || true
}
# expect_signal MEMBER [TIMEOUT_S] [TEXT]: waits until the monitor saw it (TEXT: in its arguments).
expect_signal() {
  local member=$1 timeout=${2:-10} text=${3:-}
  local deadline=$(( $(date +%s) + timeout ))
  while (( $(date +%s) <= deadline )); do
    if grep -F "\"member\":\"$member\"" "$LK_MON" | grep -qF -- "$text"; then
      pass "signal $member${text:+ ($text)} seen on the bus"
      return 0
    fi
    sleep 0.2
  done
  echo "--- busctl monitor:" >&2
  grep -o '"member":"[A-Za-z]*"' "$LK_MON" | tail -n 20 >&2
  fail "no $member signal${text:+ with $text} within ${timeout}s"
}

wait_active() {
  local i
  for i in $(seq 1 600); do
    systemctl is-active --quiet lvkeeperd && return 0
    sleep 0.2
  done
  systemctl status lvkeeperd --no-pager || true
  fail "lvkeeperd did not become active"
}

# A small vg0/data0 on two image-backed PVs, ext4 (or LK_FS=xfs) at /data.
# A production build's lvkeeperd (re)started with LVKEEPER_LVM=/bin/false in its environment: it must log
# that it ignores the seam, and lvm(8) must do a Grow of 64M. The drop-in is gone afterwards.
expect_lvm_seam_ignored() {
  local out
  mkdir -p /run/systemd/system/lvkeeperd.service.d
  printf '[Service]\nEnvironment=LVKEEPER_LVM=/bin/false\n' >/run/systemd/system/lvkeeperd.service.d/seam.conf
  systemctl daemon-reload
  step systemctl restart lvkeeperd
  wait_active
  journalctl -u lvkeeperd -b -o cat --no-pager | grep -q 'event=test-seam-ignored LVKEEPER_LVM="/bin/false"' \
    || fail "a production build did not log that it ignores LVKEEPER_LVM"
  out=$(step call Grow ss /data +64M) || fail "Grow failed with LVKEEPER_LVM=/bin/false: $out"
  [[ $(lvs --noheadings --units b --nosuffix -o lv_size vg0/data0 | tr -d ' ') == "${out#t }" ]] \
    || fail "Grow returned $out but the LV says otherwise"
  rm -r /run/systemd/system/lvkeeperd.service.d
  systemctl daemon-reload
}

make_volume() {
  local size=${1:-300M}
  modprobe loop; modprobe dm-mod
  mkdir -p /media /data
  local i dev
  for i in 0 1; do
    fallocate -l 400M /media/disk$i.img
    dev=$(losetup --find --show /media/disk$i.img)
    pvcreate -q "$dev"
    LK_PVS+=("$dev")
  done
  vgcreate -q vg0 "${LK_PVS[@]}"
  lvcreate -q -y -n data0 -L "$size" vg0
  case ${LK_FS:-ext4} in
    ext4) mkfs.ext4 -q /dev/vg0/data0 ;;
    xfs) modprobe xfs; mkfs.xfs -q -f /dev/vg0/data0 ;;
    *) fail "make_volume: unknown LK_FS=${LK_FS}" ;;
  esac
  mount /dev/vg0/data0 /data
}

write_config() {
  mkdir -p /etc/lvkeeper
  cat >/etc/lvkeeper/lvkeeper.conf
}

# wait_itable_zeroed DEV [TIMEOUT_S]: waits until ext4's lazy inode-table init has zeroed every block
# group of DEV. After an online grow the kernel zeroes the new groups' inode tables in the background
# (ext4lazyinit); through a loop device those zeroes are punched as holes into the image file, so an
# image only stays fully allocated once that is over.
wait_itable_zeroed() {
  local dev=$1 timeout=${2:-300} groups zeroed
  local deadline=$(( $(date +%s) + timeout ))
  while :; do
    groups=$(dumpe2fs "$dev" 2>/dev/null | grep -c '^Group [0-9]*:' || true)
    zeroed=$(dumpe2fs "$dev" 2>/dev/null | grep '^Group [0-9]*:' | grep -c 'ITABLE_ZEROED' || true)
    (( groups > 0 && zeroed == groups )) && { log "ext4 lazy init done: $zeroed of $groups groups zeroed"; return 0; }
    (( $(date +%s) > deadline )) && fail "ext4 lazy init of $dev not done after ${timeout}s ($zeroed of $groups groups)"
    sleep 2
  done
}

# Availability (issue 3, item 4): objects on /data served over HTTP by the lab's object server
# (kept alive by its wrapper), fetched and checked by the probe several times a second while the
# test drives lvkeeper. The manifest lives on /data, so it survives lab-reboot with the objects.
LK_AVAIL_PORT=8081
LK_AVAIL_MANIFEST=/data/.lab-manifest.sha256
availability_start() {
  local count=${1:-200}
  if [[ ! -s $LK_AVAIL_MANIFEST ]]; then
    mkdir -p /data/objects
    "$LK_GUEST/mkobjects" --dir /data/objects --count "$count" --size 4096-65536 \
      --manifest "$LK_AVAIL_MANIFEST" >/dev/null || fail "mkobjects failed"
  fi
  mkdir -p /run/lab /var/log/lab
  (cd / && exec setsid "$LK_GUEST/objserver-run" --root /data/objects --port "$LK_AVAIL_PORT" \
    </dev/null >>/var/log/lab/objserver.log 2>&1) &
  # The probe counts every refused connection: start it once the server answers.
  local first i
  first=$(awk 'NR == 1 {print $2; exit}' "$LK_AVAIL_MANIFEST")
  for i in $(seq 1 300); do
    curl -fsS -o /dev/null --max-time 2 "http://127.0.0.1:$LK_AVAIL_PORT/$first" 2>/dev/null && break
    (( i < 300 )) || fail "the object server did not answer within 60 s"
    sleep 0.2
  done
  "$LK_GUEST/probe" start --url "http://127.0.0.1:$LK_AVAIL_PORT" --manifest "$LK_AVAIL_MANIFEST" \
    || fail "the probe could not reach the object server"
  log "availability: object server on :$LK_AVAIL_PORT, probe running"
}
# availability_report: stops the probe, prints requests, failures and the longest gap; fails on
# any failed request.
availability_report() {
  local out rc=0
  out=$("$LK_GUEST/probe" stop 2>&1) || rc=$?
  log "availability: ${out%%$'\n'*}"
  [[ $out == *$'\n'* ]] && printf '%s\n' "${out#*$'\n'}" >&2
  if [[ -s /run/lab/objserver-run.pid ]]; then
    kill "$(cat /run/lab/objserver-run.pid)" 2>/dev/null || true
  fi
  if (( rc != 0 )); then
    echo "--- /var/log/lab/objserver.log (last 30 lines)" >&2
    tail -n 30 /var/log/lab/objserver.log >&2 || true
    fail "the object server failed requests while lvkeeper worked"
  fi
  pass "availability: zero failed requests"
}
