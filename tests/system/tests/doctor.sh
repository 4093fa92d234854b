#!/bin/bash
# Diagnose and Repair on real LVM, one fault at a time, for the findings the headline (the rebuilt
# incident) does not create: an LV grown without its filesystem, a sparse image, a volume group
# short of one grow step, a recorded image detached from its loop device, an image deleted while
# attached. Each is checked through busctl as an admin sees it (id, severity, fix), then repaired
# (the safe ones) or refused (the ones that need a person), and a last Diagnose is clean.
# Also: Repair of a named id applies only that one, an unknown id says so, and a non-root caller
# may Diagnose but not Repair.
source "$(dirname "$0")/lib.sh"

MIB=$((1024 * 1024))
DIAG=/run/lk-diagnose.json
REPAIR=/run/lk-repair.json

# ---------------------------------------------------------------- helpers
# diagnose [AS...]: Diagnose (optionally through a command prefix, e.g. setpriv), JSON in $DIAG,
# a readable list on the console.
diagnose() {
  "$@" busctl --json=short call "$BUSNAME" "$OBJ" "$MGR" Diagnose >"$DIAG" || fail "Diagnose failed"
  python3 - "$DIAG" >&2 <<'PY'
import json, sys
found = json.load(open(sys.argv[1]))["data"][0]
print("  Diagnose: %d finding(s)" % len(found))
for f in found:
    print("    %-8s %s\n             %s\n             fix: %s" % (f[1], f[0], f[3], f[4]))
PY
}
# finding_field ID FIELD: prints FIELD (severity, subject, problem, fix) of each finding with
# exactly this id in the last Diagnose, one line each.
finding_field() {
  python3 - "$DIAG" "$1" "$2" <<'PY'
import json, sys
names = ["id", "severity", "subject", "problem", "fix"]
for f in json.load(open(sys.argv[1]))["data"][0]:
    if f[0] == sys.argv[2]:
        print(f[names.index(sys.argv[3])])
PY
}
finding_count() { finding_field "$1" id | grep -c . || true; }
# expect_finding ID SEVERITY FIX_TEXT: the last Diagnose lists ID once, with SEVERITY and a fix
# that contains FIX_TEXT.
expect_finding() {
  local id=$1 severity=$2 fix_text=$3 n sev fix
  n=$(finding_count "$id")
  [[ $n == 1 ]] || fail "Diagnose lists $id $n times, expected once"
  sev=$(finding_field "$id" severity)
  [[ $sev == "$severity" ]] || fail "$id has severity $sev, expected $severity"
  fix=$(finding_field "$id" fix)
  [[ $fix == *"$fix_text"* ]] || fail "the fix of $id does not say '$fix_text': $fix"
  pass "Diagnose: $id ($severity), fix: $fix"
}
expect_no_finding() {
  [[ $(finding_count "$1") == 0 ]] || fail "Diagnose still lists $1: $(finding_field "$1" problem)"
}
# repair [ID...]: Repair with these ids (none: every safe fix), JSON in $REPAIR, results logged.
repair() {
  local t
  t=$(lk_ms)
  busctl --json=short --timeout=600 call "$BUSNAME" "$OBJ" "$MGR" Repair as $# "$@" >"$REPAIR" \
    || fail "Repair $* failed"
  log "Repair ${*:-(every safe fix)} took $(( $(lk_ms) - t )) ms:"
  python3 - "$REPAIR" >&2 <<'PY'
import json, sys
for r in json.load(open(sys.argv[1]))["data"][0]:
    print("    %s -> %s" % (r[0], r[1]))
PY
}
# result_of ID: the result Repair gave for ID (empty if it did not touch it).
result_of() {
  python3 - "$REPAIR" "$1" <<'PY'
import json, sys
for r in json.load(open(sys.argv[1]))["data"][0]:
    if r[0] == sys.argv[2]:
        print(r[1])
PY
}
result_count() {
  python3 -c 'import json, sys; print(len(json.load(open(sys.argv[1]))["data"][0]))' "$REPAIR"
}
no_failed_result() {
  ! grep -q '"failed:' "$REPAIR" || fail "a repair failed: $(cat "$REPAIR")"
}
# serious_findings: the ids of the critical and warning findings of the last Diagnose.
serious_findings() {
  python3 - "$DIAG" <<'PY'
import json, sys
for f in json.load(open(sys.argv[1]))["data"][0]:
    if f[1] in ("critical", "warning"):
        print(f[0])
PY
}
# check_failed MSG: a failed check after which the test can go on; the test fails at its end.
LK_CHECKS_FAILED=()
check_failed() {
  log "FAIL (going on): $*"
  LK_CHECKS_FAILED+=("$*")
}
nobody() { setpriv --reuid=65534 --regid=65534 --clear-groups "$@"; }
lv_size() { lvs --noheadings --units b --nosuffix -o lv_size vg0/data0 | tr -d ' '; }
fs_bytes() { # the ext4 size, as resize2fs sets it
  dumpe2fs -h /dev/vg0/data0 2>/dev/null | awk -F: '/^Block count/ { c = $2 } /^Block size/ { s = $2 } END { print c * s }'
}
df_size() { df -B1 --output=size /data | tail -n1 | tr -d ' '; }
allocated() { echo $(( $(stat -c %b "$1") * 512 )); }
vg_field() { vgs --noheadings -o "$1" vg0 2>/dev/null | tr -d ' '; }
missing_pvs_are() { [[ $(vg_field vg_missing_pv_count) == "$1" ]]; }
reloaded_times() { (( $(journalctl -u lvkeeperd -o cat --no-pager | grep -c event=reloaded) >= $1 )); }
# wait_for TIMEOUT_S WHAT COMMAND...: polls COMMAND until it succeeds.
wait_for() {
  local timeout=$1 what=$2
  shift 2
  local deadline=$(( $(date +%s) + timeout ))
  until "$@"; do
    (( $(date +%s) <= deadline )) || fail "$what: not within ${timeout}s"
    sleep 0.5
  done
}
config() { # config GROWSTEP
  write_config <<CONF
[Volume]
MountPoint=/data
GrowAt=90
GrowStep=$1

[Disks]
ImageDirectory=/media
ImageSize=200M
ReserveHostSpace=64M
AutoAddDisk=no

[Daemon]
# The backstop re-allocates sparse images on its own; off, so what Diagnose sees is what we did.
BackstopInterval=0
CONF
}

