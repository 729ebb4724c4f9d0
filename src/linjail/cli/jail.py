"""jail(8): DragonFly's syntax (SPEC §2, jail_dfly.py), or FreeBSD's forms
when an option only FreeBSD has is given (jail_fbsd.py)."""
from __future__ import annotations

from .jail_dfly import build_spec, parse, settle_knobs, warn_reachable
from .jail_fbsd import main_fbsd, wants_freebsd


def main(argv: list[str] | None = None) -> int:
    from ._main import run
    return run("jail", _jail, argv)


def _jail(args: list[str]) -> int:
    from ..lifecycle import stdio
    stdio.occupy_closed()                 # first: nothing of ours may land on 0-2
    passed = stdio.passable(stdio.inherited())
    if wants_freebsd(args):     # -c/-m/-r, -f, -n ...: FreeBSD's forms
        return main_fbsd(args)
    spec = build_spec(parse(args))
    warn_reachable(spec.path)
    spec = settle_knobs(spec)
    from ..lifecycle import relay
    return relay.run_interactive(spec, passed)
