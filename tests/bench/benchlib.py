"""Shared pieces of the host benchmarks: a private system bus, a loop-mounted filesystem, lvkeeperd
with the fake LVM, a ThresholdCrossed listener, /proc sampling, and the results files.

Everything a benchmark sets up is registered with a Cleanup as soon as it exists, so a failure or a
signal at any point still unmounts, detaches the loop devices it attached (and only those), and
stops the daemon, the listener and the bus.
"""
import ctypes
import datetime
import json
import math
import os
import platform
import resource
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
BUS_NAME = "org.lvkeeper.Keeper1"
MANAGER_PATH = "/org/lvkeeper/Keeper1"
MANAGER_IF = "org.lvkeeper.Keeper1.Manager"
VOLUME_IF = "org.lvkeeper.Keeper1.Volume"


class SetupError(Exception):
    """The benchmark could not be set up: reported, exit status 2."""


class Cleanup:
    """Undo actions run newest first; each runs once even if an earlier one fails."""

    def __init__(self):
        self.actions = []

    def push(self, what, fn):
        self.actions.append((what, fn))

    def run(self):
        while self.actions:
            what, fn = self.actions.pop()
            try:
                fn()
            except Exception as e:  # keep undoing the rest
                print(f"bench: cleanup of {what} failed: {e}", file=sys.stderr)


def main_wrapper(body):
    """Run body(cleanup) with SIGTERM/SIGHUP turned into an exception, so finally-cleanup always runs."""

    def on_signal(signum, _frame):
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)
    cleanup = Cleanup()
    try:
        return body(cleanup) or 0
    except SetupError as e:
        print(f"bench: setup failed: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("bench: interrupted", file=sys.stderr)
        return 130
    finally:
        cleanup.run()


def need_root():
    if os.geteuid() != 0:
        raise SetupError("needs root (loop devices, mount, fanotify, the bus monitor)")


def need_tools(*tools):
    missing = [t for t in tools if not shutil.which(t)]
    if missing:
        raise SetupError(f"missing {' '.join(missing)}: run tests/deps (or apt-get install the package)")


def run(argv, check=True, **kw):
    r = subprocess.run(argv, capture_output=True, text=True, **kw)
    if check and r.returncode != 0:
        raise SetupError(f"{' '.join(argv)} exited {r.returncode}: {r.stderr.strip()}")
    return r


def wait_for(pred, timeout, what, step=0.02):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(step)
    raise SetupError(f"timed out after {timeout}s waiting for {what}")


def object_path(mount_point):
    """The Volume object of a mount point: every byte but [A-Za-z0-9] as _xx, as the daemon escapes it."""
    name = "".join(c if c.isalnum() and c.isascii() else "_%02x" % ord(c) for c in mount_point.lstrip("/"))
    return MANAGER_PATH + "/volumes/" + (name or "root")


_libc = ctypes.CDLL(None, use_errno=True)


def syncfs(path):
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        if _libc.syncfs(fd) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"syncfs {path}: {os.strerror(err)}")
    finally:
        os.close(fd)


def drop_caches():
    with open("/proc/sys/vm/drop_caches", "w") as f:
        f.write("3\n")


# ---- the environment ----------------------------------------------------------------------------


