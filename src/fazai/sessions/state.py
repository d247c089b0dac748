"""Start-up checks of FazAI's private state: the state folder 0700, its database and logs 0600."""

from __future__ import annotations

from fazai.config import Settings
from fazai.store.files import FileModeError, secure_dir, secure_file, secure_sqlite, sqlite_path

__all__ = ["FileModeError", "secure_state"]


def secure_state(settings: Settings) -> None:
    """Create or check the state folder, the SQLite store and the daemon log file.

    A loose mode on our own files is tightened (with a logged warning); a folder or file owned by
    another user raises :class:`FileModeError` with what to do.
    """
    secure_dir(settings.paths.state_dir)
    db_file = sqlite_path(settings.database_url)
    if db_file is not None:
        if not db_file.parent.exists():
            secure_dir(db_file.parent)
        secure_sqlite(db_file)
    if settings.daemon.log_file is not None:
        secure_file(settings.daemon.log_file)
