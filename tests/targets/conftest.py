"""Fixtures of the target tests: the real sshd (see ``sshd.py``)."""

import pytest

# The contract's asserts live outside test modules: have pytest explain them like any other.
pytest.register_assert_rewrite("targets.contract")

from targets.sshd import sshd  # noqa: E402, F401 (a fixture)
