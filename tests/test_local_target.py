"""The local target: bash -lc in its own process group, output streamed as it arrives."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from fazai.targets.base import Target, TargetError
from fazai.targets.local import LocalTarget


def _gone(pid: int) -> bool:
    """True when the process no longer exists (or is only a zombie waiting for its reaper)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return True
    return state in ("Z", "X")


async def _wait_gone(pid: int, within: float = 2.0) -> bool:
    for _ in range(int(within / 0.02)):
        if _gone(pid):
            return True
        await asyncio.sleep(0.02)
    return _gone(pid)


def test_local_target_satisfies_the_protocol():
    assert isinstance(LocalTarget(), Target)


async def test_exit_code_stdout_stderr_and_duration():
    res = await LocalTarget().run("echo out; echo err >&2; exit 3")
    assert (res.exit_code, res.stdout, res.stderr) == (3, "out\n", "err\n")
    assert res.duration_s > 0 and not res.timed_out and not res.cancelled and not res.ok


async def test_output_is_streamed_while_the_command_runs(tmp_path):
    # The command waits for a file that only the output callback creates: if output were delivered
    # at the end, this would never finish before the timeout.
    flag = tmp_path / "seen"
    seen: list[tuple[str, str]] = []

    async def on_output(stream: str, text: str) -> None:
        seen.append((stream, text))
        if "ready" in text:
            flag.touch()

    cmd = f"echo ready; while [ ! -e {flag} ]; do sleep 0.01; done; echo got it >&2"
    res = await LocalTarget().run(cmd, timeout=20, on_output=on_output)
    assert not res.timed_out and res.exit_code == 0
    assert seen[0] == ("stdout", "ready\n") and ("stderr", "got it\n") in seen


async def test_plain_function_callback_and_split_utf8():
    parts: list[str] = []
    # "é" is two bytes; printf writes the first byte, sleeps, then the second.
    res = await LocalTarget().run(
        r"printf '\xc3'; sleep 0.05; printf '\xa9\n'", on_output=lambda s, t: parts.append(t)
    )
    assert res.stdout == "é\n" and "".join(parts) == "é\n"


async def test_timeout_kills_the_whole_process_group():
    # Generous: on a loaded machine the login shell alone can take a few hundred milliseconds.
    res = await LocalTarget().run("sleep 300 & echo $!; wait", timeout=1.5)
    assert res.timed_out and not res.cancelled and res.exit_code < 0
    pid = int(res.stdout.split()[0])
    assert await _wait_gone(pid), "the background sleep survived the timeout"


async def test_cancel_event_kills_the_whole_process_group():
    cancel = asyncio.Event()
    pids: list[int] = []

    def on_output(stream: str, text: str) -> None:
        pids.extend(int(x) for x in text.split())
        cancel.set()

    res = await LocalTarget().run(
        "(sleep 300; echo never) & echo $!; wait", on_output=on_output, cancel=cancel
    )
    assert res.cancelled and not res.timed_out
    assert "never" not in res.stdout
    assert await _wait_gone(pids[0])


async def test_sigterm_ignored_still_killed():
    cancel = asyncio.Event()
    res = await LocalTarget(kill_grace_s=0.1).run(
        "trap '' TERM; echo $$; sleep 300", on_output=lambda s, t: cancel.set(), cancel=cancel
    )
    assert res.cancelled
    assert await _wait_gone(int(res.stdout.split()[0]))


async def test_caller_cancellation_kills_the_command():
    started = asyncio.Event()
    pids: list[int] = []

    def on_output(stream: str, text: str) -> None:
        pids.append(int(text.split()[0]))
        started.set()

    task = asyncio.create_task(LocalTarget().run("echo $$; exec sleep 300", on_output=on_output))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await _wait_gone(pids[0])


async def test_full_output_is_kept():
    res = await LocalTarget().run("head -c 300000 /dev/zero | tr '\\0' a; echo; seq 1 5000 >&2")
    assert len(res.stdout) == 300001 and res.stdout.count("a") == 300000
    assert res.stderr.splitlines()[-1] == "5000"


async def test_background_child_holding_the_pipe_does_not_hang():
    res = await LocalTarget(orphan_wait_s=0.2).run("sleep 5 & echo started")
    assert res.exit_code == 0 and res.stdout == "started\n"


async def test_stdin_is_not_a_terminal():
    res = await LocalTarget().run("cat; echo done", timeout=10)
    assert res.stdout == "done\n" and not res.timed_out


async def test_login_and_rc_files_are_not_read(tmp_path):
    # An operator's shell files that hang and print (as a stale `pyenv init` lock did here) must
    # neither delay nor pollute a command; BASH_ENV would be sourced by any non-interactive bash.
    for name in (".profile", ".bash_profile", ".bashrc", "env.sh"):
        (tmp_path / name).write_text("echo noise; sleep 30\n")
    env = {"HOME": str(tmp_path), "BASH_ENV": str(tmp_path / "env.sh"), "ENV": str(tmp_path / "env.sh")}
    res = await LocalTarget(env=env).run("echo out", timeout=10)
    assert (res.stdout, res.stderr, res.timed_out) == ("out\n", "", False)


async def test_sbin_is_on_path_even_when_the_caller_lacks_it():
    res = await LocalTarget(env={"PATH": "/usr/bin:/bin"}).run("echo $PATH", timeout=10)
    assert "/usr/sbin" in res.stdout.strip().split(":")


async def test_cwd_and_env():
    res = await LocalTarget(cwd="/tmp", env={"FAZAI_T": "x1"}).run("pwd; echo $FAZAI_T")
    assert res.stdout == "/tmp\nx1\n"


async def test_put_and_get_file(tmp_path):
    t = LocalTarget()
    path = tmp_path / "sub" / "f.conf"
    await t.put_file(str(path), b"data\n", mode=0o600)
    assert await t.get_file(str(path)) == b"data\n"
    assert (os.stat(path).st_mode & 0o777) == 0o600
    with pytest.raises(TargetError, match="cannot read"):
        await t.get_file(str(tmp_path / "missing"))
