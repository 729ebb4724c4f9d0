"""The fuzzer's entry points: one generator per way in (issue 16).

ENTRIES is the table: NAME -> (weight, generator).  A generator takes a
seeded Random and the Context and returns a Case (fuzz_engine.Case).  A new
way in — jail.conf, rctl rules, an OCI runtime — is one function and one
line in ENTRIES; the oracle, the stdio states, Ctrl-C and the leak check
apply to it unchanged.

Safety, whatever the dice say:
- every command runs with a private LINJAIL_STATE_DIR and LINJAIL_VARRUN
  (Context): it sees, stops, removes and reconfigures only the fuzzer's own
  jails and knobs; LINJAIL_STATE_DIR is never set empty (the default);
- jails are started only from the fuzzer's service root (a 0700 directory in
  /var/tmp), with addresses from 198.51.100.210-219 / 2001:db8::f:210-219 or
  none; any other valid address a hostile list might spell is replaced by an
  invalid one; jails run `exit N` or a short sleep;
- builds, destroys and fstab sources stay below the case's own directory;
  `--complete` (debootstrap, the network) is never generated; rc verbs always
  get `-f FILE` (never the host's /etc/rc.conf).
"""
from __future__ import annotations

import io
import ipaddress
import json
import os
import random
import tarfile
from dataclasses import dataclass
from typing import Callable

from fuzz_engine import Case

BB = b"/usr/bin/busybox"

HOSTILE: list[bytes] = [
    b"", b"-", b"--", b" ", b"\n", b"\t", b"x" * 5000, b"9" * 5000, b"0" * 5000 + b"1",
    b"\xff\xfe", b"a\xc3", b"\x1b[2J", b"%s%n%s", b"../../..", b"/", b"//", b"/dev/null",
    b"/proc/self/fd/0", b"-1", b"4294967295", b"4294967296", b"0", b"999999", b"2147483648",
    b"-2147483649", b"1e9", b"nan", b"inf", b"\xe2\x80\x8b", "\u00fc".encode(),
    "\u0661".encode(), b"a=b", b"=", b"$(id)", b"`id`", b"'", b'"', b"\\", b"a,b", b",,,",
    b"::", b"0x10", b"+1", b"007", b" 7", b"7 ", b"\x7f", b"a:b", b"#", b";", b"*", b"?",
    b"{}", b"[", b"]" * 3, b"\x01\x02", b"A" * 300,
]
USERS = [b"root", b"nobody", b"daemon", b"fz-nosuch", b"neg", b"max", b"bad\xff"]
KNOBS = [b"set_hostname_allowed", b"socket_unixiproute_only", b"sysvipc_allowed",
         b"enforce_statfs", b"allow_raw_sockets", b"chflags_allowed"]
FUZZ_V4 = [f"198.51.100.{i}" for i in range(210, 220)]
FUZZ_V6 = [f"2001:db8::f:{i}" for i in range(210, 220)]
#: the fuzzer's service root gets these users (item 5's hostile ids)
PASSWD_EXTRA = b"neg:x:-1:-1::/:/bin/sh\nmax:x:4294967295:0::/:/bin/sh\n"


@dataclass
class Context:
    """What the generators may use (filled in by the test's fixtures)."""
    root: bytes             # a service root (jailctl build --service sh busybox)
    live_jid: int           # a running jail of the private registry (jexec's target)
    seed: str


Generator = Callable[[random.Random, Context], Case]


def pick(rnd: random.Random, *pools: list[bytes]) -> bytes:
    return rnd.choice(rnd.choice(pools))


def safe_ips(text: bytes) -> bytes:
    """TEXT, with every element that is a valid address outside the fuzzer's
    ranges replaced by an invalid one (SPEC §10: never another network)."""
    out = []
    for elem in text.split(b","):
        try:
            addr = ipaddress.ip_address(elem.decode("ascii"))
        except (ValueError, UnicodeDecodeError):
            out.append(elem)
            continue
        if str(addr) in FUZZ_V4 or str(addr) in FUZZ_V6:
            out.append(elem)
        else:
            out.append(b"999." + elem)
    return b",".join(out)


