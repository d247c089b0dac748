"""Read just enough of a GGUF header to know whether the model ships a chat template.

llama.cpp silently falls back to ChatML when a model has no template (Gemma 3 270M base), which
would teach a base model a format it never saw; the worker uses a plain "role: content" layout
instead, so it needs to know.
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import BinaryIO

_SCALAR_SIZES = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}
_STRING, _ARRAY = 8, 9


class GGUFError(ValueError):
    """The file is not a readable GGUF model."""


def _read(f: BinaryIO, n: int) -> bytes:
    data = f.read(n)
    if len(data) != n:
        raise GGUFError("truncated GGUF header")
    return data


def _u32(f: BinaryIO) -> int:
    return struct.unpack("<I", _read(f, 4))[0]


def _u64(f: BinaryIO) -> int:
    return struct.unpack("<Q", _read(f, 8))[0]


def _string(f: BinaryIO) -> bytes:
    return _read(f, _u64(f))


def _skip_value(f: BinaryIO, vtype: int) -> None:
    if vtype in _SCALAR_SIZES:
        f.seek(_SCALAR_SIZES[vtype], 1)
    elif vtype == _STRING:
        f.seek(_u64(f), 1)
    elif vtype == _ARRAY:
        etype, count = _u32(f), _u64(f)
        if etype in _SCALAR_SIZES:
            f.seek(_SCALAR_SIZES[etype] * count, 1)
        else:
            for _ in range(count):
                _skip_value(f, etype)
    else:
        raise GGUFError(f"unknown GGUF value type {vtype}")


def read_string_key(path: Path, key: str) -> str | None:
    """Return the string metadata value ``key`` of the GGUF at ``path`` (None when absent)."""
    with open(path, "rb") as f:
        if _read(f, 4) != b"GGUF":
            raise GGUFError(f"{path} is not a GGUF file")
        version = _u32(f)
        if version < 2:
            raise GGUFError(f"{path}: GGUF version {version} is too old")
        _u64(f)  # tensor count
        for _ in range(_u64(f)):
            name = _string(f).decode("utf-8", "replace")
            vtype = _u32(f)
            if name == key and vtype == _STRING:
                return _string(f).decode("utf-8", "replace")
            _skip_value(f, vtype)
    return None


def has_chat_template(path: Path) -> bool:
    """True when the GGUF carries ``tokenizer.chat_template``."""
    return bool(read_string_key(path, "tokenizer.chat_template"))
