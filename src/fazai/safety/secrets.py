"""FazAI's own secrets are not the agent's to read: its token, firewall keys, session store and log.

Agent commands run as root, so file modes do not stop ``cat /var/lib/fazai/daemon.token``, and
``cat`` is read-only, so it would run unasked. :class:`GuardedPolicy` refuses (forbidden) any command
that names one of these files, globs or recurses in a folder that holds one, or reads another
process's ``/proc/<pid>/environ`` (the daemon's environment holds API keys).

This is a text check of the command, a first line: a command can still reach a file by a path it
builds at run time. The second line is the redaction of known secret values from every stored event
(``fazai.store.redact``), and commands get a scrubbed environment (``fazai.targets.local``).
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

from fazai.config import SafetySettings, Settings

from .model import FORBIDDEN
from .policy import Decision, SafetyPolicy

_SQLITE_SIDECARS = ("", "-wal", "-shm", "-journal")
_GLOB = re.compile(r"[*?\[]")
# Commands that read a whole folder tree: with a secret's folder named, they would read the secret.
_RECURSIVE = re.compile(
    r"(?:^|[\s;|&(])(?:tar|rsync|zip|find|du\s+-a|cp|scp|grep\s+-\w*[rR]|rg|ag|strings|xxd|od|hexdump)\b"
    r"|\s-(?:\w*[rR]\w*)\b|--recursive"
)
_PROC_ENVIRON = re.compile(r"/proc/[^\s/]+/+environ\b")


def secret_files(settings: Settings) -> list[Path]:
    """The files FazAI keeps secrets in: token, OPNsense keys, the session store (+ WAL/SHM), logs."""
    state = settings.paths.state_dir
    out = [settings.daemon_token_file, state / "opnsense" / "secrets.json"]
    url = settings.database_url
    if url.startswith("sqlite") and ":///" in url:
        db = url.split(":///", 1)[1].split("?", 1)[0]
        if db and db != ":memory:":
            out += [Path(db + s) for s in _SQLITE_SIDECARS]
    if settings.daemon.log_file is not None:
        out.append(settings.daemon.log_file)
    out.append(settings.paths.runtime_dir / "worker.log")
    return out


class SecretGuard:
    """Says whether a command would read one of ``files`` (see the module docstring)."""

    def __init__(self, files: Iterable[Path]):
        self.files = [Path(f) for f in files]
        names: set[str] = set()
        paths: set[str] = set()
        dirs: set[str] = set()
        for f in self.files:
            paths.add(str(f))
            with contextlib.suppress(OSError, RuntimeError):
                paths.add(str(f.resolve()))
            names.add(f.name)
            dirs.add(str(f.parent).rstrip("/") or "/")
        self._paths = sorted(paths, key=len, reverse=True)
        self._names = sorted(n for n in names if n)
        self._dirs = sorted(d for d in dirs if d != "/")

    def check(self, command: str) -> str | None:
        """Why ``command`` may not run (it would read FazAI's secrets), or ``None``."""
        for p in self._paths:
            if p in command:
                return f"reads {p}: FazAI's own secrets (token, keys, session log) are not for agent commands"
        for n in self._names:
            if re.search(rf"(?:^|[^\w.-]){re.escape(n)}(?:$|[^\w.-])", command):
                return f"names {n}: FazAI's own secret files are not for agent commands"
        for d in self._dirs:
            if re.search(rf"{re.escape(d)}(?:/|$|[\s'\"])", command) and (
                _GLOB.search(command) or _RECURSIVE.search(command)
            ):
                return f"reads in bulk in {d}, which holds FazAI's secrets (token, keys, session log)"
        if _PROC_ENVIRON.search(command):
            return "reads a process's environment (/proc/…/environ): the daemon's holds API keys"
        return None


class GuardedPolicy(SafetyPolicy):
    """The safety policy, refusing first any command that would read FazAI's own secrets."""

    def __init__(self, settings: SafetySettings, *, protected: Sequence[Path] = (), assume_yes: bool = False):
        super().__init__(settings, assume_yes=assume_yes)
        self.guard = SecretGuard(protected)

    def check_command(self, command: str) -> Decision:
        """:meth:`SafetyPolicy.check_command`, with reads of FazAI's secrets forbidden."""
        why = self.guard.check(command)
        if why is not None:
            return Decision("deny", FORBIDDEN, [why])
        return super().check_command(command)
