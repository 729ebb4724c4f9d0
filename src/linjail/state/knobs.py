"""The global knob defaults (`jail.defaults.*`, aliased as `jail.*`).

Stored as JSON under STATE/knobs.json, written atomically; a missing or
unreadable file means the seed's defaults.  Per-jail values live in each
jail's record (registry.JailRecord.knobs).
"""
from __future__ import annotations

import json
import os

from ..model import KNOB_DEFAULTS, Knobs
from .registry import atomic_write, state_dir


def _path() -> str:
    return os.path.join(state_dir(), "knobs.json")


def get_defaults() -> Knobs:
    try:
        with open(_path(), "rb") as f:
            data = json.loads(f.read())
        values = {k: int(data[k]) for k in KNOB_DEFAULTS if k in data}
    except (OSError, ValueError, TypeError):
        values = {}
    return Knobs.from_dict({**KNOB_DEFAULTS, **values})


def set_defaults(knobs: Knobs) -> None:
    os.makedirs(state_dir(), mode=0o755, exist_ok=True)
    atomic_write(_path(), json.dumps(knobs.as_dict()).encode())
