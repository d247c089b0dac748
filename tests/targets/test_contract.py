"""The Target contract (``contract.py``) run against the local and the ssh target."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from fazai.targets.local import LocalTarget
from fazai.targets.ssh import SSHTarget
from targets.contract import TargetContract
from targets.sshd import SSHServer


def ssh_target(server: SSHServer, **kw: object) -> SSHTarget:
    """An SSHTarget for the test sshd (trusting its host key)."""
    opts: dict[str, object] = {
        "name": "sshd-test", "port": server.port, "user": server.user, "key_path": server.user_key,
        "known_hosts": server.known_hosts, "connect_timeout_s": 10.0,
    }  # fmt: skip
    opts.update(kw)
    return SSHTarget(server.host, **opts)  # type: ignore[arg-type]


@pytest.fixture
def remote_dir(tmp_path: Path) -> str:
    # The test sshd runs on this machine, so a local temporary folder is also the node's folder.
    d = tmp_path / "node"
    d.mkdir()
    return str(d)


class TestLocalTarget(TargetContract):
    @pytest.fixture
    async def target(self) -> AsyncIterator[LocalTarget]:
        yield LocalTarget()


class TestSSHTarget(TargetContract):
    @pytest.fixture
    async def target(self, sshd: SSHServer) -> AsyncIterator[SSHTarget]:
        t = ssh_target(sshd)
        try:
            yield t
        finally:
            assert t.connects <= 1, "the target opened more than one connection for one node"
            await t.close()
