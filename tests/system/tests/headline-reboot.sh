# Boot 2 of the headline (sourced by headline.sh): after lab-reboot the healed host is all there.
log "boot $LAB_BOOT: checking the healed host"
losetup -l
findmnt /data || fail "/data is not mounted after the reboot"
[[ $(findmnt -n -o OPTIONS /data) == rw,* ]] || fail "/data came back read-only"
pvs_before=$(cat /data/.pvs-before-reboot)
pvs_now=$(pvs --noheadings -o pv_name -S vg_name=vg0 | wc -l)
missing=$(vgs --noheadings -o vg_missing_pv_count vg0 | tr -d ' ')
(( pvs_now == pvs_before && missing == 0 )) || fail "vg0 has $pvs_now PVs ($missing missing), had $pvs_before"
size=$(df -B1 --output=size /data | tail -n1 | tr -d ' ')
[[ $size == "$(cat /data/.size-before-reboot)" ]] || fail "/data is $size bytes, was $(cat /data/.size-before-reboot)"
(( size >= 6 * 1024 * 1024 * 1024 )) || fail "/data is smaller than 6G after the reboot"
(cd /data/objects && sha256sum -c --quiet "$LK_AVAIL_MANIFEST") || fail "objects do not checksum after the reboot"
pass "vg0 with all $pvs_now PVs, /data read-write at $size bytes, every object checksums"
wait_active
status=$(systemctl show -p StatusText --value lvkeeperd)
[[ $status == "/data "*"% used, grows at 90% by 500M"* ]] || fail "unexpected STATUS after boot: $status"
pass "lvkeeperd started at boot: $status"
availability_start
diag=$(call Diagnose)
log "Diagnose after the reboot: $diag"
grep -q '"critical"' <<<"$diag" && fail "critical findings after the reboot: $diag"
pass "no critical finding after the reboot"
out=$(step busctl --timeout=300 call "$BUSNAME" "$OBJ" "$MGR" Grow ss /data +500M)
log "$out"
availability_report
pass "headline after reboot: everything came back and keeps serving"
