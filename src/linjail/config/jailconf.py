"""jail.conf(5): lexing, parsing and resolving FreeBSD's jail configuration.

The grammar and its corner cases follow FreeBSD's usr.sbin/jail (jaillex.l,
jailparse.y, config.c; facts only, written anew here):

  conf    := { jail | param ";" | ";" }
  jail    := STR "{" conf "}"                 nested: "a { b { } }" is jail a.b
  param   := name [ "=" value | "+=" value | value ]
  name    := STR | VAR                        "$x = ..." defines a variable
  value   := string { "," string }
  string  := (STR | VAR) { STR1 | VAR1 }      adjacent pieces join into one

Tokens: unquoted runs of ``A-Za-z0-9_!%&()-.:<>?@[]^`|~``; a single ``$ * +
/ \\``; a backslash escape; '...' (C escapes, no variables); "..." (C escapes
and variables); $name and ${name}; ``+=``; ``, ; = { }``.  Comments are
``#``, ``//`` (to the end of the line) and ``/* */``; a backslash before a
newline joins the lines.  Pieces written without whitespace between them are
one string (``"/jails/"$name`` is one value).

A parameter outside any jail belongs to the wildcard jail ``*``; a jail
collects, in file order, the parameters of every wildcard definition that
matches its name (``*``, ``foo.*``) and its own (later ones win; ``+=``
appends to a list).  ``.include "file";`` reads another file (relative to the
including one; a glob may match nothing, a literal name must exist).

Errors read as FreeBSD's do (``FILE line N: unterminated string``,
``FILE line N: TOKEN: syntax error``), with what was expected added.  Nothing
here touches the system but reading the files.
"""
from __future__ import annotations

import os

from ..errors import JailError
from ..record import Record, record

#: FreeBSD's depth limit for .include (config.c MAX_INCLUDE_DEPTH)
MAX_INCLUDE_DEPTH = 32

_ATOM = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
                  "_!%&()-.:<>?@[]^`|~")
_NAME_START = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_")
_NAME = _NAME_START | frozenset("0123456789")
_OCT = frozenset("01234567")
_HEX = frozenset("0123456789abcdefABCDEF")
_ESCAPES = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v"}


class ConfError(JailError):
    """A configuration file that cannot be used: one line, exit 1."""


class JailConfError(JailError):
    """One jail's parameters cannot be resolved (`jail: NAME: ...`)."""

    def __init__(self, jail: str, message: str) -> None:
        super().__init__(f"{jail}: {message}")
        self.jail = jail
        self.detail = message


#: a piece of a string: ("s", text) or ("v", variable name)
Piece = tuple[str, str]


@record()
class Param(Record):
    """One parameter statement as written."""
    name: str
    values: tuple[tuple[Piece, ...], ...]   # each value is a list of pieces
    var: bool = False                       # "$name = ..."
    append: bool = False                    # "+="
    where: str = ""                         # "FILE line N"


@record(frozen=False)
class JailDef(Record):
    """A jail definition (or a wildcard one, such as ``*``)."""
    name: str
    seq: int
    params: list[Param] = []


@record()
class Token(Record):
    kind: str          # STR STR1 VAR VAR1 PLEQ , ; = { } CHAR EOF
    text: str          # the value (strings and variables, escapes done)
    raw: str           # as written, for messages
    line: int


# -- lexing ---------------------------------------------------------------------

def _unescape(text: str, tovar: bool = False) -> tuple[str, int]:
    """C escapes of TEXT (jaillex.l text2lval); with TOVAR, stop at an
    unescaped '$' and return its index, else -1."""
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c != "\\":
            if tovar and c == "$":
                return "".join(out), i
            out.append(c)
            i += 1
            continue
        i += 1
        if i >= n:
            break
        c = text[i]
        if c in _OCT:
            j = i
            while j < n and j < i + 3 and text[j] in _OCT:
                j += 1
            out.append(chr(int(text[i:j], 8) & 0xFF))
            i = j
            continue
        if c == "x":
            j = i + 1
            while j < n and j < i + 3 and text[j] in _HEX:
                j += 1
            out.append(chr(int(text[i + 1:j], 16)) if j > i + 1 else "\0")
            i = j
            continue
        if c != "\n":                  # backslash-newline: the lines join
            out.append(_ESCAPES.get(c, c))
        i += 1
    return "".join(out), -1


