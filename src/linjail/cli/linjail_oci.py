"""linjail-oci(8): an OCI runtime with runc's command line (issue 14).

  linjail-oci [global options] COMMAND [command options] ARGS

Options are read as runc's command-line library reads them: `--name value`,
`--name=value` or a single dash, global ones before the command, the
command's own before its first argument.  Each option is declared once in
OPTIONS / GLOBAL (name, aliases, takes a value, help): the parser, --help,
the man page's test and the shell completion read that table.

Errors are one line on stderr (`linjail-oci: ...`), also written to --log
(as runc's JSON lines with --log-format json: containerd reads them back).
"""
from __future__ import annotations

import os
import sys

from ..errors import JailError, UsageError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Callable

PROG = "linjail-oci"

#: option: (aliases, takes a value ("" for a flag; ending in "..." it may be
#: given again, the values collected in order), help)
Option = tuple[tuple[str, ...], str, str]
#: options as read: a flag's bool, a value, or the values of a repeatable one
Opts = dict[str, str | bool | list[str]]

GLOBAL: dict[str, Option] = {
    "root": ((), "DIR", "the containers' state directory (default /run/linjail-oci)"),
    "log": ((), "FILE", "append error lines here as well"),
    "log-format": ((), "FORMAT", "text or json"),
    "debug": ((), "", "log what each command does"),
    "systemd-cgroup": ((), "", "refused: linjail manages cgroups itself"),
    "criu": ((), "PATH", "the criu checkpoint/restore would run (they are refused)"),
    "rootless": ((), "VALUE", "accepted as false only"),
    "help": (("h",), "", "show this help"),
    "version": (("v",), "", "print the version"),
}
#: update's flags: (linux.resources section, key, kind)
_UPDATE_FLAGS = {
    "memory": ("memory", "limit", "size"), "memory-swap": ("memory", "swap", "size"),
    "memory-reservation": ("memory", "reservation", "size"),
    "kernel-memory-tcp": ("memory", "kernelTCP", "size"),
    "pids-limit": ("pids", "limit", "int"), "cpu-shares": ("cpu", "shares", "int"),
    "cpu-share": ("cpu", "shares", "int"), "cpu-quota": ("cpu", "quota", "int"),
    "cpu-period": ("cpu", "period", "int"),
    "cpu-rt-period": ("cpu", "realtimePeriod", "int"),
    "cpu-rt-runtime": ("cpu", "realtimeRuntime", "int"),
    "cpuset-cpus": ("cpu", "cpus", "text"), "cpuset-mems": ("cpu", "mems", "text"),
    "blkio-weight": ("blockIO", "weight", "int"),
}
#: update's flags that runc has and no jail can take: the one line each says why
_UPDATE_REFUSED = {"l3-cache-schema": "Intel RDT is not supported",
                   "mem-bw-schema": "Intel RDT is not supported"}

def _criu_options(spec: str) -> dict[str, Option]:
    """checkpoint's and restore's options from NAME[=VALUE[=ALIAS]] words: runc's, accepted
    so that the command gets to say why it is refused."""
    out: dict[str, Option] = {}
    for word in spec.split():
        name, _, rest = word.partition("=")
        value, _, alias = rest.partition("=")
        out[name] = ((alias,) if alias else (), value, "runc's; the command is refused")
    return out


