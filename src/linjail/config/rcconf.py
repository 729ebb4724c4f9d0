"""rc.conf(5) reader: the subset of sh(1) that rc.conf files are written in.

DragonFly's rc.d scripts *source* rc.conf with /bin/sh; we never run a shell.
We accept what rc.conf(5) documents and what sh would read the same way:

* assignments ``name=value``, several per line, separated by blanks or ``;``;
* values quoted with '...' (literal) or "..." (``\\$ \\` \\" \\\\`` and
  backslash-newline escapes), or unquoted with ``\\c`` escapes;
* ``$name`` and ``${name}`` expanded from the variables assigned so far
  (files are sourced in order, so a later file sees an earlier one), unset
  names expanding to "" as in sh;
* ``#`` comments at the start of a word, blank lines, backslash-newline.

Anything that sh would *execute* (commands, command substitution, ``${x:-y}``,
redirections) is refused with one line naming the file and the line: a
configuration file must not run code in a root tool.  Binary files (NUL bytes,
invalid UTF-8) are refused the same way.  Nothing here needs root.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Iterable, Mapping

from linjail.errors import JailError

#: rc.conf(5): read in this order, a later file wins (SPEC §8)
DEFAULT_FILES: tuple[str, ...] = ("/etc/rc.conf", "/etc/rc.conf.local", "/etc/rc.conf.d/jail")
#: a colon-separated list of files replacing DEFAULT_FILES (SPEC §8: "or environment variable")
ENV_FILES = "LINJAIL_RC_CONF"

#: exit status of a configuration error, rc.subr's ``err 3``
CONFIG_EXIT = 3

_NAME_START = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_")
_NAME_CHARS = _NAME_START | frozenset("0123456789")
_BLANKS = " \t"
#: characters that end an unquoted word
_WORD_END = frozenset(" \t\n;")
#: shell operators we refuse rather than misread
_OPERATORS = frozenset("&|<>()`")


class RcConfError(JailError):
    """A malformed or unreadable rc.conf: ``FILE: line N: what``, exit 3."""

    def __init__(self, message: str) -> None:
        super().__init__(message, CONFIG_EXIT)


@dataclass(frozen=True)
class Assignment:
    name: str
    value: str
    file: str
    line: int


def is_name(text: str) -> bool:
    """A shell variable name (the only names rc.conf can assign)."""
    return bool(text) and text[0] in _NAME_START and all(c in _NAME_CHARS for c in text)


class _Lexer:
    """One file's text, a cursor and the current line number."""

    def __init__(self, text: str, filename: str, env: dict[str, str]) -> None:
        self.text = text
        self.file = filename
        self.env = env
        self.pos = 0
        self.line = 1

    def fail(self, what: str, line: int | None = None) -> RcConfError:
        return RcConfError(f"{self.file}: line {line or self.line}: {what}")

    def peek(self, ahead: int = 0) -> str:
        i = self.pos + ahead
        return self.text[i] if i < len(self.text) else ""

    def take(self) -> str:
        c = self.text[self.pos]
        self.pos += 1
        if c == "\n":
            self.line += 1
        return c

    def skip_continuations(self) -> None:
        while self.peek() == "\\" and self.peek(1) == "\n":
            self.take()
            self.take()

    def skip_blanks(self) -> None:
        while True:
            self.skip_continuations()
            if self.peek() and self.peek() in _BLANKS:
                self.take()
            else:
                return

    def skip_comment(self) -> None:
        # a comment runs to the newline; backslash-newline does not continue it (sh)
        while self.peek() and self.peek() != "\n":
            self.take()

    # -- statements ---------------------------------------------------------

    def statements(self) -> list[Assignment]:
        out: list[Assignment] = []
        while True:
            self.skip_blanks()
            c = self.peek()
            if c == "":
                return out
            if c in "\n;":
                self.take()
                continue
            if c == "#":
                self.skip_comment()
                continue
            out.append(self.assignment())

    def assignment(self) -> Assignment:
        line = self.line
        start = self.pos
        name = ""
        while True:
            self.skip_continuations()
            c = self.peek()
            if c and c in _NAME_CHARS and (name or c in _NAME_START):
                name += self.take()
            else:
                break
        if self.peek() != "=" or not name:
            # not an assignment: sh would run it as a command; show the word
            self.pos = start
            word = self.raw_word()
            raise self.fail(f"not a variable assignment: {word}", line)
        self.take()
        value = self.word()
        a = Assignment(name, value, self.file, line)
        self.env[name] = value   # visible to the next expansion, as in sh
        return a

    def raw_word(self) -> str:
        end = self.pos
        while end < len(self.text) and self.text[end] not in _WORD_END:
            end += 1
        word = self.text[self.pos:end]
        return word if len(word) <= 40 else word[:40] + "..."

    # -- words --------------------------------------------------------------

    def word(self) -> str:
        parts: list[str] = []
        while True:
            c = self.peek()
            if c == "" or c in _WORD_END:
                return "".join(parts)
            if c == "\\":
                self.take()
                nxt = self.peek()
                if nxt == "\n":
                    self.take()            # line continuation
                elif nxt == "":
                    return "".join(parts)  # sh keeps a trailing backslash... as nothing
                else:
                    parts.append(self.take())
            elif c == "'":
                parts.append(self.single_quoted())
            elif c == '"':
                parts.append(self.double_quoted())
            elif c == "$":
                parts.append(self.expansion())
            elif c in _OPERATORS:
                what = "command substitution" if c == "`" else f"shell operator {c!r}"
                raise self.fail(f"{what} is not supported in rc.conf")
            else:
                parts.append(self.take())

    def single_quoted(self) -> str:
        line = self.line
        self.take()
        end = self.text.find("'", self.pos)
        if end < 0:
            raise self.fail("unterminated single quote", line)
        chunk = self.text[self.pos:end]
        for _ in range(len(chunk) + 1):
            self.take()
        return chunk

    def double_quoted(self) -> str:
        line = self.line
        self.take()
        parts: list[str] = []
        while True:
            c = self.peek()
            if c == "":
                raise self.fail("unterminated double quote", line)
            if c == '"':
                self.take()
                return "".join(parts)
            if c == "\\":
                self.take()
                nxt = self.peek()
                if nxt == "\n":
                    self.take()
                elif nxt in ('"', "\\", "$", "`"):
                    parts.append(self.take())
                else:
                    parts.append("\\")     # sh keeps other backslashes in "..."
            elif c == "$":
                parts.append(self.expansion())
            elif c == "`":
                raise self.fail("command substitution is not supported in rc.conf")
            else:
                parts.append(self.take())

    def expansion(self) -> str:
        self.take()                        # the $
        c = self.peek()
        if c == "{":
            self.take()
            end = self.text.find("}", self.pos)
            inner = self.text[self.pos:end] if end >= 0 else ""
            if end < 0 or "\n" in inner:
                raise self.fail("unterminated ${")
            if not is_name(inner):
                raise self.fail(f"parameter expansion ${{{inner}}} is not supported in rc.conf")
            self.pos = end + 1
            return self.env.get(inner, "")
        if c == "(":
            raise self.fail("command substitution is not supported in rc.conf")
        if c and c in _NAME_START:
            name = ""
            while self.peek() and self.peek() in _NAME_CHARS:
                name += self.take()
            return self.env.get(name, "")
        if c and (c.isdigit() or c in "@*#?$!-"):
            raise self.fail(f"special parameter ${c} is not supported in rc.conf")
        return "$"                         # a lone $ is literal in sh