class Lexer:
    """jaillex.l as a hand-written scanner (longest match, same states)."""

    def __init__(self, text: str, filename: str) -> None:
        self.text = text
        self.filename = filename
        self.i = 0
        self.line = 1
        self.instr = False      # the previous token was a string piece
        self.dq = False         # inside a "..." that holds a variable

    def error(self, line: int, what: str) -> ConfError:
        return ConfError(f"{self.filename} line {line}: {what}")

    def _advance(self, j: int) -> str:
        raw = self.text[self.i:j]
        self.line += raw.count("\n")
        self.i = j
        return raw

    def _piece(self, var: bool, text: str, raw: str, line: int) -> Token:
        kind = ("VAR" if var else "STR") + ("1" if self.instr else "")
        self.instr = True
        return Token(kind, text, raw, line)

    def _escape_end(self, i: int) -> int:
        """End of the backslash unit at I: \\ooo, \\xhh, or \\ and one character."""
        t, n = self.text, len(self.text)
        if i + 1 >= n:
            return n
        c = t[i + 1]
        if c in _OCT:
            j = i + 1
            while j < n and j < i + 4 and t[j] in _OCT:
                j += 1
            return j
        if c == "x" and i + 2 < n and t[i + 2] in _HEX:
            return i + 4 if i + 3 < n and t[i + 3] in _HEX else i + 3
        return i + 2

    def _variable(self, in_dq: bool) -> Token | None:
        """$name or ${name} at self.i; None for a lone '$'."""
        t, i, n, line = self.text, self.i, len(self.text), self.line
        if i + 1 < n and t[i + 1] in _NAME_START:
            j = i + 2
            while j < n and t[j] in _NAME:
                j += 1
            raw = self._advance(j)
            return self._piece(True, raw[1:], raw, line)
        if i + 1 < n and t[i + 1] == "{":
            j = i + 2
            while j < n:
                c = t[j]
                if c == "}":
                    raw = self._advance(j + 1)
                    return self._piece(True, _unescape(raw[2:-1])[0], raw, line)
                if c in "\n{" or (in_dq and c == '"'):
                    break
                j += 2 if c == "\\" else 1
            raise self.error(line, "unterminated variable")
        return None

    def next(self) -> Token:
        t, n = self.text, len(self.text)
        while True:
            if self.dq:
                tok = self._next_dq()
                if tok is not None:
                    return tok
                continue
            i, line = self.i, self.line
            if i >= n:
                return Token("EOF", "", "", line)
            c = t[i]
            if c in " \t\r\n":
                j = i
                while j < n and t[j] in " \t\r\n":
                    j += 1
                self._advance(j)
                self.instr = False
                continue
            if c == "#" or t.startswith("//", i):
                j = t.find("\n", i)
                self._advance(n if j < 0 else j)
                self.instr = False
                continue
            if t.startswith("/*", i):
                j = t.find("*/", i + 2)
                if j < 0:
                    raise self.error(line, "unterminated comment")
                self._advance(j + 2)
                self.instr = False
                continue
            if t.startswith("+=", i):
                self._advance(i + 2)
                self.instr = False
                return Token("PLEQ", "+=", "+=", line)
            if c in ",;={}":
                self._advance(i + 1)
                self.instr = False
                return Token(c, c, c, line)
            if c in _ATOM:
                j = i
                while j < n and t[j] in _ATOM:
                    j += 1
                raw = self._advance(j)
                return self._piece(False, raw, raw, line)
            if c == "\\":
                raw = self._advance(self._escape_end(i))
                return self._piece(False, _unescape(raw)[0], raw, line)
            if c == "$":
                tok = self._variable(False)
                if tok is not None:
                    return tok
            if c in "$*+/":
                raw = self._advance(i + 1)
                return self._piece(False, raw, raw, line)
            if c in "'\"":
                return self._quoted(c)
            self._advance(i + 1)
            return Token("CHAR", c, c, line)

    def _quoted(self, quote: str) -> Token:
        t, i, n, line = self.text, self.i, len(self.text), self.line
        j = i + 1
        while j < n and t[j] != quote:
            j += 2 if t[j] == "\\" else 1
        if j >= n:
            raise self.error(line, "unterminated string")
        content = t[i + 1:j]
        if quote == "'":
            raw = self._advance(j + 1)
            return self._piece(False, _unescape(content)[0], raw, line)
        text, at = _unescape(content, tovar=True)
        if at < 0:
            raw = self._advance(j + 1)
            return self._piece(False, text, raw, line)
        # a variable inside: this piece ends before it, the rest is scanned
        # piece by piece until the closing quote
        raw = self._advance(i + 1 + at)
        self.dq = True
        return self._piece(False, text, raw, line)

    def _next_dq(self) -> Token | None:
        t, i, n, line = self.text, self.i, len(self.text), self.line
        c = t[i]
        if c == '"':
            self._advance(i + 1)
            self.dq = False
            return None
        if c == "$":
            tok = self._variable(True)
            if tok is not None:
                return tok
            raw = self._advance(i + 1)
            return self._piece(False, raw, raw, line)
        if c == "\\":
            raw = self._advance(self._escape_end(i))
            return self._piece(False, _unescape(raw)[0], raw, line)
        j = i
        while j < n and t[j] != '"':
            j += 2 if t[j] == "\\" else 1
        text, at = _unescape(t[i:j], tovar=True)
        if at < 0:
            raw = self._advance(j + 1)
            self.dq = False
        else:
            raw = self._advance(i + at)
        return self._piece(False, text, raw, line)


