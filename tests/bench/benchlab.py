"""Shared helpers of the lab benchmarks (tests/bench/race, tests/bench/latency-lab), which run as root
INSIDE the QEMU lab guest (tests/system/vm run --systemd ...).

They build a throw-away vg0/data0 from image-backed loop disks in /media, start lvkeeperd with a config
of theirs, watch its signals with `busctl monitor`, and tear everything down again.  Every failure of
the setup raises SetupError, which the scripts turn into a clear message and a non-zero exit.

All times are time.monotonic() (CLOCK_MONOTONIC, one clock for every process in the guest)."""

import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time

BUS = "org.lvkeeper.Keeper1"
VG = "vg0"
LV = "data0"
MOUNT = "/data"
MEDIA = "/media"
STATE_DIR = "/var/lib/lvkeeper"
CONF = "/etc/lvkeeper/lvkeeper.conf"
RESULTS_SHARE = "/run/lvkeeper-lab"  # the vm runner's share: the host keeps it with LAB_KEEP=1

os.environ.setdefault("LVM_SUPPRESS_FD_WARNINGS", "1")
os.environ["PATH"] = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

T0 = time.monotonic()


class SetupError(Exception):
    pass


def log(msg):
    print(f"[{time.monotonic() - T0:6.1f}s] {msg}", file=sys.stderr, flush=True)


def size_bytes(text):
    """'256M' -> bytes (K, M, G, T are powers of 1024, as lvm and lvkeeper read them)."""
    m = re.fullmatch(r"\s*(\d+)\s*([KMGT]?)i?B?\s*", str(text), re.I)
    if not m:
        raise SetupError(f"bad size '{text}' (e.g. 256M)")
    return int(m.group(1)) << (10 * " KMGT".index(m.group(2).upper() or " "))


def human(n):
    for unit, scale in (("G", 1 << 30), ("M", 1 << 20), ("K", 1 << 10)):
        if abs(n) >= scale:
            return f"{n / scale:.1f}{unit}"
    return f"{n}B"


def run(*cmd, check=True, quiet=False):
    """Runs a command, returns its stdout; a failure is a SetupError naming the command and its output."""
    if not quiet:
        log("$ " + " ".join(cmd))
    p = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if check and p.returncode != 0:
        raise SetupError(f"{' '.join(cmd)} failed (status {p.returncode}): {(p.stderr or p.stdout).strip()}")
    return p.stdout


def env_setting(name, default):
    value = os.environ.get(name, "")
    return value if value != "" else default


def statvfs_usage(path=MOUNT):
    """(size, used, available) in bytes, as df (and lvkeeperd) count them."""
    st = os.statvfs(path)
    size = st.f_blocks * st.f_frsize
    used = (st.f_blocks - st.f_bfree) * st.f_frsize
    return size, used, st.f_bavail * st.f_frsize


def used_percent(path=MOUNT):
    _, used, avail = statvfs_usage(path)
    return 100.0 * used / (used + avail) if used + avail else 0.0


