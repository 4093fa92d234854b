#!/usr/bin/env python3
"""The files lvkeeper installs for the bus and polkit: valid, and saying what the daemon does.

- the polkit policy is valid against polkit's DTD (xmllint --dtdvalid), declares exactly the four
  actions the daemon asks about (the ids in src/dbus/service.cpp), each auth_admin_keep;
- the busconfig is well-formed, lets only root own the name and lets everyone send everything to
  it (the daemon decides), with no deny that would answer with the bus's own error instead.
"""
import argparse
import os
import re
import shutil
import subprocess
import sys
import unittest
import xml.etree.ElementTree as ET


def read(path):
    with open(path, encoding="utf-8") as f:
        return f.read()

ARGS = None
POLKIT_DTD = "/usr/share/polkit-1/policyconfig-1.dtd"
ACTIONS = {"org.lvkeeper.grow", "org.lvkeeper.add-disk", "org.lvkeeper.remount", "org.lvkeeper.repair"}


class BusFiles(unittest.TestCase):
    def path(self, name):
        return os.path.join(ARGS.dbus_dir, name)

    def test_policy_is_valid_against_polkits_dtd(self):
        r = subprocess.run(["xmllint", "--noout", "--dtdvalid", POLKIT_DTD, self.path("org.lvkeeper.Keeper1.policy")],
                           capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stderr)

    def test_policy_has_one_auth_admin_keep_action_per_mutating_method(self):
        root = ET.parse(self.path("org.lvkeeper.Keeper1.policy")).getroot()
        actions = {a.get("id"): a for a in root.iter("action")}
        self.assertEqual(set(actions), ACTIONS)
        for aid, action in actions.items():
            with self.subTest(action=aid):
                self.assertTrue(action.findtext("description"))
                self.assertTrue(action.findtext("message"))
                defaults = action.find("defaults")
                for kind in ("allow_any", "allow_inactive", "allow_active"):
                    self.assertEqual(defaults.findtext(kind), "auth_admin_keep", kind)

    def test_daemon_asks_about_exactly_the_policys_actions(self):
        source = os.path.join(os.path.dirname(ARGS.dbus_dir.rstrip("/")), "src/dbus/service.cpp")
        asked = dict(re.findall(r'authorized\(reply, "(\w+)", "(org\.lvkeeper\.[a-z-]+)"', read(source)))
        self.assertEqual(asked, {"Grow": "org.lvkeeper.grow", "AddDisk": "org.lvkeeper.add-disk",
                                 "Remount": "org.lvkeeper.remount", "Repair": "org.lvkeeper.repair"})

    def test_busconfig_leaves_the_decision_to_the_daemon(self):
        path = self.path("org.lvkeeper.Keeper1.conf")
        r = subprocess.run(["xmllint", "--noout", path], capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stderr)
        root = ET.parse(path).getroot()
        self.assertEqual(root.tag, "busconfig")
        owners = [(p.attrib, a.attrib) for p in root.iter("policy") for a in p if "own" in a.attrib]
        self.assertEqual(owners, [({"user": "root"}, {"own": "org.lvkeeper.Keeper1"})])
        # A deny answers with the bus's generic error instead of the daemon's named one (a read-only
        # property's PropertyReadOnly, the methods' AccessDenied): there is none.
        self.assertFalse([d.attrib for d in root.iter("deny")], "a deny answers with the bus's error")
        default = [p for p in root.iter("policy") if p.get("context") == "default"]
        self.assertEqual(len(default), 1)
        sends = [a.attrib for a in default[0] if a.tag == "allow"]
        self.assertIn({"send_destination": "org.lvkeeper.Keeper1"}, sends)


def main():
    global ARGS
    p = argparse.ArgumentParser()
    p.add_argument("--dbus-dir", required=True)
    ARGS, rest = p.parse_known_args()
    missing = [t for t in ("xmllint",) if not shutil.which(t)] + [f for f in (POLKIT_DTD,) if not os.path.exists(f)]
    if missing:
        print(f"missing {' '.join(missing)}: apt-get install libxml2-utils polkitd", file=sys.stderr)
        return 1
    prog = unittest.main(argv=[sys.argv[0], "-v", *rest], exit=False)
    return 0 if prog.result.wasSuccessful() else 1


if __name__ == "__main__":
    sys.exit(main())