# ---------------------------------------------------------------- setup
step make_volume 300M
config 100M
step systemctl start lvkeeperd
wait_active
availability_start
monitor_start

log "$(date +%T) == baseline: mkfs discarded and ext4 zeroes its inode tables lazily, which leaves the images"
log "   sparse; Repair of every safe fix starts us clean"
wait_itable_zeroed /dev/vg0/data0 120
diagnose
repair
no_failed_result
diagnose
left=$(serious_findings)
[[ -z $left ]] || fail "faults remain before the test made any: $left"
pass "baseline: no critical or warning finding"

# ---------------------------------------------------------------- lv-bigger-than-fs
log "$(date +%T) == lv-bigger-than-fs: lvextend without --resizefs"
df_before=$(df_size)
fs_before=$(fs_bytes)
step lvextend -q -L +100M vg0/data0
lv=$(lv_size)
(( lv == 400 * MIB )) || fail "LV is $lv bytes after lvextend, expected 400M"
(( $(fs_bytes) == fs_before )) || fail "the filesystem grew by itself: $(fs_bytes)"
diagnose
expect_finding lv-bigger-than-fs:/data warning "grows the filesystem"
[[ $(finding_field lv-bigger-than-fs:/data problem) == *"100M unused"* ]] \
  || fail "lv-bigger-than-fs does not say 100M are unused: $(finding_field lv-bigger-than-fs:/data problem)"

log "$(date +%T) == a non-root user may Diagnose, and may not Repair"
diagnose nobody
expect_finding lv-bigger-than-fs:/data warning "grows the filesystem"
pass "nobody (uid 65534) can call Diagnose and sees the same finding"
out=$(nobody dbus-send --system --print-reply --dest="$BUSNAME" "$OBJ" "$MGR.Repair" \
  array:string:lv-bigger-than-fs:/data 2>&1) && fail "nobody could call Repair: $out"
