"""Typed records without `dataclasses` (a start-up cost on the jail path).

`import dataclasses` pulls in `inspect`, `ast`, `re` and `copy`: about 60 ms
of the ~100 ms a `jail` start has before the first syscall on these machines
(measured with `python -X importtime`).  The specs only need what this
decorator gives: an __init__ from the annotated fields and their defaults,
equality, a repr, immutability for frozen records; every record class also
derives from Record, which gives replace() and as_dict().
Field annotations stay for mypy (they are strings here, never evaluated).
"""
from __future__ import annotations

TYPE_CHECKING = False   # mypy reads this as typing.TYPE_CHECKING; no `import typing`
if TYPE_CHECKING:
    from typing import Any, Callable, Self, TypeVar, dataclass_transform
    T = TypeVar("T")
else:
    def dataclass_transform(**_: object):  # PEP 681: mypy sees a dataclass-like decorator
        return lambda decorator: decorator


class Record:
    """The base of every record: what mypy cannot infer from the decorator."""
    _fields: tuple[str, ...] = ()

    def replace(self, **changes: Any) -> Self:
        values = {n: getattr(self, n) for n in self._fields}
        values.update(changes)
        return type(self)(**values)

    def as_dict(self) -> dict[str, Any]:
        return {n: getattr(self, n) for n in self._fields}


@dataclass_transform(frozen_default=True)
def record(frozen: bool = True) -> Callable[[type[T]], type[T]]:
    def wrap(cls):  # type: ignore[no-untyped-def]
        names = [n for n in cls.__dict__.get("__annotations__", {})
                 if not n.startswith("_")]
        defaults = {n: cls.__dict__[n] for n in names if n in cls.__dict__}

        def __init__(self, *args, **kw):  # type: ignore[no-untyped-def]
            if len(args) > len(names):
                raise TypeError(f"{cls.__name__}: too many arguments")
            values = dict(zip(names, args))
            for key, value in kw.items():
                if key not in names or key in values:
                    raise TypeError(f"{cls.__name__}: bad argument {key!r}")
                values[key] = value
            for name in names:
                if name not in values:
                    if name not in defaults:
                        raise TypeError(f"{cls.__name__}: missing {name!r}")
                    value = defaults[name]
                    # mutable defaults are copied, like dataclasses' default_factory
                    values[name] = value.copy() if isinstance(value, (list, dict)) else value
                object.__setattr__(self, name, values[name])

        def __setattr__(self, name, value):  # type: ignore[no-untyped-def]
            raise AttributeError(f"{cls.__name__} is frozen: cannot set {name}")

        def __repr__(self):  # type: ignore[no-untyped-def]
            inner = ", ".join(f"{n}={getattr(self, n)!r}" for n in names)
            return f"{cls.__name__}({inner})"

        def __eq__(self, other):  # type: ignore[no-untyped-def]
            if other.__class__ is not self.__class__:
                return NotImplemented
            return all(getattr(self, n) == getattr(other, n) for n in names)

        def __hash__(self):  # type: ignore[no-untyped-def]
            return hash(tuple(getattr(self, n) for n in names))

        for name in names:
            if name in cls.__dict__:
                delattr(cls, name)
        cls.__init__ = __init__
        cls.__repr__ = __repr__
        cls.__eq__ = __eq__
        cls.__match_args__ = tuple(names)  # type: ignore[misc]
        cls._fields = tuple(names)
        if frozen:
            cls.__setattr__ = __setattr__
            cls.__hash__ = __hash__
        else:
            cls.__hash__ = None
        return cls
    return wrap
