"""The global knob defaults (`jail.defaults.*`, aliased as `jail.*`).

Stored as "name=value" lines in STATE/knobs, written atomically; a missing or
unreadable file means the seed's defaults.  Per-jail values live in each
jail's record (registry.JailRecord.knobs).
"""
from __future__ import annotations

import os

from ..fsutil import atomic_write
from ..model import KNOB_DEFAULTS, Knobs
from .registry import ensure_dirs, state_dir


def _path() -> str:
    return os.path.join(state_dir(), "knobs")


def get_defaults() -> Knobs:
    values: dict[str, int] = {}
    try:
        with open(_path(), "rb") as f:
            for line in f.read().decode("ascii").splitlines():
                key, _, value = line.partition("=")
                if key in KNOB_DEFAULTS:
                    values[key] = int(value)
    except (OSError, ValueError):
        values = {}
    return Knobs.from_dict({**KNOB_DEFAULTS, **values})


def set_defaults(knobs: Knobs) -> None:
    ensure_dirs()
    text = "".join(f"{k}={v}\n" for k, v in knobs.as_dict().items())
    atomic_write(_path(), text.encode("ascii"))
