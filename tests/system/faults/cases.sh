# The fault suite's cases; sourced by guest.sh after lib.sh. A case NAME runs as case_run NAME in a
# subshell: it fails through fail(), notes facts with note(), and ends with checks (lib.sh). A case
# that cuts the power writes what it expects to $FSTATE first; guest.sh then calls case_after NAME
# at the next boot.
#
# Fault cases are ACTION:OP:STEP:
#   ACTION  cut (power cut, lab-powercut), kill (kill -9 of lvkeeperd's main process; systemd
#           restarts it), restart (systemctl restart: the caller must get its answer)
#   OP      grow-ext4, grow-xfs (Grow /data or /xdata +100M), add-disk (AddDisk vg0 ""), recreate-pv
#           (Repair of pv-data-offset: a PV whose first extent is at 64M, holding 256M of data0),
#           repair (Repair of every safe fix with three PV faults), remount (Remount of a read-only /data)
#   STEP    where it lands (point_of): a step of OP, or reply (right after the success reply)

# point_of OP STEP: the point (lib.sh) of a step. A command step is held in the wrapper after the
# real command ran; a step inside lvkeeperd (allocate, attach, record) at the gate before the next.
point_of() {
  case $1:$2 in
    grow-*:lvextend) echo cmd:lvextend ;;
    grow-ext4:fs-grow) echo cmd:resize2fs ;;
    grow-xfs:fs-grow) echo cmd:xfs_growfs ;;
    add-disk:allocate) echo gate:add-disk:attach ;;
    add-disk:attach) echo gate:add-disk:record ;;
    add-disk:record) echo gate:add-disk:pvcreate ;;
    add-disk:pvcreate | add-disk:vgextend) echo "cmd:$2" ;;
    recreate-pv:pvmove) echo move ;;
    recreate-pv:vgreduce | recreate-pv:pvremove | recreate-pv:pvcreate | recreate-pv:vgextend) echo "cmd:$2" ;;
    *:reply) echo reply ;;
    *) fail "no point for step $2 of $1" ;;
  esac
}

# ---------------------------------------------------------------- what each operation needs
# new_image KIND SIZE: a fresh image in /media on a loop device, recorded for boot as an admin would
# (lvkeeperd's record format: one absolute path per line). Prints the loop device.
new_image() {
  local stamp=${EPOCHREALTIME/./} dev
  local img=/media/$1-${stamp: -7}.img
  fallocate -l "$2" "$img"
  dev=$(losetup --find --show "$img")
  { cat "$RECORD"; echo "$img"; } >"$RECORD.lab" && mv -f "$RECORD.lab" "$RECORD"
  echo "$dev"
}
# An incident PV: its first extent at 64M (lvkeeper's pv-data-offset), 256M of data0 on it.
offset_pv() {
  local dev
  dev=$(new_image offset 400M)
  pvcreate -q --dataalignment 64m "$dev" >&2
  vgextend -q vg0 "$dev" >&2
  lvextend -q -L +256M vg0/data0 "$dev" >&2
  resize2fs -f /dev/vg0/data0 >/dev/null 2>&1 || fail "resize2fs of data0 onto $dev failed"
  echo "$dev"
}
read_only_is() { [[ $(vol_prop ReadOnly) == "$1" ]]; }
new_instance() { local p; p=$(lvk_pid); [[ $p != 0 && $p != "$1" ]]; }
lvk_stopping() { [[ $(systemctl show -p ActiveState --value lvkeeperd) == deactivating ]] || new_instance "$1"; }
img_of() { losetup -n -O BACK-FILE "$1" | tr -d ' '; }
pv_field() { pvs --noheadings --units b --nosuffix -o "$2" "$1" | tr -d ' '; }
dev_of_img() { loop_of "$1"; }

