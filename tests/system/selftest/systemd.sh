#!/bin/bash
# Lab self-test for --systemd: systemd is PID 1, the boot is clean, the
# system bus and systemd-udevd work.
set -euo pipefail
echo "systemd guest: boot $LAB_BOOT, mode $LAB_MODE"
[[ $LAB_MODE == systemd ]]
[[ $(ps -o comm= -p 1) == systemd ]]
state=$(systemctl is-system-running || true)
echo "system state: $state"
systemctl --failed --no-pager --no-legend
[[ $state == running || $state == degraded ]]
busctl --system list --no-pager | grep -q org.freedesktop.systemd1
busctl --system call org.freedesktop.DBus /org/freedesktop/DBus org.freedesktop.DBus GetId
systemctl is-active systemd-udevd.service
systemctl is-active dbus.service
[[ $(findmnt -n -o FSTYPE /media) == ext4 ]]
systemctl is-active media.mount
[[ ! -e /.dockerenv ]]
[[ $(systemd-detect-virt) != none && $(systemd-detect-virt --container || true) == none ]]
if [[ $state != running ]]; then
    echo "failed units remain" >&2
    exit 1
fi
echo "systemd: all good"
