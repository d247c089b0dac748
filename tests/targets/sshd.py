"""A real OpenSSH server for the tests: Debian's ``sshd`` on 127.0.0.1, throwaway host and user keys.

``scripts/test-setup.sh`` installs ``openssh-server``; without it (or without root, which sshd needs
to log a user in) the tests that use :func:`sshd` skip, saying why.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

# This helper's port range (other suites use other ranges concurrently).
PORTS = range(41400, 41500)


def free_port(ports: range = PORTS) -> int:
    """A loopback TCP port of ``ports`` that nothing listens on now."""
    for port in ports:
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port in {ports.start}-{ports.stop - 1}")


def sshd_binary() -> str | None:
    """Path of Debian's sshd, or None."""
    return shutil.which("sshd") or next((p for p in ("/usr/sbin/sshd",) if os.access(p, os.X_OK)), None)


@dataclass
class SSHServer:
    """A running sshd and what a client needs to reach it."""

    host: str
    port: int
    user: str
    user_key: Path  # private key whose .pub is authorized
    host_key: Path  # the server's private host key (its .pub is the key clients must trust)
    known_hosts: Path  # a client file that trusts this server (written by the fixture)
    dir: Path
    proc: subprocess.Popen[bytes]

    def host_fingerprint(self) -> str:
        out = subprocess.run(
            ["ssh-keygen", "-lf", f"{self.host_key}.pub", "-E", "sha256"],
            capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
        return out.split()[1]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def _keygen(path: Path) -> None:
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "fazai-test", "-f", str(path)], check=True
    )


def start_sshd(
    base: Path, *, port: int | None = None, host_key: Path | None = None, clean_home: bool = True
) -> SSHServer:
    """Start sshd in ``base`` (keys made there unless ``host_key`` is given); waits until it listens.

    ``clean_home``: sessions get ``HOME=<base>/home`` with an empty ``.bashrc``, like a fresh node.
    Bash reads ``~/.bashrc`` in every ssh session; this machine's root one runs ``pyenv init``
    (~0.5 s a session), which would otherwise be most of every command's time here.
    """
    binary = sshd_binary()
    if binary is None:
        pytest.skip("openssh-server is not installed (run scripts/test-setup.sh as root)")
    if os.geteuid() != 0:
        pytest.skip("sshd must run as root to log a user in")
    base.mkdir(parents=True, exist_ok=True)
    if host_key is None:
        host_key = base / "host_ed25519"
        if not host_key.exists():
            _keygen(host_key)
    user_key = base / "user_ed25519"
    if not user_key.exists():
        _keygen(user_key)
    (base / "authorized_keys").write_text(Path(f"{user_key}.pub").read_text())
    port = port or free_port()
    home_line = ""
    if clean_home:
        home = base / "home"
        home.mkdir(exist_ok=True)
        (home / ".bashrc").touch()
        home_line = f"SetEnv HOME={home}\n"
    cfg = base / "sshd_config"
    cfg.write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {host_key}\nPidFile {base / 'sshd.pid'}\n"
        f"AuthorizedKeysFile {base / 'authorized_keys'}\n"
        "StrictModes no\nUsePAM no\nPermitRootLogin prohibit-password\n"
        "PasswordAuthentication no\nKbdInteractiveAuthentication no\n"
        "Subsystem sftp internal-sftp\nLogLevel INFO\n" + home_line
    )
    Path("/run/sshd").mkdir(exist_ok=True)  # the privilege-separation folder sshd insists on
    log = open(base / "sshd.log", "ab")  # noqa: SIM115 (kept open for the server's life)
    proc = subprocess.Popen([binary, "-D", "-e", "-f", str(cfg)], stdout=log, stderr=log)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"sshd exited at start: {(base / 'sshd.log').read_text()[-2000:]}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2) as s:
            if s.recv(64).startswith(b"SSH-"):
                break
        time.sleep(0.05)
    else:
        proc.kill()
        raise RuntimeError("sshd did not start listening within 10 s")
    known = base / "known_hosts"
    known.write_text(f"[127.0.0.1]:{port} {Path(f'{host_key}.pub').read_text().split(' fazai')[0]}\n")
    return SSHServer("127.0.0.1", port, "root", user_key, host_key, known, base, proc)


@pytest.fixture(scope="session")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SSHServer]:
    """One sshd for the whole test session."""
    server = start_sshd(tmp_path_factory.mktemp("sshd"))
    try:
        yield server
    finally:
        server.stop()
