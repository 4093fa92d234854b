#!/bin/bash
# XFS on real LVM: lvkeeperd grows it with xfs_growfs on its mount point, by request and at GrowAt,
# online, and the filesystem checks clean afterwards.
source "$(dirname "$0")/lib.sh"

LK_FS=xfs step make_volume 320M
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
CONF
step systemctl start lvkeeperd
wait_active
[[ $(vol_prop Filesystem) == '"xfs"' ]] || fail "Filesystem property is $(vol_prop Filesystem)"
availability_start
monitor_start

xfs_blocks() { xfs_info /data | sed -n 's/^data *= *bsize=[0-9]* *blocks=\([0-9]*\),.*/\1/p'; }
before=$(xfs_blocks)
out=$(step call Grow ss /data +100M)
[[ $out == "t 440401920" ]] || fail "Grow +100M returned $out"
expect_signal Grown 90 440401920
after=$(xfs_blocks)
(( after > before )) || fail "xfs_info: data blocks $before -> $after"
[[ $(lvs --noheadings --units b --nosuffix -o lv_size vg0/data0 | tr -d ' ') == 440401920 ]] || fail "LV is not 420M"
pass "Grow +100M: LV 420M, XFS data blocks $before -> $after, online"

# Past GrowAt: the automatic grow, through xfs_growfs on the mount point.
size_before=$(df -B1 --output=size /data | tail -n1 | tr -d ' ')
avail=$(df -B1 --output=avail /data | tail -n1 | tr -d ' ')
fallocate -l $(( avail - 20 * 1024 * 1024 )) /data/ballast
expect_signal ThresholdCrossed 90
expect_signal Grown 120 '"threshold"'
size_after=$(df -B1 --output=size /data | tail -n1 | tr -d ' ')
(( size_after > size_before )) || fail "df: /data $size_before -> $size_after after the automatic grow"
journalctl -u lvkeeperd -o cat --no-pager | grep -q 'cmd="xfs_growfs /data"\|event=fs-grown volume=/data' \
  || fail "no xfs_growfs in lvkeeperd's journal"
pass "automatic grow at GrowAt: /data $size_before -> $size_after bytes"

monitor_stop
availability_report
step systemctl stop lvkeeperd
step umount /data
step xfs_repair -n /dev/vg0/data0
pass "xfs_repair -n is clean after the grows"
pass "xfs"
