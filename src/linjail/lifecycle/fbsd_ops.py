"""jail.c's main loop, for jail(8)'s FreeBSD forms and `jailctl start` of
jail.conf's jails: the -c/-m/-r combination applied to one jail, and the
order in which several go (`depend`: dependencies first at a start, last at
a removal).  The jails themselves are made and removed by fbsd.py.
"""
from __future__ import annotations

from ..errors import JailError
from . import fbsd

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import TextIO
    from ..config.jailconf import Conf
    from ..config.params import FbJail
    from .fbsd import Out


def quoted(text: str) -> str:
    """jail.c quoted_print: quotes around empty strings, spaces and quotes."""
    qc = '"' if not text or "'" in text else "'" if '"' in text else \
        '"' if (" " in text or "\t" in text) else ""
    body = "".join("\\" + c if c == "\\" or (qc and c == qc) else c for c in text)
    return f"{qc}{body}{qc}"


def operate(ops: str, fj: FbJail, out: Out, jfp: TextIO | None = None,
             wild: bool = False) -> bool:
    """One jail, as jail.c's main loop treats the -c/-m/-r combination."""
    rec = fbsd.existing(fj)
    want = set(ops)
    if "m" in want:
        if rec is not None:
            if "r" in want and fbsd.changes_need_restart(rec, fj):
                # -mr: a parameter only a new jail can have: restart it
                if not fbsd.remove(rec, fj, out, fj.label, note=bool(fj.label)):
                    return False
                return create(fj, out, jfp)
            return fbsd.modify(rec, fj, out)
        if "c" not in want:
            name = fbsd.quoted_name(fj)
            out.warn("", f'"{name}" not found' if name else "no jail specified")
            return False
        return create(fj, out, jfp)
    if "r" in want:
        if rec is None:
            if "c" not in want:
                if not wild:
                    out.warn("", f'"{fbsd.quoted_name(fj)}" not found')
                return wild
        elif not fbsd.remove(rec, fj, out, fj.label, note=bool(fj.label)):
            return False
        if "c" not in want:
            return True
        rec = None
    if rec is not None:
        if wild:
            return True          # jail -c (all): a running one is left alone
        out.warn("", f'"{fbsd.quoted_name(fj)}" already exists')
        return False
    return create(fj, out, jfp)


def create(fj: FbJail, out: Out, jfp: TextIO | None) -> bool:
    jid = fbsd.create(fj, out)
    if not jid:
        return False
    if jfp is not None:
        fields = [f"jid={jid}"] + [param_text(n, v) for n, v in fj.pairs if n != "jid"]
        jfp.write(" ".join(fields) + "\n")
        jfp.flush()
    return True


def param_text(name: str, values: tuple[str, ...]) -> str:
    sep = " " if name == "command" else ","
    return name + ("=" + sep.join(quoted(v) for v in values) if values else "")


# -- jail -r NAME ... -------------------------------------------------------------------------


def depends(conf: Conf, name: str) -> list[str]:
    from ..config import jailconf
    try:
        return [v for n, vals in jailconf.resolve(conf, name) if n == "depend" for v in vals]
    except JailError:
        return []


def start_order(conf: Conf, names: list[str], out: Out, failed: set[str]) -> list[str]:
    """NAMES and the jails they depend on, dependencies first (state.c):
    an undefined dependency or a loop fails the jail."""
    order: list[str] = []
    state: dict[str, int] = {}      # 1 visiting, 2 done

    def visit(name: str) -> bool:
        if state.get(name) == 2:
            return name not in failed
        if state.get(name) == 1:
            return False
        state[name] = 1
        ok = True
        for dep in depends(conf, name):
            if conf.find(dep) is None:
                out.warn(name, f'depends on undefined jail "{dep}"')
                ok = False
            elif not visit(dep):
                if state.get(dep) == 1:
                    out.warn(name, "dependency loop")
                ok = False
        state[name] = 2
        if not ok:
            failed.add(name)
        order.append(name)
        return ok
    for name in names:
        visit(name)
    return order


def stop_order(conf: Conf | None, names: list[str], out: Out) -> list[str]:
    """Removal order: a jail after every running jail that depends on it."""
    from ..config import jailconf
    if not isinstance(conf, jailconf.Conf):
        return list(names)
    dependents: dict[str, list[str]] = {}
    for other in conf.names():
        for dep in depends(conf, other):
            dependents.setdefault(dep, []).append(other)
    order: list[str] = []
    seen: set[str] = set()

    def visit(name: str) -> None:
        if name in seen:
            return
        seen.add(name)
        for d in dependents.get(name, []):
            visit(d)
        order.append(name)
    for name in names:
        visit(name)
    return order