def safe_root(path: bytes, ctx: Context) -> bytes:
    """PATH as a jail root, unless it could name a real directory other than
    the fuzzer's root: absolute paths, and relative ones that climb (`..`),
    become /nonexistent.  (Relative names resolve in the case's directory.)"""
    if path in (ctx.root, ctx.root + b"/"):
        return path
    if path.startswith(b"/") and os.path.lexists(path) or b".." in path or \
            path.strip(b"/ ") in (b"", b".") and path != b"":
        return b"/nonexistent"
    return path


def below_case(path: bytes, default: bytes) -> bytes:
    """PATH if it stays inside the case's directory, else DEFAULT."""
    if path.startswith(b"/") or b".." in path or path.strip(b"/ .") == b"" and path != b"":
        return default
    return path


def ip_list(rnd: random.Random) -> bytes:
    return safe_ips(rnd.choice([
        b"", rnd.choice(FUZZ_V4).encode(), rnd.choice(FUZZ_V6).encode(),
        f"{rnd.choice(FUZZ_V4)},{rnd.choice(FUZZ_V6)}".encode(), b",,",
        b"198.51.100.210/32", b"198.51.100.256", b"198.51.100", b"1.2.3.4", b"::1",
        b"198.51.100.210,198.51.100.210", b"fe80::1%eth0", pick(rnd, HOSTILE),
        b"\xff", b" 198.51.100.211",
    ]))


def jail_command(rnd: random.Random) -> tuple[list[bytes], int]:
    """A command for a jail or jexec, and the status it ends with."""
    n = rnd.choice([0, 0, 0, 5])
    return rnd.choice([
        ([b"/bin/sh", b"-c", b"exit %d" % n], n),
        ([b"/bin/sh", b"-c", b"exit %d" % n, pick(rnd, HOSTILE)], n),
        ([b"/bin/sh", b"-c", b"exit 0 #" + pick(rnd, HOSTILE)], 0),
        ([b"/nonexistent"], 0), ([b"/"], 0), ([b"/etc"], 0), ([b""], 0),
        ([pick(rnd, HOSTILE)], 0), ([b"/bin/sh\xff"], 0), ([b"/dev/null"], 0),
    ])


def options(rnd: random.Random, spec: list[list[bytes]]) -> list[bytes]:
    out: list[bytes] = []
    for _ in range(rnd.choice([0, 0, 1, 1, 2, 3])):
        out += [a if a != b"USER" else rnd.choice(USERS + HOSTILE[:5])
                for a in rnd.choice(spec)]
    return out


# --- the four commands' command lines -------------------------------------------------

def gen_jail(rnd: random.Random, ctx: Context) -> Case:
    opts = options(rnd, [[b"-i"], [b"-l"], [b"-u", b"USER"], [b"-U", b"USER"], [b"-x"],
                         [b"-u"], [b"--"], [b"-il"], [b"-Uroot"]])
    path = safe_root(rnd.choice([ctx.root] * 4 + [
        ctx.root + b"/", b"nonexistent", b"", b"/dev/null", ctx.root + b"/etc/passwd",
        b"relative", pick(rnd, HOSTILE)]), ctx)
    host = rnd.choice([b"fz-h", b"fz-h", b"", b"a" * 64, b"a" * 65, b"fz\x1b[2J",
                       pick(rnd, HOSTILE)])
    command, status = jail_command(rnd)
    rest = [path, host, ip_list(rnd), *command][:rnd.choice([0, 1, 2, 3, 4, 9, 9, 9, 9])]
    return Case("jail", [b"jail", *opts, *rest], status=status, starts_jails=True,
                timeout=15)


def gen_jls(rnd: random.Random, ctx: Context) -> Case:
    args = [rnd.choice([b"-v", b"--json", b"-x", b"--", b"-vv", b"--version",
                        pick(rnd, HOSTILE)]) for _ in range(rnd.choice([0, 0, 1, 2]))]
    return Case("jls", [b"jls", *args])


