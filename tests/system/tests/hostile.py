#!/usr/bin/python3
"""Hostile input against the real lvkeeperd on the system bus (issue 10); run by hostile.sh in the lab.

Every method and property of org.lvkeeper.Keeper1, as root, as nobody (setpriv) and as uid 0 in a
user namespace that nobody made (setpriv + unshare -U -r), with option-injection strings,
traversal paths, giant, negative and overflowing sizes, empty and multi-MiB strings, wrong types.

It asserts:
- every error is named: org.lvkeeper.Keeper1.Error.<Kind> other than the catch-all Failed, or the
  bus's standard InvalidArgs for a wrong signature (UnknownProperty/UnknownInterface/
  PropertyReadOnly for a misused Properties interface);
- every mutating call of a caller other than root is AccessDenied; reads work for everyone;
- no call times out (NoReply), the daemon keeps its pid and never restarts;
- lvs, pvs, losetup -l and the image directory are the same before and after;
- the contracts: Repair answers one result per id, in order; a size that overflows is
  InvalidArgument; a caller's quote or newline never starts a log line of its own; no log line
  carries a multi-MiB string.
Each failed check is printed with the calls that broke it; the exit status is 1 if any did.
"""
import ctypes
import json
import os
import subprocess
import sys
import time

BUS = "org.lvkeeper.Keeper1"
PATH = "/org/lvkeeper/Keeper1"
VOL = "/org/lvkeeper/Keeper1/volumes/data"
MGR = "org.lvkeeper.Keeper1.Manager"
VOL_IF = "org.lvkeeper.Keeper1.Volume"
PROPS = "org.freedesktop.DBus.Properties"
ERR = "org.lvkeeper.Keeper1.Error."
NOBODY = 65534
MIB4 = 4 << 20
BIG = f"@@BIG:{MIB4}@@"  # made in the worker: JSON stays small
TIMEOUT = 60

# Strings that must never be taken as options, paths outside, or code.
HOSTILE = [
    "", " ", "-", "--", "-h", "--help", "--yes", "-y", "-f", "--force", "-ff", "--config=/etc/shadow",
    "--reportformat=json", "-L+1G", "--size=1G", "vg0 --yes", "vg0;reboot", "$(reboot)", "`id`", "|id",
    "&& id", "vg0\nvg1", "\t", "\r\n", 'a"b', "a'b", "a\\b", "%s%s%s%n", "{}", "${HOME}",
    "../../etc/passwd", "/data/../etc", "/../../../../etc/shadow", "/dev/sda", "/dev/vda",
    "/dev/mapper/control", "/dev/loop-control", "/proc/self/mem", "/media/disk0.img", "/media/../etc",
    "vg0/../vg0", "vg0/data0/../x", "@vg0", "vg0@host", "VG0", "vg0 ", " vg0", "vg0/", "/vg0",
    "\u00fcn\u00efc\u00f8d\u00e9", "\u202egnp.exe", "\U0001f4a3", "x" * 4096, BIG,
    'forged" event=FORGED volume=/data\nevent=FORGED to=1T',
]
# Names of the real volume and group, written otherwise: paired only with sizes that change nothing.
ALIASES = ["/data", "/data/", "//data", "/data/.", "vg0/data0", "/dev/vg0/data0", "/dev/mapper/vg0-data0"]
# Sizes no grow or new disk may come of: invalid, negative, overflowing, or far beyond any VG and host.
BAD_SIZES = [
    "-1", "-1G", "+-1", "+-1G", "-0", "4X", "1e9", "0x10", "1.5.5G", "1G1G", " 1G", "1G ", "1 G", "G",
    "+", "++1G", "NaN", "inf", "-inf", "--size=1G", "-L+1G", "1G --yes", "1G;reboot", "$(echo 1G)",
    "18446744073709551615", "18446744073709551616", "18446744073708503040", "9223372036854775807",
    "9223372036854775808", "+18446744073709551615", "+9223372036854775808", "99999999999999999999999999T",
    "16E", "17179869184G", "1Z", "1Y", "100T", "+100T", BIG,
]
# Sizes that are fine for Grow but change nothing: a target already reached.
NOOP_GROW = ["0", "1", "+0", "1M"]
# Tiny images AddDisk may try; too small for a PV, so nothing may stay.
TINY_DISK = ["0", "1", "512"]


