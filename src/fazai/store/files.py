"""Private files: FazAI's state folder is 0700, its database and logs 0600.

The event log holds every command's output (``cat /etc/shadow`` is read-only, so it runs unasked):
no other local user may read it. Checked at every start: a loose mode on something we own is
tightened (and logged, so the operator learns someone loosened it); something owned by another
user is refused, because tightening it would only hide the problem.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import structlog

log = structlog.get_logger("fazai.store")

DIR_MODE = 0o700
FILE_MODE = 0o600

# SQLite's companions of a database file: the WAL, its shared-memory index, a rollback journal.
_SQLITE_SIDECARS = ("-wal", "-shm", "-journal")


class FileModeError(Exception):
    """A state file or folder is not ours to trust; the message says which and what to do."""


def _check_owner(path: Path, st: os.stat_result) -> None:
    uid = os.geteuid()
    if st.st_uid != uid:
        raise FileModeError(
            f"{path} belongs to uid {st.st_uid}, not to this user (uid {uid}): FazAI keeps its "
            f"session log there and will not use a folder or file another user controls; "
            f"fix it with `chown {uid} {path}` or point [paths] state_dir elsewhere"
        )


def _tighten(path: Path, st: os.stat_result, mode: int) -> bool:
    have = stat.S_IMODE(st.st_mode)
    if have & ~mode & 0o777 == 0:
        return False
    os.chmod(path, have & mode)
    log.warning(
        "file_mode_fixed",
        path=str(path),
        was=oct(have),
        now=oct(have & mode),
        why="FazAI's state is private to its user; something loosened this mode",
    )
    return True


def secure_dir(path: Path, mode: int = DIR_MODE) -> Path:
    """Create ``path`` with ``mode`` (parents as needed), or check an existing one.

    Raises :class:`FileModeError` when it is not a folder or another user owns it; a loose mode is
    tightened with a logged warning.
    """
    path = Path(path)
    if not path.exists():
        path.mkdir(parents=True, exist_ok=True, mode=mode)
        os.chmod(path, mode)  # mkdir's mode is filtered by the umask
        return path
    st = path.lstat()
    if stat.S_ISLNK(st.st_mode):
        st = path.stat()
    if not stat.S_ISDIR(st.st_mode):
        raise FileModeError(f"{path} is not a folder: move it away or point [paths] state_dir elsewhere")
    _check_owner(path, st)
    _tighten(path, st, mode)
    return path


def secure_file(path: Path, mode: int = FILE_MODE, *, create: bool = False) -> None:
    """Check (and with ``create``, create empty) a private file: owner us, mode at most ``mode``."""
    path = Path(path)
    if create and not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, mode)
        os.close(fd)
    try:
        st = path.lstat()
    except FileNotFoundError:
        return
    if stat.S_ISLNK(st.st_mode):
        raise FileModeError(
            f"{path} is a symbolic link: FazAI writes its private files itself; remove the link"
        )
    _check_owner(path, st)
    _tighten(path, st, mode)


def secure_sqlite(db_path: Path) -> None:
    """The database file and its WAL/SHM companions: created 0600 before SQLite opens them.

    SQLite gives a new WAL/SHM file the mode of the database file, so a 0600 database keeps the
    companions 0600 whatever the umask.
    """
    secure_file(db_path, create=True)
    for suffix in _SQLITE_SIDECARS:
        secure_file(Path(str(db_path) + suffix))


def open_private_log(path: Path) -> int:
    """An append-only file descriptor on a 0600 log (created when missing, tightened otherwise)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    secure_file(path, create=True)
    return os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, FILE_MODE)


def sqlite_path(url: str) -> Path | None:
    """The file behind a SQLite URL, or ``None`` (another database, or ``:memory:``)."""
    if not url.startswith("sqlite") or ":///" not in url:
        return None
    path = url.split(":///", 1)[1].split("?", 1)[0]
    return Path(path) if path and path != ":memory:" else None
