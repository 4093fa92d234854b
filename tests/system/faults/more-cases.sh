# The fault suite's cases that are not ACTION:OP:STEP (see cases.sh); sourced by guest.sh. Case
# NAME is the function case_NAME (dashes as underscores), called with the phase (start, or after
# at the boot that follows its power cut).

DROPINS=/etc/systemd/system/lvkeeperd.service.d
dropin() { # NAME TEXT: a drop-in for lvkeeperd, in effect at its next start
  mkdir -p "$DROPINS"
  printf '%s\n' "$2" >"$DROPINS/lab-faults-$1.conf"
  systemctl daemon-reload
}
dropin_remove() { rm -f "$DROPINS/lab-faults-$1.conf"; systemctl daemon-reload; }
lvk_restart() { systemctl restart lvkeeperd; wait_for 120 "lvkeeperd active" lvk_active; }
# Log lines of lvkeeperd's current instance.
lvk_log() { journalctl -u lvkeeperd --no-pager -o cat _PID="$(lvk_pid)" 2>/dev/null; }
# diagnose_json: Diagnose's findings, one JSON array per line: [id, severity, subject, problem, fix].
diagnose_json() {
  busctl --json=short --timeout=300 call "$BUSNAME" "$OBJ" "$MGR" Diagnose \
    | python3 -c 'import json, sys; [print(json.dumps(f)) for f in json.load(sys.stdin)["data"][0]]'
}
# expect_finding ID SEVERITY: Diagnose lists ID with SEVERITY; prints its problem text.
expect_finding() {
  local row
  row=$(diagnose_json | grep -F "[\"$1\", \"$2\"" || true)
  [[ -n $row ]] || fail "Diagnose does not list $1 ($2): $(diagnose_json | cut -c1-300 | tr '\n' ' ')"
  python3 -c 'import json, sys; print(json.loads(sys.argv[1])[3])' "$row"
}
no_finding_kind() { ! diagnose_json | grep -qF "[\"$1:"; }
# dbus_call METHOD ARGS...: the call through dbus-send, which shows the D-Bus error name.
dbus_call() {
  local method=$1 a args=()
  shift
  for a in "$@"; do args+=("string:$a"); done
  dbus-send --system --print-reply --reply-timeout=600000 --dest="$BUSNAME" "$OBJ" "$MGR.$method" "${args[@]}" 2>&1
}
grow_recovered() { lvk_log | grep -q 'event=grow-recovered'; }
media_images() { find /media -maxdepth 1 -name '*.img' | sort; }

# ---------------------------------------------------------------- lvm holds the VG lock
# Another process holds vg0's lock past lvkeeperd's command timeout (8 s here, through the test
# seam LVKEEPER_COMMAND_TIMEOUT_MS): the Grow is answered with the timeout, within a bound, and
# the lvm command got SIGTERM, never SIGKILL; once the lock is free a grow works again.
case_lock_timeout() {
  local holder t0 took out rc=0 since heal old
  dropin timeout $'[Service]\nEnvironment=LVKEEPER_COMMAND_TIMEOUT_MS=8000'
  lvk_restart
  lvk_log | grep -q 'event=test-seam LVKEEPER_COMMAND_TIMEOUT_MS=8000' \
    || fail "lvkeeperd does not honour LVKEEPER_COMMAND_TIMEOUT_MS: not a -Dtest_seams=true build"
  (exec 9>>/run/lock/lvm/V_vg0; flock -x 9; exec sleep 600) &
  holder=$!
  sleep 1
  t0=$(lk_ms)
  out=$(busctl --timeout=300 call "$BUSNAME" "$OBJ" "$MGR" Grow ss /data +100M 2>&1) || rc=$?
  took=$(( $(lk_ms) - t0 ))
  kill "$holder"
  wait "$holder" 2>/dev/null || true
  ((rc != 0)) || fail "Grow succeeded while another process held vg0's lock: $out"
  [[ $out == *"timed out after"* ]] || fail "the Grow's error does not say the command timed out: $out"
  ((took < 8000 + 30000)) || fail "the Grow was answered after $took ms, the timeout is 8000 ms"
  note "Grow answered after $((took / 1000)) s: ${out:0:160}"
  ! lvk_log | grep -q 'signal 9' || fail "lvkeeperd's log mentions signal 9"
  since=$(uptime_us)
  old=$(lvk_pid)
  dropin_remove timeout
  systemctl restart lvkeeperd
  heal=$(heal_wait "$since" "$HEAL_LIMIT" "$old")
  checks "$heal" "$HEAL_LIMIT"
}

