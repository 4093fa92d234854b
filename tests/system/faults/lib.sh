# The fault suite's helpers (issue 9, item 9); sourced INSIDE the lab guest by guest.sh, on top of
# tests/system/tests/lib.sh (call, vol_prop, log, ...).
#
# Where things live:
#   /run/lvkeeper-faults     the daemon's fault gate (pause-K-S, paused-K-S) and the wrapper's files
#                            (hold-after-SUB, held-after-SUB, fail-SUB, commands.log); a tmpfs, so a
#                            boot starts with none of them
#   $FSTATE                  the suite's own state (progress, results, what a case expects, object
#                            manifests), in the lab's results share: 9p, written through to the host
#                            at once, so it survives a power cut without the suite flushing anything
#                            in the guest (a sync of the root disk or /media would also make durable
#                            what lvkeeperd forgot to flush, and hide the very bug a case looks for)
# shellcheck source=../tests/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../tests/lib.sh"

FX=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
FAULTS=/run/lvkeeper-faults
FSTATE=/run/lvkeeper-lab/faults
JOURNAL=/var/lib/lvkeeper/journal
RECORD=/var/lib/lvkeeper/images
# How long the host may take to heal by itself: from the kernel's start after a power cut (under
# TCG a boot alone takes 20-40 s), from the kill or the release of the operation otherwise.
HEAL_LIMIT_BOOT=${HEAL_LIMIT_BOOT:-300}
HEAL_LIMIT=${HEAL_LIMIT:-180}
MIB=$((1024 * 1024))
export LVM_SUPPRESS_FD_WARNINGS=1

# ---------------------------------------------------------------- results of the running case
# A case fails through fail(): the reason goes to its result, the subshell running it exits 1.
fail() {
  log "FAIL: $*"
  printf '%s\n' "$*" >"$FSTATE/case.fail"
  echo "--- lvkeeperd's log (last 30 lines)" >&2
  journalctl -u lvkeeperd --no-pager -n 30 -o short-monotonic 2>/dev/null | sed 's/^/    /' >&2 || true
  exit 1
}
# note TEXT: a fact for the case's row in FAULTS.md.
note() {
  log "note: $*"
  printf '%s\n' "$*" >>"$FSTATE/case.notes"
}
# expect KEY VALUE / expected KEY: what a case recorded before its fault, read after it (also
# across a power cut).
expect() { printf '%s\n' "$2" >"$FSTATE/expect.$1"; }
expected() { cat "$FSTATE/expect.$1" 2>/dev/null || true; }

# ---------------------------------------------------------------- small facts
uptime_us() { local u _; read -r u _ </proc/uptime; echo $(( ${u/./} * 10000 )); }
secs() { awk -v us="$1" 'BEGIN { printf "%.1f", us / 1e6 }'; }
lv_size() { lvs --noheadings --units b --nosuffix -o lv_size "vg0/$1" | tr -d ' '; }
fs_size() { df -B1 --output=size "$1" | tail -n1 | tr -d ' '; }
pv_count() { vgs --noheadings -o pv_count vg0 | tr -d ' '; }
lvk_pid() { systemctl show -p MainPID --value lvkeeperd; }
lvk_active() { [[ $(systemctl show -p ActiveState --value lvkeeperd) == active ]]; }
journal_empty() { [[ ! -e $JOURNAL ]] || grep -q '"intents": \[\]' "$JOURNAL"; }
# wait_for TIMEOUT_S WHAT COMMAND...: polls COMMAND until it succeeds, fails the case after TIMEOUT_S.
wait_for() {
  local timeout=$1 what=$2
  shift 2
  local deadline=$((SECONDS + timeout))
  until "$@"; do
    ((SECONDS < deadline)) || fail "$what: not within ${timeout}s"
    sleep 0.2
  done
}
# The loop device over IMAGE ("" if none).
loop_of() { losetup -n -O NAME -j "$1" | head -n1 | tr -d ' '; }