#: the options create, run and exec share
_PROCESS: dict[str, Option] = {
    "pid-file": ((), "FILE", "write the process's host PID here"),
    "console-socket": ((), "PATH", "a unix socket that receives the terminal's master"),
    "preserve-fds": ((), "N", "pass fds 3..3+N-1 (pipes and stream sockets)"),
}
_DETACH: Option = (("d",), "", "return once the process runs")
_CREATE: dict[str, Option] = {
    "bundle": (("b",), "DIR", "the bundle (config.json and the root), default ."),
    **_PROCESS,
    "no-pivot": ((), "", "accepted; a jail is always entered with pivot_root"),
    "no-new-keyring": ((), "", "accepted; a jail cannot use the kernel keyring"),
}
OPTIONS: dict[str, dict[str, Option]] = {
    "create": _CREATE,
    "run": {**_CREATE, "detach": _DETACH,
            "keep": ((), "", "do not delete the container when it stops"),
            "no-subreaper": ((), "", "accepted; run waits for its own child")},
    "start": {},
    "state": {},
    "kill": {"all": (("a",), "", "signal every process of the container")},
    "delete": {"force": (("f",), "", "kill a container that is not stopped first")},
    "list": {"format": (("f",), "FORMAT", "table or json"),
             "quiet": (("q",), "", "ids only")},
    "features": {},
    "exec": {"process": (("p",), "FILE", "the process (config.json's process object)"),
             "tty": (("t",), "", "a terminal (process.terminal)"),
             "detach": _DETACH, **_PROCESS,
             "cwd": ((), "DIR", "its working directory"),
             "env": (("e",), "NAME=VALUE...", "an environment variable (again: more)"),
             "user": (("u",), "UID[:GID]", "its user"),
             "additional-gids": (("g",), "GID...", "a supplementary group (again: more)"),
             "cap": (("c",), "CAP...", "a capability (within the jail's set; again: more)"),
             "no-new-privs": ((), "", "no_new_privs"),
             "process-label": ((), "LABEL", "refused unless empty: SELinux is not used"),
             "apparmor": ((), "PROFILE", "refused unless empty: AppArmor is not used"),
             "cgroup": ((), "[CTRL:]PATH...", "refused: no sub-cgroups of a container"),
             "ignore-paused": ((), "", "accepted; a paused container is refused")},
    "pause": {},
    "resume": {},
    "ps": {"format": (("f",), "FORMAT", "table (ps(1)'s lines) or json (PIDs)")},
    "update": {"resources": (("r",), "FILE", "linux.resources as JSON (- for stdin)"),
               **{name: ((), {"size": "BYTES", "int": "N", "text": "LIST"}[kind],
                         f"linux.resources.{section}.{key}")
                  for name, (section, key, kind) in _UPDATE_FLAGS.items()},
               **{name: ((), "SCHEMA", f"refused: {why}")
                  for name, why in _UPDATE_REFUSED.items()}},
    "spec": {"bundle": (("b",), "DIR", "where config.json goes (default .)"),
             "rootless": ((), "", "refused: rootless containers are not supported")},
    "events": {"interval": ((), "DURATION",
                            "time between stats lines (5s default, 500ms, 1m30s)"),
               "stats": ((), "", "print the statistics once and exit")},
    "checkpoint": _criu_options("image-path=DIR work-path=DIR parent-path=DIR leave-running "
                                "tcp-established ext-unix-sk shell-job lazy-pages status-fd=FD "
                                "page-server=ADDRESS:PORT file-locks pre-dump "
                                "manage-cgroups-mode=MODE empty-ns=NS auto-dedup"),
    "restore": _criu_options("console-socket=PATH image-path=DIR work-path=DIR tcp-established "
                             "ext-unix-sk shell-job file-locks manage-cgroups-mode=MODE "
                             "bundle=DIR=b detach==d pid-file=FILE no-subreaper no-pivot "
                             "empty-ns=NS auto-dedup lazy-pages lsm-profile=TYPE:NAME "
                             "lsm-mount-context=CONTEXT"),
}
ARGS = {
    "create": "ID", "run": "ID", "start": "ID", "state": "ID", "kill": "ID [SIGNAL]",
    "delete": "ID", "list": "", "features": "", "exec": "ID [COMMAND [ARG...]]",
    "pause": "ID", "resume": "ID", "ps": "ID [--] [PS-OPTIONS...]", "update": "ID", "spec": "",
    "events": "ID", "checkpoint": "ID", "restore": "ID",
}
SUMMARY = {
    "create": "create a container (a jail whose process waits for start)",
    "run": "create and start a container",
    "start": "run the process of a created container",
    "state": "print the state of a container as JSON",
    "kill": "send a signal (default TERM) to the container's process",
    "delete": "remove a stopped container",
    "list": "list the containers of --root",
    "features": "print what this runtime implements, as JSON",
    "exec": "run another process in a container",
    "pause": "freeze every process of a container",
    "resume": "thaw a paused container",
    "ps": "the processes of a container",
    "update": "change the resource limits of a container",
    "spec": "write a config.json a jail can be",
    "events": "print the container's statistics and OOM events as JSON lines",
    "checkpoint": "refused in one line: why CRIU cannot (criu check's error)",
    "restore": "refused in one line: why CRIU cannot (criu check's error)",
}