def call_specs(root):
    """(interface, path, member, signature, args, kind): kind says what the call may do."""
    calls = []
    mutating = "mutating"
    # Grow: every hostile name with a size that changes nothing even if the name were taken (root), or
    # that would grow (others, who must be refused whatever they send); every bad size on /data.
    for v in HOSTILE + ALIASES:
        for s in (["0", "4X"] if root or v in ALIASES else ["", "+1G"]):
            calls.append((MGR, PATH, "Grow", "ss", [v, s], mutating))
    for s in BAD_SIZES + NOOP_GROW:
        calls.append((MGR, PATH, "Grow", "ss", ["/data", s], mutating))
    # AddDisk: the same for volume group names; every bad or tiny size on vg0.
    for g in HOSTILE:
        for s in (["4X", "100T"] if root else ["", "200M"]):
            calls.append((MGR, PATH, "AddDisk", "ss", [g, s], mutating))
    for s in BAD_SIZES + TINY_DISK + ([] if root else ["", "200M"]):
        calls.append((MGR, PATH, "AddDisk", "ss", ["vg0", s], mutating))
    # Remount
    for v in HOSTILE + ALIASES:
        calls.append((MGR, PATH, "Remount", "s", [v], mutating))
    # Repair: never [] for root (every safe fix: a real admin action, not hostile input).
    repairs = [[""], ["zzz1", "zzz2", "zzz3"], [f"unknown-{i}" for i in range(200)], ["read-only:/data"],
               ["../../x"], ["--all"], [BIG], HOSTILE[:20], ["vg-low:vg9", "vg-low:vg9"], ["read-only:/nope"]]
    if not root:
        # Real fixes too: others must be refused before anything is looked at.
        repairs += [[], ["vg-low:vg0"]]
    for ids in repairs:
        calls.append((MGR, PATH, "Repair", "as", [ids], mutating))
    # Reads
    calls.append((MGR, PATH, "Diagnose", "", [], "read"))
    for p in ("Version", "CurrentJob", "Progress"):
        calls.append((PROPS, PATH, "Get", "ss", [MGR, p], "read"))
    calls.append((PROPS, PATH, "GetAll", "s", [MGR], "read"))
    for p in ("MountPoint", "Device", "VolumeGroup", "LogicalVolume", "Filesystem", "Size", "LogicalVolumeSize",
              "Used", "Available", "UsedPercent", "InodesUsedPercent", "ReadOnly", "FilesystemErrors", "Mounted",
              "GrowAt", "GrowStep", "MaxSize", "AutoGrow", "VolumeGroupFree", "State", "LastError", "FillRate",
              "TimeToFull", "LastGrowDuration"):
        calls.append((PROPS, VOL, "Get", "ss", [VOL_IF, p], "read"))
    calls.append((PROPS, VOL, "GetAll", "s", [VOL_IF], "read"))
    calls.append(("org.freedesktop.DBus.ObjectManager", PATH, "GetManagedObjects", "", [], "read"))
    calls.append(("org.freedesktop.DBus.Introspectable", PATH, "Introspect", "", [], "read"))
    # Misused Properties: unknown names, a write to a read-only property.
    for args, sig in (([VOL_IF, "NoSuchProperty"], "ss"), (["no.such.Interface", "Size"], "ss"), ([VOL_IF, BIG], "ss"),
                      ([VOL_IF, "Size", 1], "ssv"), ([MGR, "Version", "x"], "ssv")):
        calls.append((PROPS, VOL, "Set" if sig == "ssv" else "Get", sig, args, "props"))
    # Wrong types: the bus's InvalidArgs, before anything else.
    for member, sig, args in (("Grow", "ii", [1, 2]), ("Grow", "s", ["/data"]), ("Grow", "sss", ["/data", "", ""]),
                              ("Grow", "st", ["/data", 1 << 40]), ("AddDisk", "as", [["vg0", ""]]),
                              ("AddDisk", "", []), ("Remount", "i", [1]), ("Remount", "ss", ["/data", "x"]),
                              ("Repair", "s", ["read-only:/data"]), ("Repair", "ai", [[1, 2]]),
                              ("Diagnose", "s", ["x"])):
        calls.append((MGR, PATH, member, sig, args, "wrong-type"))
    return calls


def expand(value):
    if isinstance(value, str):
        return "x" * MIB4 if value == BIG else value
    if isinstance(value, list):
        return [expand(v) for v in value]
    return value


def short(value, n=60):
    text = json.dumps(value, ensure_ascii=True)
    text = text.replace(json.dumps("x" * MIB4)[1:-1], "<4 MiB of x>")
    return text if len(text) <= n else text[:n] + "..."