# ---------------------------------------------------------------- the host the suite builds
# vg0 over four 1G image-backed PVs, data0 (ext4, /data) and with XFS data1 (xfs, /xdata), both in
# fstab so a power cut's boot brings them back; objects on each, their manifests in $FSTATE.
# lvkeeperd and lvkeeper-attach enabled. The kernel's own writeback is off: nothing lvm or lvkeeperd
# writes reaches a disk unless it is flushed (as a power cut a moment later would find it).
setup_host() {
  local xfs=$1 i dev pvs=()
  mkdir -p "$FSTATE"
  cat >/etc/sysctl.d/90-lab-faults.conf <<'SYSCTL'
# The fault suite: only what is flushed is on disk.
vm.dirty_writeback_centisecs = 0
vm.dirty_expire_centisecs = 360000
kernel.sysrq = 1
SYSCTL
  sysctl -q -p /etc/sysctl.d/90-lab-faults.conf
  for tool in lvm resize2fs xfs_growfs; do
    install -m 755 "$FX/wrapper" "/usr/local/sbin/$tool"
  done
  modprobe loop; modprobe dm-mod; modprobe dm-mirror
  mkdir -p /data /xdata /var/lib/lvkeeper
  for i in 0 1 2 3; do
    fallocate -l 1G "/media/disk$i.img"
    dev=$(losetup --find --show "/media/disk$i.img")
    pvs+=("$dev")
  done
  pvcreate -q "${pvs[@]}"
  vgcreate -q vg0 "${pvs[@]}"
  lvcreate -q -y -n data0 -L 300M vg0
  mkfs.ext4 -q -E nodiscard /dev/vg0/data0
  echo "/dev/vg0/data0 /data ext4 defaults 0 0" >>/etc/fstab
  mount /data
  mkdir -p /data/objects
  "$LK_GUEST/mkobjects" --dir /data/objects --count 100 --size 4096-65536 \
    --manifest "$FSTATE/manifest-data" >/dev/null
  if [[ $xfs == 1 ]]; then
    lvcreate -q -y -n data1 -L 320M vg0
    mkfs.xfs -q -K /dev/vg0/data1
    echo "/dev/vg0/data1 /xdata xfs defaults 0 0" >>/etc/fstab
    mount /xdata
    mkdir -p /xdata/objects
    "$LK_GUEST/mkobjects" --dir /xdata/objects --count 30 --size 4096-65536 \
      --manifest "$FSTATE/manifest-xdata" >/dev/null
  fi
  printf '%s\n' /media/disk{0,1,2,3}.img >"$RECORD"
  write_config <<CONF
[Volume]
MountPoint=/data
GrowAt=90
GrowStep=100M
Cooldown=1s
$([[ $xfs == 1 ]] && printf '\n[Volume]\nMountPoint=/xdata\nGrowAt=90\nGrowStep=100M\nCooldown=1s\n')

[Disks]
ImageDirectory=/media
ImageSize=200M
ReserveHostSpace=64M
MaxDisks=32
CONF
  systemctl -q enable lvkeeperd.service lvkeeper-attach.service
  systemctl start lvkeeperd
  wait_active
  sync
  log "host ready: vg0 on ${pvs[*]}, /data ext4$([[ $xfs == 1 ]] && echo ", /xdata xfs")"
}
volumes() { echo /data; [[ -s $FSTATE/manifest-xdata ]] && echo /xdata; return 0; }
lv_of() { [[ $1 == /data ]] && echo data0 || echo data1; }

# ---------------------------------------------------------------- holding an operation at a point
# A point is where a fault lands:
#   gate:K:S   lvkeeperd's fault gate, before step S of an operation of kind K (S-1 is done and
#              journaled as lvkeeperd left it)
#   cmd:SUB    the wrapper, after the real SUB ran and before lvkeeperd sees it end (nothing of it
#              flushed by lvkeeperd yet)
#   move       Repair's pvmove copying (Manager.Progress strictly between 0 and 1)
# point_arm POINT [locked]: locked holds a command with vg0's lock taken, as if it still ran.
point_arm() {
  mkdir -p "$FAULTS"
  case $1 in
    gate:*) local k=${1#gate:}; : >"$FAULTS/pause-${k%%:*}-${k#*:}" ;;
    cmd:*) : >"$FAULTS/hold-${2:+$2-}after-${1#cmd:}" ;;
    move) ;;
    *) fail "unknown point $1" ;;
  esac
}
point_reached() {
  case $1 in
    gate:*) local k=${1#gate:}; [[ -e $FAULTS/paused-${k%%:*}-${k#*:} ]] ;;
    cmd:*) [[ -e $FAULTS/held-after-${1#cmd:} ]] ;;
    move) move_in_progress ;;
  esac
}
point_release() {
  case $1 in
    gate:*) local k=${1#gate:}; rm -f "$FAULTS/pause-${k%%:*}-${k#*:}" ;;
    cmd:*) rm -f "$FAULTS/hold-after-${1#cmd:}" "$FAULTS/held-after-${1#cmd:}" ;;
  esac
  return 0
}
# After a kill the gate's marker is left by the dead instance: clear both.
point_clear() {
  point_release "$1"
  case $1 in gate:*) local k=${1#gate:}; rm -f "$FAULTS/paused-${k%%:*}-${k#*:}" ;; esac
  return 0
}
# The pvmove's mirror is copying: dm's in-sync regions are more than none and fewer than all.
move_in_progress() {
  local line synced
  line=$(dmsetup status vg0-pvmove0 2>/dev/null) || return 1
  synced=$(awk '{ for (i = 1; i <= NF; i++) if ($i ~ /^[0-9]+\/[0-9]+$/) { print $i; exit } }' <<<"$line")
  [[ -n $synced ]] || return 1
  (( ${synced%/*} > 0 && ${synced%/*} < ${synced#*/} ))
}
manager_progress() {
  busctl get-property "$BUSNAME" "$OBJ" "$MGR" Progress | awk '{ print $2 }'
}