# -- parsing --------------------------------------------------------------------

def _describe(tok: Token) -> str:
    return tok.raw if tok.raw.isprintable() else repr(tok.raw)


class Conf:
    """The definitions of one configuration (with its includes), in order."""

    def __init__(self, filename: str) -> None:
        self.filename = filename
        self.defs: list[JailDef] = []

    def jail(self, name: str) -> JailDef:
        """The definition NAME, created at the end if new (a name defined
        twice is one jail with both statements, in order)."""
        for d in self.defs:
            if d.name == name and not wild_name(name):
                return d
        d = JailDef(name, len(self.defs) + 1)
        self.defs.append(d)
        return d

    def add_global(self, param: Param) -> None:
        """A statement outside any jail: the last definition if that is a
        ``*``, else a new ``*`` (jailparse.y)."""
        if not self.defs or self.defs[-1].name != "*":
            self.defs.append(JailDef("*", len(self.defs) + 1))
        self.defs[-1].params.append(param)

    def names(self) -> list[str]:
        """The jails defined (not the wildcard definitions), in file order."""
        return [d.name for d in self.defs if not wild_name(d.name)]

    def find(self, name: str) -> JailDef | None:
        for d in self.defs:
            if d.name == name and not wild_name(name):
                return d
        return None


class _Parser:
    def __init__(self, conf: Conf, lexer: Lexer, depth: int) -> None:
        self.conf = conf
        self.lexer = lexer
        self.depth = depth
        self.ahead: list[Token] = []

    def peek(self, k: int = 0) -> Token:
        while len(self.ahead) <= k:
            self.ahead.append(self.lexer.next())
        return self.ahead[k]

    def take(self) -> Token:
        tok = self.peek()
        self.ahead.pop(0)
        return tok

    def fail(self, tok: Token, expected: str) -> ConfError:
        name = self.lexer.filename
        if tok.kind == "EOF":
            return ConfError(f"{name}: unexpected EOF (expected {expected})")
        return ConfError(f"{name} line {tok.line}: {_describe(tok)}: syntax error "
                         f"(expected {expected})")

    def parse(self, jail: JailDef | None, braced: bool = False) -> None:
        """conf, until EOF or (BRACED) the '}' that closes JAIL; statements
        go to JAIL, or are global when it is None."""
        while True:
            tok = self.peek()
            if tok.kind == "EOF":
                if braced:
                    raise self.fail(tok, '"}"')
                return
            if tok.kind == "}":
                if not braced:
                    raise self.fail(tok, "a jail name or a parameter")
                return
            if tok.kind == ";":
                self.take()
                continue
            k = 1
            while tok.kind == "STR" and self.peek(k).kind == "STR1":
                k += 1      # "foo.*" written unquoted is two pieces
            if tok.kind == "STR" and self.peek(k).kind == "{":
                text = "".join(self.take().text for _ in range(k))
                self.take()
                name = text if jail is None else f"{jail.name}.{text}"
                inner = self.conf.jail(name)
                self.parse(inner, braced=True)
                self.take()         # the closing brace
                continue
            if tok.kind not in ("STR", "VAR"):
                raise self.fail(tok, "a jail name or a parameter")
            param, bare_value = self.statement()
            if param.name == ".include" and not param.var and bare_value:
                self.include(param, jail)
            elif jail is None:
                self.conf.add_global(param)
            else:
                jail.params.append(param)

    def statement(self) -> tuple[Param, bool]:
        """param ';' -> (the parameter, whether it was `name value`)."""
        name = self.take()
        where = f"{self.lexer.filename} line {name.line}"
        tok = self.peek()
        append = bare_value = False
        values: tuple[tuple[Piece, ...], ...] = ()
        if tok.kind in ("=", "PLEQ"):
            self.take()
            append = tok.kind == "PLEQ"
            values = self.value()
        elif tok.kind in ("STR", "VAR"):
            bare_value = True
            values = self.value()
        elif tok.kind != ";":
            raise self.fail(tok, '"=", a value or ";"')
        end = self.peek()
        if end.kind != ";":
            raise self.fail(end, '";"' if values else '"=", a value or ";"')
        self.take()
        return Param(name.text, values, name.kind == "VAR", append, where), bare_value

    def value(self) -> tuple[tuple[Piece, ...], ...]:
        out = [self.string()]
        while self.peek().kind == ",":
            self.take()
            out.append(self.string())
        return tuple(out)

    def string(self) -> tuple[Piece, ...]:
        tok = self.take()
        if tok.kind not in ("STR", "VAR"):
            raise self.fail(tok, "a value")
        pieces = [("v" if tok.kind == "VAR" else "s", tok.text)]
        while self.peek().kind in ("STR1", "VAR1"):
            nxt = self.take()
            pieces.append(("v" if nxt.kind == "VAR1" else "s", nxt.text))
        return tuple(pieces)

    def include(self, param: Param, jail: JailDef | None) -> None:
        for value in param.values:
            if any(kind == "v" for kind, _ in value):
                raise ConfError(f"{param.where}: variables not permitted in "
                                f"'.include' filename")
            pattern = "".join(text for _, text in value)
            if not pattern.startswith("/") and self.lexer.filename != "STDIN":
                pattern = os.path.join(os.path.dirname(self.lexer.filename), pattern)
            for path in _include_paths(pattern):
                parse_into(self.conf, path, self.depth + 1, jail)


