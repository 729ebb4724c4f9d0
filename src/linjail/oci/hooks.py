"""The config's hooks (config.md "POSIX-platform Hooks"), with the state on stdin.

  hook              where it runs                         when                    on failure
  ----              -------------                         ----                    ----------
  prestart,         the runtime's namespaces (launcher)   create: the container's create fails
  createRuntime                                           namespaces exist, before
                                                          pivot_root
  createContainer   the container's mount namespace,      create, before          create fails
                    host paths (its first process)        pivot_root
  startContainer    the container (its process: its       start, before           the process
                    root, user, confinement)              process.args            ends (127)
  poststart         the runtime's namespaces              start, once it runs     a warning
  poststop          the runtime's namespaces              delete, once gone       a warning

Each hook is path + args (args[0] is its argv[0]) + env (exactly that
environment), killed after `timeout` seconds.  Run with fork/execve, not
subprocess: two of them run in the container's first process, where
nothing more may be imported once pivot_root is done.
"""
from __future__ import annotations

from . import jsonio as json
import os
import select

from ..errors import JailError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from .config import Hook


def state_json(cid: str, status: str, pid: int, bundle: str,
               annotations: dict[str, str]) -> bytes:
    """The state as hooks get it on stdin (runtime.md "State")."""
    out = {"ociVersion": "1.2.0", "id": cid, "status": status, "pid": pid, "bundle": bundle}
    if annotations:
        out["annotations"] = annotations
    return json.dumps(out).encode()


def run(kind: str, hooks: tuple[Hook, ...], state: bytes) -> None:
    """Run HOOKS in order; JailError naming the first that fails."""
    for i, hook in enumerate(hooks):
        why = run_one(hook, state)
        if why:
            raise JailError(f"hooks.{kind}[{i}] {hook.path}: {why}")


def warn_all(kind: str, hooks: tuple[Hook, ...], state: bytes) -> list[str]:
    """Run every hook (poststart, poststop): the failures, one line each."""
    out = []
    for i, hook in enumerate(hooks):
        why = run_one(hook, state)
        if why:
            out.append(f"hooks.{kind}[{i}] {hook.path}: {why}")
    return out


def run_one(hook: Hook, state: bytes) -> str:
    """"" when HOOK exits 0, else why (its status, a timeout, exec's error)."""
    argv = list(hook.args) or [hook.path]
    env = dict(item.split("=", 1) for item in hook.env if "=" in item)
    r, w = os.pipe2(os.O_CLOEXEC)
    err_r, err_w = os.pipe2(os.O_CLOEXEC)
    pid = os.fork()
    if pid == 0:
        try:
            os.dup2(r, 0)
            os.close(err_r)
            os.closerange(3, err_w)
            os.closerange(err_w + 1, 65536)
            os.execve(hook.path, argv, env)
        except OSError as err:
            os.write(err_w, os.strerror(err.errno or 0).encode())
        finally:
            os._exit(127)
    os.close(r)
    os.close(err_w)
    try:
        try:
            os.write(w, state)       # a hook that reads nothing: EPIPE is its business
        except (BrokenPipeError, BlockingIOError):
            pass
        os.close(w)
        w = -1
        pidfd = os.pidfd_open(pid)
        try:
            ready = select.select([pidfd], [], [], hook.timeout)[0]
        finally:
            os.close(pidfd)
        if not ready:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
            return f"timed out after {hook.timeout} s"
        _, st = os.waitpid(pid, 0)
        failed = os.read(err_r, 512).decode(errors="replace")
    finally:
        if w >= 0:
            os.close(w)
        os.close(err_r)
    if failed:
        return failed
    if os.WIFSIGNALED(st):
        return f"killed by signal {os.WTERMSIG(st)}"
    code = os.WEXITSTATUS(st)
    return f"exit status {code}" if code else ""
