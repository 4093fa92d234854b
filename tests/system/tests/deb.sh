#!/bin/bash
# The package as an admin gets it: the .deb built by tests/package/build-deb ($LK_DEB, run by
# tests/system/deb-lab) installed with dpkg in a guest that has nothing of lvkeeper (the lab staged
# no meson install: LAB_NO_BUILD=1), then the headline flow (the incident rebuilt, healed, filled,
# rebooted) from the installed files, then lvkeeperctl from the package on the healed host.
source "$(dirname "$0")/lib.sh"

# What the package must install, and where.
LK_PACKAGE_FILES=(
  /usr/sbin/lvkeeperd
  /usr/bin/lvkeeperctl
  /lib/systemd/system/lvkeeperd.service
  /lib/systemd/system/lvkeeper-attach.service
  /usr/lib/modules-load.d/lvkeeper.conf
  /usr/share/dbus-1/system.d/org.lvkeeper.Keeper1.conf
  /usr/share/dbus-1/system-services/org.lvkeeper.Keeper1.service
  /usr/share/polkit-1/actions/org.lvkeeper.Keeper1.policy
  /usr/lib/systemd/catalog/lvkeeper.catalog
  /usr/share/dbus-1/interfaces/org.lvkeeper.Keeper1.Manager.xml
  /usr/share/dbus-1/interfaces/org.lvkeeper.Keeper1.Volume.xml
  /usr/share/bash-completion/completions/lvkeeperctl
  /usr/share/doc/lvkeeper/examples/lvkeeper.conf
  /usr/share/doc/lvkeeper/copyright
  /usr/share/man/man1/lvkeeperctl.1.gz
  /usr/share/man/man8/lvkeeperd.8.gz
  /usr/share/man/man5/lvkeeper.conf.5.gz
  /usr/share/man/man5/org.lvkeeper.Keeper1.5.gz
)

install_package() {
  [[ -f ${LK_DEB:-} ]] || fail "no package to install: LK_DEB='${LK_DEB:-}' (run through tests/system/deb-lab)"
  local f
  for f in "${LK_PACKAGE_FILES[@]}"; do
    [[ ! -e $f ]] || fail "$f exists before the package is installed: the host or the lab staged lvkeeper"
  done
  # The lab's userland is the host's, a container image whose policy-rc.d forbids maintainer scripts
  # to start services; this guest is a booted machine, which has none.
  rm -f /usr/sbin/policy-rc.d
  # man-db's trigger would rebuild the whole index over 9p under emulation; it is not what is tested
  # (its switch is this file, as debconf's man-db/auto-update sets it).
  rm -f /var/lib/man-db/auto-update
  step env DEBIAN_FRONTEND=noninteractive dpkg -i "$LK_DEB"
  dpkg-query -W -f '${Status} ${Version}\n' lvkeeper
  [[ $(dpkg-query -W -f '${Status}' lvkeeper) == "install ok installed" ]] || fail "lvkeeper is not installed"
  step dpkg --verify lvkeeper || fail "installed files differ from the package"
  # One listing: each dpkg-query -S would read the whole database again, minutes under emulation.
  local owned
  owned=$(dpkg-query -L lvkeeper)
  for f in "${LK_PACKAGE_FILES[@]}"; do
    [[ -f $f ]] && grep -qxF "$f" <<<"$owned" || fail "$f is not installed by the package"
  done
  pass "dpkg installed lvkeeper $(dpkg-query -W -f '${Version}' lvkeeper): every file in place, dpkg --verify clean"
  [[ ! -e /etc/lvkeeper/lvkeeper.conf ]] || fail "the package installed /etc/lvkeeper/lvkeeper.conf"
  pass "the package leaves /etc/lvkeeper/lvkeeper.conf to the admin"

  systemctl is-enabled lvkeeperd.service lvkeeper-attach.service || fail "the package did not enable its units"
  wait_active
  local out rc=0
  out=$(lvkeeperctl status) || rc=$?
  log "$out"
  ((rc == 0)) && [[ $out == *"No watched volumes"* ]] || fail "lvkeeperctl status on a fresh install: exit $rc"
  pass "installed, enabled and started: lvkeeperd runs with every default and watches nothing yet"

  out=$(lvkeeperctl --version)
  [[ $out == "lvkeeperctl $(dpkg-query -W -f '${Version}' lvkeeper)"$'\n'"lvkeeperd "* ]] \
    || fail "lvkeeperctl --version: $out"
  # D-Bus activation: a call while the daemon is stopped starts its unit.
  step systemctl stop lvkeeperd
  step lvkeeperctl status >/dev/null || fail "lvkeeperctl status did not start lvkeeperd through bus activation"
  # It answers once it owns its name, before it says READY=1: the unit may still be activating.
  wait_active
  pass "a call to org.lvkeeper.Keeper1 starts lvkeeperd.service (D-Bus activation)"
  step systemctl stop lvkeeperd
  [[ $(man -w lvkeeperctl) == /usr/share/man/man1/lvkeeperctl.1.gz ]] || fail "man lvkeeperctl: $(man -w lvkeeperctl)"
}