grep -q 'AccessDenied' <<<"$out" || fail "non-root Repair failed without AccessDenied: $out"
log "non-root Repair: $out"
(( $(fs_bytes) == fs_before )) || fail "a refused Repair grew the filesystem"
pass "non-root Repair refused with AccessDenied, nothing changed"

# ---------------------------------------------------------------- image-sparse
log "$(date +%T) == image-sparse: a hole punched at the end of disk1.img, where no extent is allocated"
dev1=$(losetup -j /media/disk1.img | cut -d: -f1)
[[ -n $dev1 ]] || fail "disk1.img is not attached"
read -r pe_count pe_alloc < <(pvs --noheadings -o pv_pe_count,pv_pe_alloc_count "$dev1")
(( pe_count - pe_alloc >= 16 )) || fail "$dev1 has only $((pe_count - pe_alloc)) free extents"
img_size=$(stat -c %s /media/disk1.img)
step fallocate --punch-hole --offset $((img_size - 32 * MIB)) --length $((32 * MIB)) /media/disk1.img
alloc=$(allocated /media/disk1.img)
(( alloc <= img_size - 31 * MIB )) || fail "the punch left disk1.img allocated ($alloc of $img_size)"
log "disk1.img: $alloc of $img_size bytes allocated"
diagnose
expect_finding image-sparse:/media/disk1.img warning "allocates the rest"
expect_finding lv-bigger-than-fs:/data warning "grows the filesystem"

log "$(date +%T) == Repair of one named id applies only that one"
repair image-sparse:/media/disk1.img
(( $(result_count) == 1 )) || fail "Repair of one id returned $(result_count) results"
res=$(result_of image-sparse:/media/disk1.img)
[[ $res == "fixed: "* ]] || fail "image-sparse not fixed: $res"
alloc=$(allocated /media/disk1.img)
(( alloc >= img_size )) || fail "Repair said '$res' but disk1.img has $alloc of $img_size bytes allocated"
(( $(fs_bytes) == fs_before )) || fail "Repair of image-sparse also grew the filesystem"
diagnose
expect_no_finding image-sparse:/media/disk1.img
expect_finding lv-bigger-than-fs:/data warning "grows the filesystem"
pass "image-sparse fixed alone: disk1.img fully allocated ($alloc bytes), the filesystem untouched"

log "$(date +%T) == Repair of a mistyped id, and of a known kind no diagnosis has now"
repair no-such-kind:/nowhere
res=$(result_of no-such-kind:/nowhere)
[[ $res == "failed: unknown finding id"* ]] || fail "Repair of a mistyped id returned '$res'"
(( $(result_count) == 1 )) || fail "Repair of an unknown id did more: $(cat "$REPAIR")"
(( $(fs_bytes) == fs_before )) || fail "Repair of an unknown id grew the filesystem"
pass "a mistyped id is answered '$res' and nothing else is done"
repair image-detached:/media/nosuch.img
res=$(result_of image-detached:/media/nosuch.img)
[[ $res == "ok: not found"* ]] || fail "Repair of a finding that is not there returned '$res'"
pass "a finding that is not there is answered '$res'"

log "$(date +%T) == Repair grows the filesystem to its LV"
repair lv-bigger-than-fs:/data
res=$(result_of lv-bigger-than-fs:/data)
[[ $res == "fixed: "* ]] || fail "lv-bigger-than-fs not fixed: $res"
fs=$(fs_bytes)
(( fs == lv )) || fail "Repair said '$res' but the filesystem is $fs bytes, the LV $lv"
df_after=$(df_size)
(( df_after >= df_before + 90 * MIB )) || fail "df size $df_before -> $df_after, expected ~100M more"
size_prop=$(vol_prop Size)
(( size_prop == df_after )) || fail "the volume's Size property is $size_prop, df says $df_after"
diagnose
expect_no_finding lv-bigger-than-fs:/data
pass "filesystem grown online to the LV: $fs bytes (df $df_before -> $df_after)"
# The grow's new inode tables are zeroed in the background, which punches holes in the images again.
wait_itable_zeroed /dev/vg0/data0 120

