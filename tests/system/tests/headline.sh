#!/bin/bash
# The lab's headline: the incident rebuilt, healed by an admin who only calls lvkeeper through
# busctl, then the acceptance test (the incident's test-storage.sh) with lvkeeperd growing /data
# in 500M steps as it fills, and an object server that never fails a request meanwhile.
source "$(dirname "$0")/lib.sh"

if [[ ${LAB_BOOT:-1} == 2 ]]; then
  source "$(dirname "$0")/headline-reboot.sh"
  exit 0
fi

step "$LK_SCEN/seed-incident"
source /var/lib/lab/scenario.env
step "$LK_GUEST/probe" start --url "$SERVER_URL" --manifest "$MANIFEST"

# The admin takes the shipped example, which watches /data (GrowAt=90, GrowStep=500M,
# ImageDirectory=/media): nothing is installed in /etc/lvkeeper.
[[ ! -e /etc/lvkeeper/lvkeeper.conf ]] || fail "the install put a /etc/lvkeeper/lvkeeper.conf in place"
step install -D -m 0644 /usr/share/doc/lvkeeper/examples/lvkeeper.conf /etc/lvkeeper/lvkeeper.conf
# The installed default config watches /data (GrowAt=90, GrowStep=500M, ImageDirectory=/media); a
# drop-in adds the metrics for node_exporter's textfile collector, as a fleet would.
PROM=/var/lib/prometheus/node-exporter/lvkeeper.prom
mkdir -p /etc/lvkeeper/lvkeeper.conf.d "$(dirname "$PROM")"
printf '[Daemon]\nMetricsFile=%s\n' "$PROM" >/etc/lvkeeper/lvkeeper.conf.d/50-metrics.conf
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
# The move of loop1's 13 extents is over in about a second, too soon to see its progress between 0
# and 1 as an admin sees it on a big PV: the kernel's own copy throttle of dm-mirror (the target
# pvmove runs on) makes the real move last longer. Nothing else about the move changes.
throttle=/sys/module/dm_mirror/parameters/raid1_resync_throttle
step modprobe dm-mirror
[[ -w $throttle ]] || fail "no $throttle in this kernel: the pvmove cannot be slowed to see its progress"
echo 3 >"$throttle"
out=$(step busctl --timeout=600 call "$BUSNAME" "$OBJ" "$MGR" Repair as 0)
log "$out"
for id in "read-only:/data" "pv-not-allocatable:/dev/loop0" "pv-smaller-than-device:/dev/loop2" "pv-data-offset:/dev/loop1"; do
  grep -q "\"$id\" \"fixed:" <<<"$out" || fail "Repair did not fix $id"
done
grep -q '"failed:' <<<"$out" && fail "a repair failed"
expect_signal Remounted 90
echo 100 >"$throttle"
pass "Repair fixed the mount and the three PVs"
# pvmove ran in LVM's background mode with its progress on the bus: Manager.Progress took a value
# strictly between 0 and 1 while CurrentJob named the pvmove.
python3 - "$LK_MON" <<'PY' || fail "no Progress strictly between 0 and 1 with CurrentJob \"pvmove ...\" was seen on the bus"
import json, sys
seen = []
for line in open(sys.argv[1]):
    try:
        m = json.loads(line)
    except ValueError:
        continue
    if m.get("member") != "PropertiesChanged" or m.get("path") != "/org/lvkeeper/Keeper1":
        continue
    changed = m["payload"]["data"][1]
    job = changed.get("CurrentJob", {}).get("data", "")
    progress = changed.get("Progress", {}).get("data")
    seen.append((job, progress))
    if job.startswith("pvmove ") and progress is not None and 0 < progress < 1:
        print("pvmove progress seen:", job, progress)
        sys.exit(0)
print("CurrentJob/Progress seen:", seen)
sys.exit(1)
PY
pass "the pvmove's CurrentJob and a Progress strictly between 0 and 1 were published while it ran"

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
journalctl -u lvkeeperd -o cat --no-pager | grep "event=grown" | tail -n 10
# The fill grew /data automatically, each time by at least GrowStep=500M: more for a fast writer,
# and the ballast, fallocated in a moment, looks like a very fast one (it may take the whole VG).
python3 - "$LK_MON" <<'PY' || fail "automatic grows were not as expected"
import json, sys
auto = []
for line in open(sys.argv[1]):
    m = json.loads(line)
    if m.get("member") == "Grown" and m["payload"]["data"][3] == "threshold":
        auto.append(m["payload"]["data"][2] - m["payload"]["data"][1])
print("automatic grows (MiB):", [n >> 20 for n in auto], file=sys.stderr)
sys.exit(0 if len(auto) >= 1 and all(n >= 500 << 20 for n in auto) else 1)
PY
pass "the fill was met by automatic grows of at least 500M each"

# What Prometheus would scrape after the fill: the real file, linted by promtool, counting the grows.
step promtool check metrics <"$PROM" || fail "promtool rejects $PROM"
grows=$(sed -n 's/^lvkeeper_volume_grows_total{volume="\/data"} //p' "$PROM")
lv=$(sed -n 's/^lvkeeper_volume_logical_volume_size_bytes{volume="\/data"} //p' "$PROM")
[[ $lv == "$(lvs --noheadings --units b --nosuffix -o lv_size vg0/data0 | tr -d ' ')" ]] \
  || fail "the metrics file says the LV is $lv bytes, lvs says otherwise"
(( grows >= 2 )) || fail "lvkeeper_volume_grows_total is '$grows' after the heal and the fill"
[[ $(stat -c %a "$PROM") == 644 ]] || fail "$PROM is not world-readable"
pass "metrics: promtool accepts $PROM; grows_total=$grows and the LV size match the system"
step "$LK_GUEST/probe" stop
monitor_stop
pass "headline: healed through busctl, acceptance passed, zero failed object requests"

log "== reboot: the healed host must come back by itself"
# What an admin makes permanent: the mount in fstab, lvkeeperd and the image re-attachment at boot.
echo "/dev/vg0/data0 /data ext4 defaults 0 2" >>/etc/fstab
step systemctl enable lvkeeperd.service lvkeeper-attach.service
cp "$MANIFEST" "$LK_AVAIL_MANIFEST"
df -B1 --output=size /data | tail -n1 | tr -d ' ' >/data/.size-before-reboot
pvs --noheadings -o pv_name -S vg_name=vg0 | wc -l >/data/.pvs-before-reboot
sync
lab-reboot
exit 1
