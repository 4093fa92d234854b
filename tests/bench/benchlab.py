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
import signal
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
        """Takes down everything a run built, in order, and fails (SetupError) rather than leave any of it
        behind: waits for lvm commands (never kills one), resumes a suspended LV, unmounts /data, removes
        vg0 and its PVs, detaches every loop device over a /media file (waiting until the kernel has let
        go of it) and deletes every image in /media."""
        wait_for_lvm_commands()
        # An lvm command that died half-way can leave an LV suspended, and then nothing can remove it.
        for name in vg_tables():
            info = run("dmsetup", "info", "-c", "--noheadings", "-o", "suspended", name, check=False, quiet=True)
            if info.strip() == "Suspended":
                log(f"teardown: {name} was left suspended: resuming it")
                run("dmsetup", "resume", name, quiet=True)
        if os.path.ismount(MOUNT):
            umount(MOUNT)
        if vg_tables() or vg_exists():
            retry_lvm("vgremove", "-q", "-ff", "-y", VG)
        pvs = [dev for dev in media_loops() if blkid_type(dev) == "LVM2_member"]
        if pvs:
            retry_lvm("pvremove", "-q", "-ff", "-y", *pvs)
        for name in vg_tables():  # left by a vgremove that could not deactivate
            run("udevadm", "settle", check=False, quiet=True)
            run("dmsetup", "remove", "--retry", name, quiet=True)
        detach_media_loops()
        for name in os.listdir(MEDIA):
            if name.endswith(".img"):
                os.unlink(f"{MEDIA}/{name}")
        syncfs(MEDIA)


def vg_tables():
    """Names of the device-mapper tables of vg0's LVs."""
    out = run("dmsetup", "ls", check=False, quiet=True) or ""
    return [line.split()[0] for line in out.splitlines()
            if line.split() and line.split()[0].startswith(VG + "-")]


def vg_exists():
    return subprocess.run(["vgs", VG], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL).returncode == 0


def blkid_type(dev):
    return subprocess.run(["blkid", "-p", "-o", "value", "-s", "TYPE", dev], stdin=subprocess.DEVNULL,
                          capture_output=True, text=True).stdout.strip()


def retry_lvm(*cmd, tries=3):
    """An lvm command that must succeed; after a failure (a device briefly held open by udev's blkid)
    udev is let settle and it runs again."""
    for attempt in range(1, tries + 1):
        p = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True)
        if p.returncode == 0:
            return
        log(f"teardown: {' '.join(cmd)} failed (status {p.returncode}, try {attempt} of {tries}): "
            f"{(p.stderr or p.stdout).strip()}")
        run("udevadm", "settle", check=False, quiet=True)
        time.sleep(1)
    raise SetupError(f"{' '.join(cmd)} failed {tries} times: {(p.stderr or p.stdout).strip()}; "
                     f"{describe_holders()}")


def umount(path, tries=5):
    for _ in range(tries):
        p = subprocess.run(["umount", path], stdin=subprocess.DEVNULL, capture_output=True, text=True)
        if p.returncode == 0:
            return
        run("udevadm", "settle", check=False, quiet=True)
        time.sleep(1)
    raise SetupError(f"umount {path} failed: {p.stderr.strip()}; open there: "
                     f"{', '.join(open_files(path + '/')) or 'nothing found in /proc'}")


def media_loops(with_files=False):
    """Loop devices whose backing file is (or was, before it was deleted) in /media."""
    loops = json.loads(run("losetup", "-J", "-l", quiet=True) or '{"loopdevices": []}')
    ours = [(dev["name"], dev.get("back-file") or "") for dev in loops.get("loopdevices", [])
            if (dev.get("back-file") or "").replace(" (deleted)", "").startswith(MEDIA + "/")]
    return ours if with_files else [name for name, _ in ours]


