"""What the ssh target adds to the contract: host key checks, key login, reuse, reconnect, limits."""

from __future__ import annotations

import time
from pathlib import Path

import asyncssh
import pytest

from fazai.targets.base import TargetError
from fazai.targets.known_hosts import HostKeyRefused, add_known_host, fetch_host_key, known_keys
from fazai.targets.ssh import SSHTarget
from targets.sshd import SSHServer, free_port, start_sshd
from targets.test_contract import ssh_target


async def test_unknown_host_key_is_refused_with_fingerprint_and_trust_command(
    sshd: SSHServer, tmp_path: Path
) -> None:
    known = tmp_path / "known_hosts"  # does not exist: nothing is trusted
    t = ssh_target(sshd, known_hosts=known)
    with pytest.raises(HostKeyRefused) as exc:
        await t.run("touch /tmp/should-not-run")
    e = exc.value
    assert not e.changed and e.fingerprint == sshd.host_fingerprint()
    msg = str(e)
    assert "not known" in msg and sshd.host_fingerprint() in msg
    assert f"fazai ssh trust 127.0.0.1 --port {sshd.port}" in msg
    assert not known.exists() and t.connects == 0  # never trusted silently, never logged in


async def test_trusting_the_key_lets_the_connection_through(sshd: SSHServer, tmp_path: Path) -> None:
    known = tmp_path / "kh" / "known_hosts"
    key = await fetch_host_key(sshd.host, sshd.port, 5)
    assert key.get_fingerprint("sha256") == sshd.host_fingerprint()
    assert add_known_host(known, sshd.host, sshd.port, key) is True
    assert add_known_host(known, sshd.host, sshd.port, key) is False  # already there: not duplicated
    assert known.stat().st_mode & 0o777 == 0o600
    assert known.read_text().startswith(f"[127.0.0.1]:{sshd.port} ssh-ed25519 ")
    t = ssh_target(sshd, known_hosts=known)
    try:
        assert (await t.run("echo in")).stdout == "in\n"
    finally:
        await t.close()


async def test_changed_host_key_is_refused_as_changed(sshd: SSHServer, tmp_path: Path) -> None:
    # A second server on another port with its own host key; known_hosts says that port has the
    # first server's key (as if the machine had been replaced).
    other = start_sshd(tmp_path / "other", port=free_port())
    try:
        old_key = asyncssh.read_public_key(f"{sshd.host_key}.pub")
        known = tmp_path / "known_hosts"
        add_known_host(known, other.host, other.port, old_key)
        t = ssh_target(other, known_hosts=known)
        with pytest.raises(HostKeyRefused) as exc:
            await t.run("true")
        assert exc.value.changed and exc.value.fingerprint == other.host_fingerprint()
        assert "CHANGED" in str(exc.value) and "ssh-keygen -R" in str(exc.value)
        # Trusting refuses to replace the recorded key: removing it is the operator's decision.
        new_key = await fetch_host_key(other.host, other.port, 5)
        with pytest.raises(TargetError, match="different key"):
            add_known_host(known, other.host, other.port, new_key)
        assert [k.get_fingerprint() for k in known_keys(known, other.host, other.host, other.port)] == [
            old_key.get_fingerprint()
        ]
    finally:
        other.stop()


async def test_a_key_the_node_does_not_accept_is_a_clear_error(sshd: SSHServer, tmp_path: Path) -> None:
    stranger = tmp_path / "stranger"
    stranger.write_bytes(asyncssh.generate_private_key("ssh-ed25519").export_private_key())
    with pytest.raises(TargetError, match=r"refused the key .*authorized_keys"):
        await ssh_target(sshd, key_path=stranger).run("true")
    with pytest.raises(TargetError, match=r"no SSH key .*fazai ssh keygen"):
        await ssh_target(sshd, key_path=tmp_path / "missing").run("true")


async def test_unreachable_node_fails_within_the_timeout(tmp_path: Path) -> None:
    port = free_port()  # nothing listens there
    t = SSHTarget("127.0.0.1", port=port, key_path=tmp_path / "k", known_hosts=tmp_path / "kh")
    (tmp_path / "k").write_bytes(asyncssh.generate_private_key("ssh-ed25519").export_private_key())
    t0 = time.monotonic()
    with pytest.raises(TargetError, match="cannot connect"):
        await t.run("true")
    assert time.monotonic() - t0 < 5


async def test_one_connection_is_reused_and_reopened_after_a_drop(sshd: SSHServer) -> None:
    t = ssh_target(sshd)
    try:
        for _ in range(3):
            assert (await t.run("echo x")).ok
        assert t.connects == 1
        # Kill this connection's sshd process on the node: the command running then is lost ...
        with pytest.raises(TargetError, match="lost while the command ran"):
            await t.run("kill -9 $PPID; sleep 5")
        # ... and the next command opens a new connection by itself.
        assert (await t.run("echo back")).stdout == "back\n"
        assert t.connects == 2
    finally:
        await t.close()


async def test_output_flood_is_cut_at_the_limit(sshd: SSHServer) -> None:
    t = ssh_target(sshd, max_output_bytes=100_000)
    try:
        t0 = time.monotonic()
        res = await t.run("yes", timeout=30)
        assert not res.timed_out and not res.ok and time.monotonic() - t0 < 10
        assert len(res.stdout) == 100_000 and "output passed 100000 bytes" in res.stderr
        assert (await t.run("pgrep -x yes || echo none")).stdout.strip() == "none"
    finally:
        await t.close()
