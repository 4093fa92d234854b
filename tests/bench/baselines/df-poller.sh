#!/bin/bash
# Baseline for the benchmarks, written here: a poller in the style of amazon-ebs-autoscale, which
# checks `df` every INTERVAL seconds and grows by STEP when used space is at or above AT percent,
# logging failures and carrying on.
# Parameters (environment): MOUNT (/data), LV (/dev/mapper/vg0-data0), AT (90), STEP (500M),
# INTERVAL (2), LOG (/var/log/df-poller.log).
MOUNT=${MOUNT:-/data}
LV=${LV:-/dev/mapper/vg0-data0}
AT=${AT:-90}
STEP=${STEP:-500M}
INTERVAL=${INTERVAL:-2}
LOG=${LOG:-/var/log/df-poller.log}

while true; do
  usage=$(df --output=pcent "$MOUNT" | tail -n1 | tr -dc '0-9')
  if [[ -n $usage && $usage -ge $AT ]]; then
    echo "$(date) $MOUNT at $usage%, growing by $STEP" >>"$LOG"
    lvextend -L "+$STEP" "$LV" --resizefs >>"$LOG" 2>&1 || echo "$(date) lvextend failed" >>"$LOG"
  fi
  sleep "$INTERVAL"
done
