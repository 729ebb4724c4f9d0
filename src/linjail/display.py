"""Text a jail controls (its hostname, its path, its output) as it may reach
the administrator's terminal: control characters as octal escapes, never raw,
so that no jail can move the cursor or forge a line.

  escape()   one field of a listing (jls, jail.list): a backslash doubles,
             a newline or a tab is escaped like any other control character
  shown()    a jail's output as a block (jailctl start's failure report):
             lines and tabs stay
"""
from __future__ import annotations


def escape(text: str) -> str:
    """Show control characters of an untrusted hostname as octal escapes."""
    out = []
    for ch in text:
        code = ord(ch)
        if code < 0x20 or code == 0x7F or 0x80 <= code < 0xA0:
            out.append(f"\\{code:03o}")
        elif ch == "\\":
            out.append("\\\\")
        else:
            out.append(ch)
    return "".join(out)


def shown(output: bytes) -> str:
    """A jail's output as it reaches the administrator's terminal: control
    characters as octal escapes (as jls shows a hostname), never raw."""
    out = []
    for ch in output.decode("utf-8", "backslashreplace"):
        code = ord(ch)
        if (code < 0x20 and ch not in "\n\t") or code == 0x7F or 0x80 <= code < 0xA0:
            out.append(f"\\{code:03o}")
        else:
            out.append(ch)
    return "".join(out)