# ------------------------------------------------------------------ volume
class Volume:
    """vg0/data0 on `disks` fully allocated images of `disk_size` in /media, ext4 -m 0 at /data."""

    def __init__(self, disks, disk_size, lv_size):
        self.disks = disks
        self.disk_size = disk_size
        self.lv_size = lv_size
        self.vg_size = 0
        self.extent = 0
        self.sysfs_size = None

    def build(self):
        for mod in ("loop", "dm-mod"):
            run("modprobe", mod, quiet=True)
        os.makedirs(MOUNT, exist_ok=True)
        devices = []
        for i in range(self.disks):
            image = f"{MEDIA}/disk{i}.img"
            if os.path.exists(image):
                raise SetupError(f"{image} exists: the previous teardown left it")
            run("fallocate", "-l", str(self.disk_size), image, quiet=True)
            devices.append(run("losetup", "--find", "--show", image, quiet=True).strip())
        # vgcreate makes the PVs itself: one lvm command less (each costs seconds under TCG).
        run("vgcreate", "-q", "-y", VG, *devices)
        run("lvcreate", "-q", "-y", "-n", LV, "-L", f"{self.lv_size}b", VG)
        # No lazy inode tables (ext4lazyinit would write behind the benchmark's back); the journal
        # needs no zeroing on a new device.
        run("mkfs.ext4", "-q", "-F", "-m", "0", "-E", "lazy_itable_init=0,lazy_journal_init=1", f"/dev/{VG}/{LV}")
        run("mount", f"/dev/{VG}/{LV}", MOUNT, quiet=True)
        out = run("vgs", "--noheadings", "--units", "b", "--nosuffix", "-o", "vg_size,vg_extent_size", VG, quiet=True)
        self.vg_size, self.extent = (int(x) for x in out.split())
        dm = os.path.basename(os.path.realpath(f"/dev/{VG}/{LV}"))
        self.sysfs_size = f"/sys/class/block/{dm}/size"
        if not os.path.exists(self.sysfs_size):
            raise SetupError(f"no {self.sysfs_size} for /dev/{VG}/{LV}")
        log(f"volume: {VG}/{LV} {human(self.lv_size_now())} in a {human(self.vg_size)} VG "
            f"({self.disks} x {human(self.disk_size)} images, extent {human(self.extent)}), ext4 -m 0 at {MOUNT}")

    def lv_size_now(self):
        with open(self.sysfs_size) as f:
            return int(f.read()) * 512

    def fill_to(self, percent, name=".fill"):
        """fallocate one file so that `percent` of the filesystem is used (no data written: fast)."""
        _, used, avail = statvfs_usage()
        want = int((used + avail) * percent / 100) - used
        if want > 0:
            with open(f"{MOUNT}/{name}", "wb") as f:
                os.posix_fallocate(f.fileno(), 0, want)
        log(f"filled {MOUNT} to {used_percent():.1f}% used")

    def pv_count(self):
        return int(run("vgs", "--noheadings", "-o", "pv_count", VG, quiet=True).strip())

    @staticmethod
    def teardown():
        """Unmounts /data, removes vg0 and every image in /media with its loop device; never fails quietly."""
        if os.path.ismount(MOUNT):
            run("umount", MOUNT, quiet=True)
        # A command killed half-way can leave an LV suspended, and then nothing can remove it.
        wait_for_lvm_commands()
        tables = run("dmsetup", "ls", check=False, quiet=True) or ""
        for line in tables.splitlines():
            name = line.split()[0] if line.split() else ""
            if name.startswith(VG + "-"):
                run("dmsetup", "resume", name, check=False, quiet=True)
        # Quietly: there may be no vg0; one left behind makes the next vgcreate say so.
        run("vgremove", "-q", "-ff", "-y", VG, check=False, quiet=True)
        loops = json.loads(run("losetup", "-J", "-l", quiet=True) or '{"loopdevices": []}')
        ours = [dev["name"] for dev in loops.get("loopdevices", [])
                if (dev.get("back-file") or "").replace(" (deleted)", "").startswith(MEDIA + "/")]
        if ours:
            run("losetup", "-d", *ours, quiet=True)
        for name in os.listdir(MEDIA):
            if name.endswith(".img"):
                os.unlink(f"{MEDIA}/{name}")


def reserve_host_space(budget, name=".bench-ballast"):
    """Leaves only `budget` bytes free in /media (one fallocated ballast file), so that the image
    directory runs out after a known number of disks whatever --media-size the lab was booted with."""
    path = f"{MEDIA}/{name}"
    if os.path.exists(path):
        os.unlink(path)
    st = os.statvfs(MEDIA)
    free = st.f_bavail * st.f_frsize
    if free < budget:
        raise SetupError(f"{MEDIA} has {human(free)} free, the benchmark needs {human(budget)}: "
                         "boot the lab with a larger --media-size")
    if free - budget > 0:
        with open(path, "wb") as f:
            os.posix_fallocate(f.fileno(), 0, free - budget)
    st = os.statvfs(MEDIA)
    log(f"{MEDIA}: {human(st.f_bavail * st.f_frsize)} free for images")


# ---------------------------------------------------------------- lvkeeperd
def write_config(text):
    os.makedirs(os.path.dirname(CONF), exist_ok=True)
    with open(CONF, "w") as f:
        f.write(text)