def gen_jexec(rnd: random.Random, ctx: Context) -> Case:
    opts = options(rnd, [[b"-u", b"USER"], [b"-U", b"USER"], [b"-x"], [b"--"], [b"-u"]])
    live = str(ctx.live_jid).encode()
    jid = rnd.choice([live] * 4 + [b"0", b"-1", b"9" * 5000, b"", b"fz_name", b"abc",
                                   live + b"x", b" " + live, b"0" * 50 + live,
                                   pick(rnd, HOSTILE)])
    command, status = jail_command(rnd)
    rest = [jid, *command][:rnd.choice([0, 1, 9, 9, 9])]
    return Case("jexec", [b"jexec", *opts, *rest], status=status, starts_jails=False)


def gen_jailctl(rnd: random.Random, ctx: Context) -> Case:
    verb = rnd.choice([b"remove", b"sysctl", b"build", b"destroy", b"status", b"start",
                       b"stop", b"onestatus", b"restart", b"help", b"", pick(rnd, HOSTILE)])
    args: list[bytes] = []
    if verb == b"remove":
        args = options(rnd, [[b"-t", rnd.choice([b"0.1", b"0", b"-1", b"nan", b"1e9",
                                                 pick(rnd, HOSTILE)])], [b"--"], [b"-x"]])
        args.append(rnd.choice([b"999999", b"0", b"9" * 5000, b"fz_none",
                                pick(rnd, HOSTILE)]))
    elif verb == b"sysctl":
        return gen_knob(rnd, ctx)
    elif verb == b"build":
        return gen_build_args(rnd, ctx)
    elif verb == b"destroy":
        target = below_case(rnd.choice([b"scratch/none", b"scratch", b"", b"scratch/file",
                                        pick(rnd, HOSTILE)]), b"scratch/none")
        return Case("jailctl", [b"jailctl", b"destroy", target],
                    files={"scratch/file": b"x\n"})
    elif verb in (b"status", b"start", b"stop", b"onestatus", b"restart"):
        return gen_rcconf(rnd, ctx, verb)
    else:
        args = [pick(rnd, HOSTILE) for _ in range(rnd.choice([0, 1, 2]))]
    return Case("jailctl", [b"jailctl", verb, *args])


def gen_knob(rnd: random.Random, ctx: Context) -> Case:
    """jailctl sysctl NAME[=VALUE]: the private registry's knobs only."""
    args = []
    for _ in range(rnd.choice([0, 1, 1, 2, 3])):
        knob = rnd.choice(KNOBS + [b"jailed", b"nosuch", pick(rnd, HOSTILE)])
        name = rnd.choice([b"jail." + knob, b"jail.defaults." + knob,
                           b"jail.%d." % ctx.live_jid + knob, b"jail.999999." + knob,
                           b"jail.9" + b"9" * 5000 + b"." + knob, b"jail",
                           pick(rnd, HOSTILE)])
        if rnd.random() < 0.6:
            name += b"=" + rnd.choice([b"0", b"1", b"2", b"3", b"01", b"1" * 5000,
                                       pick(rnd, HOSTILE)])
        args.append(name)
    return Case("knob", [b"jailctl", b"sysctl", *args])


