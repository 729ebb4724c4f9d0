"""The wheel's build hook (setuptools, pinned in pyproject.toml).

linjail is pure Python except for `linjail-reaper`, the jail's PID 1: 200
lines of C linked statically (it runs inside jails that have no libc of their
own).  It is compiled here, when the wheel is built, into the package; the
wheel is therefore tagged for the platform (py3-none-linux_x86_64), not
`any`.  An editable install (`pip install -e .`, the Makefile's) compiles it
in place under src/ when it is missing or older than its source.

The commands are the lines of tools/commands (NAME runs linjail.cli.NAME:main,
with - in NAME as _),
the list make install and the .deb read too.
"""
from __future__ import annotations

import os
import shutil
import subprocess

from setuptools import Distribution, setup
from setuptools.command.bdist_wheel import bdist_wheel
from setuptools.command.build_py import build_py
from setuptools.errors import CompileError

HERE = os.path.dirname(os.path.abspath(__file__))
REAPER_SRC = os.path.join("src", "linjail", "reaper", "reaper.c")
REAPER = os.path.join("linjail", "reaper", "linjail-reaper")


def commands() -> list[str]:
    with open(os.path.join(HERE, "tools", "commands")) as f:
        names = [line.split()[0] for line in f if line.strip() and not line.startswith("#")]
    return [f"{name} = linjail.cli.{name.replace('-', '_')}:main" for name in names]


def static_compiler() -> list[str]:
    """CC, else musl-gcc (small static binaries), else gcc (glibc's libc.a)."""
    wanted = os.environ.get("CC")
    for cc in ([wanted] if wanted else ["musl-gcc", "gcc", "cc"]):
        path = shutil.which(cc.split()[0])
        if path is not None:
            return [path, *cc.split()[1:]]
    raise CompileError(
        "linjail: building linjail-reaper (the jail's PID 1, static C) needs a C compiler: "
        + (f"CC={wanted} was not found" if wanted else "none of musl-gcc, gcc, cc is on PATH")
        + "; on Debian: apt-get install musl-tools (or gcc libc6-dev)")


def compile_reaper(out: str) -> None:
    cc = static_compiler()
    os.makedirs(os.path.dirname(out), exist_ok=True)
    argv = [*cc, "-static", "-Os", "-s", "-Wall", "-o", out, os.path.join(HERE, REAPER_SRC)]
    r = subprocess.run(argv, capture_output=True, text=True)
    if r.returncode != 0:
        raise CompileError(f"linjail: {' '.join(argv)} failed (a static link needs musl-tools "
                           f"or libc6-dev):\n{r.stderr.strip()}")


class BuildPyWithReaper(build_py):
    def run(self) -> None:
        if not self.editable_mode:
            # pip builds in the tree: a module removed since the last build
            # must not come back from setuptools' staging directory
            shutil.rmtree(os.path.join(self.build_lib, "linjail"), ignore_errors=True)
        super().run()
        if self.editable_mode:
            target = os.path.join(HERE, "src", REAPER)
            source = os.path.join(HERE, REAPER_SRC)
            if not os.path.exists(target) or \
                    os.path.getmtime(target) < os.path.getmtime(source):
                compile_reaper(target)
        else:
            compile_reaper(os.path.join(self.build_lib, REAPER))

    def get_outputs(self, include_bytecode: bool = True) -> list[str]:
        outputs: list[str] = super().get_outputs(include_bytecode)
        if not self.editable_mode:
            outputs.append(os.path.join(self.build_lib, REAPER))
        return outputs


class WithBinary(Distribution):
    """A platform package (platlib, a platform wheel): it carries the reaper."""

    def has_ext_modules(self) -> bool:
        return True


class PlatformWheel(bdist_wheel):
    """Any Python 3, no ABI (no extension module), this platform (the reaper)."""

    def get_tag(self) -> tuple[str, str, str]:
        return "py3", "none", super().get_tag()[2]


setup(distclass=WithBinary,
      cmdclass={"build_py": BuildPyWithReaper, "bdist_wheel": PlatformWheel},
      entry_points={"console_scripts": commands()})