def main(argv: list[str] | None = None) -> int:
    from ._main import run
    return run(PROG, _main, argv)


class Cli:
    def __init__(self) -> None:
        self.glob: Opts = {}
        self.log_path = ""
        self.log_json = False

    @property
    def root(self) -> str:
        from ..oci.store import DEFAULT_ROOT
        value = self.glob.get("root")
        return value if isinstance(value, str) and value else DEFAULT_ROOT


def parse_options(args: list[str], table: dict[str, Option], where: str
                  ) -> tuple[Opts, list[str]]:
    """Options of TABLE from the front of ARGS; the rest are arguments."""
    names: dict[str, str] = {}
    for name, (aliases, _, _) in table.items():
        names[name] = name
        for alias in aliases:
            names[alias] = name
    got: Opts = {}
    rest = iter(args)
    for arg in rest:
        if arg == "--" or not arg.startswith("-") or arg == "-":
            return got, ([] if arg == "--" else [arg]) + list(rest)
        key, eq, value = arg.lstrip("-").partition("=")
        if key in ("help", "h") and key not in names:
            got["help"] = True
        elif key not in names:
            raise UsageError(_usage(where), f"{PROG}: unknown option {arg}" +
                             (f" for {where}" if where else ""))
        elif table[names[key]][1]:          # takes a value: =VALUE or the next word
            given = value if eq else next(rest, None)
            if given is None:
                raise UsageError(_usage(where), f"{PROG}: option --{names[key]} needs a value")
            if table[names[key]][1].endswith("..."):
                values = got.setdefault(names[key], [])
                assert isinstance(values, list)
                values.append(given)
            else:
                got[names[key]] = given
        elif eq and value not in ("true", "false"):
            raise UsageError(_usage(where), f"{PROG}: option --{names[key]} takes true or false")
        else:
            got[names[key]] = value != "false"
    return got, []


def _usage(command: str) -> str:
    if command:
        return f"usage: {PROG} [global options] {command} [options] {ARGS[command]}".rstrip()
    return f"usage: {PROG} [global options] command [options] [arguments...]"


def help_text(command: str = "") -> str:
    lines = [_usage(command), ""]
    if command:
        lines.append(SUMMARY[command])
        table = OPTIONS[command]
    else:
        lines.append("commands:")
        lines += [f"   {name:<10} {SUMMARY[name]}" for name in OPTIONS]
        lines += ["", "global options:"]
        table = GLOBAL
    if table:
        lines.append("")
        for name, (aliases, value, text) in table.items():
            flag = ", ".join([f"--{name}"] + [f"-{a}" for a in aliases])
            flag += f" {value}" if value else ""
            lines.append(f"   {flag:<28} {text}")
    return "\n".join(lines) + "\n"


def _main(args: list[str]) -> int:
    cli = Cli()
    _log_target(cli, args)
    try:
        return _dispatch(cli, args)
    except JailError as err:
        # every error goes to --log too, usage errors included (containerd
        # reads the last JSON line's msg back): its first line, without PROG
        first = err.message.split("\n", 1)[0]
        log(cli, "error", first.removeprefix(f"{PROG}: "))
        raise


