#!/bin/bash
# Lab self-test: lab-reboot keeps /media and /var/lib/lvkeeper (and the
# rest of the root) and runs SCRIPT again with LAB_BOOT=2.
set -euo pipefail
echo "reboot test: boot $LAB_BOOT, mode $LAB_MODE"
case $LAB_BOOT in
    1)
        echo first >/media/reboot-marker
        mkdir -p /var/lib/lvkeeper
        echo first >/var/lib/lvkeeper/reboot-marker
        echo first >/etc/lab-reboot-marker
        echo volatile >/run/reboot-marker
        lab-reboot
        echo "lab-reboot returned" >&2
        exit 1
        ;;
    2)
        [[ $(cat /media/reboot-marker) == first ]]
        [[ $(cat /var/lib/lvkeeper/reboot-marker) == first ]]
        [[ $(cat /etc/lab-reboot-marker) == first ]]
        [[ ! -e /run/reboot-marker ]]
        echo "reboot: all good"
        ;;
    *)
        echo "unexpected boot $LAB_BOOT" >&2
        exit 1
        ;;
esac
