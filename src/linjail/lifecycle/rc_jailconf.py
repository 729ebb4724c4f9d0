"""`jailctl start|stop|status` for the jails of jail.conf(5), as FreeBSD's
/etc/rc.d/jail runs them beside rc.conf's legacy jail_NAME_* variables.

  rc.conf                          what jailctl does
  -------                          -----------------
  jail_conf="/etc/jail.conf"       the file read (when it exists)
  jail_list=""                     every jail of jail.conf, in `depend` order
  jail_list="www db"               those; a name jail.conf defines is its jail,
                                   any other one rc.conf's legacy variables'
  jail_reverse_stop="YES"          stop in the reverse order

A jail of jail.conf is started and stopped as `jail -f CONF -c NAME` and
`jail -f CONF -r NAME` would (lifecycle/fbsd.py, its exec.* hooks and the
jails it depends on included), with jail(8)'s output kept aside and shown
after ` cannot start jail "NAME": ` when it fails, as rc.d/jail does; it is
printed by its name.  /var/run/jail_NAME.id gets its JID.
"""
from __future__ import annotations

import os
import sys

from typing import Protocol

from ..config.jails import RcVars
from ..display import shown
from ..errors import JailError
from ..state import registry
from .idfiles import unlink_quiet, write_id

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Callable, Iterator
    from ..config.jailconf import Conf

DEFAULT_CONF = "/etc/jail.conf"


class _Captured:
    """Descriptors 0, 1 and 2 pointed at /dev/null and a temporary file
    while jail(8)'s work runs (rc.d/jail: `jail ... >> $_tmp 2>&1 </dev/null`)."""

    def __enter__(self) -> "_Captured":
        import tempfile
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
        self.tmp = tempfile.TemporaryFile()
        self.saved = [os.dup(fd) for fd in (0, 1, 2)]
        null = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
        os.dup2(null, 0)
        os.close(null)
        os.dup2(self.tmp.fileno(), 1)
        os.dup2(self.tmp.fileno(), 2)
        return self

    def __exit__(self, *exc: object) -> None:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except OSError:
                pass
        for fd, saved in enumerate(self.saved):
            os.dup2(saved, fd)
            os.close(saved)

    def text(self) -> bytes:
        self.tmp.seek(0)
        data = self.tmp.read(1 << 20)
        self.tmp.close()
        return data


class Service(Protocol):
    """What ConfJails uses of the rc.conf service it serves (rc.RcService)."""
    rc: RcVars
    directory: str

    def say(self, text: str) -> None: ...

    def warn(self, message: str) -> None: ...

    def id_path(self, name: str) -> str: ...

    def running(self, name: str) -> object | None: ...


class ConfJails:
    """The jail.conf side of one RcService."""

    def __init__(self, svc: Service) -> None:
        self.svc = svc
        self.path = svc.rc.get("jail_conf") or DEFAULT_CONF
        self._conf: Conf | None = None
        self._read = False

    def conf(self) -> Conf | None:
        """The parsed file, or None when it does not exist; a file that
        cannot be parsed stops the command (`jailctl: FILE line N: ...`)."""
        if not self._read:
            self._read = True
            if os.path.exists(self.path):
                from ..config.jailconf import parse_file
                self._conf = parse_file(self.path)
        return self._conf

    def defines(self, name: str) -> bool:
        conf = self.conf()
        return conf is not None and conf.find(name) is not None

    def all_names(self) -> list[str]:
        """jail_list empty: every jail of the file, dependencies first."""
        conf = self.conf()
        if conf is None:
            return []
        from .fbsd_ops import start_order
        from .fbsd import Out
        failed: set[str] = set()
        with _Captured():
            order = start_order(conf, conf.names(), Out(-1), failed)
        return order

    def running(self, name: str) -> registry.JailRecord | None:
        """Running: its id file names it, or a running jail has its name."""
        rec = self.svc.running(name)
        if rec is not None and isinstance(rec, registry.JailRecord):
            return rec
        from .fbsd import find
        return find(name)

    # start ---------------------------------------------------------------------
    def start_one(self, name: str) -> bool:
        from .fbsd_ops import depends
        conf = self.conf()
        assert conf is not None
        todo = _dependencies(conf, name, depends) + [name]
        ok = True
        with _Captured() as out:
            from .fbsd import Out
            for dep in todo[:-1]:
                if conf.find(dep) is None:
                    Out(0).warn(name, f'depends on undefined jail "{dep}"')
                    ok = False
            for jname in todo if ok else []:
                if not self._create(conf, jname, dependency=jname != name):
                    ok = False
                    break
        output = out.text()
        if not ok:
            self.svc.say(f" cannot start jail \"{name}\": \n")
            self.svc.say(shown(output))
            return False
        rec = self.running(name)
        if rec is not None:
            try:
                write_id(self.svc.id_path(name), rec.jid)
            except OSError as err:
                self.svc.warn(f"{self.svc.id_path(name)}: {err.strerror}")
        self.svc.say(f" {name}")
        return True

    def _create(self, conf: Conf, name: str, dependency: bool) -> bool:
        from .fbsd_ops import operate
        from ..config.jailconf import resolve
        from ..config.params import build
        from .fbsd import Out
        out = Out(0)
        try:
            fj = build(resolve(conf, name), name)
        except JailError as err:
            out.warn("", err.message)
            return False
        return operate("c", fj, out, None, wild=dependency)

    # stop ------------------------------------------------------------------------
    def stop_one(self, name: str) -> bool:
        from ..config.jailconf import resolve
        from ..config.params import build
        from .fbsd import Out, remove
        rec = self.running(name)
        if rec is None:
            self.svc.say(f" cannot stop jail {name}. No jail id in {self.svc.directory}\n")
            return True
        conf = self.conf()
        assert conf is not None
        with _Captured() as out:
            try:
                fj = build(resolve(conf, name), name)
                ok = remove(rec, fj, Out(0), name, note=True)
            except JailError as err:
                Out(0).warn("", err.message)
                ok = False
        output = out.text()
        if not ok:
            self.svc.say(f" cannot stop jail {name}: \n")
            self.svc.say(shown(output))
            return False
        unlink_quiet(self.svc.id_path(name))
        self.svc.say(f" {name}")
        return True

    # status ----------------------------------------------------------------------
    def status_one(self, name: str) -> int:
        rec = self.running(name)
        if rec is None:
            self.svc.say(f"{name}: stopped\n")
            return 3
        ips = " ".join(rec.ips) or "(none)"
        self.svc.say(f"{name}: running, jid {rec.jid}, addresses {ips}\n")
        return 0


def _dependencies(conf: Conf, name: str,
                  depends: Callable[[Conf, str], list[str]]) -> list[str]:
    """The jails NAME needs, transitively, those needed first (no loops:
    a loop is left to jail(8)'s own check)."""
    order: list[str] = []
    seen = {name}

    def visit(jname: str) -> Iterator[str]:
        for dep in depends(conf, jname):
            if dep in seen:
                continue
            seen.add(dep)
            yield from visit(dep)
            yield dep
    order.extend(visit(name))
    return order