def detach_media_loops(timeout=30):
    """losetup -d for every loop device over a /media file, then waits until each is unbound: the kernel
    detaches a device that is still open (udev's blkid, a holder) only at its last close, and until then
    the deleted image keeps its space."""
    ours = media_loops()
    if ours:
        run("losetup", "-d", *ours, quiet=True)
    deadline = time.monotonic() + timeout
    while True:
        bound = [dev for dev in ours if os.path.exists(f"/sys/block/{os.path.basename(dev)}/loop/backing_file")]
        if not bound:
            return
        if time.monotonic() > deadline:
            raise SetupError(f"loop devices still bound {timeout} s after losetup -d: {', '.join(bound)}; "
                             f"{describe_holders()}")
        run("udevadm", "settle", check=False, quiet=True)
        time.sleep(0.2)


LVM_COMMANDS = {"lvm", "lvcreate", "lvextend", "lvresize", "lvreduce", "lvremove", "lvchange", "lvs", "lvscan",
                "lvdisplay", "vgcreate", "vgextend", "vgreduce", "vgremove", "vgchange", "vgs", "vgscan",
                "vgdisplay", "vgcfgbackup", "pvcreate", "pvremove", "pvresize", "pvs", "pvscan", "pvdisplay",
                "pvmove", "fsadm", "resize2fs", "xfs_growfs", "e2fsck", "dmsetup"}


def processes():
    """(pid, comm, pgid, cgroup) of every live process but this one (zombies are dead already)."""
    me = os.getpid()
    procs = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == me:
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
            with open(f"/proc/{entry}/cgroup") as f:
                cgroup = f.read().strip()
        except OSError:
            continue
        comm = stat[stat.index("(") + 1:stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2:].split()
        if fields[0] in ("Z", "X"):
            continue
        procs.append((int(entry), comm, int(fields[2]), cgroup))
    return procs


def cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return "?"


def lvm_commands():
    return [(pid, comm) for pid, comm, _, _ in processes() if comm in LVM_COMMANDS]


def open_files(prefix):
    """'comm (pid N): path' for every file under prefix (or a deleted one that was) a process holds open."""
    held = []
    for pid, comm, _, _ in processes():
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if target.startswith(prefix):
                held.append(f"{comm} (pid {pid}): {target}")
    return held


def describe_holders():
    """What may keep vg0, its loop devices or /media busy, for a failure message."""
    parts = []
    for dev, back in media_loops(with_files=True):
        holders = os.listdir(f"/sys/block/{os.path.basename(dev)}/holders") \
            if os.path.isdir(f"/sys/block/{os.path.basename(dev)}/holders") else []
        parts.append(f"{dev} over {back}" + (f" held by {', '.join(holders)}" if holders else ""))
    tables = vg_tables()
    if tables:
        parts.append("device-mapper tables " + ", ".join(tables))
    held = open_files(MEDIA + "/") + open_files("/dev/loop") + open_files("/dev/dm-") + open_files("/dev/mapper/")
    if held:
        parts.append("open: " + ", ".join(held))
    busy = lvm_commands()
    if busy:
        parts.append("running: " + ", ".join(f"{c} (pid {p}: {cmdline(p)})" for p, c in busy))
    return "; ".join(parts) or "no holder found"


def syncfs(path):
    subprocess.run(["sync", "-f", path], stdin=subprocess.DEVNULL, check=False)


def media_free():
    st = os.statvfs(MEDIA)
    return st.f_bavail * st.f_frsize


