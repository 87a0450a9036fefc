"""Atomic file writes: a temporary file in the same directory, flushed to disk, then
``os.replace`` — readers see the old file or the new one, never half of one."""
from __future__ import annotations

import json
import os


def write_text_atomic(path: str, text: str) -> None:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def write_json_atomic(path: str, data) -> None:
    write_text_atomic(path, json.dumps(data, indent=2))


def read_json_or_none(path: str):
    """The JSON at ``path`` (written by another process with :func:`write_json_atomic`), or
    None while it does not exist yet."""
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None
