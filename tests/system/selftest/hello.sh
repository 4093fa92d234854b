#!/bin/bash
# Lab self-test: the basics a scenario relies on (minimal mode).
set -euo pipefail
echo "hello from the lab guest: kernel $(uname -r), boot $LAB_BOOT, mode $LAB_MODE"
[[ $LAB_BOOT == 1 && -d $LAB_REPO ]]
[[ $(id -u) == 0 && $PWD == / ]]

# /media is the lab's ext4 disk.
[[ $(findmnt -n -o FSTYPE /media) == ext4 ]]
[[ $(findmnt -n -o SOURCE /media) == /dev/vd* ]]
# /run and /tmp are fresh tmpfs.
[[ $(findmnt -n -o FSTYPE /run) == tmpfs && $(findmnt -n -o FSTYPE /tmp) == tmpfs ]]
[[ ! -e /.dockerenv ]]
# SCRIPT inherits no descriptors beyond stdio (LVM warns about leaked ones).
# shellcheck disable=SC2012  # ls itself is the child looked at
fds=$(ls /proc/self/fd | tr '\n' ' ')
echo "descriptors of a child: $fds"
[[ $fds == "0 1 2 3 " ]]
[[ -x /usr/local/sbin/lab-reboot ]]
# Kernel features the project needs.
modprobe dm-mod
modprobe loop
modprobe xfs
dmsetup version
lvm version
pgrep -x systemd-udevd >/dev/null

img=/media/hello-pv.img
truncate -s 1G "$img"
loop=$(losetup --find --show "$img")
echo "loop device $loop"
pvcreate -q "$loop"
vgcreate -q labvg "$loop"
lvcreate -q -y -L 100M -n hello labvg
udevadm settle
[[ -b /dev/labvg/hello ]]
mkfs.ext4 -q /dev/labvg/hello
mkdir -p /mnt/hello
mount /dev/labvg/hello /mnt/hello
echo written >/mnt/hello/file
lvextend -q -r -L +100M labvg/hello
size=$(lvs --noheadings --units m --nosuffix -o lv_size labvg/hello | tr -d ' ')
echo "LV size after lvextend -r: ${size}M"
[[ ${size%.*} == 200 ]]
[[ $(df -BM --output=size /mnt/hello | tail -n1 | tr -dc 0-9) -gt 150 ]]
[[ $(cat /mnt/hello/file) == written ]]
umount /mnt/hello
# XFS too.
lvcreate -q -y -L 300M -n hellox labvg
mkfs.xfs -q /dev/labvg/hellox
mount /dev/labvg/hellox /mnt/hello
umount /mnt/hello
vgchange -q -an labvg
losetup -d "$loop"
echo "hello: all good"
