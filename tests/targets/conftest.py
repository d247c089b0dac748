"""Fixtures of the target tests: the real sshd (see ``sshd.py``)."""

from targets.sshd import sshd  # noqa: F401 (a fixture)