# ---------------------------------------------------------------- vg-low
log "$(date +%T) == vg-low: GrowStep bigger than what vg0 has free"
vg_free=$(vgs --noheadings --units b --nosuffix -o vg_free vg0 | tr -d ' ')
config 2G
step systemctl reload lvkeeperd
wait_for 30 "lvkeeperd reloaded" reloaded_times 1
media_avail=$(df -B1 --output=avail /media | tail -n1 | tr -d ' ')
disks_left=$(( (media_avail - 64 * MIB) / (200 * MIB) ))
pvs_before=$(vg_field pv_count)
diagnose
expect_finding vg-low:vg0 info "AddDisk vg0"
problem=$(finding_field vg-low:vg0 problem)
[[ $problem == *"less than one 2.0G grow step"* ]] || fail "vg-low does not name the grow step: $problem"
[[ $problem == *"/media can hold $disks_left more 200M disks"* ]] \
  || fail "vg-low does not say /media holds $disks_left more 200M disks: $problem"
pass "vg-low: $problem"
log "$(date +%T) == Repair of every safe fix does not add a disk for vg-low"
repair
no_failed_result
[[ -z $(result_of vg-low:vg0) ]] || fail "Repair with no ids touched vg-low: $(result_of vg-low:vg0)"
[[ $(vg_field pv_count) == "$pvs_before" ]] || fail "Repair with no ids added a disk"
log "$(date +%T) == Repair of vg-low by name adds a disk"
repair vg-low:vg0
res=$(result_of vg-low:vg0)
[[ $res == "fixed: added /media/disk2.img as /dev/loop"* ]] || fail "Repair vg-low:vg0 returned '$res'"
expect_signal DiskAdded 60 disk2.img
[[ $(vg_field pv_count) == $((pvs_before + 1)) ]] || fail "vg0 has $(vg_field pv_count) PVs after '$res'"
new_free=$(vgs --noheadings --units b --nosuffix -o vg_free vg0 | tr -d ' ')
(( new_free > vg_free )) || fail "vg0 free did not grow: $vg_free -> $new_free"
grep -qx /media/disk2.img /var/lib/lvkeeper/images || fail "disk2.img was not recorded"
(( $(allocated /media/disk2.img) >= 200 * MIB )) || fail "the added disk2.img is sparse"
pass "Repair vg-low:vg0: $res (vg0 free $vg_free -> $new_free)"
config 100M
step systemctl reload lvkeeperd
wait_for 30 "lvkeeperd reloaded twice" reloaded_times 2
diagnose
expect_no_finding vg-low:vg0
pass "with GrowStep=100M vg0 is no longer low"