def gen_rctl(rnd: random.Random, ctx: Context) -> Case:
    """rctl(8) (the private registry's jails and rules only)."""
    subject = rnd.choice([b"jail:%d" % ctx.live_jid, b"jail:fz_none", b"jail:",
                          b"jail:" + pick(rnd, HOSTILE), b"process:1", b"user:root",
                          pick(rnd, HOSTILE)])
    resource = rnd.choice([b"memoryuse", b"maxproc", b"openfiles", b"cputime", b"nosuch",
                           pick(rnd, HOSTILE)])
    action = rnd.choice([b"deny", b"log", b"sigkill", b"nosuch", pick(rnd, HOSTILE)])
    amount = rnd.choice([b"1g", b"100", b"9" * 5000, b"-1", b"1x", pick(rnd, HOSTILE)])
    rule = rnd.choice([subject + b":" + resource + b":" + action + b"=" + amount,
                       subject + b":" + resource, subject, pick(rnd, HOSTILE)])
    flag = rnd.choice([[b"-a"], [b"-r"], [b"-u"], [b"-l"], [b"-h"], [b"-n"], [], [b"-ar"],
                       [b"-x"]])
    case = Case("rctl", [b"rctl", *flag, rule][:rnd.choice([1, 2, 3, 3, 3])])
    if flag == [b"-a"]:
        case.cleanup.append([b"rctl", b"-r", rule])
    return case


# --- files -------------------------------------------------------------------------------

def rc_value(rnd: random.Random, good: list[bytes]) -> bytes:
    return rnd.choice(good * 3 + [pick(rnd, HOSTILE)])


def quote(rnd: random.Random, value: bytes) -> bytes:
    return rnd.choice([b'"' + value + b'"', b"'" + value + b"'", value, b'"' + value])


def gen_rcconf(rnd: random.Random, ctx: Context, verb: bytes | None = None) -> Case:
    """An rc.conf (and maybe an fstab) through jailctl VERB -f FILE."""
    names = rnd.sample([b"fza", b"fzb", b"fz_c", b"fz-d", b"\xff", b"a" * 200], rnd.choice([1, 2]))
    lines = [b"jail_enable=" + quote(rnd, rc_value(rnd, [b"YES", b"NO"]))]
    lines.append(b"jail_list=" + quote(rnd, b" ".join(names)))
    files: dict[str, bytes] = {}
    for name in names:
        v = b"jail_" + name + b"_"
        lines.append(v + b"rootdir=" + quote(rnd, safe_root(
            rc_value(rnd, [ctx.root, b"/nonexistent"]), ctx)))
        lines.append(v + b"hostname=" + quote(rnd, rc_value(rnd, [b"fz-" + name[:10]])))
        lines.append(v + b"ip=" + quote(rnd, safe_ips(rc_value(rnd, [
            rnd.choice(FUZZ_V4).encode(), rnd.choice(FUZZ_V6).encode()]))))
        if rnd.random() < 0.8:
            lines.append(v + b"exec_start=" + quote(rnd, rc_value(rnd, [
                b"/bin/sh -c 'exit 0'", b"/bin/sh -c '" + BB + b" sleep 3 </dev/null "
                b">/dev/null 2>&1 &'", b"/bin/sh -c 'exit 1'", b"/nonexistent"])))
        if rnd.random() < 0.3:
            lines.append(v + b"exec_stop=" + quote(rnd, rc_value(rnd, [b"/bin/sh -c 'exit 0'"])))
        if rnd.random() < 0.3:
            lines.append(v + b"flags=" + quote(rnd, rc_value(rnd, [
                b"-l -U root", b"-U nobody", b"-u nobody", b"-U neg", b"-U max", b"-x",
                b"-u", b"-l"])))
        for knob in (b"devfs_enable", b"procfs_enable", b"set_hostname_allow",
                     b"sysvipc_allow"):
            if rnd.random() < 0.15:
                lines.append(v + knob + b"=" + quote(rnd, rc_value(rnd, [b"YES", b"NO"])))
        if rnd.random() < 0.3:
            lines.append(v + b"consolelog=" + quote(rnd, below_case(rc_value(rnd, [
                b"console.log", b"fifo", b"dir"]), b"console.log")))
            files["dir/.keep"] = b""
        if rnd.random() < 0.35:
            lines.append(v + b"mount_enable=" + quote(rnd, rc_value(rnd, [b"YES"])))
            lines.append(v + b"fstab=" + quote(rnd, rc_value(rnd, [b"fstab"])))
            files["fstab"] = gen_fstab(rnd, ctx)
            files["src/.keep"] = b""
    for _ in range(rnd.choice([0, 0, 1, 3])):
        lines.insert(rnd.randrange(len(lines) + 1), rnd.choice([
            pick(rnd, HOSTILE), b"# " + pick(rnd, HOSTILE), b"x=$(id)", b"x=`id`",
            b"jail_fza_ip=", b"export x=1", b"x=1; y=2", b"\x00", b"x=\"unterminated",
            b"x=a\\", b"[", b"x=" + b"a" * 100000]))
    files["rc.conf"] = b"\n".join(lines) + rnd.choice([b"\n", b"", b"\\\n"])
    verb = verb or rnd.choice([b"start", b"status", b"stop", b"restart"])
    named = [n for n in names if rnd.random() < 0.5]
    case = Case("rcconf", [b"jailctl", verb, b"-f", b"rc.conf", *named], files=files,
                starts_jails=verb in (b"start", b"restart"), timeout=30)
    if "fstab" in files:
        case.entry = "fstab"
    case.cleanup.append([b"jailctl", b"stop", b"-f", b"rc.conf", *names])
    return case