def start_lvkeeperd():
    run("systemctl", "reset-failed", "lvkeeperd", check=False, quiet=True)
    p = subprocess.run(["systemctl", "start", "lvkeeperd"], stdin=subprocess.DEVNULL, capture_output=True, text=True)
    if p.returncode != 0 or subprocess.run(["systemctl", "is-active", "--quiet", "lvkeeperd"]).returncode != 0:
        journal = run("journalctl", "-u", "lvkeeperd", "--no-pager", "-n", "30", "-o", "cat", check=False, quiet=True)
        raise SetupError(f"lvkeeperd did not start: {p.stderr.strip()}\n{journal}")
    log("lvkeeperd: " + run("systemctl", "show", "-p", "StatusText", "--value", "lvkeeperd", quiet=True).strip())


def wait_for_lvm_commands(timeout=120):
    """Waits until no lvm, resize2fs or xfs_growfs runs (one a stopped contender started finishes)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        busy = [n for n in ("lvm", "lvextend", "resize2fs", "xfs_growfs", "pvcreate", "vgextend")
                if subprocess.run(["pgrep", "-x", n], stdout=subprocess.DEVNULL).returncode == 0]
        if not busy:
            return
        time.sleep(0.2)
    raise SetupError(f"lvm commands still running after {timeout} s")


def stop_lvkeeperd():
    run("systemctl", "stop", "lvkeeperd", check=False, quiet=True)
    wait_for_lvm_commands()
    if os.path.isdir(STATE_DIR):
        for name in os.listdir(STATE_DIR):
            path = os.path.join(STATE_DIR, name)
            shutil.rmtree(path) if os.path.isdir(path) and not os.path.islink(path) else os.unlink(path)


class Monitor:
    """`busctl --json=short monitor org.lvkeeper.Keeper1` in a thread: every message with the
    monotonic time it was read (what a client on the bus would act on)."""

    def __init__(self, logfile=None):
        self.messages = []  # (t, member, path, payload data)
        self.cond = threading.Condition()
        self.logfile = logfile
        self.proc = subprocess.Popen(["stdbuf", "-oL", "busctl", "--json=short", "monitor", BUS],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                     text=True, bufsize=1)
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()
        time.sleep(0.5)
        if self.proc.poll() is not None:
            raise SetupError("busctl monitor exited at once")

    def _read(self):
        out = open(self.logfile, "a", buffering=1) if self.logfile else None
        for line in self.proc.stdout:
            t = time.monotonic()
            try:
                m = json.loads(line)
            except ValueError:
                continue
            if m.get("type") != "signal":
                continue
            entry = (t, m.get("member"), m.get("path"), m.get("payload", {}).get("data", []))
            if out:
                out.write(json.dumps({"t": t, "member": entry[1], "path": entry[2], "data": entry[3]}) + "\n")
            with self.cond:
                self.messages.append(entry)
                self.cond.notify_all()

    def signals(self, member, since=0.0):
        with self.cond:
            return [m for m in self.messages if m[1] == member and m[0] >= since]

    def wait(self, predicate, timeout):
        """Waits until predicate(message) holds for a message; returns it, or None on timeout."""
        deadline = time.monotonic() + timeout
        seen = 0
        with self.cond:
            while True:
                for m in self.messages[seen:]:
                    if predicate(m):
                        return m
                seen = len(self.messages)
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self.cond.wait(left)

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.thread.join(5)


def results_dir(sub):
    """Where results go: $BENCH_OUT, else the lab share (seen by the host), else /tmp."""
    base = os.environ.get("BENCH_OUT") or (f"{RESULTS_SHARE}/results" if os.path.isdir(RESULTS_SHARE) else "/tmp/bench-results")
    path = os.path.join(base, sub)
    os.makedirs(path, exist_ok=True)
    return path


def percentile(values, p):
    """Nearest-rank percentile: the smallest value with at least p% of the values at or below it."""
    s = sorted(values)
    if not s:
        return None
    k = max(1, -(-len(s) * p // 100))
    return s[int(k) - 1]