def decode(data: bytes, filename: str) -> str:
    """Bytes to text, refusing binary data with the line it is on."""
    nul = data.find(b"\0")
    if nul >= 0:
        line = data.count(b"\n", 0, nul) + 1
        raise RcConfError(f"{filename}: line {line}: binary data (NUL byte), not an rc.conf file")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise RcConfError(f"{filename}: line {line}: not valid UTF-8 text") from None
    # CRLF files (edited elsewhere) read as LF; sh would keep the CR in values
    return text.replace("\r\n", "\n")


def parse(data: bytes | str, filename: str,
          env: dict[str, str] | None = None) -> list[Assignment]:
    """Parse one file; `env` (updated in place) holds the variables set so far."""
    text = decode(data, filename) if isinstance(data, bytes) else data.replace("\r\n", "\n")
    return _Lexer(text, filename, env if env is not None else {}).statements()


def read_files(paths: Iterable[str], *, missing_ok: bool,
               base: Mapping[str, str] | None = None) -> dict[str, str]:
    """Source `paths` in order on top of `base`; a later assignment wins.

    `missing_ok` is for the default files (rc.conf.local usually does not
    exist); a file named with -f must exist.
    """
    env: dict[str, str] = dict(base or {})
    for path in paths:
        try:
            with open(path, "rb") as f:
                data = f.read()
        except FileNotFoundError:
            if missing_ok:
                continue
            raise RcConfError(f"{path}: {os.strerror(2)}") from None
        except OSError as e:
            raise RcConfError(f"{path}: {e.strerror}") from None
        parse(data, path, env)
    return env


def config_files(given: list[str], environ: Mapping[str, str] | None = None
                 ) -> tuple[tuple[str, ...], bool]:
    """The files to read and whether missing ones are skipped.

    -f FILE (repeatable) replaces the defaults; otherwise $LINJAIL_RC_CONF
    (colon separated) does; otherwise the rc.conf(5) defaults, any of which
    may be missing.
    """
    if given:
        return tuple(given), False
    env = os.environ if environ is None else environ
    listed = [p for p in env.get(ENV_FILES, "").split(":") if p]
    if listed:
        return tuple(listed), False
    return DEFAULT_FILES, True