def _log_target(cli: Cli, args: list[str]) -> None:
    """--log and --log-format from the global options, read before anything
    else can fail (an unknown option or command is logged as well)."""
    words = iter(args)
    for arg in words:
        if arg == "--" or not arg.startswith("-"):
            return
        key, eq, value = arg.lstrip("-").partition("=")
        takes = GLOBAL[key][1] if key in GLOBAL else ""
        given = value if eq or not takes else next(words, "")
        if key == "log":
            cli.log_path = given
        elif key == "log-format":
            cli.log_json = given == "json"


def _dispatch(cli: Cli, args: list[str]) -> int:
    glob, rest = parse_options(args, GLOBAL, "")
    cli.glob = glob
    if glob.get("version"):
        from .. import __version__
        from ..oci.config import OCI_VERSION
        sys.stdout.write(f"{PROG} version {__version__}\nspec: {OCI_VERSION}\n")
        return 0
    if rest[:1] in (["help"], ["h"]):
        topic = rest[1] if rest[1:2] else ""
        if topic and topic not in OPTIONS:
            raise UsageError(_usage(""), f"{PROG}: no such command: {topic}")
        sys.stdout.write(help_text(topic))
        return 0
    if glob.get("help"):
        sys.stdout.write(help_text())
        return 0
    if not rest:
        raise UsageError(_usage(""))
    command, rest = rest[0], rest[1:]
    if command not in OPTIONS:
        raise UsageError(_usage(""), f"{PROG}: no such command: {command}")
    fmt = glob.get("log-format") or "text"
    if fmt not in ("text", "json"):
        raise JailError(f"--log-format {fmt}: not text or json")
    _check_globals(glob)
    opts, params = parse_options(rest, OPTIONS[command], command)
    if opts.get("help"):
        sys.stdout.write(help_text(command))
        return 0
    _debug(cli, f"{command} {' '.join(params)}")
    return COMMANDS[command](cli, opts, params)


def _check_globals(glob: Opts) -> None:
    if glob.get("systemd-cgroup"):
        from ..confine.cglayout import systemd_booted
        why = ("systemd is not PID 1 on this host" if not systemd_booted() else
               "linjail makes each jail's cgroups itself (the cgroupfs driver)")
        raise JailError(f"--systemd-cgroup: {why}")
    rootless = glob.get("rootless")
    if rootless not in (None, "false", "auto"):
        raise JailError("--rootless: rootless containers are not supported")


def log(cli: Cli, level: str, msg: str) -> None:
    """A line in --log: runc's (logrus') JSON or text form."""
    if not cli.log_path:
        return
    import time
    from ..oci import jsonio as json
    # logrus' default: RFC 3339 in seconds, local time (Z when that is UTC)
    now = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    now = now[:-5] + ("Z" if now[-5:] == "+0000" else f"{now[-5:-2]}:{now[-2:]}")
    if cli.log_json:        # runc's JSON formatter: compact, keys sorted
        line = (f'{{"level":{json.dumps(level)},"msg":{json.dumps(msg)},'
                f'"time":{json.dumps(now)}}}')
    else:
        line = f"time={json.dumps(now)} level={level} msg={json.dumps(msg)}"
    try:
        fd = os.open(cli.log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC,
                     0o600)
        try:
            os.write(fd, (line + "\n").encode())
        finally:
            os.close(fd)
    except OSError:
        pass        # the log is a copy: stderr has the line


def _debug(cli: Cli, msg: str) -> None:
    if cli.glob.get("debug"):
        log(cli, "debug", msg)


def _one_id(command: str, params: list[str], extra: int = 0) -> str:
    if not params:
        raise UsageError(_usage(command), f"{PROG}: {command}: a container id is required")
    if len(params) > 1 + extra:
        raise UsageError(_usage(command), f"{PROG}: {command}: too many arguments")
    return params[0]


def _int(opts: Opts, name: str) -> int:
    value = opts.get(name, "0")
    if not isinstance(value, str) or not value.isdigit():
        raise JailError(f"--{name} {value}: not a number")
    return int(value)


# --- the commands -------------------------------------------------------------------------

