#!/bin/bash
# Hostile callers (issue 10): polkit decides for users other than root, and every method and
# property, as root, as nobody and as uid 0 in a user namespace, with hostile input
# (tests/system/tests/hostile.py says what it asserts), leaves the daemon and the storage as they were.
source "$(dirname "$0")/lib.sh"

step make_volume 300M
write_config <<'CONF'
[Volume]
MountPoint=/data
AutoGrow=no
[Disks]
ImageDirectory=/media
ImageSize=200M
ReserveHostSpace=64M
AutoAddDisk=no
AdoptLoopDevices=no
[Daemon]
BackstopInterval=0
CONF
step systemctl start lvkeeperd
wait_active

# ---- polkit, the real one -------------------------------------------------------------------
pkaction --version >/dev/null || fail "pkaction missing: polkitd is not installed"
for action in grow add-disk remount repair; do
  out=$(pkaction --action-id "org.lvkeeper.$action" --verbose) || fail "polkit does not know org.lvkeeper.$action"
  grep -q "implicit any: *auth_admin_keep" <<<"$out" || fail "org.lvkeeper.$action is not auth_admin_keep: $out"
done
pass "polkit knows the four actions, each auth_admin_keep"
useradd --system --no-create-home --shell /usr/sbin/nologin lvktest
cat >/etc/polkit-1/rules.d/50-lvkeeper-test.rules <<'RULES'
polkit.addRule(function(action, subject) {
    if (action.id == "org.lvkeeper.remount" && subject.user == "lvktest")
        return polkit.Result.YES;
});
RULES
step systemctl restart polkit.service
as_user() {
  local user=$1
  shift
  setpriv --reuid="$(id -u "$user")" --regid="$(id -g "$user")" --clear-groups dbus-send --system --print-reply --dest="$BUSNAME" \
    "$OBJ" "$MGR.$1" "${@:2}" 2>&1
}
out=$(as_user lvktest Remount string:/nope) && fail "Remount /nope succeeded"
grep -q "Error.NotFound" <<<"$out" || fail "polkit's yes did not let lvktest's Remount through: $out"
out=$(as_user lvktest Grow string:/data string:+1G) && fail "lvktest could Grow"
grep -q "org.lvkeeper.Keeper1.Error.AccessDenied" <<<"$out" || fail "lvktest's Grow: $out"
out=$(as_user nobody Remount string:/data) && fail "nobody could Remount"
grep -q "org.lvkeeper.Keeper1.Error.AccessDenied" <<<"$out" || fail "nobody's Remount: $out"
log "nobody's Remount: $out"
journalctl -u lvkeeperd -o cat --no-pager | grep -q "event=authorized method=Remount action=org.lvkeeper.remount" \
  || fail "no event=authorized for lvktest's Remount"
pass "polkit decides: a rule lets lvktest Remount (and nothing else), nobody without it is refused"
rm /etc/polkit-1/rules.d/50-lvkeeper-test.rules

# ---- the battery ------------------------------------------------------------------------------
# Let the start-up work settle (image allocation, the first scans) before the state is compared.
call Diagnose >/dev/null
sleep 3
python3 "$(dirname "$0")/hostile.py" /media || fail "hostile input (above)"
pass "hostile"
