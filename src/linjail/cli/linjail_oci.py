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

#: option: (aliases, takes a value ("" for a flag), help)
Option = tuple[tuple[str, ...], str, str]

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
_CREATE: dict[str, Option] = {
    "bundle": (("b",), "DIR", "the bundle (config.json and the root), default ."),
    "pid-file": ((), "FILE", "write the container process's host PID here"),
    "console-socket": ((), "PATH", "a unix socket that receives the terminal's master"),
    "preserve-fds": ((), "N", "pass fds 3..3+N-1 (pipes and stream sockets)"),
    "no-pivot": ((), "", "accepted; a jail is always entered with pivot_root"),
    "no-new-keyring": ((), "", "accepted; a jail cannot use the kernel keyring"),
}
OPTIONS: dict[str, dict[str, Option]] = {
    "create": _CREATE,
    "run": {**_CREATE,
            "detach": (("d",), "", "return once the process runs"),
            "keep": ((), "", "do not delete the container when it stops")},
    "start": {},
    "state": {},
    "kill": {"all": (("a",), "", "signal every process of the container")},
    "delete": {"force": (("f",), "", "kill a container that is not stopped first")},
    "list": {"format": (("f",), "FORMAT", "table or json"),
             "quiet": (("q",), "", "ids only")},
    "features": {},
}
ARGS = {
    "create": "ID", "run": "ID", "start": "ID", "state": "ID", "kill": "ID [SIGNAL]",
    "delete": "ID", "list": "", "features": "",
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
}


def main(argv: list[str] | None = None) -> int:
    from ._main import run
    return run(PROG, _main, argv)


class Cli:
    def __init__(self) -> None:
        self.glob: dict[str, str | bool] = {}
        self.log_path = ""
        self.log_json = False

    @property
    def root(self) -> str:
        from ..oci.store import DEFAULT_ROOT
        value = self.glob.get("root")
        return value if isinstance(value, str) and value else DEFAULT_ROOT


def parse_options(args: list[str], table: dict[str, Option], where: str
                  ) -> tuple[dict[str, str | bool], list[str]]:
    """Options of TABLE from the front of ARGS; the rest are arguments."""
    names: dict[str, str] = {}
    for name, (aliases, _, _) in table.items():
        names[name] = name
        for alias in aliases:
            names[alias] = name
    got: dict[str, str | bool] = {}
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


def _check_globals(glob: dict[str, str | bool]) -> None:
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
    import json
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


def _int(opts: dict[str, str | bool], name: str) -> int:
    value = opts.get(name, "0")
    if not isinstance(value, str) or not value.isdigit():
        raise JailError(f"--{name} {value}: not a number")
    return int(value)


# --- the commands -------------------------------------------------------------------------

def _create(cli: Cli, opts: dict[str, str | bool], params: list[str]) -> int:
    from ..oci import runtime
    cid = _one_id("create", params)
    runtime.create(cli.root, cid, str(opts.get("bundle") or "."),
                   pid_file=str(opts.get("pid-file") or ""),
                   console_socket=str(opts.get("console-socket") or ""),
                   preserve_fds=_int(opts, "preserve-fds"))
    return 0


def _run(cli: Cli, opts: dict[str, str | bool], params: list[str]) -> int:
    from ..oci import runtime
    cid = _one_id("run", params)
    return runtime.run(cli.root, cid, str(opts.get("bundle") or "."),
                       pid_file=str(opts.get("pid-file") or ""),
                       console_socket=str(opts.get("console-socket") or ""),
                       preserve_fds=_int(opts, "preserve-fds"),
                       detach=bool(opts.get("detach")), keep=bool(opts.get("keep")))


def _start(cli: Cli, opts: dict[str, str | bool], params: list[str]) -> int:
    from ..oci import runtime
    runtime.start(cli.root, _one_id("start", params))
    return 0


def _state(cli: Cli, opts: dict[str, str | bool], params: list[str]) -> int:
    import json
    from ..oci import runtime
    sys.stdout.write(json.dumps(runtime.state(cli.root, _one_id("state", params)),
                                indent=2) + "\n")
    return 0


def _kill(cli: Cli, opts: dict[str, str | bool], params: list[str]) -> int:
    from ..oci import runtime
    cid = _one_id("kill", params, extra=1)
    sig = runtime.parse_signal(params[1]) if len(params) > 1 else 15
    runtime.kill(cli.root, cid, sig, every=bool(opts.get("all")))
    return 0


def _delete(cli: Cli, opts: dict[str, str | bool], params: list[str]) -> int:
    from ..oci import runtime
    runtime.delete(cli.root, _one_id("delete", params), force=bool(opts.get("force")))
    return 0


def _list(cli: Cli, opts: dict[str, str | bool], params: list[str]) -> int:
    import json
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


def _features(cli: Cli, opts: dict[str, str | bool], params: list[str]) -> int:
    import json
    from ..oci import features
    sys.stdout.write(json.dumps(features.features(), indent=4) + "\n")
    return 0


COMMANDS: dict[str, Callable[[Cli, dict[str, str | bool], list[str]], int]] = {
    "create": _create, "run": _run, "start": _start, "state": _state, "kill": _kill,
    "delete": _delete, "list": _list, "features": _features,
}
