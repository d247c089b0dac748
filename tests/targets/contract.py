"""The ``Target`` contract: what every target (local, ssh, agent) must do, run against each of them.

A test module subclasses :class:`TargetContract` and provides two fixtures: ``target`` (a connected
target, closed afterwards) and ``remote_dir`` (an empty folder path *on the target's machine*). The
tests reach that machine only through the target itself, so they hold for a remote node too.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from fazai.targets.base import ExecResult, Target, TargetError


async def _alive(target: Target, pid: str) -> bool:
    """True while ``pid`` is a live (not zombie) process on the target's machine."""
    res = await target.run(f"ps -o stat= -p {pid} || true")
    state = res.stdout.strip()
    return bool(state) and not state.startswith("Z")


async def _eventually_gone(target: Target, pid: str, within_s: float = 5.0) -> bool:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        if not await _alive(target, pid):
            return True
        await asyncio.sleep(0.1)
    return False


class TargetContract:
    """Subclass it and provide the ``target`` and ``remote_dir`` fixtures."""

    async def test_satisfies_the_protocol(self, target: Target) -> None:
        assert isinstance(target, Target)
        assert isinstance(target.name, str) and target.name

    async def test_exit_code_stdout_stderr(self, target: Target) -> None:
        res = await target.run("echo out; echo err >&2; exit 3")
        assert isinstance(res, ExecResult)
        assert (res.exit_code, res.stdout, res.stderr) == (3, "out\n", "err\n")
        assert res.duration_s > 0 and not res.ok and not res.timed_out and not res.cancelled
        ok = await target.run("true")
        assert ok.ok and ok.stdout == "" and ok.stderr == ""

    async def test_killed_by_a_signal_is_a_negative_code(self, target: Target) -> None:
        res = await target.run("kill -9 $$")
        assert res.exit_code == -9

    async def test_bash_without_profile_no_stdin_quiet_env(self, target: Target) -> None:
        res = await target.run('echo "$BASH_VERSION|$PAGER|$TERM"; read -r line; echo "read=$?"')
        version, pager, term = res.stdout.splitlines()[0].split("|")
        assert version and pager == "cat" and term == "dumb"
        assert res.stdout.splitlines()[1] == "read=1"  # stdin is empty, never a terminal that waits
        path = await target.run("echo $PATH")
        assert "/usr/sbin" in path.stdout.split(":") or "/usr/sbin\n" in path.stdout

    async def test_output_is_streamed_while_the_command_runs(self, target: Target, remote_dir: str) -> None:
        # The command waits for a file that only the output callback creates (through the target,
        # on a second command): output held back until the end would time out instead.
        flag = f"{remote_dir}/seen"
        seen: list[tuple[str, str]] = []
        tasks: list[asyncio.Task[ExecResult]] = []

        def on_output(stream: str, text: str) -> None:
            seen.append((stream, text))
            if "ready" in text and not tasks:
                tasks.append(asyncio.ensure_future(target.run(f"touch {flag}")))

        cmd = f"echo ready; while [ ! -e {flag} ]; do sleep 0.01; done; echo got it >&2"
        res = await target.run(cmd, timeout=20, on_output=on_output)
        await asyncio.gather(*tasks)
        assert not res.timed_out and res.exit_code == 0
        assert seen[0] == ("stdout", "ready\n") and ("stderr", "got it\n") in seen
        assert res.stdout == "ready\n" and res.stderr == "got it\n"

    async def test_async_callback_and_split_utf8(self, target: Target) -> None:
        parts: list[str] = []

        async def on_output(stream: str, text: str) -> None:
            parts.append(text)

        res = await target.run(r"printf '\xc3'; sleep 0.2; printf '\xa9\n'", on_output=on_output)
        assert res.stdout == "é\n" and "".join(parts) == "é\n"

    async def test_timeout_kills_the_whole_process_group(self, target: Target) -> None:
        t0 = time.monotonic()
        res = await target.run("sleep 300 & echo $!; sleep 300", timeout=1.0)
        assert res.timed_out and not res.cancelled and res.exit_code < 0
        assert time.monotonic() - t0 < 10
        pid = res.stdout.split()[0]
        assert await _eventually_gone(target, pid), f"background child {pid} survived the timeout"

    async def test_cancel_event_stops_the_command(self, target: Target) -> None:
        cancel = asyncio.Event()

        def on_output(stream: str, text: str) -> None:
            cancel.set()

        res = await target.run("echo started; sleep 300 & echo $!; wait", cancel=cancel, on_output=on_output)
        assert res.cancelled and not res.timed_out and not res.ok
        pid = res.stdout.split()[1] if len(res.stdout.split()) > 1 else None
        if pid:
            assert await _eventually_gone(target, pid)

    async def test_a_background_child_does_not_hold_the_result(self, target: Target) -> None:
        t0 = time.monotonic()
        res = await target.run("sleep 5 & echo done")
        assert res.exit_code == 0 and res.stdout.startswith("done")
        assert time.monotonic() - t0 < 4, "waited for a background child that holds the output"

    async def test_concurrent_commands_keep_their_own_output(self, target: Target) -> None:
        results = await asyncio.gather(*(target.run(f"sleep 0.1; echo {i}; exit {i}") for i in range(6)))
        assert [(r.exit_code, r.stdout) for r in results] == [(i, f"{i}\n") for i in range(6)]

    async def test_large_output_arrives_whole(self, target: Target) -> None:
        res = await target.run("head -c 1000000 /dev/zero | tr '\\0' a; echo; echo tail >&2")
        assert len(res.stdout) == 1_000_001 and set(res.stdout[:-1]) == {"a"} and res.stderr == "tail\n"

    async def test_files_round_trip_atomic_with_mode(self, target: Target, remote_dir: str) -> None:
        path = f"{remote_dir}/sub/dir/conf.txt"
        await target.put_file(path, "line é\n".encode(), mode=0o600)
        assert await target.get_file(path) == "line é\n".encode()
        st = await target.run(f"stat -c %a {path}; ls -A {remote_dir}/sub/dir")
        assert st.stdout.split() == ["600", "conf.txt"]  # mode set, no temporary file left behind
        await target.put_file(path, b"v2", mode=0o644)
        assert await target.get_file(path) == b"v2"
        assert (await target.run(f"stat -c %a {path}")).stdout.strip() == "644"

    async def test_missing_file_is_a_target_error(self, target: Target, remote_dir: str) -> None:
        with pytest.raises(TargetError, match="no-such-file"):
            await target.get_file(f"{remote_dir}/no-such-file")