class SdBus:
    """The few sd-bus calls the worker needs, through ctypes: libdbus (dbus-send, dbus-python) cannot
    authenticate from a user namespace (it claims uid 0 in EXTERNAL), sd-bus can."""

    class Error(ctypes.Structure):
        _fields_ = [("name", ctypes.c_char_p), ("message", ctypes.c_char_p), ("need_free", ctypes.c_int)]

    def __init__(self):
        self.lib = lib = ctypes.CDLL("libsystemd.so.0", use_errno=True)
        vp, cp, c = ctypes.c_void_p, ctypes.c_char_p, ctypes.c_char
        lib.sd_bus_open_system.argtypes = [ctypes.POINTER(vp)]
        lib.sd_bus_message_new_method_call.argtypes = [vp, ctypes.POINTER(vp), cp, cp, cp, cp]
        lib.sd_bus_message_append_basic.argtypes = [vp, c, vp]
        lib.sd_bus_message_open_container.argtypes = [vp, c, cp]
        lib.sd_bus_message_close_container.argtypes = [vp]
        lib.sd_bus_message_enter_container.argtypes = [vp, c, cp]
        lib.sd_bus_message_exit_container.argtypes = [vp]
        lib.sd_bus_message_read_basic.argtypes = [vp, c, vp]
        lib.sd_bus_call.argtypes = [vp, vp, ctypes.c_uint64, ctypes.POINTER(SdBus.Error), ctypes.POINTER(vp)]
        lib.sd_bus_message_unref.argtypes = [vp]
        lib.sd_bus_message_unref.restype = vp
        lib.sd_bus_error_free.argtypes = [ctypes.POINTER(SdBus.Error)]
        lib.sd_bus_get_unique_name.argtypes = [vp, ctypes.POINTER(cp)]
        self.bus = vp()
        r = lib.sd_bus_open_system(ctypes.byref(self.bus))
        if r < 0:
            raise OSError(-r, "sd_bus_open_system")

    def _append(self, m, sig, value):
        r = self._append1(m, sig, value)
        if r is not None and r < 0:
            raise OSError(-r, f"append {sig}")

    def _append1(self, m, sig, value):
        lib = self.lib
        if sig == "s":
            return lib.sd_bus_message_append_basic(m, b"s", ctypes.cast(ctypes.c_char_p(value.encode()), ctypes.c_void_p))
        elif sig == "i":
            return lib.sd_bus_message_append_basic(m, b"i", ctypes.cast(ctypes.pointer(ctypes.c_int32(value)),
                                                                        ctypes.c_void_p))
        elif sig == "t":
            return lib.sd_bus_message_append_basic(m, b"t", ctypes.cast(ctypes.pointer(ctypes.c_uint64(value)),
                                                                        ctypes.c_void_p))
        elif sig in ("as", "ai"):
            lib.sd_bus_message_open_container(m, b"a", sig[1].encode())
            for v in value:
                self._append(m, sig[1], v)
            lib.sd_bus_message_close_container(m)
        elif sig == "v":
            inner = "t" if isinstance(value, int) else "s"
            lib.sd_bus_message_open_container(m, b"v", inner.encode())
            self._append(m, inner, value)
            lib.sd_bus_message_close_container(m)
        else:
            raise ValueError(sig)

    def call(self, dest, path, iface, member, sig, args, read=None):
        """(None, reply) or (error name, message); read(reply) parses what the caller wants."""
        lib = self.lib
        m = ctypes.c_void_p()
        r = lib.sd_bus_message_new_method_call(self.bus, ctypes.byref(m), dest.encode(), path.encode(), iface.encode(),
                                               member.encode())
        if r < 0:
            raise OSError(-r, "sd_bus_message_new_method_call")
        for part, value in zip(split_signature(sig), args):
            self._append(m, part, value)
        error = SdBus.Error()
        reply = ctypes.c_void_p()
        r = lib.sd_bus_call(self.bus, m, TIMEOUT * 1000000, ctypes.byref(error), ctypes.byref(reply))
        lib.sd_bus_message_unref(m)
        try:
            if r < 0:
                name = error.name.decode() if error.name else f"errno {-r}"
                return name, (error.message or b"").decode(errors="replace")
            return None, read(reply) if read else None
        finally:
            lib.sd_bus_error_free(ctypes.byref(error))
            if reply:
                lib.sd_bus_message_unref(reply)

    def read_string(self, m):
        p = ctypes.c_char_p()
        self.lib.sd_bus_message_read_basic(m, b"s", ctypes.byref(p))
        return p.value.decode(errors="replace")

    def read_uint(self, m):
        v = ctypes.c_uint32()
        self.lib.sd_bus_message_read_basic(m, b"u", ctypes.byref(v))
        return v.value

    def read_pairs(self, m):
        """a(ss)"""
        lib, out = self.lib, []
        if lib.sd_bus_message_enter_container(m, b"a", b"(ss)") <= 0:
            return out
        while lib.sd_bus_message_enter_container(m, b"r", b"ss") > 0:
            out.append((self.read_string(m), self.read_string(m)))
            lib.sd_bus_message_exit_container(m)
        lib.sd_bus_message_exit_container(m)
        return out

    def unique_name(self):
        p = ctypes.c_char_p()
        self.lib.sd_bus_get_unique_name(self.bus, ctypes.byref(p))
        return p.value.decode()


