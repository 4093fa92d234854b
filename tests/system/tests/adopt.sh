#!/bin/bash
# udev: a loop device attached by hand over an image in the image directory is adopted;
# one that carries a signature is never written.
source "$(dirname "$0")/lib.sh"

step make_volume 300M
write_config <<'CONF'
[Volume]
MountPoint=/data
[Disks]
ImageDirectory=/media
AdoptLoopDevices=yes
CONF
step systemctl start lvkeeperd
wait_active
availability_start
monitor_start

fallocate -l 200M /media/byhand.img
dev=$(losetup --find --show /media/byhand.img)
log "attached /media/byhand.img as $dev by hand"
expect_signal DiskAdded 90 "$dev"
[[ $(pvs --noheadings -o vg_name "$dev" | tr -d ' ') == vg0 ]] || fail "$dev is not a PV of vg0"
pass "udev-driven adoption of $dev into vg0"

fallocate -l 64M /media/hasfs.img
mkfs.ext4 -q /media/hasfs.img
sum_before=$(sha256sum /media/hasfs.img | cut -d' ' -f1)
dev2=$(losetup --find --show /media/hasfs.img)
log "attached /media/hasfs.img (ext4) as $dev2"
for _ in $(seq 1 300); do
  journalctl -u lvkeeperd -o cat --no-pager | grep -q "adopt-skipped device=$dev2" && break
  sleep 0.2
done
journalctl -u lvkeeperd -o cat --no-pager | grep "device=$dev2" || fail "no log line about $dev2"
journalctl -u lvkeeperd -o cat --no-pager | grep -q "adopt-skipped device=$dev2" || fail "$dev2 was not skipped"
[[ $(blkid -o value -s TYPE "$dev2") == ext4 ]] || fail "$dev2 lost its ext4 signature"
[[ $(sha256sum /media/hasfs.img | cut -d' ' -f1) == "$sum_before" ]] || fail "hasfs.img was written"
pass "a device with a signature is logged and left alone"
monitor_stop
availability_report