class PrivateBus:
    """A dbus-daemon of type system on a socket of our own, with lvkeeper's busconfig included."""

    def __init__(self, cleanup, tmp, busconfig):
        if not os.path.exists(busconfig):
            raise SetupError(f"no busconfig at {busconfig} (--busconfig)")
        self.socket = os.path.join(tmp, "bus")
        self.address = "unix:path=" + self.socket
        conf = os.path.join(tmp, "bus.conf")
        # A benchmark, not the policy's test (tests/dbus is): everything is allowed, the bus only carries.
        with open(conf, "w") as f:
            f.write("<!DOCTYPE busconfig PUBLIC \"-//freedesktop//DTD D-BUS Bus Configuration 1.0//EN\"\n"
                    " \"http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd\">\n"
                    f"<busconfig><type>system</type><listen>{self.address}</listen><auth>EXTERNAL</auth>"
                    "<policy context=\"default\"><allow user=\"*\"/><allow own=\"*\"/>"
                    "<allow send_destination=\"*\" eavesdrop=\"true\"/><allow eavesdrop=\"true\"/></policy>"
                    f"<include>{busconfig}</include></busconfig>\n")
        self.proc = subprocess.Popen(["dbus-daemon", "--config-file=" + conf, "--nofork", "--nopidfile"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        cleanup.push("dbus-daemon", lambda: stop_process(self.proc))
        wait_for(lambda: os.path.exists(self.socket) or self.proc.poll() is not None, 5, "the private dbus-daemon")
        if self.proc.poll() is not None:
            raise SetupError(f"dbus-daemon exited {self.proc.returncode}: {self.proc.stderr.read().decode()}")
        self.env = dict(os.environ, DBUS_SYSTEM_BUS_ADDRESS=self.address)


class SystemBus:
    """The machine's own system bus (in the lab: the bus the installed lvkeeperd is on), or the one
    DBUS_SYSTEM_BUS_ADDRESS names, as for any system bus client."""

    def __init__(self):
        self.env = dict(os.environ)


def stop_process(proc, timeout=10):
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class LoopFs:
    """A sparse image in workdir, on a loop device we attach, with a fresh filesystem, mounted in tmp."""

    def __init__(self, cleanup, tmp, workdir, size, fstype="ext4", mkfs_args=()):
        need_tools("losetup", "mount", "umount", "mkfs." + fstype)
        st = os.statvfs(workdir)
        free = st.f_bavail * st.f_frsize
        # The image is sparse, but the benchmark may fill most of it: never let it fill the host.
        if free < size + (1 << 30):
            raise SetupError(f"{workdir} has {free >> 20} MiB free; need {(size >> 20) + 1024} MiB "
                             "(the image may fill, plus 1 GiB to spare); pass --workdir elsewhere")
        self.image = os.path.join(workdir, f"lvkeeper-bench-{os.getpid()}.img")
        with open(self.image, "wb") as f:
            f.truncate(size)
        cleanup.push("image " + self.image, lambda: os.unlink(self.image))
        self.device = run(["losetup", "--find", "--show", self.image]).stdout.strip()
        cleanup.push("loop device " + self.device, self._detach)
        run(["mkfs." + fstype, *mkfs_args, self.device])
        self.mnt = os.path.join(tmp, "data")
        os.mkdir(self.mnt)
        run(["mount", "-t", fstype, self.device, self.mnt])
        cleanup.push("mount " + self.mnt, self._unmount)
        self.size = size
        self.fstype = fstype

    def _unmount(self):
        if os.path.ismount(self.mnt) and run(["umount", self.mnt], check=False).returncode != 0:
            run(["umount", "-l", self.mnt], check=False)

    def _detach(self):
        # Only if it is still ours: the backing file must be our image.
        back = f"/sys/block/{os.path.basename(self.device)}/loop/backing_file"
        try:
            with open(back) as f:
                ours = f.read().strip().startswith(self.image)
        except OSError:
            return
        if ours:
            run(["losetup", "-d", self.device], check=False)


class Daemon:
    """lvkeeperd on the private bus, watching one LoopFs, with LVM replaced by the recording fake."""

    def __init__(self, cleanup, tmp, bus, fs, daemon, fake_lvm, log_level="info"):
        for path, opt in ((daemon, "--daemon"), (fake_lvm, "--fake-lvm")):
            if not os.access(path, os.X_OK):
                raise SetupError(f"{path} is not executable ({opt}); build first: meson compile -C build")
        self.tmp, self.bus, self.fs = tmp, bus, fs
        self.binary, self.fake_lvm, self.log_level = daemon, fake_lvm, log_level
        self.media = os.path.join(tmp, "media")
        self.state_dir = os.path.join(tmp, "state")
        self.lvm_dir = os.path.join(tmp, "lvm")
        for d in (self.media, self.lvm_dir):
            os.makedirs(d, exist_ok=True)
        st = os.stat(fs.device)
        with open(os.path.join(self.lvm_dir, "state.json"), "w") as f:
            json.dump({"vg": "vg0", "lv": "data0", "device": fs.device, "image": fs.image,
                       "major": os.major(st.st_rdev), "minor": os.minor(st.st_rdev),
                       "lv_size": fs.size, "extent": 4 << 20, "vg_free": 256 << 20,
                       "pvs": ["/dev/fakepv0"], "disk_bytes": 32 << 20}, f)
        self.proc = None
        self.notify = None
        self.log_path = os.path.join(tmp, "daemon.log")
        cleanup.push("lvkeeperd", self.stop)

    def write_config(self, grow_at=90, auto_grow=False, backstop=60):
        sections = {
            "Volume": {"MountPoint": self.fs.mnt, "GrowAt": f"{grow_at:g}", "GrowStep": "16M",
                       "AutoGrow": "yes" if auto_grow else "no"},
            "Disks": {"ImageDirectory": self.media, "ImageSize": "32M", "ReserveHostSpace": "0"},
            "Daemon": {"BackstopInterval": str(backstop)},
        }
        path = os.path.join(self.tmp, "lvkeeper.conf")
        with open(path, "w") as f:
            for name, keys in sections.items():
                f.write(f"[{name}]\n" + "".join(f"{k}={v}\n" for k, v in keys.items()))
        self.config = path
        return path

    def start(self, watchdog_usec=None):
        notify_path = os.path.join(self.tmp, "notify")
        if os.path.exists(notify_path):
            os.unlink(notify_path)
        self.notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.notify.bind(notify_path)
        env = dict(self.bus.env, LVKEEPER_LVM=self.fake_lvm, FAKE_LVM_STATE=self.lvm_dir, NOTIFY_SOCKET=notify_path)
        env.pop("JOURNAL_STREAM", None)
        env.pop("WATCHDOG_USEC", None)
        env.pop("WATCHDOG_PID", None)
        if watchdog_usec:
            env["WATCHDOG_USEC"] = str(watchdog_usec)
        with open(self.log_path, "a") as log:
            self.proc = subprocess.Popen([self.binary, "--config", self.config, "--state-dir", self.state_dir,
                                          "--log-level", self.log_level], env=env, stdout=log, stderr=log)
        notes = []
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if any("READY=1" in n for n in notes):
                self._start_drain()
                return
            r, _, _ = select.select([self.notify], [], [], 0.1)
            if r:
                notes.append(self.notify.recv(4096).decode(errors="replace"))
            if self.proc.poll() is not None:
                raise SetupError(f"lvkeeperd exited {self.proc.returncode}: {self.log_tail()}")
        raise SetupError(f"lvkeeperd sent no READY=1 in 15 s: {self.log_tail()}")

    def _start_drain(self):
        # systemd reads every notification; a full socket would block the daemon's sd_notify (STATUS=
        # on each usage change). A process of its own reads them, not a thread of ours: a thread here
        # would take the GIL from a benchmark's writer each time the daemon says something.
        counts = os.path.join(self.tmp, "notifications")
        code = ("import ctypes,signal,socket,sys\n"
                "ctypes.CDLL(None).prctl(1, signal.SIGTERM)\n"  # PR_SET_PDEATHSIG: go when we go
                "s=socket.socket(fileno=int(sys.argv[1]))\n"
                "n=0\n"
                "def done(*_):\n"
                " open(sys.argv[2],'w').write(str(n)); sys.exit(0)\n"
                "signal.signal(signal.SIGTERM,done)\n"
                "while True:\n"
                " s.recv(4096); n+=1\n")
        fd = self.notify.fileno()
        self._drainer = subprocess.Popen([sys.executable, "-c", code, str(fd), counts], pass_fds=[fd])
        self._counts = counts

    def notifications(self):
        """How many sd_notify messages the last run of the daemon sent after READY (after stop())."""
        try:
            with open(self._counts) as f:
                return int(f.read())
        except (OSError, ValueError, AttributeError):
            return None

    def stop(self):
        # The drain goes on until the daemon is gone: it may be sending STATUS= as it exits.
        if self.proc is not None:
            stop_process(self.proc)
            if self.proc.returncode not in (0, -signal.SIGTERM):
                print(f"bench: lvkeeperd exited {self.proc.returncode}: {self.log_tail()}", file=sys.stderr)
            self.proc = None
        if getattr(self, "_drainer", None) is not None:
            stop_process(self._drainer, 5)
            self._drainer = None
        if self.notify is not None:
            self.notify.close()
            self.notify = None

    @property
    def pid(self):
        return self.proc.pid

    def log_tail(self):
        try:
            with open(self.log_path) as f:
                return f.read()[-3000:]
        except OSError:
            return "(no log)"


def make_private_env(cleanup, args, image_size, fstype="ext4", mkfs_args=("-q", "-F", "-m", "0")):
    """tmp dir, private bus, loop fs and a (not yet started) daemon, all registered for cleanup."""
    need_root()
    need_tools("dbus-daemon", "busctl", "dbus-monitor", "dbus-send", "stdbuf")
    tmp = tempfile.mkdtemp(prefix="lvk-bench-")
    cleanup.push("tmp dir " + tmp, lambda: shutil.rmtree(tmp, ignore_errors=True))
    os.chmod(tmp, 0o755)
    bus = PrivateBus(cleanup, tmp, args.busconfig)
    fs = LoopFs(cleanup, tmp, args.workdir, image_size, fstype, mkfs_args)
    daemon = Daemon(cleanup, tmp, bus, fs, args.daemon, args.fake_lvm)
    return tmp, bus, fs, daemon


def add_env_args(p):
    """Options every benchmark that runs its own daemon takes."""
    p.add_argument("--daemon", default=os.path.join(REPO, "build/src/lvkeeperd"),
                   help="the lvkeeperd binary (default: build/src/lvkeeperd)")
    p.add_argument("--fake-lvm", default=os.path.join(REPO, "tests/dbus/fake-lvm"))
    p.add_argument("--busconfig", default=os.path.join(REPO, "dbus/org.lvkeeper.Keeper1.conf"))
    p.add_argument("--workdir", default="/var/tmp", help="where the sparse loop image goes (default /var/tmp)")
    p.add_argument("--results", default=os.path.join(HERE, "results"), help="where tables and raw numbers go")


# ---- the bus ------------------------------------------------------------------------------------


def get_property(env, mount_point, name):
    r = run(["busctl", "--system", "--json=short", "get-property", BUS_NAME, object_path(mount_point), VOLUME_IF,
             name], env=env)
    return json.loads(r.stdout)["data"]


class SignalListener:
    """dbus-monitor for the Manager's signals. Its time= stamp is CLOCK_REALTIME when the message reached
    it, so the latency measured is to a client on the bus, not to our select() loop."""

    BENCH_IF = "org.lvkeeper.Bench"

    def __init__(self, cleanup, env, member):
        self.env = env
        self.member = member
        self.proc = subprocess.Popen(
            ["stdbuf", "-oL", "dbus-monitor", "--system",
             f"type='signal',interface='{MANAGER_IF}',member='{member}'",
             f"type='signal',interface='{self.BENCH_IF}',member='Mark'"],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        cleanup.push("dbus-monitor", lambda: stop_process(self.proc, 5))
        self.fd = self.proc.stdout.fileno()
        self.pending = b""
        self.current = None
        self.messages = []
        # Ready only once our own marker signal comes back through it.
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            run(["dbus-send", "--system", "--type=signal", "/org/lvkeeper/Bench", self.BENCH_IF + ".Mark"], env=env)
            got = self.poll(0.2)
            if any(m["member"] == "Mark" for m in got):
                return
            if self.proc.poll() is not None:
                raise SetupError(f"dbus-monitor exited {self.proc.returncode}: {self.proc.stderr.read().decode()}")
        raise SetupError("dbus-monitor did not see our marker signal in 5 s")

    def poll(self, timeout):
        """Messages completed within timeout: dicts with time (realtime s), member, args (strings)."""
        done = []
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            r, _, _ = select.select([self.fd], [], [], max(0.0, left))
            if r:
                chunk = os.read(self.fd, 1 << 16)
                if not chunk:
                    raise SetupError("dbus-monitor closed its output")
                self.pending += chunk
                *lines, self.pending = self.pending.split(b"\n")
                for raw in lines:
                    self._line(raw.decode(errors="replace"), done)
            # A message's arguments end where the next header starts; flush it once nothing else comes soon.
            if self.current is not None and not select.select([self.fd], [], [], 0.002)[0] and not self.pending:
                done.append(self.current)
                self.current = None
            if done or left <= 0:
                return done

    def _line(self, line, done):
        if line.startswith(("signal ", "method ", "error ")):
            if self.current is not None:
                done.append(self.current)
                self.current = None
            if not line.startswith("signal "):
                return
            fields = dict(f.split("=", 1) for f in line.replace(";", "").split() if "=" in f)
            self.current = {"time": float(fields.get("time", "0")), "member": fields.get("member", ""), "args": []}
        elif self.current is not None and line.strip():
            kind, _, value = line.strip().partition(" ")
            if value.startswith('"') and value.endswith('"'):
                value = value[1:-1]
            self.current["args"].append(value)

    def wait(self, timeout, pred=lambda m: True):
        deadline = time.monotonic() + timeout
        while True:
            for m in self.messages:
                if m["member"] == self.member and pred(m):
                    self.messages.remove(m)
                    return m
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            self.messages.extend(self.poll(left))

    def drain(self):
        self.messages.extend(self.poll(0.0))
        stale = [m for m in self.messages if m["member"] == self.member]
        self.messages = []
        return stale


# ---- /proc --------------------------------------------------------------------------------------

CLK_TCK = os.sysconf("SC_CLK_TCK")


def proc_sample(pid):
    """CPU (ns, all threads, from schedstat; and ticks), context switches, memory of one process."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    utime, stime, cutime, cstime = (int(x) for x in fields[11:15])
    run_ns = 0
    vol = nonvol = 0
    tasks = os.listdir(f"/proc/{pid}/task")
    for tid in tasks:
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                run_ns += int(f.read().split()[0])
            with open(f"/proc/{pid}/task/{tid}/status") as f:
                for line in f:
                    if line.startswith("voluntary_ctxt_switches"):
                        vol += int(line.split()[1])
                    elif line.startswith("nonvoluntary_ctxt_switches"):
                        nonvol += int(line.split()[1])
        except FileNotFoundError:  # a thread that just ended
            pass
    mem = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM", "RssAnon", "RssFile", "RssShmem", "VmSize", "VmData"):
                mem[key + "_kib"] = int(value.split()[0])
    return {"t": time.monotonic(), "cpu_ns": run_ns, "utime_ticks": utime, "stime_ticks": stime,
            "child_ticks": cutime + cstime, "voluntary": vol, "nonvoluntary": nonvol,
            "threads": len(tasks), **mem}


def tree_usage(argv, seconds, env=None):
    """Run argv for `seconds` in a helper process that is a child subreaper, kill the whole tree, and
    return the CPU and context switches of every process in it (getrusage of reaped children)."""
    helper = os.path.abspath(__file__)
    r = subprocess.run([sys.executable, helper, "tree-usage", str(seconds), "--", *argv],
                       capture_output=True, text=True, env=env)
    if r.returncode != 0:
        raise SetupError(f"tree-usage of {argv[0]} failed ({r.returncode}): {r.stderr.strip()}")
    return json.loads(r.stdout)


def _tree_usage_main(argv):
    seconds = float(argv[0])
    cmd = argv[2:]
    PR_SET_CHILD_SUBREAPER = 36
    if _libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        print("prctl(PR_SET_CHILD_SUBREAPER) failed", file=sys.stderr)
        return 1
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.monotonic()
    proc = subprocess.Popen(cmd, start_new_session=True, stdout=subprocess.DEVNULL)
    time.sleep(seconds)
    early = proc.poll()
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    elapsed = time.monotonic() - start
    # Orphans of the killed tree are ours now (subreaper): reap every one so its usage is counted.
    while True:
        try:
            os.waitpid(-1, 0)
        except ChildProcessError:
            break
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    print(json.dumps({"elapsed_s": elapsed, "exited_early": early,
                      "cpu_s": (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime),
                      "utime_s": after.ru_utime - before.ru_utime, "stime_s": after.ru_stime - before.ru_stime,
                      "voluntary": after.ru_nvcsw - before.ru_nvcsw,
                      "nonvoluntary": after.ru_nivcsw - before.ru_nivcsw}))
    return 0


class ExternalEvents:
    """Counts what may wake lvkeeperd that is none of its timers: kernel uevents (it listens to the
    kernel's netlink group when no udevd runs, and udevd's otherwise) and changes of the mount table
    (libmount's monitor). On a shared machine other people's loop devices and mounts make both."""

    def __init__(self, cleanup):
        self.uevents = []
        self.mount_changes = []
        self._stop = False
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, 15)  # NETLINK_KOBJECT_UEVENT
        cleanup.push("uevent socket", self.close)
        self.sock.bind((0, 1))  # the kernel's group
        self.mountinfo = open("/proc/self/mountinfo")
        self.mountinfo.read()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        p = select.poll()
        p.register(self.sock, select.POLLIN)
        p.register(self.mountinfo, select.POLLPRI | select.POLLERR)
        while not self._stop:
            for fd, _ in p.poll(200):
                now = time.monotonic()
                if fd == self.sock.fileno():
                    msg = self.sock.recv(65536).split(b"\0")[0].decode(errors="replace")
                    self.uevents.append((now, msg))
                else:
                    self.mountinfo.seek(0)
                    self.mountinfo.read()
                    self.mount_changes.append(now)

    def between(self, t0, t1):
        """(uevents, mount changes) in [t0, t1], as (seconds after t0, what) pairs."""
        return ([(round(t - t0, 3), m) for t, m in self.uevents if t0 <= t <= t1],
                [(round(t - t0, 3), "mount table changed") for t in self.mount_changes if t0 <= t <= t1])

    def close(self):
        self._stop = True
        self.thread.join()
        self.sock.close()
        self.mountinfo.close()


# ---- reporting ----------------------------------------------------------------------------------


def machine_info():
    model = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    with open("/proc/meminfo") as f:
        mem_kib = int(f.readline().split()[1])
    return {"cpu": model, "cpus": os.cpu_count(), "kernel": platform.release(), "memory_gib": round(mem_kib / 2**20, 1),
            "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "hostname": platform.node()}


def load_info():
    """The load average and the QEMU guests running beside us: what made the numbers noisy."""
    with open("/proc/loadavg") as f:
        load = [float(x) for x in f.read().split()[:3]]
    qemu = 0
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                with open(f"/proc/{pid}/comm") as f:
                    qemu += f.read().startswith("qemu-system")
            except OSError:
                pass
    return {"loadavg": load, "qemu_processes": qemu}


def percentile(values, p):
    """Nearest-rank percentile: the smallest value with at least p% of the values at or below it."""
    s = sorted(values)
    if not s:
        return float("nan")
    return s[max(0, math.ceil(p / 100.0 * len(s)) - 1)]


def median(values):
    s = sorted(values)
    n = len(s)
    if n == 0:
        return float("nan")
    return s[n // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) / 2


def markdown_table(headers, rows):
    out = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    out += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(out)


def save(results_dir, name, data, table_md):
    """results/<name>.json (everything, raw samples included) and results/<name>.md (the table)."""
    os.makedirs(results_dir, exist_ok=True)
    with open(os.path.join(results_dir, name + ".json"), "w") as f:
        json.dump(data, f, indent=1)
        f.write("\n")
    m = data["machine"]
    load = data.get("load", {})
    with open(os.path.join(results_dir, name + ".md"), "w") as f:
        f.write(f"# {name}\n\n{m['date']}, {m['cpu']} x{m['cpus']}, kernel {m['kernel']}")
        if load:
            f.write(f"; load {load['start']['loadavg'][0]:.2f} -> {load['end']['loadavg'][0]:.2f}, "
                    f"{load['end']['qemu_processes']} QEMU guests running at the end")
        f.write(f"\n\n{table_md}\n")
    print(table_md)
    print(f"\nsaved {os.path.join(results_dir, name)}.json and .md")


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "tree-usage":
        sys.exit(_tree_usage_main(sys.argv[2:]))
    print("usage: benchlib.py tree-usage SECONDS -- COMMAND...", file=sys.stderr)
    sys.exit(2)