# After the reboot, the healed host and the package's lvkeeperctl on it.
ctl_on_the_healed_host() {
  local out rc
  out=$(lvkeeperctl status /data) || fail "lvkeeperctl status /data exited $? on the healed host"
  log "$out"
  [[ $out == *"Filesystem: ext4, read-write"* && $out == *"Volume: vg0/data0 on "* ]] \
    || fail "lvkeeperctl status does not show /data healthy"
  out=$(lvkeeperctl --json=short status)
  python3 -c '
import json, sys
v = json.loads(sys.argv[1])["Volumes"][0]
assert v["MountPoint"] == "/data" and v["Problems"] == [] and v["Size"] >= 6 << 30, v
' "$out" || fail "lvkeeperctl --json=short status: $out"
  out=$(lvkeeperctl --no-legend diagnose)
  log "$out"
  # As after the headline's reboot: nothing critical (ext4's lazy init after the grows may leave an
  # image sparse for a while; the backstop re-allocates it).
  grep -q '^critical ' <<<"$out" && fail "lvkeeperctl diagnose lists critical faults: $out"
  lvkeeperctl --json=short monitor >/run/lk-ctl-monitor.json &
  local mon=$! before
  sleep 1
  out=$(step lvkeeperctl --json=short add-disk vg0) || fail "lvkeeperctl add-disk exited $?"
  log "$out"
  python3 -c 'import json, sys; d = json.loads(sys.argv[1]); assert d["vg"] == "vg0" and d["device"].startswith("/dev/loop"), d' \
    "$out" || fail "lvkeeperctl add-disk answered $out"
  before=$(vol_prop LogicalVolumeSize)
  out=$(step lvkeeperctl --json=short grow /data +500M) || fail "lvkeeperctl grow exited $?"
  python3 -c 'import json, sys; assert json.loads(sys.argv[1])["new_size"] == int(sys.argv[2]) + (500 << 20)' \
    "$out" "$before" || fail "lvkeeperctl grow answered $out (LV was $before)"
  sleep 2
  kill -INT "$mon"
  rc=0
  wait "$mon" || rc=$?
  ((rc == 0)) || fail "lvkeeperctl monitor exited $rc on SIGINT"
  grep -q '"member":"DiskAdded"' /run/lk-ctl-monitor.json || fail "lvkeeperctl monitor did not show the DiskAdded"
  grep -q '"member":"Grown".*"request"' /run/lk-ctl-monitor.json || fail "lvkeeperctl monitor did not show the Grown"
  pass "the package's lvkeeperctl: status, diagnose, add-disk, grow and monitor on the healed host"
}

# The package is a production build (debian/rules configures no test seam): LVKEEPER_LVM in its
# environment is logged and ignored, and lvm(8) does the work. (security.sh checks the same when the
# lab stages a default build; tests/run's build has the seams on.)
no_seam_in_production() {
  local version
  version=$(lvkeeperd --version)
  [[ $version != *"test seams"* ]] || fail "the package's lvkeeperd is a test-seams build: $version"
  expect_lvm_seam_ignored
  pass "the package's lvkeeperd logs and ignores LVKEEPER_LVM: lvm(8) ran the grow"
}

if [[ ${LAB_BOOT:-1} == 1 ]]; then
  install_package
  # The headline, unchanged: it copies the example config in place and starts lvkeeperd itself;
  # it ends in lab-reboot.
  source "$(dirname "$0")/headline.sh"
  exit 1
fi
source "$(dirname "$0")/headline-reboot.sh"
ctl_on_the_healed_host
no_seam_in_production
pass "deb: the package installs like one and the headline passes from it"
