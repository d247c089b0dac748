"""The Target contract, run against AgentTarget: the hub in-process, a real fazai-agent process."""

from __future__ import annotations

import asyncio
import json
import os
import sys

import pytest

from daemon_harness import REPO
from fazai.config import Settings
from fazai.fleet.gateway import start_fleet
from fazai.store import Store
from fazai.targets.agent import AgentTarget
from fazai.targets.base import Target, TargetError
from fleet.harness import free_port


@pytest.fixture
async def target(tmp_path):
    gw, en = free_port(), free_port()
    settings = Settings.model_validate(
        {
            "paths": {"state_dir": str(tmp_path / "srv")},
            "fleet": {"enabled": True, "gateway_port": gw, "enroll_port": en},
        }
    )
    store = await Store.open(f"sqlite+aiosqlite:///{tmp_path / 'f.db'}")
    fleet = await start_fleet(settings, store.engine)
    token, _, _ = await fleet.registry.create_token("lab", 600)
    state = tmp_path / "agent"
    base = [sys.executable, "-m", "fazai.node", "--state-dir", str(state)]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    enroll = await asyncio.create_subprocess_exec(
        *base,
        "enroll",
        "--server",
        f"wss://127.0.0.1:{en}",
        "--token",
        token,
        "--name",
        "t-01",
        cwd=REPO,
        env=env,
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await asyncio.wait_for(enroll.communicate(), 60)
    assert enroll.returncode == 0, err.decode()
    proc = await asyncio.create_subprocess_exec(
        *base, "run", cwd=REPO, env=env, stderr=asyncio.subprocess.DEVNULL
    )
    for _ in range(400):
        if "t-01" in fleet.hub.conns:
            break
        await asyncio.sleep(0.05)
    assert "t-01" in fleet.hub.conns
    yield AgentTarget(fleet.hub, "t-01", session="s_test")
    proc.terminate()
    await proc.wait()
    await fleet.stop()
    await store.close()


async def test_contract(target: AgentTarget, tmp_path) -> None:
    assert isinstance(target, Target)
    res = await target.run("echo hello; echo oops >&2")
    assert res.ok and res.stdout == "hello\n" and res.stderr == "oops\n"
    assert (await target.run("exit 7")).exit_code == 7

    pieces: list[tuple[str, str, float]] = []
    loop = asyncio.get_running_loop()
    res = await target.run(
        "echo one; sleep 0.6; echo two", on_output=lambda s, t: pieces.append((s, t, loop.time()))
    )
    assert "".join(t for _, t, _ in pieces) == "one\ntwo\n"
    assert len(pieces) >= 2 and pieces[-1][2] - pieces[0][2] > 0.3  # streamed, not at the end

    res = await target.run("sleep 5", timeout=0.5)
    assert res.timed_out and not res.ok and res.duration_s < 4

    path = str(tmp_path / "sub" / "f.txt")
    await target.put_file(path, b"data\n", 0o600)
    assert await target.get_file(path) == b"data\n"
    assert oct(os.stat(path).st_mode & 0o777) == "0o600"
    await target.put_file(path, b"new\n")
    assert await target.get_file(path) == b"new\n"
    assert any(p.name.startswith("f.txt.fazai-bak.") for p in (tmp_path / "sub").iterdir())
    with pytest.raises(TargetError, match="cannot read"):
        await target.get_file(str(tmp_path / "missing"))
    # A flood of output is cut at the per-action cap (1 MiB), the command still completes.
    res = await target.run("head -c 3000000 /dev/zero | tr '\\0' a; echo tail >&2")
    assert res.exit_code == 0 and 0 < len(res.stdout) <= 1 << 20
    flood = await target.router.actions.get(target.last_action)  # type: ignore[attr-defined]
    assert flood["result"]["truncated"] is True
    with pytest.raises(TargetError, match="refused"):
        await target.run("mkfs.ext4 /dev/sda")
    row = await target.router.actions.get(target.last_action)  # type: ignore[attr-defined]
    assert row["session"] == "s_test" and row["state"] == "failed"

    # A session of the real agent loop whose default target is the node: its remote command is an
    # action and exec_log/exec_end events in the session's log, as on local.
    from _agent_doubles import ScriptedInteraction
    from fazai.agent.deps import AgentDeps
    from fazai.agent.loop import run_agent
    from fazai.config import SafetySettings
    from fazai.models.scripted import ScriptedProvider
    from fazai.safety import SafetyPolicy

    outputs = [
        json.dumps({"action": "shell", "command": "echo from-node-$((6*7))"}),
        json.dumps({"action": "done", "answer": "from-node-42", "status": "success"}),
    ]
    deps = AgentDeps(
        provider=ScriptedProvider(outputs),
        policy=SafetyPolicy(SafetySettings()),
        targets={"t-01": target},
        default_target="t-01",
    )
    events = [
        e
        async for e in run_agent(
            "say hi from the node",
            session_id="s_test",
            deps=deps,
            interaction=ScriptedInteraction(),
            abort=asyncio.Event(),
        )
    ]
    logs = "".join(e.data.get("text", "") for e in events if e.kind == "exec_log")
    assert "from-node-42" in logs
    assert any(e.kind == "exec_end" for e in events)
    remote = await target.router.actions.get(target.last_action)  # type: ignore[attr-defined]
    assert remote["spec"]["command"] == "echo from-node-$((6*7))" and remote["state"] == "done"