def split_signature(sig):
    """The complete types of a signature made of s, i, t, v, as, ai."""
    parts, i = [], 0
    while i < len(sig):
        n = 2 if sig[i] == "a" else 1
        parts.append(sig[i:i + n])
        i += n
    return parts


def worker(cases_path, out_path):
    """Runs the calls as whoever runs it; writes one outcome per call."""
    bus = SdBus()
    _, uid = bus.call("org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus", "GetConnectionUnixUser",
                      "s", [bus.unique_name()], bus.read_uint)
    out = {"uid_here": os.getuid(), "uid_bus": uid, "results": []}
    for iface, path, member, sig, args, kind in json.load(open(cases_path)):
        args = expand(args)
        start = time.monotonic()
        reader = bus.read_pairs if member == "Repair" and sig == "as" else None
        name, reply = bus.call(BUS, path, iface, member, sig, args, reader)
        if name is None:
            outcome = {"ok": True}
            if reader:
                outcome["ids"] = [r[0] for r in reply]
                outcome["texts"] = [r[1][:80] for r in reply]
        else:
            outcome = {"ok": False, "error": name, "message": reply[:300]}
        outcome["ms"] = round((time.monotonic() - start) * 1000)
        out["results"].append(outcome)
    with open(out_path, "w") as f:
        json.dump(out, f)


def sh(*argv):
    return subprocess.run(argv, capture_output=True, text=True).stdout


def snapshot(image_dir):
    listing = []
    for name in sorted(os.listdir(image_dir)):
        st = os.lstat(os.path.join(image_dir, name))
        listing.append(f"{name} {oct(st.st_mode)} {st.st_uid} {st.st_size}")
    return {
        "lvs": sh("lvs", "--noheadings", "--units", "b", "-o", "vg_name,lv_name,lv_size,lv_attr"),
        "pvs": sh("pvs", "--noheadings", "--units", "b", "-o", "pv_name,vg_name,pv_size,pv_free,pv_attr"),
        "losetup": sh("losetup", "-l", "-n", "-O", "NAME,BACK-FILE,RO,SIZELIMIT,OFFSET"),
        "images": "\n".join(listing),
    }


def daemon_pid():
    return sh("systemctl", "show", "-p", "MainPID", "-p", "NRestarts", "--value", "lvkeeperd").split()


def run_as(identity, cases, workdir, script):
    cases_path = os.path.join(workdir, f"cases-{identity}.json")
    out_path = os.path.join(workdir, f"out-{identity}.json")
    with open(cases_path, "w") as f:
        json.dump(cases, f)
    os.chmod(cases_path, 0o644)
    base = ["/usr/bin/python3", script, "--worker", cases_path, out_path]
    drop = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"]
    argv = {"root": base, "nobody": drop + base, "userns-root": drop + ["unshare", "--user", "--map-root-user"] + base}
    start = time.monotonic()
    r = subprocess.run(argv[identity], capture_output=True, text=True)
    took = time.monotonic() - start
    if r.returncode != 0:
        return None, f"worker as {identity} failed ({r.returncode}): {r.stderr[-2000:]}", took
    return json.load(open(out_path)), None, took