# ---------------------------------------------------------------- calls
# call_bg ARGS...: a Manager call in the background, as a caller waiting for its answer; the answer
# goes to $FSTATE/reply (and reply.err, reply.rc) when it comes.
call_bg() {
  rm -f "$FSTATE/reply" "$FSTATE/reply.err" "$FSTATE/reply.rc"
  (
    trap - ERR
    rc=0
    busctl --timeout=900 call "$BUSNAME" "$OBJ" "$MGR" "$@" >"$FSTATE/reply.tmp" 2>"$FSTATE/reply.err" || rc=$?
    mv -f "$FSTATE/reply.tmp" "$FSTATE/reply"
    echo "$rc" >"$FSTATE/reply.rc"
  ) </dev/null &
}
reply_came() { [[ -e $FSTATE/reply.rc ]]; }
reply_rc() { cat "$FSTATE/reply.rc" 2>/dev/null; }
reply_text() { cat "$FSTATE/reply" "$FSTATE/reply.err" 2>/dev/null; }

# ---------------------------------------------------------------- healing
# heal_wait SINCE_US LIMIT_S [OLD_PID]: waits until lvkeeperd is READY (a new instance when OLD_PID
# is given) and its journal holds no intent, then prints the time that took from SINCE_US (uptime),
# in µs: the later of READY (systemd's ActiveEnterTimestampMonotonic) and the moment the journal
# was seen empty (its mtime, when it was empty at the first look and written after SINCE_US).
heal_wait() {
  local since=$1 limit=$2 old=${3:-} deadline=$((SECONDS + $2)) seen_open=0 empty_at=
  local ready pid
  while :; do
    pid=$(lvk_pid)
    if lvk_active && [[ $pid != 0 && $pid != "$old" ]]; then
      if journal_empty; then
        if [[ -z $empty_at ]]; then
          if ((seen_open)); then
            empty_at=$(uptime_us)
          else
            empty_at=$(journal_mtime_us)
          fi
        fi
        break
      fi
      seen_open=1
    fi
    if ((SECONDS >= deadline)); then
      [[ -e $JOURNAL ]] && { echo "--- $JOURNAL"; cat "$JOURNAL"; } >&2
      fail "not healed within ${limit}s: lvkeeperd $(systemctl show -p ActiveState --value lvkeeperd), journal $(journal_empty && echo empty || echo 'has intents')"
    fi
    sleep 0.2
  done
  ready=$(systemctl show -p ActiveEnterTimestampMonotonic --value lvkeeperd)
  ((empty_at < ready)) && empty_at=$ready
  ((empty_at < since)) && empty_at=$since
  echo $((empty_at - since))
}
# The journal's mtime on the uptime clock (µs); 0 without a journal.
journal_mtime_us() {
  [[ -e $JOURNAL ]] || { echo 0; return; }
  local m now up
  m=$(stat -c '%.6Y' "$JOURNAL")
  now=$EPOCHREALTIME
  up=$(uptime_us)
  awk -v m="$m" -v now="$now" -v up="$up" 'BEGIN { v = up - (now - m) * 1e6; printf "%d", v < 0 ? 0 : v }'
}