def _include_paths(pattern: str) -> list[str]:
    """glob(3) with GLOB_NOCHECK as config.c uses it: a pattern matches what
    it matches (possibly nothing); a literal name is used as is (and must
    exist).  FreeBSD's own example includes "jail[.]conf" to make a single
    file optional."""
    import glob
    if glob.has_magic(pattern):
        return sorted(glob.glob(pattern))
    return [pattern]


def _read(path: str) -> str:
    if path == "-":
        import sys
        return sys.stdin.read()
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as err:
        raise ConfError(f"{path}: {os.strerror(err.errno or 5)}") from None
    return data.decode("utf-8", "surrogateescape")


def parse_into(conf: Conf, path: str, depth: int = 0, jail: JailDef | None = None) -> None:
    """Parse the file PATH ("-" for standard input) into CONF; an include
    inside a jail's braces adds to that jail."""
    if depth > MAX_INCLUDE_DEPTH:
        raise ConfError("maximum include depth exceeded")
    text = _read(path)
    _Parser(conf, Lexer(text, "STDIN" if path == "-" else path), depth).parse(jail)


def parse_file(path: str) -> Conf:
    conf = Conf("STDIN" if path == "-" else path)
    parse_into(conf, path)
    return conf


def parse_text(text: str, filename: str = "jail.conf") -> Conf:
    conf = Conf(filename)
    _Parser(conf, Lexer(text, filename), 0).parse(None)
    return conf


# -- resolving one jail -----------------------------------------------------------

def wild_name(name: str) -> bool:
    """A wildcard definition: a whole component is "*" (config.c wild_jail_name)."""
    return any(part == "*" for part in name.split("."))


def wild_match(jname: str, wname: str) -> bool:
    """config.c wild_jail_match: a "*" component matches one component of
    the jail's name; a final "*" matches one or more."""
    jparts, wparts = jname.split("."), wname.split(".")
    for k, w in enumerate(wparts):
        if w == "*" and k == len(wparts) - 1:
            return len(jparts) >= len(wparts)
        if k >= len(jparts) or (w != "*" and w != jparts[k]):
            return False
    return len(jparts) == len(wparts)


