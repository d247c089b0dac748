"""The resident worker, for real: xllamacpp + the Gemma 270M GGUF, over its Unix socket.

One worker per module (2 slots, small context, 2 threads); each test opens its own connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from fazai.config import WorkerSettings
from fazai.models.base import (
    Constraint,
    Final,
    Message,
    ModelSession,
    Provider,
    ProviderError,
    SessionParams,
    Token,
    collect,
)
from fazai.models.worker_client import WorkerProvider
from provider_contract import ProviderContract

PREFIX = (
    "You are FazAI, an operations assistant for Linux servers. Answer briefly and prefer read-only "
    "commands such as df, free, ss and journalctl before changing anything."
)
MISSING = "qwen2.5-coder-1.5b"  # a catalog model that is not installed in the test's empty state dir
GREEDY = SessionParams(temperature=0.0, max_tokens=4, seed=1)


def _wait_for_socket(path: Path, proc: subprocess.Popen[bytes], log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"worker exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        if path.exists():
            with contextlib.suppress(OSError), socket.socket(socket.AF_UNIX) as s:
                s.connect(str(path))
                return
        time.sleep(0.1)
    pytest.fail(f"worker did not start:\n{log.read_text()[-3000:]}")


@pytest.fixture(scope="module")
def worker_sock(gemma_gguf: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    d = tmp_path_factory.mktemp("worker")
    sock, log = d / "worker.sock", d / "worker.log"
    cmd = [sys.executable, "-m", "fazai.worker", "--model", str(gemma_gguf), "--socket", str(sock)]
    cmd += ["--threads", "2", "--slots", "2", "--ctx-size", "2048", "--system-prefix", PREFIX]
    env = {**os.environ, "FAZAI_CONFIG": "", "FAZAI_PATHS__STATE_DIR": str(d / "state")}
    env.pop("FAZAI_CONFIG")
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=out, env=env)
    try:
        _wait_for_socket(sock, proc, log)
        yield sock
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture
async def provider(worker_sock: Path):
    p = WorkerProvider(worker_sock, worker=WorkerSettings(autostart=False))
    yield p
    await p.aclose()


class Raw:
    """A bare ND-JSON connection, for what the provider would never send."""

    def __init__(self, path: Path):
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.settimeout(60)
        self.sock.connect(str(path))
        self.f = self.sock.makefile("rwb")

    def send(self, obj: object) -> None:
        line = obj if isinstance(obj, bytes) else json.dumps(obj).encode()
        self.f.write(line + b"\n")
        self.f.flush()

    def recv(self) -> dict:
        return json.loads(self.f.readline())

    def close(self) -> None:
        self.f.close()
        self.sock.close()


def _long_text(tag: str, words: int) -> str:
    return f"{tag}: " + " ".join(f"{tag.lower()}{i}" for i in range(words))


@pytest.mark.slow
def test_socket_mode_is_0660(worker_sock: Path) -> None:
    assert stat.S_IMODE(worker_sock.stat().st_mode) == 0o660


@pytest.mark.slow
def test_garbage_gets_error_events_and_connection_survives(worker_sock: Path) -> None:
    raw = Raw(worker_sock)
    try:
        raw.send(b"\x00\xffnot json{")
        ev = raw.recv()
        assert ev["event"] == "error" and "not valid JSON" in ev["message"]
        raw.send([1, 2, 3])
        assert "JSON object" in raw.recv()["message"]
        raw.send({"id": 7, "op": "launch_missiles"})
        ev = raw.recv()
        assert ev == {"id": 7, "event": "error", "message": ev["message"]} and "unknown op" in ev["message"]
        raw.send(
            {"id": 8, "op": "generate", "session": "nope", "messages": [{"role": "user", "content": "x"}]}
        )
        ev = raw.recv()
        assert ev["id"] == 8 and "create_session" in ev["message"]
        raw.send({"id": 9, "op": "create_session", "params": {"temprature": 1}})
        assert "unknown keys" in raw.recv()["message"]
        raw.send({"id": 10, "op": "status"})
        ev = raw.recv()
        assert ev["id"] == 10 and ev["event"] == "status" and ev["slots"] == 2
    finally:
        raw.close()


@pytest.mark.slow
async def test_provider_protocol_and_streaming(provider: WorkerProvider) -> None:
    assert isinstance(provider, Provider) and provider.supports_grammar
    s = await provider.open_session(SessionParams(temperature=0.0, max_tokens=6))
    assert isinstance(s, ModelSession)
    chunks = [c async for c in s.generate([Message("user", "Name one Linux command.")])]
    assert isinstance(chunks[-1], Final) and all(isinstance(c, Token) for c in chunks[:-1])
    final = chunks[-1]
    assert final.text == "".join(c.text for c in chunks[:-1])
    assert final.usage.generated_tokens == 6 and final.stop_reason == "length"
    assert final.usage.prompt_tokens > 0 and final.usage.ttft_ms > 0 and final.served_by == "worker"
    await s.close()


@pytest.mark.slow
async def test_new_session_reuses_shared_prefix(provider: WorkerProvider) -> None:
    s = await provider.open_session(GREEDY)
    final = await collect(s.generate([Message("user", "hello")]))
    # The prefix (system message, ~30 tokens) was evaluated at start-up, not by this session.
    assert final.usage.cached_tokens >= 25, final.usage
    await s.close()


@pytest.mark.slow
async def test_interleaved_sessions_keep_separate_caches(provider: WorkerProvider) -> None:
    # Three sessions on two slots: one of them is swapped out to a file and restored.
    sessions = [await provider.open_session(GREEDY) for _ in range(3)]
    topics = ["Apache", "Nginx", "Postfix"]
    histories: list[list[Message]] = []
    turn1 = []
    for s, topic in zip(sessions, topics, strict=True):
        h = [Message("user", _long_text(topic, 35))]
        f = await collect(s.generate(h))
        turn1.append(f)
        histories.append([*h, Message("assistant", f.text.strip()), Message("user", "and then?")])
    before = await provider.status()
    for s, h, f1 in zip(sessions, histories, turn1, strict=True):
        f2 = await collect(s.generate(h))
        # Turn 2 re-evaluates only what is new: (nearly) the whole turn-1 prompt comes from this
        # session's own cache; another session's cache would share only the ~35-token prefix.
        # (Gemma's sliding-window cache makes llama.cpp re-evaluate a few tokens before the end.)
        assert f2.usage.cached_tokens >= 0.9 * f1.usage.prompt_tokens, (f1.usage, f2.usage)
        assert f2.usage.prompt_tokens - f2.usage.cached_tokens < 30
    after = await provider.status()
    assert after["state_saves"] > before["state_saves"] and after["state_restores"] > before["state_restores"]
    for s in sessions:
        await s.close()


@pytest.mark.slow
async def test_abort_during_prompt_processing(provider: WorkerProvider) -> None:
    s = await provider.open_session(SessionParams(max_tokens=50))
    stream = s.generate([Message("user", _long_text("Log", 450))])  # ~1,750 tokens: seconds of prompt work
    task = asyncio.ensure_future(collect(stream))
    await asyncio.sleep(0.4)
    await s.abort()
    final = await asyncio.wait_for(task, 30)
    assert final.stop_reason == "aborted" and final.text == ""
    # The worker is fine afterwards.
    final2 = await collect(s.generate([Message("user", "ok")], params=GREEDY))
    assert final2.stop_reason in ("stop", "length")
    await s.close()


@pytest.mark.slow
async def test_abort_during_generation(provider: WorkerProvider) -> None:
    s = await provider.open_session(SessionParams(max_tokens=400, temperature=0.8, seed=3))
    got: list[str] = []
    final: Final | None = None
    async for chunk in s.generate([Message("user", "Write a long story about a server room.")]):
        if isinstance(chunk, Token):
            got.append(chunk.text)
            if len(got) == 3:
                await s.abort()
        else:
            final = chunk
    assert final is not None and final.stop_reason == "aborted"
    assert 3 <= final.usage.generated_tokens < 400
    await s.close()


@pytest.mark.slow
async def test_next_turn_right_after_stopping_at_an_action(provider: WorkerProvider) -> None:
    # The agent stops reading at its first valid action and sends the next turn at once: the new
    # generate supersedes the aborted one instead of failing with "already generating".
    s = await provider.open_session(SessionParams(max_tokens=300, temperature=0.8, seed=5))
    stream = s.generate([Message("user", "Write a long story about a data center.")])
    async for chunk in stream:
        if isinstance(chunk, Token):
            break
    await stream.aclose()  # stops reading: the client aborts this generation
    final = await collect(s.generate([Message("user", "Say ok.")], params=SessionParams(max_tokens=4)))
    assert final.stop_reason in ("stop", "length") and final.usage.generated_tokens >= 1
    await s.close()


@pytest.mark.slow
async def test_client_disconnect_mid_stream_leaves_worker_healthy(
    worker_sock: Path, provider: WorkerProvider
) -> None:
    raw = Raw(worker_sock)
    raw.send({"id": 1, "op": "create_session", "params": {"max_tokens": 300, "temperature": 0.8}})
    sid = raw.recv()["session"]
    raw.send(
        {"id": 2, "op": "generate", "session": sid, "messages": [{"role": "user", "content": "Tell a tale."}]}
    )
    tokens = 0
    while tokens < 2:
        ev = raw.recv()
        assert ev["event"] == "token", ev
        tokens += 1
    raw.close()  # vanish mid-stream
    for _ in range(100):  # the worker notices and frees the slot
        st = await provider.status()
        if st["slots_busy"] == 0:
            break
        await asyncio.sleep(0.1)
    assert st["slots_busy"] == 0
    s = await provider.open_session(GREEDY)
    final = await collect(s.generate([Message("user", "still there?")]))
    assert final.stop_reason in ("stop", "length") and final.usage.generated_tokens > 0
    await s.close()


@pytest.mark.slow
async def test_grammar_constrains_output(provider: WorkerProvider) -> None:
    s = await provider.open_session(SessionParams(temperature=0.7, max_tokens=12, seed=5))
    grammar = 'root ::= ("yes" | "no") ", risk " [1-5]'
    for _ in range(2):
        final = await collect(
            s.generate([Message("user", "Safe to reboot?")], constraint=Constraint(grammar))
        )
        assert re.fullmatch(r"(yes|no), risk [1-5]", final.text), final.text
    with pytest.raises(ProviderError, match="grammar"):
        await collect(s.generate([Message("user", "x")], constraint=Constraint("root ::= (")))
    await s.close()


@pytest.mark.slow
async def test_requests_queue_when_sessions_outnumber_slots(provider: WorkerProvider) -> None:
    params = SessionParams(temperature=0.0, max_tokens=24)
    sessions = [await provider.open_session(params) for _ in range(3)]
    tasks = [
        asyncio.ensure_future(collect(s.generate([Message("user", f"Count to ten, take {i}.")])))
        for i, s in enumerate(sessions)
    ]
    max_queued = 0
    while not all(t.done() for t in tasks):
        max_queued = max(max_queued, (await provider.status())["queued"])
        await asyncio.sleep(0.02)
    finals = [t.result() for t in tasks]
    assert max_queued >= 1
    assert all(f.stop_reason in ("stop", "length") and f.usage.generated_tokens > 0 for f in finals)
    for s in sessions:
        await s.close()


def test_missing_model_gives_the_command_that_fixes_it(tmp_path: Path) -> None:
    env = {**os.environ, "FAZAI_PATHS__STATE_DIR": str(tmp_path)}
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "fazai.worker",
            "--model",
            MISSING,
            "--socket",
            str(tmp_path / "w.sock"),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert r.returncode == 1
    assert MISSING in r.stderr and f"fazai model pull {MISSING}" in r.stderr


@pytest.mark.slow
def test_model_chat_autostarts_the_worker(gemma_gguf: Path, tmp_path: Path) -> None:
    env = {
        **os.environ,
        "FAZAI_PATHS__RUNTIME_DIR": str(tmp_path / "run"),
        "FAZAI_PATHS__STATE_DIR": str(tmp_path / "state"),
        "FAZAI_WORKER__MODEL": str(gemma_gguf),
        "FAZAI_WORKER__THREADS": "2",
        "FAZAI_WORKER__SLOTS": "1",
        "FAZAI_WORKER__CTX_SIZE": "1024",
        "COLUMNS": "200",
    }
    fazai = [sys.executable, "-c", "from fazai.cli.main import main; main()"]
    r = subprocess.run([*fazai, "model", "chat", "The capital of France is", "-n", "5"], **_run(env))
    sock = tmp_path / "run" / "worker.sock"
    try:
        assert r.returncode == 0, r.stderr
        assert "starting the model worker" in r.stderr and "5 generated" in r.stderr
        assert r.stdout.strip()
        # A second chat finds the running worker.
        r2 = subprocess.run([*fazai, "model", "chat", "Hello", "-n", "3"], **_run(env))
        assert r2.returncode == 0 and "starting" not in r2.stderr, r2.stderr
    finally:
        with contextlib.suppress(OSError), socket.socket(socket.AF_UNIX) as s:
            s.connect(str(sock))
            s.sendall(b'{"id": 1, "op": "status"}\n')
            pid = json.loads(s.makefile().readline())["pid"]
            os.kill(pid, signal.SIGTERM)


def test_model_chat_reports_a_worker_that_dies(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "FAZAI_PATHS__RUNTIME_DIR": str(tmp_path / "run"),
        "FAZAI_PATHS__STATE_DIR": str(tmp_path / "state"),
        "FAZAI_WORKER__MODEL": MISSING,
        "COLUMNS": "200",
    }
    fazai = [sys.executable, "-c", "from fazai.cli.main import main; main()"]
    r = subprocess.run([*fazai, "model", "chat", "hi"], **_run(env))
    assert r.returncode == 1
    assert f"fazai model pull {MISSING}" in r.stderr and str(tmp_path / "run" / "worker.log") in r.stderr


def _run(env: dict[str, str]) -> dict:
    return {"capture_output": True, "text": True, "env": env, "timeout": 120}


@pytest.mark.slow
class TestWorkerContract(ProviderContract):
    """The shared provider contract, against the real worker and Gemma."""

    @pytest.fixture
    async def provider(self, worker_sock: Path):
        p = WorkerProvider(worker_sock, worker=WorkerSettings(autostart=False))
        yield p
        await p.aclose()
