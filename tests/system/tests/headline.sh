#!/bin/bash
# The lab's headline: the incident rebuilt, healed by an admin who only calls lvkeeper through
# busctl, then the acceptance test (the incident's test-storage.sh) with lvkeeperd growing /data
# in 500M steps as it fills, and an object server that never fails a request meanwhile.
source "$(dirname "$0")/lib.sh"

step "$LK_SCEN/seed-incident"
source /var/lib/lab/scenario.env
step "$LK_GUEST/probe" start --url "$SERVER_URL" --manifest "$MANIFEST"

# The installed default config watches /data (GrowAt=90, GrowStep=500M, ImageDirectory=/media).
step systemctl start lvkeeperd
wait_active
log "STATUS=$(systemctl show -p StatusText --value lvkeeperd)"
monitor_start

log "== Diagnose: one call lists every fault of the incident notes"
diag=$(call Diagnose)
busctl --json=pretty call "$BUSNAME" "$OBJ" "$MGR" Diagnose | python3 -c '
import json, sys
for f in json.load(sys.stdin)["data"][0]:
    print("  %-9s %-40s %s\n            fix: %s" % (f[1], f[0], f[3], f[4]))'
for id in "read-only:/data" "pv-not-allocatable:/dev/loop0" "pv-smaller-than-device:/dev/loop2" \
          "pv-data-offset:/dev/loop1" "deleted-open:" ; do
  grep -q "\"$id" <<<"$diag" || fail "Diagnose does not report $id"
done
grep -q ".tempfile" <<<"$diag" || fail "Diagnose does not name the deleted /media/.tempfile"
pass "Diagnose lists the read-only mount, the 3 PV faults and the hidden deleted file"

log "== AddDisk before space is freed: the error names what hides the space"
out=$(call_error AddDisk vg0 "") || fail "AddDisk succeeded on a full /media"
log "$out"
grep -q NoHostSpace <<<"$out" && grep -Eq "objserver \(pid [0-9]+\) holds /media/.tempfile" <<<"$out" \
  || fail "NoHostSpace error does not name the holder"
pass "NoHostSpace names the object server and /media/.tempfile"

log "== Repair: every fix that is safe without a person"
out=$(step busctl --timeout=600 call "$BUSNAME" "$OBJ" "$MGR" Repair as 0)
log "$out"
for id in "read-only:/data" "pv-not-allocatable:/dev/loop0" "pv-smaller-than-device:/dev/loop2" "pv-data-offset:/dev/loop1"; do
  grep -q "\"$id\" \"fixed:" <<<"$out" || fail "Repair did not fix $id"
done
grep -q '"failed:' <<<"$out" && fail "a repair failed"
expect_signal Remounted 90
pass "Repair fixed the mount and the three PVs"

log "== the admin restarts the object server (lvkeeper never kills a process)"
step kill -HUP "$(cat "$WRAPPER_PIDFILE")"
for _ in $(seq 1 300); do
  [[ -z $(find /proc/[0-9]*/fd -lname '*.tempfile (deleted)' 2>/dev/null) ]] && break
  sleep 0.2
done
df -h /media
out=$(step busctl --timeout=300 call "$BUSNAME" "$OBJ" "$MGR" AddDisk ss vg0 "")
log "$out"
[[ $out == *'"/media/disk3.img"'* ]] || fail "AddDisk returned $out"
expect_signal DiskAdded 90 disk3.img
out=$(step busctl --timeout=300 call "$BUSNAME" "$OBJ" "$MGR" Grow ss /data 4G)
[[ $out == "t 4294967296" ]] || fail "Grow /data 4G returned $out"
expect_signal Grown 90 4294967296
pvs -o pv_name,vg_name,pv_size,pe_start,pv_pe_count,pv_attr
lvs -o lv_name,lv_size,seg_pe_ranges vg0

# Growing ext4 zeroes its new inode tables in the background (ext4lazyinit); through a loop device
# that punches holes in the images, so they turn sparse again until it is done. lvkeeperd re-allocates
# them on its backstop timer; an admin's Repair does it at once. Wait for the kernel to finish first,
# or the holes come back behind Repair.
wait_itable_zeroed /dev/vg0/data0 300
log "== Repair again: the grow may have left an image sparse"
out=$(step busctl --timeout=600 call "$BUSNAME" "$OBJ" "$MGR" Repair as 0)
log "$out"
grep -q '"failed:' <<<"$out" && fail "a repair failed: $out"

log "== Diagnose again: nothing left to fix"
diag=$(call Diagnose)
log "$diag"
grep -Eq '"(critical|warning)"' <<<"$diag" && fail "faults remain after healing: $diag"
pass "no critical or warning finding left"

log "== acceptance"
step "$LK_GUEST/acceptance" check
size=$(df -B1 --output=size /data | tail -n1 | tr -d ' ')
used=$(df -B1 --output=used /data | tail -n1 | tr -d ' ')
ballast=$(( (size * 85 / 100 - used) / 1048576 ))
step "$LK_GUEST/acceptance" fill --ballast-mib "$ballast"
grows=$(grep -c '"member":"Grown"' "$LK_MON" || true)
log "lvkeeperd signalled Grown $grows times"
journalctl -u lvkeeperd -o cat --no-pager | grep "event=grown" | tail -n 10
(( grows >= 5 )) || fail "expected at least 5 grows (Repair, 4G, 500M steps past 6G), saw $grows"
step "$LK_GUEST/probe" stop
monitor_stop
pass "headline: healed through busctl, acceptance passed, zero failed object requests"