def main():
    if len(sys.argv) == 4 and sys.argv[1] == "--worker":
        worker(sys.argv[2], sys.argv[3])
        return 0
    image_dir = sys.argv[1] if len(sys.argv) > 1 else "/media"
    workdir = "/run/hostile"
    os.makedirs(workdir, exist_ok=True)
    os.chmod(workdir, 0o1777)
    script = os.path.abspath(__file__)

    failures = {}

    def check(name, ok, detail=""):
        if not ok:
            failures.setdefault(name, []).append(detail)

    pid_before = daemon_pid()
    before = snapshot(image_dir)
    cursor = sh("journalctl", "-n", "0", "--show-cursor", "--no-pager").strip().rsplit("cursor: ", 1)[-1]
    total = 0
    for identity in ("root", "nobody", "userns-root"):
        root = identity == "root"
        cases = call_specs(root)
        out, error, took = run_as(identity, cases, workdir, script)
        if error:
            check("every identity could run its calls", False, error)
            continue
        total += len(cases)
        counts = {}
        for (iface, path, member, sig, args, kind), res in zip(cases, out["results"]):
            what = f"{identity} {member}({short(args)})"
            name = "ok" if res["ok"] else res["error"]
            counts[name] = counts.get(name, 0) + 1
            check("no call times out", name not in ("org.freedesktop.DBus.Error.NoReply",
                                                    "org.freedesktop.DBus.Error.Timeout"), f"{what}: {res}")
            if not res["ok"]:
                if kind == "wrong-type":
                    check("a wrong signature is the bus's InvalidArgs", name == "org.freedesktop.DBus.Error.InvalidArgs",
                          f"{what}: {name}: {res['message']}")
                elif kind == "props":
                    check("a misused Properties interface gets a standard named error",
                          name in ("org.freedesktop.DBus.Error.UnknownProperty",
                                   "org.freedesktop.DBus.Error.UnknownInterface",
                                   "org.freedesktop.DBus.Error.PropertyReadOnly",
                                   "org.freedesktop.DBus.Error.InvalidArgs"), f"{what}: {name}")
                else:
                    check("every error is a named org.lvkeeper.Keeper1.Error (not the catch-all Failed)",
                          name.startswith(ERR) and name != ERR + "Failed", f"{what}: {name}: {res['message']}")
            if kind == "wrong-type":
                check("a wrong signature is refused", not res["ok"], what)
            if kind == "read":
                check("reads work for everyone", res["ok"], f"{what}: {res}")
            if kind == "mutating" and not root:
                check(f"every mutating call of {identity} is AccessDenied", name == ERR + "AccessDenied",
                      f"{what}: {name} {res.get('message', res.get('reply', ''))}")
            if kind == "mutating" and root and member == "Repair":
                ids = args[0]
                check("Repair answers one result per id, in order",
                      res["ok"] and res["ids"] == [expand(i) for i in ids],
                      f"{what}: {len(ids)} ids -> {len(res.get('ids', []))} results "
                      f"{res.get('ids', [])[:3]} {res.get('texts', [])[:3]}")
            if kind == "mutating" and root and member == "AddDisk" and args == ["vg0", "18446744073708503040"]:
                check("a size that overflows is InvalidArgument", name == ERR + "InvalidArgument",
                      f"{what}: {name}: {res.get('message', '')}")
        slow = max(r["ms"] for r in out["results"])
        print(f"{identity}: {len(cases)} calls in {took:.1f} s (slowest {slow} ms); process uid {out['uid_here']}, "
              f"bus says uid {out['uid_bus']}; outcomes: " +
              ", ".join(f"{k.replace(ERR, 'Error.')} {v}" for k, v in sorted(counts.items())))
        if identity != "root":
            check("the bus knows a non-root caller as non-root", out["uid_bus"] == NOBODY, f"{identity}: {out}")

    pid_after = daemon_pid()
    check("the daemon keeps its pid and never restarts", pid_before == pid_after, f"{pid_before} -> {pid_after}")
    after = snapshot(image_dir)
    for key in before:
        check(f"{key} unchanged", before[key] == after[key], f"before:\n{before[key]}\nafter:\n{after[key]}")

    log = subprocess.run(["journalctl", "-u", "lvkeeperd", "-o", "cat", "--no-pager", "--after-cursor", cursor],
                         capture_output=True, text=True, errors="replace").stdout.splitlines()
    forged = [l for l in log if l.startswith("event=FORGED")]
    check("a caller's newline never starts a log line", not forged, "\n".join(forged[:5]))
    longest = max((len(l) for l in log), default=0)
    check("no log line carries a multi-MiB string", longest < 64 << 10,
          f"longest lvkeeperd log line: {longest} bytes: {next(l for l in log if len(l) == longest)[:200]}...")
    print(f"{total} calls; lvkeeperd logged {len(log)} lines, the longest {longest} bytes")

    if failures:
        for name, details in failures.items():
            print(f"FAIL: {name}: {len(details)} call(s)")
            for d in details[:8]:
                print("    " + d.replace("\n", "\n    "))
            if len(details) > 8:
                print(f"    ... and {len(details) - 8} more")
        return 1
    print("PASS: hostile input: every error named, no timeout, same pid, state unchanged")
    return 0


if __name__ == "__main__":
    sys.exit(main())
