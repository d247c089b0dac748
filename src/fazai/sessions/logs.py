"""Structured JSON logs (structlog) for the daemon; the session id rides in a context variable.

Standard-library records (uvicorn, the agent loop) go through the same JSON renderer, so journald
gets one JSON object per line whoever logged it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from pathlib import Path
from typing import TextIO

import structlog


class _Stderr:
    """Whatever ``sys.stderr`` is when a line is written, not when logging was configured: a caller
    that swaps it (a test runner, a CLI run in process) and closes its own later breaks nothing."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


class _Tee:
    """stderr and a private log file, line by line. A stream that fails (closed, disk full) loses that
    line there, never the run that logged it."""

    def __init__(self, *streams: TextIO):
        self._streams = streams

    def write(self, text: str) -> int:
        for s in self._streams:
            with contextlib.suppress(OSError, ValueError):
                s.write(text)
        return len(text)

    def flush(self) -> None:
        for s in self._streams:
            with contextlib.suppress(OSError, ValueError):
                s.flush()


def _log_stream(log_file: Path | None) -> TextIO:
    streams: list[TextIO] = [_Stderr()]  # type: ignore[list-item]
    if log_file is not None:
        from fazai.store.files import open_private_log

        streams.append(os.fdopen(open_private_log(log_file), "a", buffering=1))
    return _Tee(*streams)  # type: ignore[return-value]


def configure(level: str = "info", log_file: Path | None = None) -> None:
    """One JSON object per line on stderr (and ``log_file``, 0600), with level and session id."""
    lvl = getattr(logging, level.upper(), logging.INFO)
    stream = _log_stream(log_file)
    timestamper = structlog.processors.TimeStamper(fmt="iso", utc=True)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            timestamper,
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(lvl),
        logger_factory=structlog.PrintLoggerFactory(stream),
        cache_logger_on_first_use=False,
    )
    handler = logging.StreamHandler(stream)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                structlog.processors.JSONRenderer(),
            ],
            foreign_pre_chain=[
                structlog.contextvars.merge_contextvars,
                structlog.stdlib.add_log_level,
                structlog.stdlib.add_logger_name,
                timestamper,
            ],
        )
    )
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(lvl)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers = []
        logging.getLogger(name).propagate = True
