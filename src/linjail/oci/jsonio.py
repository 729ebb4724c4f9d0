"""JSON for linjail-oci without the json package: its decoder and encoder
import `re` (and with it enum, functools, collections), ~14 ms of every
`linjail-oci` command on these machines (python -X importtime), more than
the rest of `create`'s imports together.  The C scanner and string encoder
CPython's json package itself runs on (_json) do the work; this adds the
little Python around them: whitespace, the end of the document, and an
encoder for the types config.json and the state hold.

loads() raises ValueError (json.JSONDecodeError is one) on bad input;
dumps() writes ASCII with \\u escapes, keys in the order given (sort_keys
sorts them), INDENT as json.dumps(indent=N) lays it out.  Without INDENT
(the state, the stored config, the seccomp cache's key) the C encoder json
uses does it, ~4 times faster than the Python below (podman's config.json
of 10 KB: 0.39 ms -> 0.09 ms); json itself lays out an indented document in
Python too.
"""
from __future__ import annotations

import _json

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

_WS = " \t\n\r"


class _Context:
    """What _json.make_scanner reads from a JSONDecoder."""
    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    memo: dict[str, str] = {}

    @staticmethod
    def parse_constant(name: str) -> float:
        return {"-Infinity": float("-inf"), "Infinity": float("inf"), "NaN": float("nan")}[name]


# (a JSONDecoder's fields are all the scanner reads)
_scan = _json.make_scanner(_Context())  # type: ignore[arg-type]


def loads(text: str | bytes) -> Any:
    if isinstance(text, bytes):
        text = text.decode("utf-8")
    start = len(text) - len(text.lstrip(_WS))
    try:
        value, end = _scan(text, start)
    except StopIteration as stop:
        raise ValueError(f"Expecting value: char {stop.value}") from None
    rest = text[end:]
    if rest.strip(_WS):
        raise ValueError(f"Extra data: char {end + len(rest) - len(rest.lstrip(_WS))}")
    return value


def _not_json(value: Any) -> Any:
    raise TypeError(f"{type(value).__name__} is not JSON")


#: sort_keys -> the C encoder (json.encoder.c_make_encoder's arguments: no
#: circularity markers, ASCII strings, no indent, ", " and ": ", NaN allowed)
_COMPACT = {sort: _json.make_encoder(None, _not_json, _json.encode_basestring_ascii,
                                     None, ": ", ", ", sort, False, True)
            for sort in (False, True)}


def dumps(value: Any, indent: int | None = None, sort_keys: bool = False) -> str:
    if indent is None:
        return "".join(_COMPACT[sort_keys](value, 0))
    out: list[str] = []
    _encode(value, out, indent, sort_keys, 0)
    return "".join(out)


def _encode(value: Any, out: list[str], indent: int | None, sort_keys: bool,
            level: int) -> None:
    if value is None:
        out.append("null")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif isinstance(value, str):
        out.append(_json.encode_basestring_ascii(value))
    elif isinstance(value, int):
        out.append(int.__repr__(value))
    elif isinstance(value, float):
        out.append(float.__repr__(value))
    elif isinstance(value, dict):
        items = sorted(value.items()) if sort_keys else list(value.items())
        _container("{", "}", [(str(k), v) for k, v in items], out, indent, sort_keys, level)
    elif isinstance(value, (list, tuple)):
        _container("[", "]", [(None, v) for v in value], out, indent, sort_keys, level)
    else:
        raise TypeError(f"{type(value).__name__} is not JSON")


def _container(open_: str, close: str, items: list[tuple[str | None, Any]], out: list[str],
               indent: int | None, sort_keys: bool, level: int) -> None:
    if not items:
        out.append(open_ + close)
        return
    out.append(open_)
    inner = "" if indent is None else "\n" + " " * (indent * (level + 1))
    for i, (key, item) in enumerate(items):
        if i:
            out.append("," if indent is not None else ", ")
        out.append(inner)
        if key is not None:
            out.append(_json.encode_basestring_ascii(key) + ": ")
        _encode(item, out, indent, sort_keys, level + 1)
    out.append("" if indent is None else "\n" + " " * (indent * level))
    out.append(close)
