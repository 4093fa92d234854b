#!/bin/bash
# Boot: lvkeeperd started by systemd with STATUS=; after a reboot the loop-backed PVs, vg0 and
# /data come back without a person (lvkeeper-attach.service) and lvkeeperd is running.
source "$(dirname "$0")/lib.sh"

if [[ ${LAB_BOOT:-1} == 1 ]]; then
  step make_volume 300M
  echo "/dev/vg0/data0 /data ext4 defaults 0 2" >>/etc/fstab
  write_config <<'CONF'
[Volume]
MountPoint=/data
GrowStep=100M
[Disks]
ImageDirectory=/media
ImageSize=200M
ReserveHostSpace=64M
CONF
  step systemctl enable lvkeeperd.service lvkeeper-attach.service
  step systemctl start lvkeeperd
  wait_active
  availability_start
  out=$(step call AddDisk ss vg0 "")
  log "$out"
  for _ in $(seq 1 300); do
    [[ $(wc -l </var/lib/lvkeeper/images) -ge 3 ]] && break
    sleep 0.2
  done
  log "recorded images: $(tr '\n' ' ' </var/lib/lvkeeper/images)"
  [[ $(wc -l </var/lib/lvkeeper/images) == 3 ]] || fail "expected the 2 found and 1 added image recorded"
  echo "written before the reboot" >/data/marker
  availability_report
  sync
  log "rebooting"
  lab-reboot
  exit 1
fi

log "boot $LAB_BOOT"
losetup -l
for img in /media/disk0.img /media/disk1.img /media/disk2.img; do
  losetup -j "$img" | grep -q . || fail "$img is not attached after the reboot"
done
pass "all three images re-attached at boot"
[[ $(vgs --noheadings -o pv_count vg0 | tr -d ' ') == 3 ]] || fail "vg0 does not have its 3 PVs"
[[ $(lvs --noheadings -o lv_active vg0/data0 | tr -d ' ') == active ]] || fail "data0 not active"
findmnt /data >/dev/null || fail "/data is not mounted"
[[ $(cat /data/marker) == "written before the reboot" ]] || fail "/data lost its data"
pass "vg0 active, /data mounted with its data"
wait_active
systemctl status lvkeeperd --no-pager | head -n 12
status=$(systemctl show -p StatusText --value lvkeeperd)
[[ $status == "/data "*"% used, grows at 90% by 100M"* ]] || fail "unexpected STATUS after boot: $status"
pass "lvkeeperd running after boot: $status"
systemd-analyze critical-chain lvkeeperd.service --no-pager 2>/dev/null | head -n 12 || true
# The objects came back with /data: serve them again while lvkeeperd grows the volume once.
availability_start
out=$(step call Grow ss /data +100M)
log "$out"
availability_report
