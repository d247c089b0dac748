"""Evaluating tiny literal pipelines (``echo … | base64 -d``) so a hidden payload can be judged."""

from __future__ import annotations

import base64
import binascii
import codecs
import re

from . import rules

DOWNLOADERS = frozenset(
    {"curl", "wget", "fetch", "nc", "ncat", "netcat", "socat", "ftp", "lftp", "aria2c", "http", "https"}
)


DECODERS = frozenset(
    {
        "base64",
        "base32",
        "xxd",
        "openssl",
        "uudecode",
        "rev",
        "gunzip",
        "zcat",
        "bzcat",
        "xzcat",
        "basenc",
        "tr",
    }
)


def evaluate_pipeline(cmds: list[tuple[list[str], str | None]]) -> str | None:
    data: str | None = None
    for argv, here in cmds:
        if not argv:
            return None
        name = rules.resolve_name(argv[0])[0]
        args = argv[1:]
        if here is not None:
            data = here
        if name == "echo":
            flags = [a for a in args if re.fullmatch(r"-[neE]+", a)]
            rest = args[len(flags) :]
            data = " ".join(rest)
            if any("e" in f for f in flags):
                data = _unescape(data)
        elif name == "printf":
            if not args:
                return None
            fmt = _unescape(args[0])
            for a in args[1:]:
                fmt = re.sub(r"%[bs]", lambda _m, a=a: _unescape(a), fmt, count=1)
            data = fmt.replace("%%", "%")
        elif name == "cat" and not args:
            pass
        elif name in {"base64", "base32", "basenc"} and any(a in {"-d", "--decode", "-D"} for a in args):
            if data is None:
                return None
            try:
                raw = (
                    base64.b64decode(data.strip() + "==", validate=False)
                    if name != "base32"
                    else base64.b32decode(data.strip())
                )
                data = raw.decode("utf-8", "replace")
            except (binascii.Error, ValueError):
                return None
        elif name == "openssl" and ("-d" in args and ({"-base64", "-a", "base64"} & set(args))):
            if data is None:
                return None
            try:
                data = base64.b64decode(data.strip() + "==", validate=False).decode("utf-8", "replace")
            except (binascii.Error, ValueError):
                return None
        elif name == "xxd" and any(a.startswith("-r") for a in args):
            if data is None:
                return None
            try:
                data = bytes.fromhex(re.sub(r"\s", "", data)).decode("utf-8", "replace")
            except ValueError:
                return None
        elif name == "rev":
            if data is None:
                return None
            data = "\n".join(line[::-1] for line in data.split("\n"))
        else:
            return None
    return data


def _unescape(s: str) -> str:
    try:
        s2 = re.sub(r"\\([0-7]{1,3})", lambda m: chr(int(m.group(1), 8)), s)
        return codecs.decode(s2, "unicode_escape")
    except Exception:
        return s


def ansi_c(raw: str) -> str:
    def dec(m: re.Match[str]) -> str:
        try:
            return codecs.decode(m.group(1), "unicode_escape")
        except Exception:
            return m.group(1)

    return re.sub(r"\$'((?:[^'\\]|\\.)*)'", dec, raw)
