#!/bin/bash
# Baseline for the benchmarks, written here to behave as the incident's autoresize.sh does
# (../shared/seed, "Script to autoresize"): a loop with no sleep that parses `df -H`, and at 99%
# used runs `lvextend -L +500M --resizefs`, exiting on the first failure.
# Parameters (environment): MOUNT (/data), LV (/dev/mapper/vg0-data0), AT (99), STEP (500M),
# LOG (/var/log/autoresize.log).
MOUNT=${MOUNT:-/data}
LV=${LV:-/dev/mapper/vg0-data0}
AT=${AT:-99}
STEP=${STEP:-500M}
LOG=${LOG:-/var/log/autoresize.log}

while true; do
  df -H | grep " $MOUNT\$" | awk '{ print $5 }' | cut -d'%' -f1 | while read -r usage; do
    if [[ $usage -ge $AT ]]; then
      echo "$(date) Usage: $(df -h | grep " $MOUNT\$"), increasing $STEP" >>"$LOG"
      lvextend -L "+$STEP" "$LV" -A y --resizefs >>"$LOG" 2>&1
      if [[ $? -ne 0 ]]; then
        echo "Failed to extend LV" >>"$LOG"
        exit 1
      fi
    fi
  done || exit 1
done