op_prepare() {
  local op=$1 dev img value
  case $op in
    grow-ext4 | grow-xfs)
      local mp=/data lv=data0
      [[ $op == grow-xfs ]] && mp=/xdata lv=data1
      expect mp "$mp"
      expect lv "$lv"
      value=$(lv_size "$lv")
      expect before "$value"
      ;;
    add-disk)
      value=$(pv_count)
      expect before "$value"
      ;;
    recreate-pv)
      dev=$(offset_pv)
      img=$(img_of "$dev")
      expect image "$img"
      expect device "$dev"
      ;;
    repair)
      dev=$(offset_pv)
      img=$(img_of "$dev")
      expect offset "$img"
      dev=$(new_image small 400M)
      pvcreate -q --setphysicalvolumesize 200M "$dev" >&2
      vgextend -q vg0 "$dev" >&2
      img=$(img_of "$dev")
      expect small "$img"
      dev=$(dev_of_img /media/disk0.img)
      pvchange -q -x n "$dev" >&2
      expect unallocatable /media/disk0.img
      ;;
    remount)
      mount -o remount,ro /data
      wait_for 30 "lvkeeperd sees /data read-only" read_only_is true
      ;;
  esac
}
op_call() {
  case $1 in
    grow-ext4) call_bg Grow ss /data +100M ;;
    grow-xfs) call_bg Grow ss /xdata +100M ;;
    add-disk) call_bg AddDisk ss vg0 "" ;;
    recreate-pv) call_bg Repair as 1 "pv-data-offset:$(expected device)" ;;
    repair) call_bg Repair as 0 ;;
    remount) call_bg Remount s /data ;;
  esac
}
# reply_ok OP: the answer is the success it should be.
reply_ok() {
  local op=$1 text
  text=$(reply_text)
  [[ $(reply_rc) == 0 ]] || fail "$op was answered with an error: $text"
  case $op in
    grow-*)
      [[ $text == "t $(( $(expected before) + 100 * MIB ))" ]] || fail "Grow answered '$text', expected $(( $(expected before) + 100 * MIB ))"
      ;;
    add-disk)
      [[ $text =~ \"(/media/[^\"]+)\" ]] || fail "AddDisk answered '$text'"
      expect added "${BASH_REMATCH[1]}"
      ;;
    recreate-pv)
      grep -q "\"pv-data-offset:$(expected device)\" \"fixed:" <<<"$text" || fail "Repair answered '$text'"
      ;;
    repair)
      local id
      for id in "pv-not-allocatable:" "pv-smaller-than-device:" "pv-data-offset:"; do
        grep -q "\"$id[^\"]*\" \"fixed:" <<<"$text" || fail "Repair did not answer fixed: for $id: $text"
      done
      ;;
  esac
}

# op_verify OP ACKED: after the fault and the healing, the operation is whole or undone, never
# half-done; ACKED=1 when its success was answered (the result must be there).
op_verify() {
  local op=$1 acked=$2
  case $op in
    grow-ext4 | grow-xfs)
      local lv now before target
      lv=$(expected lv) before=$(expected before)
      target=$((before + 100 * MIB))
      now=$(lv_size "$lv")
      if ((acked)); then
        ((now >= target)) || fail "Grow was answered $target but $lv is $now after the fault"
      else
        ((now == before || now == target)) || fail "$lv is $now: neither $before nor $target"
      fi
      fs_matches_lv "$(expected mp)" "$lv"
      note "$lv $((before / MIB))M -> $((now / MIB))M"
      ;;
    add-disk)
      local before now
      before=$(expected before) now=$(pv_count)
      if ((acked)); then
        ((now == before + 1)) || fail "AddDisk was answered $(expected added) but vg0 has $now PVs (had $before)"
        [[ $(pv_field "$(dev_of_img "$(expected added)")" vg_name) == vg0 ]] \
          || fail "the acknowledged $(expected added) is not a PV of vg0"
      else
        ((now == before || now == before + 1)) || fail "vg0 has $now PVs, had $before"
      fi
      note "vg0 $before -> $now PVs"
      ;;
    recreate-pv)
      local dev
      dev=$(dev_of_img "$(expected image)")
      [[ -n $dev ]] || fail "$(expected image) is not attached"
      [[ $(pv_field "$dev" vg_name) == vg0 ]] || fail "$dev ($(expected image)) is not in vg0"
      [[ $(pv_field "$dev" pe_start) == $MIB ]] \
        || fail "$dev still has its first extent at $(pv_field "$dev" pe_start) (the PV was not recreated)"
      note "$(expected image) recreated: pe_start 1M, in vg0"
      ;;
    repair)
      local dev
      dev=$(dev_of_img /media/disk0.img)
      [[ $(pvs --noheadings -o pv_attr "$dev" | tr -d ' ') == a* ]] || fail "$dev is not allocatable after the acknowledged Repair"
      dev=$(dev_of_img "$(expected small)")
      local used
      used=$(( $(pv_field "$dev" pv_size) + $(pv_field "$dev" pe_start) ))
      (( $(pv_field "$dev" dev_size) - used < 4 * MIB )) || fail "$dev is still smaller than its device after the acknowledged Repair"
      dev=$(dev_of_img "$(expected offset)")
      [[ $(pv_field "$dev" pe_start) == $MIB ]] || fail "$dev still has its first extent at 64M after the acknowledged Repair"
      note "the three PV faults stayed fixed"
      ;;
    remount)
      [[ $(findmnt -n -o OPTIONS /data) == rw,* ]] || fail "/data is not read-write"
      [[ $(vol_prop ReadOnly) == false ]] || fail "lvkeeperd says /data is read-only"
      ;;
  esac
}
# The filesystem fills its LV (lvkeeperd heals one that lags at start).
fs_matches_lv() {
  local mp=$1 lv=$2 lvb fsb
  lvb=$(lv_size "$lv")
  if [[ $mp == /data ]]; then
    fsb=$(dumpe2fs -h "/dev/vg0/$lv" 2>/dev/null | awk -F: '/^Block count/ { c = $2 } /^Block size/ { s = $2 } END { print c * s }')
  else
    fsb=$(xfs_info "$mp" | awk -F'[ =,]+' '/^data/ { for (i = 1; i < NF; i++) { if ($i == "bsize") b = $(i+1); if ($i == "blocks") n = $(i+1) } } END { print b * n }')
  fi
  ((lvb - fsb < 4 * MIB)) || fail "the filesystem of $lv is $fsb bytes, its LV $lvb: not healed"
}

