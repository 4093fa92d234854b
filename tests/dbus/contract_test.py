#!/usr/bin/env python3
"""The real lvkeeperd on a private dbus-daemon, watching a real ext4 on a loop device.

Host-only (root, loop devices, ext4, fanotify; no device-mapper): LVM is replaced by the
recording fake through LVKEEPER_LVM; everything else is real: fanotify, the mount table,
kernel uevents, mount(2), fallocate, loop-control, statvfs, resize2fs, sd_notify, D-Bus.
"""
import argparse
import json
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest
import xml.etree.ElementTree as ET

ARGS = None
BUS = "org.lvkeeper.Keeper1"
PATH = "/org/lvkeeper/Keeper1"
MGR = "org.lvkeeper.Keeper1.Manager"
VOL_IF = "org.lvkeeper.Keeper1.Volume"
VOL_PATH = None  # set once the mount point is known: the escaped mount point


def object_path(mount_point):
    """What sd_bus_path_encode makes of the mount point without its leading slash: [A-Za-z] and
    [0-9] after the first byte stay, every other byte is _xx, and "" is "_"."""
    label = mount_point[1:] if mount_point.startswith("/") else mount_point
    name = "".join(chr(b) if chr(b).isascii() and (chr(b).isalpha() or (i > 0 and chr(b).isdigit()))
                   else "_%02x" % b for i, b in enumerate(label.encode()))
    return "/org/lvkeeper/Keeper1/volumes/" + (name or "_")


ERR = "org.lvkeeper.Keeper1.Error."
# The first line of an AddressSanitizer, LeakSanitizer or UndefinedBehaviorSanitizer report.
SANITIZER_REPORT = re.compile(r"^(==\d+==ERROR: \w+Sanitizer|.*: runtime error: |SUMMARY: \w+Sanitizer)", re.M)
NOBODY = 65534


def run(argv, check=True, **kw):
    return subprocess.run(argv, check=check, capture_output=True, text=True, **kw)