# ---------------------------------------------------------------- the journal
# journal_case HOW: lvkeeperd starts with a journal that cannot be used (HOW: corrupt, a directory,
# EIO); it reports it by name, sets it aside where it can, keeps /data alive (a grow works while it
# is reported), and after the admin's fix a start is clean.
journal_case() {
  local how=$1 since heal id text out
  systemctl stop lvkeeperd
  case $how in
    corrupt)
      # Torn JSON, as a tool editing it or a damaged disk may leave it.
      printf '{"version": 1, "intents": [ {"id": 7, "kind": "add-di' >"$JOURNAL"
      id=journal-corrupt ;;
    dir)
      rm -f "$JOURNAL"
      mkdir "$JOURNAL"
      : >"$JOURNAL/left-here"
      id=journal-unreadable ;;
    eio)
      [[ -f $JOURNAL ]] || printf '{\n "intents": [],\n "version": 1\n}\n' >"$JOURNAL"
      dmsetup create lab-eio --table "0 8 error"
      mount --bind /dev/mapper/lab-eio "$JOURNAL"
      cat "$JOURNAL" >/dev/null 2>&1 && fail "the EIO journal reads"
      id=journal-unreadable ;;
  esac
  since=$(uptime_us)
  systemctl start lvkeeperd
  wait_for "$HEAL_LIMIT" "lvkeeperd active with a $how journal" lvk_active
  if [[ $how != eio ]]; then
    # Set aside at start: healed by itself.
    heal=$(heal_wait "$since" "$HEAL_LIMIT")
  else
    note "READY after $(secs $(( $(systemctl show -p ActiveEnterTimestampMonotonic --value lvkeeperd) - since ))) s"
  fi
  text=$(expect_finding "$id:$JOURNAL" warning)
  note "Diagnose: $id: ${text:0:120}"
  out=$(busctl --timeout=300 call "$BUSNAME" "$OBJ" "$MGR" Grow ss /data +100M 2>&1) \
    || fail "Grow failed with a $how journal: $out"
  case $how in
    corrupt | dir)
      lvk_log | grep -q 'event=journal-set-aside' || fail "no event=journal-set-aside in the log"
      ls -d "$JOURNAL".corrupt-* >/dev/null 2>&1 || fail "the $how journal was not set aside"
      # It records again: an AddDisk goes through the new journal.
      out=$(busctl --timeout=300 call "$BUSNAME" "$OBJ" "$MGR" AddDisk ss vg0 "" 2>&1) \
        || fail "AddDisk failed after the journal was set aside: $out"
      journal_empty || fail "the new journal holds intents"
      # The admin reads the set-aside file and removes it, as the finding says.
      rm -rf "$JOURNAL".corrupt-*
      ;;
    eio)
      lvk_log | grep -Eq 'event=journal-(broken|write-failed)' || fail "the broken journal is not in the log"
      systemctl stop lvkeeperd
      umount "$JOURNAL"
      dmsetup remove lab-eio
      ;;
  esac
  since=$(uptime_us)
  lvk_restart
  no_finding_kind journal-corrupt && no_finding_kind journal-unreadable && no_finding_kind journal-unwritable \
    || fail "a journal finding is left after the fix"
  if [[ $how == eio ]]; then
    note "an unreadable device cannot be set aside: healed from the admin's fix (unmount, restart)"
    heal=$(heal_wait "$since" "$HEAL_LIMIT")
  fi
  checks "$heal" "$HEAL_LIMIT"
}
case_journal_corrupt() { journal_case corrupt; }
case_journal_dir() { journal_case dir; }
case_journal_eio() { journal_case eio; }