def _create(cli: Cli, opts: Opts, params: list[str]) -> int:
    from ..oci import runtime
    cid = _one_id("create", params)
    runtime.create(cli.root, cid, str(opts.get("bundle") or "."),
                   pid_file=str(opts.get("pid-file") or ""),
                   console_socket=str(opts.get("console-socket") or ""),
                   preserve_fds=_int(opts, "preserve-fds"))
    return 0


def _run(cli: Cli, opts: Opts, params: list[str]) -> int:
    from ..oci import runtime
    cid = _one_id("run", params)
    return runtime.run(cli.root, cid, str(opts.get("bundle") or "."),
                       pid_file=str(opts.get("pid-file") or ""),
                       console_socket=str(opts.get("console-socket") or ""),
                       preserve_fds=_int(opts, "preserve-fds"),
                       detach=bool(opts.get("detach")), keep=bool(opts.get("keep")))


def _start(cli: Cli, opts: Opts, params: list[str]) -> int:
    from ..oci import runtime
    runtime.start(cli.root, _one_id("start", params))
    return 0


def _state(cli: Cli, opts: Opts, params: list[str]) -> int:
    from ..oci import jsonio as json
    from ..oci import runtime
    sys.stdout.write(json.dumps(runtime.state(cli.root, _one_id("state", params)),
                                indent=2) + "\n")
    return 0


def _kill(cli: Cli, opts: Opts, params: list[str]) -> int:
    from ..oci import runtime
    cid = _one_id("kill", params, extra=1)
    sig = runtime.parse_signal(params[1]) if len(params) > 1 else 15
    runtime.kill(cli.root, cid, sig, every=bool(opts.get("all")))
    return 0


def _delete(cli: Cli, opts: Opts, params: list[str]) -> int:
    """runc's delete: of an id with no state (never made, or a create that
    was killed before it wrote one) the directory left in ROOT is removed;
    with --force that is success, without it the error it was."""
    from ..oci import runtime
    cid = _one_id("delete", params)
    force = bool(opts.get("force"))
    try:
        runtime.delete(cli.root, cid, force=force)
    except JailError as err:
        if err.message != f"container {cid} does not exist":
            raise
        _remove_leftover(cli.root, cid)
        if not force:
            raise
    return 0


def _remove_leftover(root: str, cid: str) -> None:
    """ROOT/CID without a state.json, and everything in it (runc: RemoveAll)."""
    import shutil
    from ..oci import store
    path = store.container_dir(root, cid)
    if os.path.isdir(path) and not os.path.islink(path) and \
            not os.path.exists(os.path.join(path, "state.json")):
        shutil.rmtree(path, ignore_errors=True)


def _list(cli: Cli, opts: Opts, params: list[str]) -> int:
    from ..oci import store
    if params:
        raise UsageError(_usage("list"), f"{PROG}: list: too many arguments")
    fmt = opts.get("format") or "table"
    if fmt not in ("table", "json"):
        raise JailError(f"--format {fmt}: not table or json")
    import pwd
    states = []
    for cid in store.ids(cli.root):
        try:
            state = store.view(cli.root, store.read(cli.root, cid))
            # runc's list (not its state) names the owner of the container's directory
            uid = os.stat(store.container_dir(cli.root, cid)).st_uid
        except (JailError, OSError):
            continue        # deleted meanwhile
        try:
            state["owner"] = pwd.getpwuid(uid).pw_name
        except KeyError:
            state["owner"] = str(uid)
        states.append(state)
    if opts.get("quiet"):
        sys.stdout.write("".join(f"{s['id']}\n" for s in states))
    elif fmt == "json":         # runc's (Go's encoder): no spaces
        import json as std_json
        sys.stdout.write(std_json.dumps(states, separators=(",", ":")) + "\n")
    else:
        sys.stdout.write(table([["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"]] +
                               [[s["id"], str(s["pid"]), s["status"], s["bundle"],
                                 s["created"], s["owner"]] for s in states]))
    return 0