def canonical(name: str) -> str:
    """persist and nopersist, allow.raw_sockets and allow.noraw_sockets are
    one parameter (config.c equalopts)."""
    head, dot, last = name.rpartition(".")
    if last.startswith("no"):
        last = last[2:]
    return f"{head}{dot}{last}"


@record(frozen=False)
class _Entry(Record):
    name: str
    values: list[tuple[Piece, ...]]
    var: bool
    immutable: bool = False
    resolved: list[str] | None = None


#: parameters a variable may not be named after (FreeBSD refuses those it
#: knows; linjail's table is in config/params.py, imported lazily)
def _is_parameter(name: str) -> bool:
    from .params import known_name
    return known_name(name)


def resolve(conf: Conf, name: str) -> list[tuple[str, list[str]]]:
    """The parameters of jail NAME, in order, variables substituted and
    dropped: [(parameter as spelled last, [values])].  JailConfError if a
    variable is missing or loops, or a name is redefined."""
    jdef = conf.find(name)
    if jdef is None:
        raise JailError(f'"{name}" not found')
    entries: dict[str, _Entry] = {}

    def add(p: Param) -> None:
        key = canonical(p.name) if not p.var else "$" + p.name
        other = canonical(p.name) if p.var else "$" + p.name
        if other in entries:
            raise JailConfError(name, f'variable "${p.name}" cannot have the same name '
                                      f'as a parameter.')
        if p.var and _is_parameter(p.name):
            raise JailConfError(name, f'variable "${p.name}" cannot have the same name '
                                      f'as a parameter.')
        e = entries.get(key)
        if e is None:
            entries[key] = _Entry(p.name, list(p.values), p.var)
            return
        if e.immutable:
            raise JailConfError(name, f'cannot redefine parameter "{e.name}".')
        e.name = p.name
        if p.append and p.values:
            e.values.extend(p.values)
        else:
            e.values = list(p.values)

    # the definition's name is the jail's name, or its jid when numeric
    # (and then also its name until one is given: jail_basic_test jid_name_set)
    if name.isascii() and name.isdigit() and 0 < len(name.lstrip("0")) <= 10:
        entries["jid"] = _Entry("jid", [(("s", name),)], False, immutable=True)
        entries["name"] = _Entry("name", [(("s", name),)], False)
    else:
        entries["name"] = _Entry("name", [(("s", name),)], False, immutable=True)
    did_self = False
    for wdef in conf.defs:
        if not wild_name(wdef.name):
            continue
        if jdef.seq < wdef.seq and not did_self:
            for p in jdef.params:
                add(p)
            did_self = True
        if wild_match(name, wdef.name):
            for p in wdef.params:
                add(p)
    if not did_self:
        for p in jdef.params:
            add(p)

    by_name: dict[str, _Entry] = {}
    for e in entries.values():
        by_name.setdefault(e.name, e)
    busy: set[int] = set()

    def value_of(e: _Entry) -> list[str]:
        if e.resolved is not None:
            return e.resolved
        busy.add(id(e))
        out: list[str] = []
        for pieces in e.values:
            out.extend(expand(e, pieces))
        busy.discard(id(e))
        e.resolved = out
        return out

    def expand(e: _Entry, pieces: tuple[Piece, ...]) -> list[str]:
        nvars = sum(1 for kind, _ in pieces if kind == "v")
        text = "".join(t for kind, t in pieces if kind == "s")
        out = ""
        for kind, t in pieces:
            if kind == "s":
                out += t
                continue
            target = by_name.get(t)
            if target is None or not target.values:
                raise JailConfError(name, f'{e.name}: variable "{t}" not found')
            if id(target) in busy:
                raise JailConfError(name, f"{t}: variable loop")
            got = value_of(target)
            if len(got) > 1:
                if text or nvars > 1:
                    raise JailConfError(name, f"{e.name}: array cannot be substituted "
                                              f"inline")
                return list(got)
            out += got[0] if got else ""
        return [out]

    result: list[tuple[str, list[str]]] = []
    for e in entries.values():
        values = value_of(e)
        if not e.var:
            result.append((e.name, values))
    return result