def gen_fstab(rnd: random.Random, ctx: Context) -> bytes:
    """Sources are tmpfs or below the case's own directory; targets anything."""
    lines = []
    for _ in range(rnd.choice([1, 2, 3])):
        src = rnd.choice([b"tmpfs", b"@CASEDIR@/src", b"src", b"/nonexistent",
                          pick(rnd, HOSTILE)])
        if src not in (b"/nonexistent", b"@CASEDIR@/src"):
            src = below_case(src, b"src")
        tgt = ctx.root + rnd.choice([b"/tmp", b"/mnt", b"/etc", b"/../..", b"/nonexistent",
                                     b"/tmp/\\000", b"/tmp/\\377", b"/dev", b"/proc",
                                     b"/" + pick(rnd, HOSTILE)])
        kind = rnd.choice([b"tmpfs", b"nullfs", b"bind", b"ext4", pick(rnd, HOSTILE)])
        opts = rnd.choice([b"rw", b"ro", b"rw,size=1m", b"bind,ro", b"", pick(rnd, HOSTILE)])
        line = b" ".join([src, tgt, kind, opts, b"0", b"0"][:rnd.choice([2, 4, 6, 6, 6])])
        lines.append(line)
    return b"\n".join(lines) + b"\n"


def gen_thin(rnd: random.Random, ctx: Context) -> Case:
    """A hostile thin-jail description beside an empty root, through jail."""
    doc = rnd.choice([
        b"[" * rnd.choice([1000, 60000]),
        b'{"base": "' + rnd.choice([ctx.root, b"/", b"relative", b"/nonexistent",
                                     b"/tmp/a,b", b"/x\\u0000y", b"/x\\ud800",
                                     pick(rnd, HOSTILE).replace(b'"', b"")]) +
        b'", "top": "' + rnd.choice([b"@CASEDIR@/thin/r.layer"] * 3 + [
            b"/", pick(rnd, HOSTILE).replace(b'"', b"")]) +
        b'"}',
        json.dumps({"base": 1, "top": []}).encode(), b"null", b"", b"\xff\xfe",
        b'{"base": "' + b"a" * 70000 + b'"}', pick(rnd, HOSTILE),
    ])
    mode = rnd.choice([0o644, 0o644, 0o666, 0o600])
    # base: only the fuzzer's root can be a real directory (safe_root)
    doc = doc.replace(b'"base": "' + ctx.root + b'"', b'"base": "ROOT"')
    for word in (b"/", b"//"):
        doc = doc.replace(b'"base": "' + word + b'"', b'"base": "/nonexistent"')
    doc = doc.replace(b'"base": "ROOT"', b'"base": "' + ctx.root + b'"')
    return Case("thin", [b"jail", b"thin/r", b"fz-thin", b"", b"/bin/sh", b"-c", b"exit 0"],
                files={"thin/r/.keep": b"", "thin/r.linjail-thin": doc,
                       "thin/r.layer/upper/.keep": b"",
                       "thin/r.layer/work/.keep": b""},
                modes={"thin/r.linjail-thin": mode}, starts_jails=True, timeout=15)