def table(rows: list[list[str]]) -> str:
    """Go's tabwriter as runc uses it (minwidth 12, padding 3): every column
    but the last padded to its widest cell."""
    widths = [max(12, max(len(r[i]) for r in rows) + 3) for i in range(len(rows[0]) - 1)]
    return "".join("".join(cell.ljust(w) for cell, w in zip(r, widths)) + r[-1] + "\n"
                   for r in rows)


def _features(cli: Cli, opts: Opts, params: list[str]) -> int:
    from ..oci import jsonio as json
    from ..oci import features
    sys.stdout.write(json.dumps(features.features(), indent=4) + "\n")
    return 0


def _strs(opts: Opts, name: str) -> list[str]:
    value = opts.get(name) or []
    return value if isinstance(value, list) else [str(value)]


def _exec(cli: Cli, opts: Opts, params: list[str]) -> int:
    from ..oci import jsonio as json
    from ..oci import runtime
    if not params:
        raise UsageError(_usage("exec"), f"{PROG}: exec: a container id is required")
    cid, args = params[0], params[1:]
    if _strs(opts, "cgroup"):
        raise JailError("exec --cgroup: a container has no sub-cgroups to run a process in")
    path = str(opts.get("process") or "")
    if path:
        if args:
            raise UsageError(_usage("exec"), f"{PROG}: exec: --process and a command")
        try:
            with open(path, "rb") as f:
                process = json.loads(f.read())
        except (OSError, ValueError) as err:
            raise JailError(f"--process {path}: {err}") from None
        if not isinstance(process, dict):
            raise JailError(f"--process {path}: not a JSON object")
        if opts.get("tty"):
            process["terminal"] = True
    else:
        process = runtime.exec_process(
            cli.root, cid, args, env=_strs(opts, "env"), cwd=str(opts.get("cwd") or ""),
            user=str(opts.get("user") or ""), groups=_strs(opts, "additional-gids"),
            caps=_strs(opts, "cap"), tty=bool(opts.get("tty")),
            no_new_privs=bool(opts.get("no-new-privs")))
    for name, key in (("apparmor", "apparmorProfile"), ("process-label", "selinuxLabel")):
        if opts.get(name):
            process[key] = str(opts[name])
    for key, what in (("apparmorProfile", "AppArmor"), ("selinuxLabel", "SELinux")):
        if process.get(key) not in (None, ""):
            raise JailError(f"exec: process.{key}: {what} is not used by linjail")
    return runtime.exec_(cli.root, cid, process, detach=bool(opts.get("detach")),
                         pid_file=str(opts.get("pid-file") or ""),
                         console_socket=str(opts.get("console-socket") or ""),
                         preserve_fds=_int(opts, "preserve-fds"))


def _pause(cli: Cli, opts: Opts, params: list[str]) -> int:
    from ..oci import runtime
    runtime.pause(cli.root, _one_id("pause", params), True)
    return 0


def _resume(cli: Cli, opts: Opts, params: list[str]) -> int:
    from ..oci import runtime
    runtime.pause(cli.root, _one_id("resume", params), False)
    return 0


def _ps(cli: Cli, opts: Opts, params: list[str]) -> int:
    """runc's ps: the container's PIDs as JSON, or ps(1)'s lines of them."""
    from ..oci import jsonio as json
    import subprocess
    from ..oci import runtime
    if not params:
        raise UsageError(_usage("ps"), f"{PROG}: ps: a container id is required")
    fmt = opts.get("format") or "table"
    if fmt not in ("table", "json"):
        raise JailError(f"--format {fmt}: not table or json")
    pids = runtime.pids(cli.root, params[0])
    ps_args = params[1:]
    if ps_args[:1] == ["--"]:       # `ps ID -- -o pid,comm`: what follows is ps(1)'s
        ps_args = ps_args[1:]
    if fmt == "json":
        sys.stdout.write(json.dumps(pids) + "\n")
        return 0
    try:
        out = subprocess.run(["ps", *(ps_args or ["-ef"])], capture_output=True, text=True,
                             check=False)
    except OSError as err:
        raise JailError(f"ps: {err.strerror}") from None
    if out.returncode != 0:
        raise JailError(f"ps: {out.stderr.strip() or 'failed'}")
    lines = out.stdout.splitlines()
    if not lines:
        return 0
    try:
        column = lines[0].split().index("PID")
    except ValueError:
        raise JailError("ps: its output has no PID column") from None
    wanted = set(pids)
    sys.stdout.write("\n".join([lines[0]] + [
        line for line in lines[1:]
        if len(line.split()) > column and line.split()[column].isdigit()
        and int(line.split()[column]) in wanted]) + "\n")
    return 0