# ---------------------------------------------------------------- the image record
# record_case HOW: the record of images (what lvkeeper-attach brings back at boot) is corrupt (a
# line that is not an absolute path) or a directory: Diagnose says so (critical), AddDisk refuses
# with the record named and leaves nothing half-added, a grow works; the admin restores it.
record_case() {
  local how=$1 good before out images since heal
  good=$(cat "$RECORD")
  before=$(pv_count)
  images=$(media_images)
  case $how in
    corrupt) { printf '%s\n' "$good"; echo "disk9.img"; } >"$RECORD.lab" && mv -f "$RECORD.lab" "$RECORD" ;;
    dir) rm -f "$RECORD"; mkdir "$RECORD" ;;
  esac
  note "Diagnose: $(expect_finding "state-unreadable:$RECORD" critical | cut -c1-120)"
  out=$(dbus_call AddDisk vg0 "") && fail "AddDisk succeeded with a $how record: $out"
  [[ $out == *"$RECORD"* ]] || fail "AddDisk's error does not name $RECORD: $out"
  note "AddDisk: ${out:0:160}"
  [[ $(media_images) == "$images" && $(pv_count) == "$before" ]] || fail "the refused AddDisk left an image or a PV"
  out=$(busctl --timeout=300 call "$BUSNAME" "$OBJ" "$MGR" Grow ss /data +100M 2>&1) \
    || fail "Grow failed with a $how record: $out"
  # The admin restores it (the finding's fix).
  [[ $how == dir ]] && rm -rf "$RECORD"
  printf '%s\n' "$good" >"$RECORD.lab" && mv -f "$RECORD.lab" "$RECORD"
  since=$(uptime_us)
  note "healed from the admin's restore of the record (lvkeeperd does not rewrite it)"
  wait_for 60 "Diagnose without state-unreadable once the record is restored" no_finding_kind state-unreadable
  heal=$(heal_wait "$since" "$HEAL_LIMIT")
  checks "$heal" "$HEAL_LIMIT"
}
case_record_corrupt() { record_case corrupt; }
case_record_dir() { record_case dir; }

