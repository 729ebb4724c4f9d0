"""`jailctl build PATH --complete`: a Debian base system made into a jail (SPEC §9).

The seed's `make installworld DESTDIR=$D; make distribution` becomes
debootstrap(8) (debootstrap.py) from the package mirror the host's apt
already uses (apt.py), then the changes that make a base system a jail
rather than a machine (jailify.py).  Everything that can be checked is
checked here before PATH is touched.
"""
from __future__ import annotations

import os
import re
import shutil
from collections.abc import Sequence
from typing import TextIO

from linjail.errors import JailError
from linjail.roots.apt import (APT_ETC, SCHEMES, SYSTEM_PATH, Mirror, apt_proxy_env,
                               choose_mirror, host_sources, host_suite, preflight)
from linjail.roots.debootstrap import CompletePlan, Progress, run_debootstrap
from linjail.roots.destroy import Target, check_target
from linjail.roots.jailify import jailify

DEBOOTSTRAP_SCRIPTS = "/usr/share/debootstrap/scripts"
_PKG_RE = re.compile(r"^[a-z0-9][a-z0-9+.-]+(:[a-z0-9-]+)?$")
_SUITE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.+_-]*$")


# --- validation ---------------------------------------------------------------------


def plan_complete(path: str, suite: str | None, include: Sequence[str], mirror: str | None,
                  hostname: str | None) -> CompletePlan:
    """Check everything that can be checked before PATH is touched."""
    if shutil.which("debootstrap", path=SYSTEM_PATH) is None:
        raise JailError("build: debootstrap is not installed "
                        "(apt-get install debootstrap)")
    if shutil.which("unshare", path=SYSTEM_PATH) is None:
        raise JailError("build: unshare(1) is not installed (util-linux)")
    mine = host_suite()
    if suite is None:
        if mine is None:
            raise JailError("build: cannot tell the host's suite from /etc/os-release; "
                            "give --suite")
        suite = mine
    if not _SUITE_RE.match(suite) or not os.path.exists(os.path.join(DEBOOTSTRAP_SCRIPTS,
                                                                      suite)):
        raise JailError(f"build: {suite}: unknown suite (debootstrap has no script for it)")
    for pkg in include:
        if not _PKG_RE.match(pkg):
            raise JailError(f"build: --include {pkg}: not a package name")
    if mirror is not None:
        if not mirror.startswith(SCHEMES):
            raise JailError(f"build: --mirror {mirror}: not an http, https, ftp or file URL")
        chosen = Mirror(mirror.rstrip("/"), None, "--mirror")
    else:
        found = choose_mirror(host_sources(), suite, mine or suite)
        if found is None:
            raise JailError(f"build: no Debian mirror with `main` in the host's apt sources "
                            f"({APT_ETC}/sources.list, {APT_ETC}/sources.list.d/); "
                            "give one with --mirror URL")
        chosen = found
    root, _ = check_target(path)
    name = hostname if hostname is not None else _hostname_from(root)
    if not re.match(r"^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$", name) or \
            len(name.encode()) > 64:
        raise JailError(f"build: --hostname {name}: not a host name")
    return CompletePlan(root, suite, chosen, tuple(include), name, apt_proxy_env())


def _hostname_from(root: str) -> str:
    name = re.sub(r"[^A-Za-z0-9.-]", "-", os.path.basename(root)).strip(".-")
    return name[:64] or "jail"


# --- the whole build ---------------------------------------------------------------


def build_complete(path: str, *, suite: str | None = None, include: Sequence[str] = (),
                   mirror: str | None = None, hostname: str | None = None,
                   stream: TextIO | None = None) -> CompletePlan:
    """`jailctl build PATH --complete`; progress and warnings go to STREAM.

    Raises JailError with one line; a failure or an interruption (the caller
    turns SIGTERM/SIGHUP into KeyboardInterrupt) leaves no PATH behind.
    """
    plan = plan_complete(path, suite, include, mirror, hostname)
    preflight(plan.mirror, plan.suite, proxies=plan.proxy_env)
    progress = Progress(stream if stream is not None else _null_stream())
    progress.message(f"build: {plan.root}: Debian {plan.suite} from {plan.mirror.url}" +
                     (f" with {','.join(plan.include)}" if plan.include else ""))
    try:
        with Target(plan.root, progress.message):
            run_debootstrap(plan, progress)
            progress.update(100.0, "Making it a jail", "")
            try:
                jailify(plan.root, plan.hostname)
            except OSError as e:
                raise JailError(f"build: {e.filename or plan.root}: {e.strerror}") from None
    finally:
        progress.clear()
    progress.message(f"build: {plan.root}: complete jail ready (hostname {plan.hostname})")
    return plan


def _null_stream() -> TextIO:
    import io
    return io.StringIO()