# ---------------------------------------------------------------- the checks every case ends with
# checks HEAL_US LIMIT_S: the host healed within LIMIT_S (HEAL_US, from heal_wait), every object
# checksums, no dm device is suspended, no image, loop device or PV is half-added and no intent is
# left, Diagnose has no critical finding, a grow works, and each filesystem is clean after unmount.
checks() {
  local heal=$1 limit=$2 t0 c t
  t0=$(lk_ms)
  printf '%s\n' "$(secs "$heal")" >"$FSTATE/case.heal"
  ((heal <= limit * 1000000)) || fail "healed in $(secs "$heal") s, more than the ${limit} s stated"
  for c in objects dm disks diagnose grow fsck; do
    t=$(lk_ms)
    "check_$c"
    log "  check $c: $(( $(lk_ms) - t )) ms"
  done
  log "checks passed in $(( $(lk_ms) - t0 )) ms (healed in $(secs "$heal") s)"
}
check_objects() {
  local mp
  for mp in $(volumes); do
    findmnt -n "$mp" >/dev/null || fail "$mp is not mounted"
    (cd "$mp/objects" && sha256sum -c --quiet --strict "$FSTATE/manifest-${mp#/}") >&2 \
      || fail "objects on $mp do not checksum"
  done
}
check_dm() {
  local bad
  bad=$(dmsetup info -c --noheadings -o name,suspended | awk -F: '$2 != "Active"')
  [[ -z $bad ]] || fail "dm devices suspended: $bad"
}
# Every image in /media is on a loop device that is a PV of vg0 and recorded for boot; every loop
# device over /media is a PV of vg0; no PV outside a VG; vg0 complete, no pvmove left; no intent.
check_disks() {
  local dev img vg missing rec line
  local -A vg_of=() dev_of=() recorded=()
  journal_empty || fail "the journal still holds intents: $(tr -d '\n' <"$JOURNAL")"
  # One lvm command (each costs seconds under TCG), the rest in bash: every fork is slow there.
  while read -r dev vg missing; do
    [[ -n $missing ]] || { missing=$vg vg=-; }
    vg_of[$dev]=$vg
    [[ $vg != - ]] || fail "$dev is a PV outside any VG (an orphan)"
    [[ $vg != vg0 || $missing == 0 ]] || fail "vg0 misses $missing PVs"
  done < <(pvs --noheadings -o pv_name,vg_name,vg_missing_pv_count 2>/dev/null)
  while read -r dev img; do
    [[ $img == /media/* ]] || continue
    [[ -e $img ]] || fail "$dev is over $img, which is gone"
    [[ ${vg_of[$dev]:-} == vg0 ]] || fail "$dev over $img is not a PV of vg0 (a loop device left half-added)"
    dev_of[$img]=$dev
  done < <(losetup -n -l -O NAME,BACK-FILE)
  while read -r line; do
    [[ -z $line ]] && continue
    [[ -e $line ]] || fail "$RECORD names $line, which does not exist"
    recorded[$line]=1
  done <"$RECORD"
  for img in /media/*.img; do
    [[ -e $img ]] || continue
    dev=${dev_of[$img]:-}
    [[ -n $dev ]] || fail "$img is not on a loop device (an image left half-added)"
    vg=${vg_of[$dev]:-}
    [[ $vg == vg0 ]] || fail "$img on $dev is not a PV of vg0 (vg: ${vg:-no PV})"
    [[ -n ${recorded[$img]:-} ]] || fail "$img is a PV of vg0 but not recorded in $RECORD"
  done
  # pvmove's temporary mirror is an active dm device while it exists.
  ! dmsetup ls | grep -q '^vg0-pvmove' || fail "vg0 still has a pvmove LV: $(dmsetup ls | grep pvmove)"
}
check_diagnose() {
  local out crit
  out=$(busctl --json=short --timeout=300 call "$BUSNAME" "$OBJ" "$MGR" Diagnose) || fail "Diagnose failed"
  crit=$(python3 -c '
import json, sys
for f in json.loads(sys.argv[1])["data"][0]:
    if f[1] == "critical":
        print(f[0] + ": " + f[3])' "$out")
  [[ -z $crit ]] || fail "Diagnose has critical findings: $crit"
}
check_grow() {
  local mp lv before fs_before out
  for mp in $(volumes); do
    lv=$(lv_of "$mp")
    before=$(lv_size "$lv")
    fs_before=$(fs_size "$mp")
    out=$(busctl --timeout=300 call "$BUSNAME" "$OBJ" "$MGR" Grow ss "$mp" +100M 2>&1) || fail "Grow $mp +100M failed: $out"
    [[ $out == "t $((before + 100 * MIB))" ]] || fail "Grow $mp +100M from $before answered '$out'"
    (( $(fs_size "$mp") > fs_before )) || fail "Grow $mp +100M: the filesystem did not grow ($fs_before)"
  done
}
# Unmounted, each filesystem checks clean; mounted again (lvkeeperd sees it go and come back).
check_fsck() {
  local mp dev out
  for mp in $(volumes); do
    dev=/dev/vg0/$(lv_of "$mp")
    umount "$mp" || fail "cannot unmount $mp: $(fuser -vm "$mp" 2>&1)"
    if [[ $mp == /data ]]; then
      out=$(e2fsck -fn "$dev" 2>&1) || { mount "$mp"; fail "e2fsck -fn $dev is not clean: $out"; }
    else
      out=$(xfs_repair -n "$dev" 2>&1) || { mount "$mp"; fail "xfs_repair -n $dev is not clean: $out"; }
    fi
    mount "$mp" || fail "cannot mount $mp again"
  done
}
