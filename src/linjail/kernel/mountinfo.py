"""/proc/PID/mountinfo (proc(5)), the one reader of it: which file systems
are mounted where, in the reader's mount namespace.

  36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue
  (1)(2) (3)   (4)   (5)      (6)      (7)  (8) (9)    (10)         (11)

Paths escape space, tab, newline and backslash as \\ooo (fs/proc_namespace.c
show_mountinfo, mangle()): a mount point made with a space in its name is
unescaped here, never compared in its escaped form.
"""
from __future__ import annotations

SELF = "/proc/self/mountinfo"


class Mount:
    """One line: where (5), what file system (9) and its options (11)."""
    __slots__ = ("point", "fstype", "super_options")

    def __init__(self, point: str, fstype: str, super_options: str) -> None:
        self.point = point
        self.fstype = fstype
        self.super_options = super_options

    def __repr__(self) -> str:
        return f"Mount({self.point!r}, {self.fstype!r}, {self.super_options!r})"


def unescape(field: str) -> str:
    """`\\040` -> ' ' and the like; anything else is left as it is."""
    if "\\" not in field:
        return field
    out, i = [], 0
    while i < len(field):
        code = field[i + 1:i + 4]
        if field[i] == "\\" and len(code) == 3 and all(c in "01234567" for c in code):
            out.append(chr(int(code, 8)))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return "".join(out)


def parse(text: str) -> list[Mount]:
    """The mounts of a mountinfo text, in its order; malformed lines are skipped."""
    mounts = []
    for line in text.splitlines():
        pre, sep, post = line.partition(" - ")
        fields, tail = pre.split(" "), post.split(" ")
        if len(fields) < 5:
            continue
        fstype = tail[0] if sep else ""
        options = tail[2] if sep and len(tail) >= 3 else ""
        mounts.append(Mount(unescape(fields[4]), fstype, options))
    return mounts


def read(path: str = SELF) -> list[Mount]:
    """The mounts PATH lists (another process's: /proc/PID/mountinfo).
    Raises OSError.  A mount point that is not UTF-8 is kept as lone
    surrogates (os.fsencode gives its bytes back)."""
    with open(path, encoding="utf-8", errors="surrogateescape") as f:
        return parse(f.read())
