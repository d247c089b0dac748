"""Runs one ops-benchmark case isolated: bubblewrap with a read-only root, fresh tmpfs where the case
writes, its own PID/UTS/IPC/network namespaces (no network), the fakes first on PATH and the
overlay files bound over the real ones. Without bubblewrap the case cannot be isolated and is refused.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from cases import FAKES, OVERLAYS, TMPFS, Case

REPO = Path(__file__).resolve().parents[2]


@dataclass
class SandboxRun:
    stdout: str
    stderr: str
    returncode: int
    expected: str | None


def bwrap_available() -> bool:
    return shutil.which("bwrap") is not None


def run_case(
    case: Case, inner_cmd: list[str], *, env: dict[str, str], binds: list[Path], timeout_s: float = 120.0
) -> SandboxRun:
    """Run ``case.setup`` then ``inner_cmd`` inside a fresh sandbox; returns its output."""
    if not bwrap_available():
        raise RuntimeError(
            "bubblewrap (bwrap) is required to isolate the ops benchmark: apt-get install bubblewrap"
        )
    with tempfile.TemporaryDirectory(prefix="fazai-ops-") as td:
        root = Path(td)
        fakes = root / "fakes"
        fakes.mkdir()
        for name, body in FAKES.items():
            p = fakes / name
            p.write_text(body)
            p.chmod(p.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
        overlays = root / "overlays"
        overlays.mkdir()
        args = [
            "bwrap",
            "--ro-bind",
            "/",
            "/",
            "--dev",
            "/dev",
            "--proc",
            "/proc",
            "--size",
            str(64 * 1024 * 1024),
            "--tmpfs",
            "/tmp",
            "--size",
            str(64 * 1024 * 1024),
            "--tmpfs",
            "/mnt",
        ]
        for path, mib in TMPFS.items():
            args += ["--size", str(mib * 1024 * 1024), "--tmpfs", path]
        for i, (path, content) in enumerate(OVERLAYS.items()):
            src = overlays / f"{i}"
            src.write_text(content)
            if Path(path).exists():
                args += ["--ro-bind", str(src), path]
            elif Path(path).parent.is_dir():
                # The read-only root has no file to bind over (no cron on this host): bind a copy of
                # the directory with the file added, so the case sees the same state on every host.
                copy = overlays / f"dir{i}"
                shutil.copytree(Path(path).parent, copy, symlinks=True)
                shutil.copy(src, copy / Path(path).name)
                args += ["--ro-bind", str(copy), str(Path(path).parent)]
            else:
                raise RuntimeError(f"overlay {path}: its directory does not exist on this host")
        args += ["--ro-bind", str(fakes), "/usr/local/sbin"]
        for b in binds:
            args += ["--bind", str(b), str(b)]
        # The checkout and its Python may live under a path the tmpfs mounts above hide (/tmp, /srv,
        # /opt, /home): bind them back, read-only, on top.
        for keep in (REPO, Path(sys.base_prefix).resolve(), Path(sys.prefix).resolve()):
            if any(keep == Path(t) or Path(t) in keep.parents for t in ("/tmp", "/mnt", *TMPFS)):
                args += ["--ro-bind", str(keep), str(keep)]
        # No user namespace: as root, setups may chown to the benchmark users.
        args += [
            "--unshare-pid",
            "--unshare-ipc",
            "--unshare-uts",
            "--unshare-net",
            "--unshare-cgroup-try",
            "--hostname",
            "ops-bench-01",
            "--die-with-parent",
            "--new-session",
        ]
        # The root is read-only, so a setup's dynamic expected value goes to /tmp/bench-expected and
        # is printed on stderr after the inner command, behind a marker.
        setup = case.setup.replace("/bench/expected", "/tmp/bench-expected")
        script = (
            "export PATH=/usr/local/sbin:$PATH\n"
            f"{setup}\n"
            '"$@"; rc=$?\n'
            '[ -f /tmp/bench-expected ] && printf "\\n@@EXPECTED@@%s\\n" "$(cat /tmp/bench-expected)" >&2\n'
            "exit $rc\n"
        )
        full_env = {**os.environ, **env, **case.env}
        full_env["PATH"] = "/usr/local/sbin:" + full_env.get("PATH", "/usr/bin:/bin")
        wrapper = [*args, "--", "bash", "-c", script, "bash", *inner_cmd]
        try:
            p = subprocess.run(wrapper, capture_output=True, text=True, env=full_env, timeout=timeout_s)
        except subprocess.TimeoutExpired as e:
            return SandboxRun(str(e.stdout or ""), f"sandbox timed out after {timeout_s}s", 124, None)
        stderr, expected = p.stderr, None
        if "@@EXPECTED@@" in stderr:
            stderr, _, tail = stderr.rpartition("@@EXPECTED@@")
            expected = tail.strip()
        return SandboxRun(p.stdout, stderr, p.returncode, expected)