# A power cut with one bad line in the record: the next boot must still bring back every image the
# good lines name (vg0 complete, /data mounted), and lvkeeperd report the bad line.
case_record_corrupt_boot() {
  if [[ $1 != after ]]; then
    expect record "$(cat "$RECORD")"
    { cat "$RECORD"; echo "disk9.img"; } >"$RECORD.lab" && mv -f "$RECORD.lab" "$RECORD"
    # If the boot cannot bring vg0 back, /data must not send it to emergency mode (the suite could
    # not say what happened): nofail for this one boot.
    sed -i 's|^\(/dev/vg0/data[01] [^ ]* [^ ]* \)defaults |\1defaults,nofail,x-systemd.device-timeout=30s |' /etc/fstab
    sync
    guest_progress after
    lab-powercut
  fi
  local missing=() img problem= heal
  while read -r img; do
    [[ -n $(loop_of "$img") ]] || missing+=("$img")
  done <<<"$(expected record)"
  if ((${#missing[@]})); then
    problem="after the boot ${#missing[*]} recorded images are not attached: ${missing[*]} ($(journalctl -b -u lvkeeper-attach -o cat --no-pager | tail -n 3 | tr '\n' ' '))"
  elif ! findmnt -n /data >/dev/null; then
    problem="/data is not mounted after the boot"
  fi
  # The admin's fix, so that the next cases start from a working host.
  printf '%s\n' "$(expected record)" >"$RECORD.lab" && mv -f "$RECORD.lab" "$RECORD"
  sed -i 's|defaults,nofail,x-systemd.device-timeout=30s |defaults |' /etc/fstab
  if [[ -n $problem ]]; then
    for img in "${missing[@]}"; do losetup --find "$img"; done
    udevadm settle
    vgchange -q -aay vg0 >/dev/null 2>&1 || true
    mount -a || true
    lvk_restart
    fail "$problem"
  fi
  heal=$(heal_wait 0 "$HEAL_LIMIT_BOOT")
  checks "$heal" "$HEAL_LIMIT_BOOT"
}

# ---------------------------------------------------------------- the state directory full
# /var/lib/lvkeeper on a full filesystem (a 1M tmpfs filled up, with the state copied over): a grow
# still works, AddDisk refuses without leaving anything behind (its record cannot be written),
# Diagnose says the journal cannot be written; once space is freed AddDisk works.
case_state_full() {
  local out before images since heal t0
  rm -rf /run/lab-state && mkdir /run/lab-state
  cp -a /var/lib/lvkeeper/. /run/lab-state/
  mount -t tmpfs -o size=1m,mode=0755 lab-state /var/lib/lvkeeper
  cp -a /run/lab-state/. /var/lib/lvkeeper/
  dd if=/dev/zero of=/var/lib/lvkeeper/lab-fill bs=4k 2>/dev/null || true
  (($(df --output=avail /var/lib/lvkeeper | tail -n1) == 0)) || fail "the state filesystem is not full"
  before=$(pv_count)
  images=$(media_images)
  out=$(busctl --timeout=300 call "$BUSNAME" "$OBJ" "$MGR" Grow ss /data +100M 2>&1) \
    || fail "Grow failed with the state directory full: $out"
  out=$(dbus_call AddDisk vg0 "") && fail "AddDisk succeeded although its record cannot be written: $out"
  note "AddDisk: ${out:0:160}"
  [[ $(media_images) == "$images" && $(pv_count) == "$before" ]] || fail "the refused AddDisk left an image or a PV"
  note "Diagnose: $(expect_finding "journal-unwritable:$JOURNAL" warning | cut -c1-100)"
  rm -f /var/lib/lvkeeper/lab-fill
  since=$(uptime_us)
  t0=$(lk_ms)
  out=$(busctl --timeout=300 call "$BUSNAME" "$OBJ" "$MGR" AddDisk ss vg0 "" 2>&1) \
    || fail "AddDisk failed once space was freed: $out"
  note "AddDisk worked $(( $(lk_ms) - t0 )) ms after space was freed"
  wait_for 30 "journal-unwritable cleared" no_finding_kind journal-unwritable
  heal=$(heal_wait "$since" "$HEAL_LIMIT")
  # Back to the root disk, with what lvkeeperd wrote meanwhile.
  systemctl stop lvkeeperd
  cp -a /var/lib/lvkeeper/. /run/lab-state/
  umount /var/lib/lvkeeper
  cp -a /run/lab-state/images /var/lib/lvkeeper/images.lab && mv -f /var/lib/lvkeeper/images.lab "$RECORD"
  [[ -e /run/lab-state/journal ]] && cp -a /run/lab-state/journal "$JOURNAL"
  lvk_restart
  checks "$heal" "$HEAL_LIMIT"
}

# ---------------------------------------------------------------- a persistent lvextend failure
# lvextend fails every time (the wrapper) while a writer keeps /data above GrowAt for 2 minutes:
# one grow-failed error line and one GrowFailed per episode, lvextend retried with backoff (a few
# times a minute), no SpaceExhausted; once lvextend works again the grow happens by itself.
case_lvextend_fails() {
  local size used ballast writer t0 lines signals attempts exhausted since heal window=120
  mkdir -p "$FAULTS"
  : >"$FAULTS/fail-lvextend"
  : >"$FAULTS/commands-lvextend"
  monitor_start
  t0=$(date '+%Y-%m-%d %H:%M:%S')
  size=$(df -B1 --output=size /data | tail -n1 | tr -d ' ')
  used=$(df -B1 --output=used /data | tail -n1 | tr -d ' ')
  ballast=$((size * 92 / 100 - used))
  fallocate -l "$ballast" /data/lab-ballast
  (
    trap - ERR
    set +e
    while :; do
      head -c 4096 /dev/urandom >>/data/lab-writer
      sleep 0.5
    done
  ) &
  writer=$!
  sleep "$window"
  lines=$(journalctl -u lvkeeperd --no-pager -o cat -p err --since "$t0" | grep -c 'event=grow-failed' || true)
  signals=$(grep -cF '"member":"GrowFailed"' "$LK_MON" || true)
  exhausted=$(grep -cF '"member":"SpaceExhausted"' "$LK_MON" || true)
  attempts=$(grep -c ' lvextend failed on purpose' "$FAULTS/commands.log" || true)
  note "in ${window} s: $lines grow-failed error lines, $signals GrowFailed, $attempts lvextend attempts, $exhausted SpaceExhausted"
  ((attempts >= 2)) || fail "lvextend was tried $attempts times in ${window} s: the failure was not retried"
  ((lines == 1)) || fail "$lines grow-failed error lines in ${window} s, expected one per episode"
  ((signals == 1)) || fail "$signals GrowFailed signals in ${window} s, expected one per episode"
  ((attempts * 60 / window <= 12)) || fail "$attempts lvextend attempts in ${window} s: no backoff"
  ((exhausted == 0)) || fail "a transient lvextend failure raised SpaceExhausted"
  rm -f "$FAULTS/fail-lvextend"
  since=$(uptime_us)
  wait_for 120 "the grow after lvextend works again" grow_recovered
  note "grown again $(secs $(( $(uptime_us) - since ))) s after lvextend worked again"
  kill "$writer"
  wait "$writer" 2>/dev/null || true
  rm -f /data/lab-ballast /data/lab-writer "$FAULTS/commands-lvextend"
  monitor_stop
  heal=$(heal_wait "$since" "$HEAL_LIMIT")
  checks "$heal" "$HEAL_LIMIT"
}

# ---------------------------------------------------------------- concurrency
# 50 Grow calls at once, 30 relative (+8M) and 20 absolute (S0 + k*24M): all succeed, and their
# answers are those of one serial order: each relative one grew by exactly 8M from the size before
# it, each absolute one reached its target or found the LV already there; the LV ends at the size
# that order gives, its filesystem with it.
case_grow_50() {
  local s0 i pids=() dir=$FSTATE/grow50 final t0 since heal
  rm -rf "$dir" && mkdir -p "$dir"
  s0=$(lv_size data0)
  t0=$(lk_ms)
  for i in $(seq 1 50); do
    if ((i % 5 == 0 || i % 5 == 3)); then
      echo "abs $((s0 + (i / 2) * 24 * MIB))" >"$dir/$i.req"
    else
      echo "rel $((8 * MIB))" >"$dir/$i.req"
    fi
  done
  for i in $(seq 1 50); do
    read -r kind n <"$dir/$i.req"
    arg=$n
    [[ $kind == rel ]] && arg=+$n
    (trap - ERR; set +e; busctl --timeout=900 call "$BUSNAME" "$OBJ" "$MGR" Grow ss /data "${arg}" >"$dir/$i.out" 2>&1
     echo $? >"$dir/$i.rc") &
    pids+=($!)
  done
  wait "${pids[@]}"
  note "50 Grow calls answered in $(( ($(lk_ms) - t0) / 1000 )) s"
  final=$(python3 - "$dir" "$s0" <<'PY'
import glob, os, sys
d, cur = sys.argv[1], int(sys.argv[2])
calls = []
for req in glob.glob(os.path.join(d, "*.req")):
    n = os.path.basename(req)[:-4]
    kind, value = open(req).read().split()
    rc = int(open(os.path.join(d, n + ".rc")).read())
    out = open(os.path.join(d, n + ".out")).read().strip()
    if rc != 0 or not out.startswith("t "):
        print("Grow %s %s failed: %s" % (kind, value, out))
        sys.exit(1)
    calls.append((int(out.split()[1]), kind, int(value)))
calls.sort(key=lambda c: c[0])
def fail(why):
    print(why)
    for c in calls:
        print("  %s %d -> %d" % (c[1], c[2], c[0]), file=sys.stderr)
    sys.exit(1)
i = 0
while i < len(calls):
    v = calls[i][0]
    group = [c for c in calls if c[0] == v]
    i += len(group)
    if v < cur:
        sys.exit("an answer of %d is below the size %d that an earlier answer reached" % (v, cur))
    if v > cur:
        # One call moved the size to v; the others with this answer found it there. A relative call
        # always moves it, so when one is in the group it is that one.
        effective = [c for c in group if c[1] == "rel" and v == cur + c[2]] + \
                    [c for c in group if c[1] == "abs" and c[2] == v]
        if not effective:
            fail("no call explains the step %d -> %d: %s" % (cur, v, group))
        group.remove(effective[0])
    for c in group:
        if not (c[1] == "abs" and c[2] <= v):
            fail("%s %d answered %d, the size was already %d: a lost or doubled grow" % (c[1], c[2], v, cur))
    cur = v
print(cur)
PY
) || fail "the 50 answers are not those of a serial order: $final"
  [[ $(lv_size data0) == "$final" ]] || fail "data0 is $(lv_size data0), the answers say $final"
  fs_matches_lv /data data0
  note "data0 $((s0 / MIB))M -> $((final / MIB))M, as the answers' order says"
  since=$(uptime_us)
  heal=$(heal_wait "$since" "$HEAL_LIMIT")
  checks "$heal" "$HEAL_LIMIT"
}

# 5 AddDisk calls at once with room on /media for 2 more disks: exactly 2 are added, 3 answered
# NoHostSpace, nothing half-added.
case_add_disk_5() {
  local avail filler before images i pids=() dir=$FSTATE/add5 ok=0 nospace=0 out since heal
  rm -rf "$dir" && mkdir -p "$dir"
  avail=$(df -B1 --output=avail /media | tail -n1 | tr -d ' ')
  # Room for two 200M disks above ReserveHostSpace=64M, and 100M more: not a third.
  filler=$((avail - (2 * 200 + 64 + 100) * MIB))
  ((filler > 0)) || fail "/media has only $avail bytes free"
  fallocate -l "$filler" /media/lab-filler
  before=$(pv_count)
  images=$(media_images | wc -l)
  for i in 1 2 3 4 5; do
    (trap - ERR; set +e; dbus_call AddDisk vg0 "" >"$dir/$i.out"; echo $? >"$dir/$i.rc") &
    pids+=($!)
  done
  wait "${pids[@]}"
  for i in 1 2 3 4 5; do
    out=$(cat "$dir/$i.out")
    if [[ $(cat "$dir/$i.rc") == 0 ]]; then
      ok=$((ok + 1))
    elif [[ $out == *org.lvkeeper.Keeper1.Error.NoHostSpace* ]]; then
      nospace=$((nospace + 1))
    else
      fail "AddDisk $i failed with something else than NoHostSpace: $out"
    fi
  done
  rm -f /media/lab-filler
  note "$ok added, $nospace NoHostSpace"
  ((ok == 2 && nospace == 3)) || fail "$ok AddDisk calls succeeded and $nospace got NoHostSpace, expected 2 and 3"
  (( $(pv_count) == before + 2 )) || fail "vg0 has $(pv_count) PVs, had $before"
  (( $(media_images | wc -l) == images + 2 )) || fail "/media has $(media_images | wc -l) images, had $images"
  since=$(uptime_us)
  heal=$(heal_wait "$since" "$HEAL_LIMIT")
  checks "$heal" "$HEAL_LIMIT"
}