class MediaGuard:
    """/media as the benchmark found it (after its ballast): what every teardown must give back.
    check() fails loudly, naming the leak, when a loop device is still over a /media file, an image is
    left, vg0 or /data is still there, an lvm command still runs, or the free space has not come back."""

    SLACK = 16 << 20  # directory blocks and the like; any image is far larger

    def __init__(self):
        self.free = media_free()
        self.names = set(os.listdir(MEDIA))
        log(f"{MEDIA}: {human(self.free)} free, {len(self.names)} entries: the state every teardown restores")

    def check(self, when, wait=30):
        deadline = time.monotonic() + wait
        while True:
            problems = self.problems()
            if not problems or time.monotonic() > deadline:
                break
            # The space of a just-detached image can come back a moment later.
            time.sleep(0.5)
            syncfs(MEDIA)
        if problems:
            raise SetupError(f"{when}: {MEDIA} is not as the benchmark found it: " + "; ".join(problems))

    def problems(self):
        out = []
        loops = media_loops(with_files=True)
        if loops:
            out.append("loop devices still over /media files: " + ", ".join(f"{d} ({b})" for d, b in loops))
        images = sorted(n for n in os.listdir(MEDIA) if n.endswith(".img"))
        if images:
            out.append("images left: " + ", ".join(images))
        extra = sorted(set(os.listdir(MEDIA)) - self.names - set(images))
        if extra:
            out.append("new entries left: " + ", ".join(extra))
        tables = vg_tables()
        if tables:
            out.append("device-mapper tables left: " + ", ".join(tables))
        if os.path.ismount(MOUNT):
            out.append(f"{MOUNT} still mounted")
        busy = lvm_commands()
        if busy:
            out.append("lvm commands running: " + ", ".join(f"{c} (pid {p})" for p, c in busy))
        held = open_files(MEDIA + "/")
        if held:
            out.append("files in /media held open: " + ", ".join(held))
        free = media_free()
        if free + self.SLACK < self.free:
            out.append(f"{human(self.free - free)} of its free space has not come back "
                       f"({human(free)} free, {human(self.free)} before)")
        return out


BALLAST = ".bench-ballast"


def release_host_space(name=BALLAST):
    if os.path.exists(f"{MEDIA}/{name}"):
        os.unlink(f"{MEDIA}/{name}")


def reserve_host_space(budget, name=BALLAST):
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


def wait_until_gone(find, what, timeout, each_round=None):
    """Waits until find() (a list of (pid, comm)) is empty, calling each_round(found) every 0.2 s; after
    timeout seconds fails, naming every process still found as '<what>: ...'."""
    deadline = time.monotonic() + timeout
    while True:
        found = find()
        if not found:
            return
        if time.monotonic() > deadline:
            raise SetupError(f"{what}: " + ", ".join(f"{c} (pid {p}: {cmdline(p)})" for p, c in found))
        if each_round:
            each_round(found)
        time.sleep(0.2)


def wait_for_lvm_commands(timeout=300):
    """Waits until no lvm, resize2fs or xfs_growfs command runs (one a stopped contender started
    finishes on its own: it is never killed)."""
    wait_until_gone(lvm_commands, f"lvm commands still running after {timeout} s", timeout)


def stop_group(pgid, name, child=None, timeout=120):
    """Stops every process of group pgid (a baseline script, its pipelines, its sleep) with SIGTERM, again
    and again until none is left, but for lvm commands, which finish on their own and are waited for.
    Fails, naming what is left, rather than kill anything harder."""
    def members():
        if child is not None:
            child.poll()  # reap the script itself
        return [(pid, comm) for pid, comm, group, _ in processes() if group == pgid]

    def terminate(found):
        for pid, comm in found:
            if comm not in LVM_COMMANDS:
                try:
                    os.kill(pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass

    wait_until_gone(members, f"{name}: still running {timeout} s after SIGTERM", timeout, terminate)


def stop_lvkeeperd(timeout=300):
    run("systemctl", "stop", "lvkeeperd", check=False, quiet=True)
    # KillMode=process: an lvm command lvkeeperd started outlives it in the unit's cgroup; wait for it.
    wait_until_gone(lambda: [(pid, comm) for pid, comm, _, cgroup in processes() if "/lvkeeperd.service" in cgroup],
                    f"lvkeeperd.service still has processes {timeout} s after stop", timeout)
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