# ---------------------------------------------------------------- the fault cases
fault_case() { # ACTION OP STEP
  local action=$1 op=$2 step=$3 point old since heal
  point=$(point_of "$op" "$step")
  op_prepare "$op"
  sync # what the suite set up is on disk; from here on only lvkeeperd's flushes count
  if [[ $action == kill && $point == cmd:* && $point != cmd:resize2fs && $point != cmd:xfs_growfs ]]; then
    point_arm "$point" locked # the killed instance's lvm command still holds vg0's lock
  elif [[ $point != reply ]]; then
    point_arm "$point"
  fi
  op_call "$op"
  if [[ $point == reply ]]; then
    wait_for 600 "the answer to $op" reply_came
    reply_ok "$op"
  else
    wait_for 600 "$op reaching $point" point_reached "$point"
    if reply_came; then fail "$op answered before its fault at $point: $(reply_text)"; fi
  fi
  log "$op at $point: $action"
  case $action in
    cut)
      [[ $point == reply ]] && expect acked 1
      guest_progress after
      lab-powercut
      ;;
    kill)
      old=$(lvk_pid)
      since=$(uptime_us)
      systemctl kill --kill-whom=main --signal=SIGKILL lvkeeperd
      if [[ $point == cmd:* ]] && grep -q "holding with the lock" "$FAULTS/commands.log"; then
        # The next instance must wait for the command it finds running, not act beside it.
        wait_for 30 "a new lvkeeperd started" new_instance "$old"
        sleep 3
        ! lvk_active || fail "the new lvkeeperd became READY while an lvm command held vg0's lock"
        note "the new instance waited for the running lvm command's lock"
        point_clear "$point"
        since=$(uptime_us) # healing starts once that command ends
      fi
      point_clear "$point"
      heal=$(heal_wait "$since" "$HEAL_LIMIT" "$old")
      op_verify "$op" "$([[ $point == reply ]] && echo 1 || echo 0)"
      checks "$heal" "$HEAL_LIMIT"
      ;;
    restart)
      old=$(lvk_pid)
      systemctl restart --no-block lvkeeperd
      # (With nothing left running the old instance may be gone before the first look.)
      wait_for 60 "lvkeeperd stopping" lvk_stopping "$old"
      since=$(uptime_us)
      point_release "$point"
      wait_for 600 "the answer to $op after the restart" reply_came
      if [[ $point == move ]]; then
        # The long move is LVM's: the caller is told lvkeeperd stops and the next start finishes it.
        [[ $(reply_rc) == 0 ]] || grep -q 'lvkeeperd is stopping' <<<"$(reply_text)" \
          || fail "Repair during its pvmove was answered: $(reply_text)"
        note "answer: $(reply_text | head -c 160)"
      else
        reply_ok "$op"
        note "the caller got its answer"
      fi
      [[ $point == cmd:* ]] && held_command_finished "${point#cmd:}"
      heal=$(heal_wait "$since" "$HEAL_LIMIT" "$old")
      op_verify "$op" "$([[ $point == move ]] && echo 0 || echo 1)"
      checks "$heal" "$HEAL_LIMIT"
      ;;
  esac
}
fault_case_after() { # ACTION OP STEP, at the boot after the power cut
  local op=$2 heal
  heal=$(heal_wait 0 "$HEAL_LIMIT_BOOT")
  op_verify "$op" "$(expected acked || true)"
  checks "$heal" "$HEAL_LIMIT_BOOT"
}
# The held command ran to its end: never killed, never sent a signal.
held_command_finished() {
  grep -q " $1 released rc=" "$FAULTS/commands.log" || fail "the held $1 did not finish: $(cat "$FAULTS/commands.log")"
  ! grep -q " $1 got SIGTERM" "$FAULTS/commands.log" || fail "the held $1 got a SIGTERM"
}