class Env:
    """A private system bus, a loop-mounted ext4 as /data, an image dir, the fake LVM state."""

    def __init__(self, fstype="ext4", open_bus=False):
        self.fstype = fstype
        self.tmp = tempfile.mkdtemp(prefix="lvk-contract-")
        self.bus_path = os.path.join(self.tmp, "bus")
        self.address = "unix:path=" + self.bus_path
        conf = os.path.join(self.tmp, "bus.conf")
        replies = """    <allow send_type="signal"/>
    <allow send_requested_reply="true" send_type="method_return"/>
    <allow send_requested_reply="true" send_type="error"/>
    <allow receive_type="method_call"/>
    <allow receive_type="method_return"/>
    <allow receive_type="error"/>
    <allow receive_type="signal"/>"""
        monitoring = '<allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Monitoring"/>'
        if open_bus:
            # A bus that lets everyone call everything, without lvkeeper's busconfig: only the
            # daemon's own check stands between a caller and the storage.
            policy = f"""  <policy context="default">
    <allow user="*"/>
    <allow send_type="method_call"/>
{replies}
  </policy>
  <policy user="root">
    <allow own="*"/>
    {monitoring}
  </policy>"""
        else:
            policy = f"""  <policy context="default">
    <allow user="*"/>
    <deny own="*"/>
    <deny send_type="method_call"/>
{replies}
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Introspectable"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Properties"/>
  </policy>
  <policy user="root">
    <allow own="org.freedesktop.PolicyKit1"/>
    {monitoring}
  </policy>
  <include>{ARGS.busconfig}</include>"""
        with open(conf, "w") as f:
            f.write(f"""<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-BUS Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>{self.address}</listen>
  <auth>EXTERNAL</auth>
{policy}
</busconfig>
""")
        self.dbus = subprocess.Popen(["dbus-daemon", "--config-file=" + conf, "--nofork", "--nopidfile"])
        wait_for(lambda: os.path.exists(self.bus_path), 5, "private dbus-daemon socket")
        os.chmod(self.tmp, 0o755)
        self.env = dict(os.environ, DBUS_SYSTEM_BUS_ADDRESS=self.address)

        self.image = os.path.join(self.tmp, "data.img")
        size = (96 if fstype == "ext4" else 320) << 20  # mkfs.xfs wants 300M at least
        with open(self.image, "wb") as f:
            f.truncate(size)
        self.device = run(["losetup", "--find", "--show", self.image]).stdout.strip()
        if fstype == "ext4":
            run(["mkfs.ext4", "-q", "-F", "-m", "0", "-N", "4096", self.device])
        else:
            run(["mkfs.xfs", "-q", "-f", self.device])
        self.mnt = os.path.join(self.tmp, "data")
        os.mkdir(self.mnt)
        run(["mount", "-t", fstype, self.device, self.mnt])
        self.media = os.path.join(self.tmp, "media")
        os.mkdir(self.media)
        self.state_dir = os.path.join(self.tmp, "state")
        self.lvm_dir = os.path.join(self.tmp, "lvm")
        os.mkdir(self.lvm_dir)
        st = os.stat(self.device)
        with open(os.path.join(self.lvm_dir, "state.json"), "w") as f:
            json.dump({"vg": "vg0", "lv": "data0", "device": self.device, "image": self.image,
                       "major": os.major(st.st_rdev), "minor": os.minor(st.st_rdev),
                       "lv_size": size, "extent": 4 << 20, "vg_free": 256 << 20,
                       "pvs": ["/dev/fakepv0"], "disk_bytes": 32 << 20}, f)
        self.loops = [self.device]
        self.daemon = None
        self.notify = None

    def write_config(self, auto_grow="no", disks=""):
        path = os.path.join(self.tmp, "lvkeeper.conf")
        with open(path, "w") as f:
            f.write(f"[Volume]\nMountPoint={self.mnt}\nGrowAt=50\nGrowStep=16M\nCooldown=100ms\n"
                    f"AutoGrow={auto_grow}\n"
                    f"[Disks]\nImageDirectory={self.media}\nImageSize=32M\nReserveHostSpace=0\n"
                    f"AdoptLoopDevices=yes\n{disks}\n[Daemon]\nBackstopInterval=0\n")
        return path

    def start(self, config=None):
        config = config or self.write_config()
        self.notify_path = os.path.join(self.tmp, "notify")
        if os.path.exists(self.notify_path):
            os.unlink(self.notify_path)
        self.notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.notify.bind(self.notify_path)
        env = dict(self.env, LVKEEPER_LVM=ARGS.fake_lvm, FAKE_LVM_STATE=self.lvm_dir,
                   NOTIFY_SOCKET=self.notify_path)
        env.pop("JOURNAL_STREAM", None)
        if getattr(self, "log", None):
            self.log.close()
        self.log = open(os.path.join(self.tmp, "daemon.log"), "a")
        self.log_start = self.log.tell()
        self.daemon = subprocess.Popen([ARGS.daemon, "--config", config, "--state-dir", self.state_dir,
                                        "--log-level", "debug"], env=env, stdout=self.log, stderr=self.log)
        self.notes = []
        self.wait_notify("READY=1", 10)

    def wait_notify(self, text, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(text in n for n in self.notes):
                return
            r, _, _ = select.select([self.notify], [], [], 0.1)
            if r:
                self.notes.append(self.notify.recv(4096).decode())
            if self.daemon.poll() is not None:
                raise AssertionError(f"lvkeeperd exited {self.daemon.returncode}: {self.daemon_log()}")
        raise AssertionError(f"no {text} from sd_notify in {timeout}s; got {self.notes}")

    def daemon_log(self, whole=False):
        with open(os.path.join(self.tmp, "daemon.log"), errors="replace") as f:
            text = f.read()
        return text if whole else text[-4000:]

    def stop(self):
        """SIGTERM, then what systemd expects of a stop: exit status 0. In a sanitizer build
        (tests/sanitize) AddressSanitizer, LeakSanitizer and UBSan write to the daemon's stderr, its
        log here, and LeakSanitizer runs as it exits: any report since this start fails the test."""
        daemon = self.daemon
        try:
            if daemon and daemon.poll() is None:
                daemon.send_signal(signal.SIGTERM)
                try:
                    daemon.wait(30)  # LeakSanitizer's exit scan takes a few seconds
                except subprocess.TimeoutExpired:
                    daemon.kill()
                    daemon.wait()
                    raise AssertionError(f"lvkeeperd did not stop within 30 s of SIGTERM: {self.daemon_log()}")
        finally:
            self.daemon = None
            if self.notify:
                self.notify.close()
                self.notify = None
            if getattr(self, "log", None):
                self.log.close()
                self.log = None
        if daemon:
            with open(os.path.join(self.tmp, "daemon.log"), errors="replace") as f:
                f.seek(self.log_start)
                text = f.read()
            report = SANITIZER_REPORT.search(text)
            if report:
                raise AssertionError(f"lvkeeperd (pid {daemon.pid}): sanitizer report:\n{text[report.start():][:8000]}")
            if daemon.returncode != 0:
                raise AssertionError(f"lvkeeperd (pid {daemon.pid}) exited {daemon.returncode}: {text[-4000:]}")

    def busctl(self, *args, check=True, user=None):
        argv = ["busctl", "--system", *args]
        if user is not None:
            argv = ["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups", *argv]
        return run(argv, check=check, env=self.env)

    def call(self, method, sig, *args, check=True, user=None):
        return self.busctl("--json=short", "call", BUS, PATH, MGR, method, sig, *args, check=check, user=user)

    def send(self, method, *args, typed=None, creds=None):
        """dbus-send shows the error name, which busctl does not. typed: dbus-send's own argument
        syntax instead of strings; creds: setpriv options to run it with (--bus=, not the
        environment: with real and effective uid apart, libdbus ignores DBUS_SYSTEM_BUS_ADDRESS)."""
        argv = ["dbus-send", f"--bus={self.address}", "--print-reply", f"--dest={BUS}", PATH, f"{MGR}.{method}",
                *(typed if typed is not None else [f"string:{a}" for a in args])]
        if creds is not None:
            argv = ["setpriv", *creds, "--clear-groups", *argv]
        return run(argv, check=False, env=self.env)

    def start_polkit(self, table):
        """A fake polkitd on this bus answering from table (lines "ACTION UID ANSWER [DELAY_MS]")."""
        self.polkit_table = os.path.join(self.tmp, "polkit.table")
        self.polkit_log_path = os.path.join(self.tmp, "polkit.log")
        self.set_polkit(table)
        open(self.polkit_log_path, "w").close()
        self.polkit = subprocess.Popen([ARGS.fake_polkit, self.polkit_table, self.polkit_log_path],
                                       env=self.env, stdout=subprocess.PIPE, text=True)
        self.assertion(self.polkit.stdout.readline().strip() == "ready", "fake polkit did not start")

    def set_polkit(self, table):
        with open(self.polkit_table, "w") as f:
            f.write("\n".join(table) + "\n")

    def stop_polkit(self):
        if getattr(self, "polkit", None):
            self.polkit.terminate()
            self.polkit.wait(5)
            self.polkit.stdout.close()
            self.polkit = None

    def polkit_asked(self):
        """What the fake polkit was asked, one dict per question."""
        with open(self.polkit_log_path) as f:
            return [dict(kv.split("=", 1) for kv in line.split()) for line in f]

    @staticmethod
    def assertion(ok, text):
        if not ok:
            raise AssertionError(text)

    def prop(self, name):
        out = self.busctl("--json=short", "get-property", BUS, VOL_PATH, VOL_IF, name).stdout
        return json.loads(out)["data"]

    def calls(self):
        path = os.path.join(self.lvm_dir, "calls.log")
        if not os.path.exists(path):
            return []
        with open(path) as f:
            return f.read().splitlines()

    def close(self):
        try:
            self.stop_polkit()
        finally:
            try:
                self.stop()
            finally:
                self.clean_up()

    def clean_up(self):
        run(["umount", "-l", self.mnt], check=False)
        for dev in self.loops:
            run(["losetup", "-d", dev], check=False)
        for line in run(["losetup", "-n", "-O", "NAME,BACK-FILE", "-l"], check=False).stdout.splitlines():
            parts = line.split(None, 1)
            if len(parts) == 2 and parts[1].startswith(self.tmp):
                run(["losetup", "-d", parts[0]], check=False)
        self.dbus.terminate()
        self.dbus.wait(5)
        shutil.rmtree(self.tmp, ignore_errors=True)


def wait_for(pred, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


class Monitor:
    """busctl monitor on the private bus, signals of lvkeeperd as JSON lines."""

    def __init__(self, env):
        # busctl block-buffers a pipe: line-buffer it, or signals arrive only when 4 KiB have piled up.
        self.proc = subprocess.Popen(["stdbuf", "-oL", "busctl", "--system", "--json=short", "monitor", BUS],
                                     env=env.env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        self.fd = self.proc.stdout.fileno()
        self.pending = b""
        self.seen = []
        time.sleep(0.3)  # let the monitor become a monitor

    def _lines(self, timeout):
        # Raw reads: a buffered reader would hide lines from select().
        r, _, _ = select.select([self.fd], [], [], timeout)
        if not r:
            return []
        self.pending += os.read(self.fd, 1 << 16)
        *lines, self.pending = self.pending.split(b"\n")
        return lines

    def wait(self, member, timeout=5, pred=lambda m: True):
        for m in self.seen:
            if m.get("type") == "signal" and m.get("member") == member and pred(m):
                self.seen.remove(m)
                return m, time.monotonic()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in self._lines(0.05):
                now = time.monotonic()
                try:
                    m = json.loads(line)
                except ValueError:
                    continue
                self.seen.append(m)
            for m in self.seen:
                if m.get("type") == "signal" and m.get("member") == member and pred(m):
                    self.seen.remove(m)
                    return m, now
        raise AssertionError(f"no {member} signal within {timeout}s; saw {[m.get('member') for m in self.seen]}")

    def close(self):
        self.proc.terminate()
        self.proc.wait(5)
        self.proc.stdout.close()


class Contract(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        global VOL_PATH
        cls.env = Env()
        VOL_PATH = object_path(cls.env.mnt)
        cls.env.start()

    @classmethod
    def tearDownClass(cls):
        cls.env.close()

    def setUp(self):
        self.assertIsNone(self.env.daemon.poll(), self.env.daemon_log())

    # ---- the API is the XML -------------------------------------------------

    def members(self, node, iface):
        out = {}
        for i in node.iter("interface"):
            if i.get("name") != iface:
                continue
            for kind in ("method", "signal", "property"):
                for m in i.iter(kind):
                    if kind == "property":
                        out[(kind, m.get("name"))] = (m.get("type"), m.get("access"))
                    else:
                        out[(kind, m.get("name"))] = tuple((a.get("type"), a.get("direction", "out" if kind ==
                                                            "method" else None)) for a in m.iter("arg"))
        return out

    def test_introspection_matches_xml(self):
        for path, iface, xml in ((PATH, MGR, "org.lvkeeper.Keeper1.Manager.xml"),
                                 (VOL_PATH, VOL_IF, "org.lvkeeper.Keeper1.Volume.xml")):
            live = ET.fromstring(self.env.busctl("introspect", "--xml-interface", BUS, path).stdout)
            ref = ET.parse(os.path.join(ARGS.xml_dir, xml)).getroot()
            want = self.members(ref, iface)
            self.assertTrue(want)
            self.assertEqual(self.members(live, iface), want)

    def test_object_manager_lists_volume(self):
        out = json.loads(self.env.busctl("--json=short", "call", BUS, PATH, "org.freedesktop.DBus.ObjectManager",
                                         "GetManagedObjects").stdout)
        objects = out["data"][0]
        self.assertIn(VOL_PATH, objects)
        props = objects[VOL_PATH][VOL_IF]
        self.assertEqual(props["MountPoint"]["data"], self.env.mnt)
        self.assertEqual(props["VolumeGroup"]["data"], "vg0")
        self.assertEqual(props["LogicalVolume"]["data"], "data0")
        self.assertEqual(props["Filesystem"]["data"], "ext4")
        self.assertEqual(props["Device"]["data"], self.env.device)
        self.assertGreater(props["Size"]["data"], 80 << 20)

    def test_status_line(self):
        status = [n for n in self.env.notes if "STATUS=" in n]
        self.assertTrue(status, self.env.notes)
        self.assertIn(f"{self.env.mnt} 0% used", status[-1])
        self.assertIn("auto-grow off", status[-1])

    # ---- events --------------------------------------------------------------

    def test_threshold_crossed_within_100ms(self):
        def percent():
            st = os.statvfs(self.env.mnt)
            used = (st.f_blocks - st.f_bfree) * st.f_frsize
            return 100.0 * used / (used + st.f_bavail * st.f_frsize), (used + st.f_bavail * st.f_frsize)

        mon = Monitor(self.env)
        path = os.path.join(self.env.mnt, "fill")
        try:
            with open(path, "wb", buffering=0) as f:
                chunk = b"x" * (256 << 10)
                while percent()[0] < 48.5:
                    f.write(chunk)
                time.sleep(0.5)
                self.assertRaises(AssertionError, mon.wait, "ThresholdCrossed", 0.2)
                now, capacity = percent()
                jump = b"z" * (int(capacity * (50.0 - now) / 100) + (512 << 10))
                start = time.monotonic()
                f.write(jump)
                msg, seen = mon.wait("ThresholdCrossed", 5)
            latency = (seen - start) * 1000
            self.assertEqual(msg["payload"]["data"][0], self.env.mnt)
            self.assertGreaterEqual(msg["payload"]["data"][1], 50.0)
            self.assertLess(latency, 100.0, f"ThresholdCrossed took {latency:.1f} ms")
            print(f"ThresholdCrossed latency {latency:.1f} ms (including the write)", file=sys.stderr)
        finally:
            mon.close()
            os.unlink(path)

    def test_read_only_then_remount(self):
        mon = Monitor(self.env)
        try:
            run(["mount", "-o", "remount,ro", self.env.mnt])
            msg, _ = mon.wait("ReadOnly", 2)
            self.assertEqual(msg["payload"]["data"][0], self.env.mnt)
            wait_for(lambda: self.env.prop("ReadOnly") is True, 2, "ReadOnly property")
            self.env.call("Remount", "s", self.env.mnt)
            mon.wait("Remounted", 2)
            with open(os.path.join(self.env.mnt, "after-remount"), "w") as f:
                f.write("ok")
            self.assertFalse(self.env.prop("ReadOnly"))
            mounts = open("/proc/self/mountinfo").read()
            line = [l for l in mounts.splitlines() if f" {self.env.mnt} " in l][0]
            self.assertTrue(line.split()[5].startswith("rw"), line)
            # Already read-write: success, nothing done.
            self.env.call("Remount", "s", self.env.mnt)
        finally:
            mon.close()

    def test_diagnose_and_repair_read_only(self):
        run(["mount", "-o", "remount,ro", self.env.mnt])
        try:
            wait_for(lambda: self.env.prop("ReadOnly") is True, 3, "ReadOnly property")
            out = json.loads(self.env.busctl("--json=short", "call", BUS, PATH, MGR, "Diagnose",
                                             user=65534).stdout)
            findings = {f[0]: f for f in out["data"][0]}
            fid = f"read-only:{self.env.mnt}"
            self.assertIn(fid, findings)
            self.assertEqual(findings[fid][1], "critical")
            self.assertIn("remount", findings[fid][4].lower())
            r = self.env.call("Repair", "as", "1", fid, check=False, user=65534)
            self.assertNotEqual(r.returncode, 0, "nobody could Repair")
            out = json.loads(self.env.call("Repair", "as", "0").stdout)
            self.assertIn([fid, f"fixed: {self.env.mnt} is read-write"], out["data"][0])
            with open(os.path.join(self.env.mnt, "after-repair"), "w") as f:
                f.write("ok")
            out = json.loads(self.env.call("Repair", "as", "2", fid, "no-such:thing").stdout)
            # Fixed already: ok. A mistyped id: failed, naming the kinds there are.
            self.assertEqual([r[1][:3] for r in out["data"][0]], ["ok:", "fai"])
            self.assertIn("unknown finding id", out["data"][0][1][1])
            self.assertIn("image-sparse", out["data"][0][1][1])
        finally:
            run(["mount", "-o", "remount,rw", self.env.mnt], check=False)

    def test_add_disk_creates_allocated_image(self):
        mon = Monitor(self.env)
        try:
            out = json.loads(self.env.call("AddDisk", "ss", "vg0", "").stdout)
            image, device = out["data"]
            self.env.loops.append(device)
            self.assertEqual(image, os.path.join(self.env.media, "disk0.img"))
            st = os.stat(image)
            self.assertEqual(st.st_size, 32 << 20)
            self.assertGreaterEqual(st.st_blocks * 512, 32 << 20, "image is sparse")
            back = open(f"/sys/block/{os.path.basename(device)}/loop/backing_file").read().strip()
            self.assertEqual(back, image)
            calls = "\n".join(self.env.calls())
            self.assertIn(f"pvcreate {device}", calls)
            self.assertIn(f"vgextend vg0 {device}", calls)
            msg, _ = mon.wait("DiskAdded", 3)
            self.assertEqual(msg["payload"]["data"][:3], ["vg0", image, device])
            with open(os.path.join(self.env.state_dir, "images")) as f:
                self.assertIn(image, f.read().split())
        finally:
            mon.close()

    def test_add_disk_without_host_space_names_holders(self):
        holder = subprocess.Popen([sys.executable, "-c",
                                   "import os,sys,time\n"
                                   f"p='{self.env.media}/.hidden'\n"
                                   "f=open(p,'wb'); os.posix_fallocate(f.fileno(),0,8<<20); os.unlink(p)\n"
                                   "print('ready',flush=True); time.sleep(60)"], stdout=subprocess.PIPE, text=True)
        try:
            self.assertEqual(holder.stdout.readline().strip(), "ready")
            n = len(self.env.calls())
            r = self.env.send("AddDisk", "vg0", "100T")
            self.assertNotEqual(r.returncode, 0)
            self.assertIn(ERR + "NoHostSpace", r.stderr)
            self.assertIn(f"pid {holder.pid}", r.stderr)
            self.assertIn(".hidden", r.stderr)
            self.assertFalse([c for c in self.env.calls()[n:] if c.startswith("pvcreate")])
            self.assertFalse([f for f in os.listdir(self.env.media) if f.endswith(".img") and
                              f != "disk0.img"])
        finally:
            holder.kill()
            holder.wait()

    def test_add_disk_undoes_on_failure(self):
        state_path = os.path.join(self.env.lvm_dir, "state.json")
        state = json.load(open(state_path))
        state["fail"] = {"vgextend": 5}
        json.dump(state, open(state_path, "w"))
        try:
            before = set(os.listdir(self.env.media))
            loops_before = run(["losetup", "-l", "-n", "-O", "NAME"]).stdout.split()
            r = self.env.send("AddDisk", "vg0", "16M")
            self.assertIn(ERR + "CommandFailed", r.stderr)
            self.assertEqual(set(os.listdir(self.env.media)), before)
            self.assertEqual(run(["losetup", "-l", "-n", "-O", "NAME"]).stdout.split(), loops_before)
            self.assertTrue([c for c in self.env.calls() if c.startswith("pvremove")])
        finally:
            state = json.load(open(state_path))
            state.pop("fail", None)
            json.dump(state, open(state_path, "w"))

    def test_loop_device_attached_by_hand_is_adopted(self):
        mon = Monitor(self.env)
        try:
            image = os.path.join(self.env.media, "byhand.img")
            with open(image, "wb") as f:
                os.posix_fallocate(f.fileno(), 0, 16 << 20)
            dev = run(["losetup", "--find", "--show", image]).stdout.strip()
            self.env.loops.append(dev)
            msg, _ = mon.wait("DiskAdded", 5, lambda m: m["payload"]["data"][2] == dev)
            self.assertEqual(msg["payload"]["data"][1], image)
            self.assertIn(f"pvcreate {dev}", "\n".join(self.env.calls()))
        finally:
            mon.close()

    def test_device_with_signature_is_left_alone(self):
        n = len(self.env.calls())
        image = os.path.join(self.env.media, "hasfs.img")
        with open(image, "wb") as f:
            f.truncate(16 << 20)
        run(["mkfs.ext4", "-q", "-F", image])
        dev = run(["losetup", "--find", "--show", image]).stdout.strip()
        self.env.loops.append(dev)
        wait_for(lambda: f"device={dev}" in self.env.daemon_log() and "adopt-skipped" in self.env.daemon_log(),
                 5, "the daemon to skip the device")
        self.assertFalse([c for c in self.env.calls()[n:] if c.startswith("pvcreate")])

    # ---- errors ----------------------------------------------------------------

    def test_bad_arguments_get_named_errors(self):
        cases = [
            (("Grow", "ss", "/nope", ""), "NotFound"),
            (("Grow", "ss", self.env.mnt, "4X"), "InvalidArgument"),
            (("Grow", "ss", self.env.mnt, "-1G"), "InvalidArgument"),
            (("Grow", "ss", "", ""), "InvalidArgument"),
            (("AddDisk", "ss", "nosuchvg", ""), "NotFound"),
            (("AddDisk", "ss", "vg0", "+1G"), "InvalidArgument"),
            (("Remount", "s", "/nope"), "NotFound"),
        ]
        for args, name in cases:
            with self.subTest(args=args):
                r = self.env.send(args[0], *args[2:])
                self.assertNotEqual(r.returncode, 0)
                self.assertIn(ERR + name, r.stderr)

    def test_log_level_changes_at_run_time_through_log_control(self):
        lc = ["/org/freedesktop/LogControl1", "org.freedesktop.LogControl1"]
        get = lambda name: json.loads(self.env.busctl("--json=short", "get-property", BUS, *lc, name).stdout)["data"]
        self.assertEqual(get("SyslogIdentifier"), "lvkeeperd")
        self.assertEqual(get("LogTarget"), "console")
        self.env.busctl("set-property", BUS, *lc, "LogLevel", "s", "warning")
        self.assertEqual(get("LogLevel"), "warning")
        r = self.env.busctl("set-property", BUS, *lc, "LogLevel", "s", "chatty", check=False)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("unknown log level", r.stderr)
        r = self.env.busctl("set-property", BUS, *lc, "LogLevel", "s", "debug", check=False, user=NOBODY)
        self.assertNotEqual(r.returncode, 0)
        self.assertRegex(r.stderr, "(?i)access denied|not allowed", "the bus or the daemon refused nobody")
        self.assertEqual(get("LogLevel"), "warning", "nobody's set changed nothing")
        self.env.busctl("set-property", BUS, *lc, "LogLevel", "s", "debug")
        self.assertEqual(get("LogLevel"), "debug")

    def test_non_root_is_refused_by_the_daemon_but_may_read(self):
        # The busconfig lets everyone through: the refusal is the daemon's own, by name.
        r = self.env.send("Grow", self.env.mnt, "+16M", creds=[f"--reuid={NOBODY}", f"--regid={NOBODY}"])
        self.assertIn(ERR + "AccessDenied", r.stderr)
        out = self.env.busctl("--json=short", "get-property", BUS, VOL_PATH, VOL_IF, "MountPoint", user=NOBODY)
        self.assertEqual(json.loads(out.stdout)["data"], self.env.mnt)
        self.env.busctl("introspect", BUS, PATH, user=NOBODY)

    def test_caller_strings_reach_the_log_escaped_and_bounded(self):
        forged = 'forged" event=grown volume=/data\nevent=grown volume=/data to=1T'
        r = self.env.send("Grow", forged, "")
        self.assertIn(ERR + "NotFound", r.stderr)
        big = "/" + "x" * 100000  # argv caps one argument at 128 KiB; the hostile suite sends MiBs
        r = self.env.send("Remount", big)
        self.assertIn(ERR + "NotFound", r.stderr)
        lines = self.env.daemon_log(whole=True).splitlines()
        calls = [l for l in lines if "event=call method=Grow" in l and "forged" in l]
        self.assertEqual(len(calls), 1, calls)
        self.assertIn('volume="forged\\" event=grown volume=/data\\nevent=grown volume=/data to=1T"', calls[0])
        self.assertFalse([l for l in lines if "to=1T" in l and "event=call" not in l], "a forged line")
        remounts = [l for l in lines if "event=call method=Remount" in l and "xxxx" in l]
        self.assertEqual(len(remounts), 1)
        self.assertLess(len(remounts[0]), 400)
        self.assertIn(f"[... {len(big)} bytes]", remounts[0])


class Authorization(unittest.TestCase):
    """On a bus that lets everyone call everything: the daemon's own check, from the uid the bus
    verified, root always, others by polkit (a fake polkitd here), root only without polkit."""

    @classmethod
    def setUpClass(cls):
        global VOL_PATH
        cls.env = Env(open_bus=True)
        VOL_PATH = object_path(cls.env.mnt)
        cls.env.start()

    @classmethod
    def tearDownClass(cls):
        cls.env.close()

    def tearDown(self):
        self.env.stop_polkit()
        self.assertIsNone(self.env.daemon.poll(), self.env.daemon_log())

    nobody = [f"--reuid={NOBODY}", f"--regid={NOBODY}"]

    # Each mutating method with arguments that, once authorized, fail harmlessly (NotFound, or a
    # Repair result for an unknown id): what comes back shows whether the check let the call through.
    def mutating_calls(self):
        return [("Grow", ["string:/nope", "string:+1M"], "org.lvkeeper.grow"),
                ("AddDisk", ["string:nosuchvg", "string:16M"], "org.lvkeeper.add-disk"),
                ("Remount", ["string:/nope"], "org.lvkeeper.remount"),
                ("Repair", ["array:string:no-such:thing"], "org.lvkeeper.repair")]

    def assert_refused(self, r, text=None):
        self.assertIn(ERR + "AccessDenied", r.stderr)
        self.assertNotIn("org.freedesktop.DBus.Error.AccessDenied", r.stderr)
        if text:
            self.assertIn(text, r.stderr)

    def assert_let_through(self, method, r):
        if method == "Repair":
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn("no-such:thing", r.stdout)
        else:
            self.assertIn(ERR + "NotFound", r.stderr)

    def test_without_polkit_only_root(self):
        n = len(self.env.calls())
        for method, args, action in self.mutating_calls():
            with self.subTest(method=method):
                self.assert_refused(self.env.send(method, typed=args, creds=self.nobody), "polkit is not running")
                self.assert_let_through(method, self.env.send(method, typed=args))
        self.assertFalse([c for c in self.env.calls()[n:] if not c.startswith(("vgs", "pvs", "lvs"))])

    def test_the_refusal_comes_before_any_log_of_the_callers_strings(self):
        marker = "MARKER-" + str(os.getpid())
        r = self.env.send("Grow", typed=[f"string:/{marker}", "string:"], creds=self.nobody)
        self.assert_refused(r)
        log = self.env.daemon_log(whole=True)
        self.assertIn("event=access-denied method=Grow action=org.lvkeeper.grow uid=65534", log)
        self.assertNotIn(marker, log)

    def test_the_effective_uid_the_bus_verified_decides(self):
        # sdbus-c++ 1.2's getCredsUid() asks sd-bus with SD_BUS_CREDS_AUGMENT: the real uid from
        # /proc/<pid>/status. Real uid 0 with effective uid 65534 passed that check. The bus daemon
        # knows the effective uid from SO_PEERCRED, and that is what counts.
        for method, args, action in self.mutating_calls():
            with self.subTest(method=method):
                self.assert_refused(self.env.send(method, typed=args, creds=["--ruid=0", f"--euid={NOBODY}"]))
                self.assert_let_through(method, self.env.send(method, typed=args,
                                                              creds=[f"--ruid={NOBODY}", "--euid=0"]))

    def test_polkit_decides_for_others_one_action_per_method(self):
        self.env.start_polkit([f"* {NOBODY} yes"])
        for method, args, action in self.mutating_calls():
            with self.subTest(method=method):
                self.assert_let_through(method, self.env.send(method, typed=args, creds=self.nobody))
        asked = self.env.polkit_asked()
        self.assertEqual([a["action"] for a in asked], [c[2] for c in self.mutating_calls()])
        for a in asked:
            self.assertEqual((a["kind"], a["uid"], a["flags"]), ("system-bus-name", str(NOBODY), "0"))
            self.assertTrue(a["name"].startswith(":"), a)

    def test_polkit_no_and_challenge_are_refusals(self):
        self.env.start_polkit(["org.lvkeeper.grow * no", "org.lvkeeper.remount * challenge",
                               "org.lvkeeper.add-disk * error"])
        self.assert_refused(self.env.send("Grow", typed=["string:/nope", "string:"], creds=self.nobody),
                            "does not have")
        self.assert_refused(self.env.send("Remount", typed=["string:/nope"], creds=self.nobody),
                            "needs authentication")
        self.assert_refused(self.env.send("AddDisk", typed=["string:vg0", "string:"], creds=self.nobody),
                            "polkit could not decide")

    def test_interactive_authorization_is_passed_on(self):
        self.env.start_polkit([f"* {NOBODY} challenge"])
        r = run(["setpriv", *self.nobody, "--clear-groups", "busctl", f"--address={self.env.address}",
                 "--allow-interactive-authorization=yes", "call", BUS, PATH, MGR, "Grow", "ss", "/nope", ""],
                check=False)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("needs authentication", r.stderr)
        self.assertEqual([a["flags"] for a in self.env.polkit_asked()], ["1"])

    def test_root_never_asks_polkit(self):
        self.env.start_polkit(["* * no"])
        for method, args, action in self.mutating_calls():
            with self.subTest(method=method):
                self.assert_let_through(method, self.env.send(method, typed=args))
        self.assertEqual(self.env.polkit_asked(), [])

    def test_reads_need_no_authorization(self):
        self.env.start_polkit(["* * no"])
        r = self.env.send("Diagnose", typed=[], creds=self.nobody)
        self.assertEqual(r.returncode, 0, r.stderr)
        out = self.env.busctl("--json=short", "get-property", BUS, VOL_PATH, VOL_IF, "UsedPercent", user=NOBODY)
        self.assertIsInstance(json.loads(out.stdout)["data"], float)
        self.assertEqual(self.env.polkit_asked(), [])

    def test_pending_polkit_checks_are_bounded(self):
        # 64 checks in flight at most; more are Busy, and the count comes back down afterwards.
        self.env.start_polkit([f"org.lvkeeper.grow {NOBODY} yes 3000", f"* {NOBODY} yes"])
        procs = [subprocess.Popen(["setpriv", *self.nobody, "--clear-groups", "dbus-send", f"--bus={self.env.address}",
                                   "--reply-timeout=20000", "--print-reply", f"--dest={BUS}", PATH, f"{MGR}.Grow",
                                   "string:/nope", "string:"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                  text=True) for _ in range(80)]
        errors = [p.communicate(timeout=30)[1] for p in procs]
        busy = [e for e in errors if ERR + "Busy" in e]
        passed = [e for e in errors if ERR + "NotFound" in e]
        self.assertEqual(len(busy) + len(passed), 80, [e for e in errors if e not in busy + passed][:3])
        self.assertGreater(len(busy), 0)
        # A refused call was never put to polkit; every other one was, once.
        self.assertEqual(len(self.env.polkit_asked()), len(passed))
        self.assertIn("authorization checks are pending", busy[0])
        self.assert_let_through("Remount", self.env.send("Remount", typed=["string:/nope"], creds=self.nobody))

    def test_a_slow_polkit_does_not_stop_the_daemon(self):
        self.env.start_polkit([f"org.lvkeeper.grow {NOBODY} yes 4000"])
        start = time.monotonic()
        slow = subprocess.Popen(["setpriv", *self.nobody, "--clear-groups", "dbus-send", f"--bus={self.env.address}",
                                 "--print-reply", f"--dest={BUS}", PATH, f"{MGR}.Grow", "string:/nope", "string:"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        wait_for(lambda: self.env.polkit_asked(), 3, "the daemon to ask polkit")
        # While polkit thinks (a password prompt), the daemon answers others at once.
        quick = time.monotonic()
        self.assertEqual(json.loads(self.env.busctl("--json=short", "get-property", BUS, VOL_PATH, VOL_IF,
                                                    "MountPoint").stdout)["data"], self.env.mnt)
        self.assertIn(ERR + "NotFound", self.env.send("Remount", "/nope").stderr)
        self.assertLess(time.monotonic() - quick, 2.0)
        self.assertIsNone(slow.poll(), "the slow call ended before polkit answered")
        _, err = slow.communicate(timeout=15)
        self.assertIn(ERR + "NotFound", err)
        self.assertGreaterEqual(time.monotonic() - start, 4.0)


class XfsGrow(unittest.TestCase):
    """Online grow for real. On XFS: this host's root lacks CAP_SYS_RESOURCE, which ext4's online resize
    needs (EXT4_IOC_RESIZE_FS), while XFS needs only CAP_SYS_ADMIN. ext4 grows for real in the lab."""

    @classmethod
    def setUpClass(cls):
        global VOL_PATH
        cls.env = Env("xfs")
        VOL_PATH = object_path(cls.env.mnt)
        cls.env.start()

    @classmethod
    def tearDownClass(cls):
        cls.env.close()

    def test_grow_really_grows_the_filesystem(self):
        mon = Monitor(self.env)
        try:
            before = self.env.prop("Size")
            lv_before = self.env.prop("LogicalVolumeSize")
            out = json.loads(self.env.call("Grow", "ss", self.env.mnt, "+16M").stdout)
            new_size = out["data"][0]
            self.assertEqual(new_size, lv_before + (16 << 20))
            msg, _ = mon.wait("Grown", 5)
            self.assertEqual(msg["payload"]["data"][1:3], [lv_before, new_size])
            self.assertIn(f"lvextend --size {new_size}b vg0/data0", "\n".join(self.env.calls()))
            wait_for(lambda: self.env.prop("Size") > before, 3, "Size property to grow")
            st = os.statvfs(self.env.mnt)
            self.assertGreater(st.f_blocks * st.f_frsize, before)
            # Absolute target already reached: success, nothing run.
            n = len(self.env.calls())
            out = json.loads(self.env.call("Grow", "ss", "vg0/data0", "64M").stdout)
            self.assertEqual(out["data"][0], new_size)
            self.assertFalse([c for c in self.env.calls()[n:] if c.startswith("lvextend")])
        finally:
            mon.close()



class Lifecycle(unittest.TestCase):
    def test_auto_grow_at_threshold(self):
        global VOL_PATH
        env = Env("xfs")
        try:
            VOL_PATH = object_path(env.mnt)
            env.start(env.write_config(auto_grow="yes"))
            self.assertIn("grows at 50% by 16M", [n for n in env.notes if "STATUS=" in n][-1])
            mon = Monitor(env)
            before = os.statvfs(env.mnt)
            with open(os.path.join(env.mnt, "fill"), "wb") as f:
                f.write(b"y" * int(before.f_blocks * before.f_frsize * 0.6))
            msg, _ = mon.wait("Grown", 10)
            self.assertEqual(msg["payload"]["data"][3], "threshold")
            # One write of 60% in a moment is a fast writer: the step is GrowStep or, from its fill
            # rate, more.
            self.assertGreaterEqual(msg["payload"]["data"][2] - msg["payload"]["data"][1], 16 << 20)
            self.assertGreater(env.prop("LastGrowDuration"), 0)
            after = os.statvfs(env.mnt)
            self.assertGreater(after.f_blocks, before.f_blocks)
            mon.close()
        finally:
            env.close()

    def test_mount_points_slash_and_root_each_get_their_object(self):
        # Once both escaped to .../volumes/root and the daemon failed to start.
        env = Env()
        try:
            config = env.write_config()
            with open(config, "a") as f:
                f.write("[Volume]\nMountPoint=/\nAutoGrow=no\n[Volume]\nMountPoint=/root\nAutoGrow=no\n")
            env.start(config)
            out = json.loads(env.busctl("--json=short", "call", BUS, PATH, "org.freedesktop.DBus.ObjectManager",
                                        "GetManagedObjects").stdout)
            mounts = {path: props[VOL_IF]["MountPoint"]["data"] for path, props in out["data"][0].items()}
            self.assertEqual(mounts, {"/org/lvkeeper/Keeper1/volumes/_": "/",
                                      "/org/lvkeeper/Keeper1/volumes/root": "/root",
                                      object_path(env.mnt): env.mnt})
        finally:
            env.close()

    def test_attach_images_attaches_only_what_the_daemon_could_have_made(self):
        env = Env()
        try:
            config = env.write_config()
            media = env.media
            good = os.path.join(media, "good.img")
            with open(good, "wb") as f:
                f.truncate(8 << 20)
            os.chmod(good, 0o600)
            bad = {}
            os.symlink(good, os.path.join(media, "link.img"))
            bad["link.img"] = "is a symbolic link, not a regular file"
            os.mkdir(os.path.join(media, "alice"))
            with open(os.path.join(media, "alice/nested.img"), "wb") as f:
                f.truncate(8 << 20)
            bad["alice/nested.img"] = "in a subdirectory"
            for name, mode, owner, reason in (("gw.img", 0o660, 0, "writable by group or others (mode 0660)"),
                                              ("theirs.img", 0o600, NOBODY, "owned by uid 65534, not root")):
                path = os.path.join(media, name)
                with open(path, "wb") as f:
                    f.truncate(8 << 20)
                os.chmod(path, mode)
                os.chown(path, owner, owner)
                bad[name] = reason
            os.mkfifo(os.path.join(media, "fifo.img"), 0o600)
            bad["fifo.img"] = "is a fifo, not a regular file"
            bad["missing.img"] = "does not exist"
            outside = os.path.join(env.tmp, "outside.img")
            with open(outside, "wb") as f:
                f.truncate(8 << 20)
            os.makedirs(env.state_dir)
            listed = [good] + [os.path.join(media, n) for n in bad] + [outside, os.path.join(media, "gw.img")]
            with open(os.path.join(env.state_dir, "images"), "w") as f:
                f.write("\n".join(listed) + "\n")
            r = run([ARGS.daemon, "--attach-images", "--config", config, "--state-dir", env.state_dir],
                    check=False, timeout=30)
            loops = run(["losetup", "-n", "-O", "NAME,BACK-FILE", "-l"]).stdout.splitlines()
            mine = {l.split(None, 1)[1]: l.split()[0] for l in loops
                    if env.media in l or outside in l}
            env.loops.extend(mine.values())
            self.assertEqual(r.returncode, 1, r.stderr)
            self.assertEqual(list(mine), [good])
            refused = [l for l in r.stderr.splitlines() if "event=image-refused" in l]
            self.assertEqual(len(refused), len(bad) + 1, refused)  # and outside; gw.img, listed twice, once
            for name, reason in bad.items():
                lines = [l for l in refused if f'image="{os.path.join(media, name)}"' in l]
                self.assertEqual(len(lines), 1, (name, refused))
                self.assertIn(reason, lines[0])
            self.assertTrue([l for l in refused if f'image="{outside}"' in l and "not inside" in l], refused)
        finally:
            env.close()

    def test_bad_config_refuses_to_start(self):
        with tempfile.NamedTemporaryFile("w", suffix=".conf", delete=False) as f:
            f.write("[Volume]\nMountPoint=/data\nGrowAt=150\n")
        try:
            r = run([ARGS.daemon, "--config", f.name], check=False)
            self.assertEqual(r.returncode, 78)
            self.assertIn(f"{f.name}:3", r.stderr)
            self.assertIn("GrowAt", r.stderr)
        finally:
            os.unlink(f.name)

    def test_idle_daemon_does_not_wake(self):
        env = Env()
        try:
            env.start()
            time.sleep(2)  # let the start-up work (the pvs scan for images to record) finish
            pid = env.daemon.pid

            def sample():
                fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
                cpu = int(fields[11]) + int(fields[12])
                status = open(f"/proc/{pid}/status").read()
                switches = sum(int(l.split()[1]) for l in status.splitlines() if "ctxt_switches" in l)
                return cpu, switches
            cpu0, sw0 = sample()
            time.sleep(3)
            cpu1, sw1 = sample()
            self.assertEqual(cpu1 - cpu0, 0, "idle daemon used CPU")
            self.assertLessEqual(sw1 - sw0, 1, "idle daemon woke up")
            # SIGHUP reloads; SIGTERM exits cleanly.
            env.daemon.send_signal(signal.SIGHUP)
            env.wait_notify("RELOADING=1", 5)
            env.daemon.send_signal(signal.SIGTERM)
            self.assertEqual(env.daemon.wait(10), 0)
        finally:
            env.close()


class Metrics(unittest.TestCase):
    """MetricsFile=: the real daemon's file, as node_exporter's textfile collector and promtool read it."""

    def test_metrics_file_follows_a_grow_and_lints(self):
        global VOL_PATH
        env = Env("xfs")  # this host's kernel refuses online ext4 resizes of a loop device (EPERM)
        try:
            VOL_PATH = object_path(env.mnt)
            prom = os.path.join(env.tmp, "collector", "lvkeeper.prom")
            os.mkdir(os.path.dirname(prom))
            path = env.write_config()
            with open(path) as f:
                config = f.read().replace("[Daemon]\n", f"[Daemon]\nMetricsFile={prom}\n")
            with open(path, "w") as f:
                f.write(config)
            env.start(path)
            wait_for(lambda: os.path.exists(prom), 5, "the metrics file")
            before = open(prom).read()
            self.assertIn('lvkeeper_volume_grows_total{volume="%s"} 0\n' % env.mnt, before)
            env.call("Grow", "ss", env.mnt, "+16M")
            wait_for(lambda: 'grows_total{volume="%s"} 1\n' % env.mnt in open(prom).read(), 5,
                     "the grow in the metrics file")
            text = open(prom).read()
            # World-readable although the daemon runs with UMask=0077: node_exporter is not root.
            self.assertEqual(os.stat(prom).st_mode & 0o777, 0o644)
            self.assertIn('lvkeeper_volume_logical_volume_size_bytes{volume="%s"} %d\n'
                          % (env.mnt, env.prop("LogicalVolumeSize")), text)
            self.assertIn('lvkeeper_build_info{version="', text)
            r = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            self.assertEqual(r.stdout + r.stderr, "", "promtool has advice on the names")
            self.assertFalse([f for f in os.listdir(os.path.dirname(prom)) if f != "lvkeeper.prom"],
                             "no temp file is left where the collector reads *.prom")
        finally:
            env.close()


def main():
    global ARGS
    p = argparse.ArgumentParser()
    p.add_argument("--daemon", required=True)
    p.add_argument("--busconfig", required=True)
    p.add_argument("--xml-dir", required=True)
    p.add_argument("--fake-lvm", required=True)
    p.add_argument("--fake-polkit", required=True)
    ARGS, rest = p.parse_known_args()
    if os.geteuid() != 0:
        print("contract tests need root (loop devices, mount, fanotify)", file=sys.stderr)
        return 1
    return run_tests(rest, ("dbus-daemon", "busctl", "dbus-send", "losetup", "mkfs.ext4", "setpriv", "promtool"))


def run_tests(argv, tools):
    """Runs the unittest classes of __main__ once every tool is there; prints a closing count."""
    for tool in tools:
        if not shutil.which(tool):
            print(f"missing {tool}: run tests/deps", file=sys.stderr)
            return 1
    prog = unittest.main(module="__main__", argv=[sys.argv[0], "-v", *argv], exit=False)
    r = prog.result
    passed = r.testsRun - len(r.failures) - len(r.errors) - len(r.skipped)
    skipped = "".join(f"\nSKIPPED {test.id()}: {why}" for test, why in r.skipped)
    print(f"{passed} passed, {len(r.failures) + len(r.errors)} failed, {len(r.skipped)} skipped{skipped}")
    return 0 if r.wasSuccessful() else 1


if __name__ == "__main__":
    sys.exit(main())