_SIZES = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}


def _size(name: str, text: str) -> int:
    """runc's sizes: a number, or one with k, m, g, t (any case, b optional)."""
    t = text.lower().removesuffix("b")
    scale = _SIZES.get(t[-1:], 1)
    digits = t[:-1] if t[-1:] in _SIZES else t
    if digits == "-1":
        return -1
    if not digits.isdigit():
        raise JailError(f"--{name} {text}: not a size")
    return int(digits) * scale


def _update(cli: Cli, opts: Opts, params: list[str]) -> int:
    from ..oci import jsonio as json
    from ..oci import runtime
    cid = _one_id("update", params)
    path = str(opts.get("resources") or "")
    if path:
        try:
            data = sys.stdin.buffer.read() if path == "-" else open(path, "rb").read()
            resources = json.loads(data)
        except (OSError, ValueError) as err:
            raise JailError(f"--resources {path}: {err}") from None
        if not isinstance(resources, dict):
            raise JailError(f"--resources {path}: not a JSON object")
    else:
        for name, why in _UPDATE_REFUSED.items():
            if opts.get(name):
                raise JailError(f"update --{name}: {why}")
        resources = {}
        for name, (section, key, kind) in _UPDATE_FLAGS.items():
            value = opts.get(name)
            if not isinstance(value, str):
                continue
            if kind == "size":
                parsed: int | str = _size(name, value)
            elif kind == "int":
                if not value.lstrip("-").isdigit():
                    raise JailError(f"--{name} {value}: not a number")
                parsed = int(value)
            else:
                parsed = value
            resources.setdefault(section, {})[key] = parsed
    runtime.update(cli.root, cid, resources)
    return 0


def _spec(cli: Cli, opts: Opts, params: list[str]) -> int:
    from ..oci import runtime
    if params:
        raise UsageError(_usage("spec"), f"{PROG}: spec: too many arguments")
    if opts.get("rootless"):
        raise JailError("spec --rootless: rootless containers are not supported")
    runtime.write_spec(str(opts.get("bundle") or "."))
    return 0


def _events(cli: Cli, opts: Opts, params: list[str]) -> int:
    from ..oci import stats
    return stats.events(cli.root, _one_id("events", params), bool(opts.get("stats")),
                        str(opts.get("interval") or "5s"))


def _checkpoint(cli: Cli, opts: Opts, params: list[str]) -> int:
    from ..oci import criu
    return criu.refuse(cli.root, _one_id("checkpoint", params), "checkpoint",
                       str(cli.glob.get("criu") or "criu"))


def _restore(cli: Cli, opts: Opts, params: list[str]) -> int:
    from ..oci import criu
    return criu.refuse(cli.root, _one_id("restore", params), "restore",
                       str(cli.glob.get("criu") or "criu"))


COMMANDS: dict[str, Callable[[Cli, Opts, list[str]], int]] = {
    "create": _create, "run": _run, "start": _start, "state": _state, "kill": _kill,
    "delete": _delete, "list": _list, "features": _features, "exec": _exec,
    "pause": _pause, "resume": _resume, "ps": _ps, "update": _update, "spec": _spec,
    "events": _events, "checkpoint": _checkpoint, "restore": _restore,
}