# ---------------------------------------------------------------- image-detached
log "$(date +%T) == image-detached: the loop device of the recorded disk2.img is detached"
dev2=$(losetup -j /media/disk2.img | cut -d: -f1)
[[ -n $dev2 ]] || fail "disk2.img is not attached"
[[ $(pvs --noheadings -o pv_pe_alloc_count "$dev2" | tr -d ' ') == 0 ]] || fail "$dev2 holds extents"
step losetup -d "$dev2"
wait_for 20 "LVM reports one PV of vg0 missing" missing_pvs_are 1
pvs -o pv_name,vg_name,pv_attr 2>&1 | sed 's/^/    /' >&2
diagnose
expect_finding image-detached:/media/disk2.img critical "attaches it"
repair
no_failed_result
res=$(result_of image-detached:/media/disk2.img)
[[ $res == "fixed: attached as /dev/loop"* ]] || fail "Repair of image-detached returned '$res'"
dev2=${res#fixed: attached as }
[[ $(losetup -j /media/disk2.img | cut -d: -f1) == "$dev2" ]] || fail "disk2.img is not on $dev2"
wait_for 30 "vg0 complete again" missing_pvs_are 0
[[ $(vg_field pv_count) == 3 ]] || fail "vg0 has $(vg_field pv_count) PVs"
[[ $(pvs --noheadings -o vg_name "$dev2" | tr -d ' ') == vg0 ]] || fail "$dev2 is not a PV of vg0"
diagnose
expect_no_finding image-detached:/media/disk2.img
pass "Repair re-attached disk2.img as $dev2 and vg0 has its 3 PVs, none missing"

# ---------------------------------------------------------------- image-missing
log "$(date +%T) == image-missing: disk2.img (no extents, recorded) deleted while attached"
step rm /media/disk2.img
diagnose
n=$(finding_count image-missing:/media/disk2.img)
(( n >= 1 )) || fail "Diagnose does not report the deleted disk2.img"
# disk2.img is both recorded and the backing file of a PV's loop device: one problem, one id.
(( n == 1 )) || check_failed "Diagnose lists image-missing:/media/disk2.img $n times, an id must name one finding"
[[ $(finding_field image-missing:/media/disk2.img severity | sort -u) == critical ]] \
  || fail "image-missing is not critical: $(finding_field image-missing:/media/disk2.img severity)"
fix=$(finding_field image-missing:/media/disk2.img fix | head -n1)
[[ $fix == *"Repair cannot recreate data"* && $fix == *"vgreduce --removemissing"* ]] \
  || fail "the fix of image-missing does not leave it to the admin and say how to drop the PV: $fix"
[[ $(finding_field image-missing:/media/disk2.img problem) == *"deleted while attached"* ]] \
  || fail "image-missing does not say the file was deleted while attached"
pass "Diagnose: image-missing:/media/disk2.img (critical), fix: $fix"
repair
no_failed_result
[[ -z $(result_of image-missing:/media/disk2.img) ]] || fail "Repair with no ids touched image-missing"
repair image-missing:/media/disk2.img
res=$(result_of image-missing:/media/disk2.img)
[[ $res == "refused: "* ]] || fail "Repair of image-missing returned '$res', expected a refusal"
[[ $(pvs --noheadings -o vg_name "$dev2" | tr -d ' ') == vg0 ]] || fail "a refused Repair changed $dev2"
pass "image-missing is critical, left to the admin, Repair refuses: $res"
log "$(date +%T) == the admin does what the fix says: drop the PV"
step losetup -d "$dev2"
wait_for 20 "LVM reports disk2's PV missing" missing_pvs_are 1
step vgreduce -q --removemissing vg0
[[ $(vg_field pv_count) == 2 && $(vg_field vg_missing_pv_count) == 0 ]] || fail "vg0 not back to 2 complete PVs"
# Nothing needs disk2.img now but the boot-time record: a safe fix, Repair forgets it.
diagnose
[[ $(finding_field image-missing:/media/disk2.img severity) == warning ]] \
  || fail "image-missing after vgreduce is not a warning: $(finding_field image-missing:/media/disk2.img severity)"
[[ $(finding_field image-missing:/media/disk2.img fix) == *"forgets"* ]] \
  || fail "image-missing after vgreduce does not offer to forget it: $(finding_field image-missing:/media/disk2.img fix)"
repair image-missing:/media/disk2.img
[[ $(result_of image-missing:/media/disk2.img) == "fixed: "* ]] \
  || fail "Repair did not forget disk2.img: $(result_of image-missing:/media/disk2.img)"
grep -qx /media/disk2.img /var/lib/lvkeeper/images && fail "/media/disk2.img is still recorded for boot"
pass "a missing image nothing needs is forgotten by Repair: $(result_of image-missing:/media/disk2.img)"

# ---------------------------------------------------------------- the end
log "$(date +%T) == last Repair and Diagnose: nothing that was made is left"
wait_itable_zeroed /dev/vg0/data0 120
repair
no_failed_result
diagnose
for id in lv-bigger-than-fs:/data image-sparse:/media/disk1.img vg-low:vg0 image-detached:/media/disk2.img; do
  expect_no_finding "$id"
done
# disk2.img's PV left vg0 as the finding said: the image backs nothing lvkeeper watches any more.
[[ $(finding_count image-missing:/media/disk2.img) == 0 ]] \
  || check_failed "image-missing:/media/disk2.img is still reported after its PV was removed from vg0 as its fix says"
left=$(serious_findings | grep -vx image-missing:/media/disk2.img || true)
[[ -z $left ]] || fail "faults remain: $left"
pass "no other critical or warning finding left"
monitor_stop
# The object server's wrapper logs each restart: with the wall-clock times of the sections above
# they say what a failed request coincided with.
grep -h 'objserver-run\|objserver\[' /var/log/lab/objserver.log 2>/dev/null | grep -v ' GET ' | tail -n 20 >&2 || true
availability_report
(( ${#LK_CHECKS_FAILED[@]} == 0 )) || fail "$(printf '%s; ' "${LK_CHECKS_FAILED[@]}")"
pass "doctor"
