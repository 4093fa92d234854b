#!/bin/bash
# The D-Bus API on real LVM, driven with busctl as an admin would, and seen with busctl monitor.
source "$(dirname "$0")/lib.sh"

step make_volume 300M
write_config <<'CONF'
[Volume]
MountPoint=/data
GrowAt=90
GrowStep=100M
Cooldown=1s

[Disks]
ImageDirectory=/media
ImageSize=200M
ReserveHostSpace=64M
AdoptLoopDevices=no
CONF
step systemctl start lvkeeperd
wait_active
status=$(systemctl show -p StatusText --value lvkeeperd)
log "STATUS=$status"
[[ $status == "/data "*"% used, grows at 90% by 100M"* ]] || fail "unexpected STATUS: $status"
pass "systemd shows STATUS: $status"
availability_start
monitor_start

introspect=$(busctl introspect "$BUSNAME" "$OBJ")
for m in .Grow .AddDisk .Remount .Diagnose .Repair .ThresholdCrossed .Grown .GrowFailed .DiskAdded .Remounted .ReadOnly .SpaceExhausted; do
  grep -q "^$m " <<<"$introspect" || fail "introspection lacks $m"
done
pass "introspection shows the Manager API"
[[ $(vol_prop VolumeGroup) == '"vg0"' && $(vol_prop LogicalVolume) == '"data0"' ]] || fail "volume not identified"
pass "volume /data identified as vg0/data0"

# Grow: relative, absolute, already there.
out=$(step call Grow ss /data +100M)
[[ $out == *"t 419430400" ]] || fail "Grow +100M returned $out"
expect_signal Grown 90 "419430400"
[[ $(lvs --noheadings --units b --nosuffix -o lv_size vg0/data0 | tr -d ' ') == 419430400 ]] || fail "LV not 400M"
fs=$(df -B1 --output=size /data | tail -n1 | tr -d ' ')
(( fs > 380000000 )) || fail "filesystem did not grow online: $fs"
pass "Grow +100M: LV 400M, filesystem $fs bytes, online"
out=$(step call Grow ss vg0/data0 500M)
[[ $out == *"t 524288000" ]] || fail "Grow 500M returned $out"
out=$(step call Grow ss /data 450M)
[[ $out == *"t 524288000" ]] || fail "Grow to a smaller size must do nothing, returned $out"
pass "absolute grow and no-op grow"

# Read-only, then Remount in place.
step mount -o remount,ro /data
expect_signal ReadOnly 90 '"/data"'
[[ $(vol_prop ReadOnly) == true ]] || fail "ReadOnly property not true"
step call Remount s /data
expect_signal Remounted 90
touch /data/after-remount || fail "/data still not writable"
pass "Remount made /data writable without unmounting"

# AddDisk.
out=$(step call AddDisk ss vg0 "")
log "$out"
[[ $out == *'"/media/disk2.img"'* ]] || fail "AddDisk returned $out"
expect_signal DiskAdded 90 disk2.img
[[ $(vgs --noheadings -o pv_count vg0 | tr -d ' ') == 3 ]] || fail "vg0 does not have 3 PVs"
alloc=$(( $(stat -c %b /media/disk2.img) * 512 ))
(( alloc >= 200 * 1024 * 1024 )) || fail "disk2.img is sparse ($alloc bytes allocated)"
grep -qx /media/disk2.img /var/lib/lvkeeper/images || fail "disk2.img not recorded"
pass "AddDisk: fully allocated image, PV in vg0, recorded for boot"

# Errors.
expect_error NotFound Grow /nope ""
expect_error InvalidArgument Grow /data 12X
expect_error InvalidArgument Grow /data -1G
expect_error NotFound AddDisk vg9 ""
expect_error NoHostSpace AddDisk vg0 100G
expect_error NotFound Remount /nope
out=$(setpriv --reuid=65534 --regid=65534 --clear-groups busctl call "$BUSNAME" "$OBJ" "$MGR" Grow ss /data +1M 2>&1) && fail "nobody could call Grow"
log "non-root Grow: $out"
setpriv --reuid=65534 --regid=65534 --clear-groups busctl get-property "$BUSNAME" "$OBJ/volumes/data" org.lvkeeper.Keeper1.Volume UsedPercent >/dev/null || fail "nobody cannot read properties"
pass "non-root is refused, may read"

# Auto-grow: fill past 90%, lvkeeperd grows by 100M.
size_before=$(lvs --noheadings --units b --nosuffix -o lv_size vg0/data0 | tr -d ' ')
avail=$(df -B1 --output=avail /data | tail -n1 | tr -d ' ')
fallocate -l $(( avail - 20 * 1024 * 1024 )) /data/ballast
expect_signal ThresholdCrossed 90
expect_signal Grown 90 '"threshold"'
size_after=$(lvs --noheadings --units b --nosuffix -o lv_size vg0/data0 | tr -d ' ')
(( size_after > size_before )) || fail "LV did not grow automatically"
pass "auto-grow: LV $size_before -> $size_after"

out=$(step call Diagnose)
log "Diagnose: $out"
[[ $out == "a(sssss) "* ]] || fail "Diagnose returned $out"

# The journal has the grow as fields, with its sizes in bytes and the catalog's MESSAGE_ID.
entry=$(journalctl -u lvkeeperd LVKEEPER_EVENT=grown -o json -n 1 --no-pager)
python3 - "$entry" "$size_before" "$size_after" <<'PY' || fail "the grown journal entry lacks its fields: $entry"
import json, sys
e = json.loads(sys.argv[1])
assert e["VOLUME"] == "/data", e
assert e["REASON"] == "threshold", e
assert int(e["FROM_BYTES"]) == int(sys.argv[2]) and int(e["TO_BYTES"]) == int(sys.argv[3]), e
assert e["MESSAGE_ID"] == "cb79658df724409c954e93dbb77891d2", e
assert e["MESSAGE"].startswith("event=grown volume=/data"), e
PY
pass "journal: LVKEEPER_EVENT=grown with VOLUME, FROM_BYTES, TO_BYTES and its MESSAGE_ID"

# The log level at run time, as systemd's daemons have it.
step systemctl service-log-level lvkeeperd debug
[[ $(systemctl service-log-level lvkeeperd) == debug ]] || fail "service-log-level did not reach lvkeeperd"
call Diagnose # every Diagnose runs its own lvm scans, logged at debug >/dev/null
journalctl -u lvkeeperd -p debug --since "-30s" -o cat --no-pager | grep -q "event=command-" \
  || fail "no debug lines after service-log-level debug"
step systemctl service-log-level lvkeeperd info
pass "systemctl service-log-level switches lvkeeperd's level"
monitor_stop
availability_report
pass "api"
