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
    "criu": ((), "PATH", "accepted for runc's callers; checkpointing is not supported"),
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
    "cpu-quota": ("cpu", "quota", "int"), "cpu-period": ("cpu", "period", "int"),
    "cpu-rt-period": ("cpu", "realtimePeriod", "int"),
    "cpu-rt-runtime": ("cpu", "realtimeRuntime", "int"),
    "cpuset-cpus": ("cpu", "cpus", "text"), "cpuset-mems": ("cpu", "mems", "text"),
}

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
            "keep": ((), "", "do not delete the container when it stops")},
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
             "ignore-paused": ((), "", "accepted; a paused container is refused")},
    "pause": {},
    "resume": {},
    "ps": {"format": (("f",), "FORMAT", "table (ps(1)'s lines) or json (PIDs)")},
    "update": {"resources": (("r",), "FILE", "linux.resources as JSON (- for stdin)"),
               **{name: ((), {"size": "BYTES", "int": "N", "text": "LIST"}[kind],
                         f"linux.resources.{section}.{key}")
                  for name, (section, key, kind) in _UPDATE_FLAGS.items()}},
    "spec": {"bundle": (("b",), "DIR", "where config.json goes (default .)"),
             "rootless": ((), "", "refused: rootless containers are not supported")},
}
ARGS = {
    "create": "ID", "run": "ID", "start": "ID", "state": "ID", "kill": "ID [SIGNAL]",
    "delete": "ID", "list": "", "features": "", "exec": "ID [COMMAND [ARG...]]",
    "pause": "ID", "resume": "ID", "ps": "ID [PS-OPTIONS...]", "update": "ID", "spec": "",
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
    glob, rest = parse_options(args, GLOBAL, "")
    cli.glob = glob
    if glob.get("version"):
        from .. import __version__
        from ..oci.config import OCI_VERSION
        sys.stdout.write(f"{PROG} version {__version__}\nspec: {OCI_VERSION}\n")
        return 0
    if glob.get("help") or rest[:1] == ["help"]:
        sys.stdout.write(help_text(rest[1] if rest[:1] == ["help"] and rest[1:2]
                                   and rest[1] in OPTIONS else ""))
        return 0
    if not rest:
        raise UsageError(_usage(""))
    command, rest = rest[0], rest[1:]
    if command not in OPTIONS:
        raise UsageError(_usage(""), f"{PROG}: no such command: {command}")
    cli.log_path = str(glob.get("log") or "")
    fmt = glob.get("log-format") or "text"
    if fmt not in ("text", "json"):
        raise JailError(f"--log-format {fmt}: not text or json")
    cli.log_json = fmt == "json"
    try:
        _check_globals(glob)
        opts, params = parse_options(rest, OPTIONS[command], command)
        if opts.get("help"):
            sys.stdout.write(help_text(command))
            return 0
        _debug(cli, f"{command} {' '.join(params)}")
        return COMMANDS[command](cli, opts, params)
    except JailError as err:
        if not isinstance(err, UsageError):
            log(cli, "error", err.message)
        raise


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
    from ..oci import jsonio as json
    from ..oci.runtime import _now
    now = _now()
    if cli.log_json:
        line = json.dumps({"level": level, "msg": msg, "time": now})
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
    from ..oci import runtime
    runtime.delete(cli.root, _one_id("delete", params), force=bool(opts.get("force")))
    return 0


def _list(cli: Cli, opts: Opts, params: list[str]) -> int:
    from ..oci import jsonio as json
    from ..oci import store
    if params:
        raise UsageError(_usage("list"), f"{PROG}: list: too many arguments")
    fmt = opts.get("format") or "table"
    if fmt not in ("table", "json"):
        raise JailError(f"--format {fmt}: not table or json")
    states = []
    for cid in store.ids(cli.root):
        try:
            states.append(store.view(cli.root, store.read(cli.root, cid)))
        except JailError:
            continue        # deleted meanwhile
    if opts.get("quiet"):
        sys.stdout.write("".join(f"{s['id']}\n" for s in states))
    elif fmt == "json":
        sys.stdout.write(json.dumps(states) + "\n")
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
    if fmt == "json":
        sys.stdout.write(json.dumps(pids) + "\n")
        return 0
    try:
        out = subprocess.run(["ps", *(params[1:] or ["-ef"])], capture_output=True, text=True,
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


COMMANDS: dict[str, Callable[[Cli, Opts, list[str]], int]] = {
    "create": _create, "run": _run, "start": _start, "state": _state, "kill": _kill,
    "delete": _delete, "list": _list, "features": _features, "exec": _exec,
    "pause": _pause, "resume": _resume, "ps": _ps, "update": _update, "spec": _spec,
}