def gen_tarball(rnd: random.Random, ctx: Context) -> Case:
    buf = io.BytesIO()
    fmt = rnd.choice([tarfile.PAX_FORMAT, tarfile.GNU_FORMAT, tarfile.USTAR_FORMAT])
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as t:
        for _ in range(rnd.choice([1, 2, 4, 8])):
            info = tarfile.TarInfo(rnd.choice([
                "etc/passwd", "bin", "bin/sh", "a/b/c", "../x", "/abs", "./", "link",
                "link/x", "dev/null", "x" * 300, "\u00fc", "a\udcff", "fifo",
            ]))
            info.type = rnd.choice([tarfile.REGTYPE] * 4 + [
                tarfile.DIRTYPE, tarfile.SYMTYPE, tarfile.LNKTYPE, tarfile.CHRTYPE,
                tarfile.FIFOTYPE, b"Z"])
            info.linkname = rnd.choice(["etc/passwd", "/etc/shadow", "../../x", "bin",
                                        "nosuch"])
            info.uid = rnd.choice([0, 0, 1000, -1, -2, 4294967295, 2**40])
            info.gid = rnd.choice([0, 0, 1000, -1, 4294967295])
            info.mode = rnd.choice([0o644, 0o755, 0o4755, 0o7777, 0])
            info.mtime = rnd.choice([0, 1700000000, -1, 10**30, 2**40])
            data = os.urandom(rnd.choice([0, 10, 5000]))
            info.size = len(data) if info.type == tarfile.REGTYPE else 0
            try:
                t.addfile(info, io.BytesIO(data) if info.size else None)
            except (ValueError, OverflowError, UnicodeError, tarfile.TarError):
                pass      # a value this format cannot hold: the member is left out
    raw = buf.getvalue()
    kind = rnd.choice(["", "gz", "xz", "bz2"])
    if kind == "gz":
        import gzip
        raw = gzip.compress(raw)
    elif kind == "xz":
        import lzma
        raw = lzma.compress(raw)
    elif kind == "bz2":
        import bz2
        raw = bz2.compress(raw)
    damage = rnd.choice(["", "", "cut", "flip", "garbage", "empty"])
    if damage == "cut":
        raw = raw[:rnd.randrange(1, max(2, len(raw)))]
    elif damage == "flip":
        data = bytearray(raw)
        for _ in range(rnd.choice([1, 8, 64])):
            i = rnd.randrange(len(data))
            data[i] ^= rnd.randrange(1, 256)
        raw = bytes(data)
    elif damage == "garbage":
        raw = os.urandom(rnd.choice([0, 100, 4096]))
    elif damage == "empty":
        raw = b""
    target = rnd.choice([b"scratch/root", b"scratch/root", b"scratch/existing"])
    files = {"archive": raw, "scratch/existing/.keep": b""}
    case = Case("tarball", [b"jailctl", b"build", target, b"--from-tar", b"archive"],
                files=files, timeout=30, note=f"({kind or 'plain'}, {damage or 'intact'})")
    if target == b"scratch/root":
        case.absent_on_failure.append("scratch/root")
    case.cleanup.append([b"jailctl", b"destroy", target])
    return case


def gen_build_args(rnd: random.Random, ctx: Context) -> Case:
    """jailctl build's command line (never --complete: that is debootstrap)."""
    path = below_case(rnd.choice([b"scratch/new", b"scratch/new", b"", b"scratch/file",
                                  b"-x", pick(rnd, HOSTILE)]), b"scratch/new")
    kind = rnd.choice([
        [b"--service", rnd.choice([b"/bin/sh", b"/nonexistent", b"/etc", b"scratch/file",
                                   pick(rnd, HOSTILE)])],
        [b"--thin", rnd.choice([ctx.root, b"/nonexistent", b"scratch/file", b"/",
                                pick(rnd, HOSTILE)])],
        [b"--from-tar", rnd.choice([b"scratch/file", b"/nonexistent", b"/etc", b"/dev/null",
                                    pick(rnd, HOSTILE)])],
        [b"--suite"], [b"--thin"], [b"--nosuch"], [],
    ])
    argv = [b"jailctl", b"build", path, *kind][:rnd.choice([2, 3, 9, 9, 9])]
    case = Case("jailctl", argv, files={"scratch/file": b"not an archive\n"}, timeout=30)
    case.absent_on_failure.append("scratch/new")
    case.cleanup.append([b"jailctl", b"destroy", path])
    return case


