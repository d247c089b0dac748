"""A disk reserve next to the SQLite store: a ballast file given up when the disk fills.

When an event write fails because the disk is full, the writer deletes the ballast and writes again:
the events already accepted, the ``error`` that stops the session and its final status then fit.
New runs are refused (HTTP 503) until the ballast can be made again, i.e. until the operator freed
space. PostgreSQL (a remote server) has no reserve here: its writes are retried until they pass.
"""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path

import structlog

log = structlog.get_logger("fazai.store")


class DiskReserve:
    """``<db>.reserve``: ``size`` bytes set aside on the store's filesystem."""

    def __init__(self, path: Path, size: int):
        self.path = Path(path)
        self.size = size
        self._last_try = 0.0

    @property
    def held(self) -> bool:
        """Whether the reserve is in place (the disk had room for it)."""
        try:
            return self.path.stat().st_size >= self.size
        except OSError:
            return False

    def ensure(self, *, min_interval_s: float = 0.0) -> bool:
        """Make the reserve when it is missing (at most every ``min_interval_s``); whether it is held."""
        if self.size <= 0 or self.held:
            return True
        now = time.monotonic()
        if now - self._last_try < min_interval_s:
            return False
        self._last_try = now
        tmp = self.path.with_name(self.path.name + ".new")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                try:
                    os.posix_fallocate(fd, 0, self.size)
                except OSError as e:
                    if e.errno not in (95, 22):  # EOPNOTSUPP / EINVAL: write zeros instead
                        raise
                    block = b"\0" * 65536
                    for _ in range(0, self.size, len(block)):
                        os.write(fd, block)
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, self.path)
            return True
        except OSError as e:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            log.warning("disk_reserve_missing", path=str(self.path), error=e.strerror or str(e))
            return False

    def release(self) -> bool:
        """Give the reserve's space back to the filesystem; whether there was one to give."""
        try:
            os.unlink(self.path)
        except OSError:
            return False
        log.error("disk_reserve_released", path=str(self.path), bytes=self.size)
        return True