def gen_env(rnd: random.Random, ctx: Context) -> Case:
    """The environment: a state directory that is a file or unreachable, locales."""
    base = rnd.choice([gen_jls, gen_knob, gen_jexec])(rnd, ctx)
    base.entry = "env"
    choice = rnd.choice(["statefile", "statedeep", "locale", "statejunk"])
    if choice == "statefile":
        base.env[b"LINJAIL_STATE_DIR"] = b"file"
        base.files["file"] = b"a file\n"
    elif choice == "statedeep":
        base.env[b"LINJAIL_STATE_DIR"] = b"file/below"
        base.files["file"] = b"a file\n"
    elif choice == "statejunk":
        base.env[b"LINJAIL_STATE_DIR"] = b"junk"
        base.files["junk/jails/" + rnd.choice(["1", "x", "2.123.tmp"])] = \
            rnd.choice([b"", b"jid\t1\n", b"\xff" * 10, b"jid\t" + b"9" * 5000 + b"\n"])
        base.files["junk/jid"] = rnd.choice([b"", b"x y z", b"bootid 9" + b"9" * 5000])
        base.files["junk/knobs"] = rnd.choice([b"", b"sysvipc_allowed=7\n",
                                               b"sysvipc_allowed=" + b"9" * 5000 + b"\n"])
    else:
        base.env[b"LC_ALL"] = rnd.choice([b"C", b"POSIX", b"en_US.ISO-8859-1", b"xx_XX",
                                          b"C.UTF-8"])
    return base


#: jail.conf parameters the generator may set (never the exec.* that run on
#: the host, `interface` (the uplink) or ip_hostname (DNS))
CONF_KEYS = [b"host.hostname", b"exec.start", b"exec.stop", b"persist", b"nopersist",
             b"mount.devfs", b"mount.procfs", b"allow.set_hostname", b"allow.raw_sockets",
             b"allow.mount", b"allow.nosysvipc", b"exec.timeout", b"stop.timeout",
             b"exec.clean", b"exec.jail_user", b"depend", b"jid", b"name", b"securelevel",
             b"vnet", b"children.max", b"nosuch.param", b"ip4", b"enforce_statfs"]


def gen_jailconf(rnd: random.Random, ctx: Context) -> Case:
    """FreeBSD's jail.conf through `jail -f FILE -c|-r|-m NAME` (cli/jail_fbsd.py)."""
    name = rnd.choice([b"fzconf", b"fzconf", b"*", b"fz.a", b"1", pick(rnd, HOSTILE)])
    def q(value: bytes) -> bytes:          # mostly well quoted: get past the parser
        return quote(rnd, value) if rnd.random() < 0.15 else b'"' + value + b'"'
    body = [b"path = " + q(safe_root(rc_value(rnd, [ctx.root]), ctx)) + b";",
            b"host.hostname = " + q(rc_value(rnd, [b"fz-conf"])) + b";"]
    if rnd.random() < 0.7:
        body.append(rnd.choice([b"ip4.addr", b"ip6.addr", b"ip4.addr +"]) + b"= " +
                    safe_ips(rc_value(rnd, [rnd.choice(FUZZ_V4).encode(),
                                            rnd.choice(FUZZ_V6).encode()])) + b";")
    for _ in range(rnd.choice([0, 1, 2, 4])):
        key = rnd.choice(CONF_KEYS)
        value = rc_value(rnd, [b"\"/bin/sh -c 'exit 0'\"", b"1", b"0", b"true", b"root",
                               b"$x", b"${x}", b"\"$y\""])
        if key.startswith(b"exec.") and key not in (b"exec.start", b"exec.stop",
                                                      b"exec.timeout", b"exec.clean",
                                                      b"exec.jail_user"):
            continue
        body.append(key + rnd.choice([b" = " + value + b";"] * 4 + [
            b";", b" += " + value + b";", b" = " + value]))
    text = [b"$x = \"${y}\";", b"$y = " + rnd.choice([b"\"${x}\"", b"1"]) + b";"] \
        if rnd.random() < 0.2 else []
    text += [name + b" {", *body, rnd.choice([b"}"] * 6 + [b"", b"}}", b"{"])]
    for _ in range(rnd.choice([0, 0, 0, 1, 2])):
        text.insert(rnd.randrange(len(text) + 1), rnd.choice([
            pick(rnd, HOSTILE), b"# " + pick(rnd, HOSTILE), b"/* unterminated", b"// x",
            b".include \"inc/*.conf\";", b".include \"/nonexistent/*\";",
            b"\"" + b"a" * 70000 + b"\";", b"{" * 5000, b"*" + b" { persist; }"]))
    verb = rnd.choice([[b"-c"], [b"-c"], [b"-cm"], [b"-r"], [b"-m"], [b"-rc"], [b"-R"]])
    target = rnd.choice([[b"fzconf"], [b"fzconf"], [], [name]])
    files = {"jail.conf": b"\n".join(text) + b"\n",
             "inc/a.conf": rnd.choice([b"", b"fzconf { persist; }", pick(rnd, HOSTILE)])}
    case = Case("jailconf", [b"jail", b"-f", b"jail.conf", *verb, *target], files=files,
                starts_jails=True, timeout=30)
    case.cleanup.append([b"jail", b"-f", b"jail.conf", b"-r", b"fzconf"])
    if name != b"fzconf":
        case.cleanup.append([b"jail", b"-f", b"jail.conf", b"-r", name])
    return case


#: the table: NAME -> (weight, generator).  Add new ways in here.
ENTRIES: dict[str, tuple[int, Generator]] = {
    "jail": (14, gen_jail),
    "jls": (4, gen_jls),
    "jexec": (10, gen_jexec),
    "jailctl": (8, gen_jailctl),
    "knob": (6, gen_knob),
    "rcconf": (10, lambda rnd, ctx: gen_rcconf(rnd, ctx)),
    "thin": (5, gen_thin),
    "tarball": (8, gen_tarball),
    "env": (5, gen_env),
    "rctl": (4, gen_rctl),
    "jailconf": (6, gen_jailconf),
}

#: stdio states a case may get, per descriptor (fuzz_engine runs them)
STDIO = (("null", "closed", "dir", "epipe", "pipe"),
         ("closed", "full", "epipe", "dir", "nonblock"),
         ("closed", "full", "dir", "nonblock", "epipe"))


def generate(seed: str, index: int, ctx: Context, only: list[str] | None = None) -> Case:
    """Case INDEX of the run with SEED: the same seed gives the same cases.
    ONLY: the entry points to draw from (all of them by default)."""
    rnd = random.Random(f"{seed}:{index}")
    names = [n for n in ENTRIES if not only or n in only]
    name = rnd.choices(names, weights=[ENTRIES[n][0] for n in names])[0]
    case = ENTRIES[name][1](rnd, ctx)
    if rnd.random() < 0.3:                   # hostile stdio states: mostly one descriptor
        states = list(case.stdio)
        for fd in rnd.sample(range(3), rnd.choice([1, 1, 1, 2, 3])):
            states[fd] = rnd.choice(STDIO[fd])
        case.stdio = (states[0], states[1], states[2])
    if rnd.random() < 0.12:                  # Ctrl-C during start-up
        case.sigint = rnd.uniform(0.0, 0.15)
        case.sigint_group = rnd.random() < 0.5
    return case
