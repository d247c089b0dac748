"""A real ``fazaid`` in a subprocess (uvicorn on a free port) with the scripted provider, for tests."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[1]


def action(**fields: Any) -> str:
    """One scripted model answer: a line of reasoning, then the action line."""
    return f"thinking about {fields.get('action')}\n" + json.dumps(fields)


def minilm_dir() -> Path:
    """The embedding model installed once for the test run (tests/knowledge/conftest.py does the same)."""
    from fazai.knowledge.assets import MINILM, ensure_asset

    return ensure_asset(MINILM, REPO / ".cache" / "assets")


QWEN = REPO / ".cache" / "models" / "qwen2.5-coder-0.5b.gguf"


def write_real_model_config(home: Path, extra: str = "") -> Path:
    """A config for the packaged 0.5B through the real worker (the embedded CLI; no daemon listens on
    port 1), with the real KB. The caller stops the worker it auto-starts (``pkill -f home/run``)."""
    if not QWEN.exists():
        import pytest

        pytest.fail(f"{QWEN} is missing: run scripts/test-models.sh (make test does it)")
    cfg = home / "fazai.toml"
    cfg.write_text(
        f"""
[paths]
state_dir = "{home / "state"}"
runtime_dir = "{home / "run"}"
[worker]
model = "{QWEN}"
threads = 2
ctx_size = 4096
slots = 1
cache_ram_mib = 256
[kb]
embedding_model_dir = "{minilm_dir()}"
[daemon]
port = 1
{extra}"""
    )
    return cfg


def write_config(
    home: Path, script: list[str], extra: str = "", port: int = 3120, learning: bool = False
) -> Path:
    """A config for the scripted provider. Without ``learning`` the knowledge base and system facts are
    off (transport tests stay fast); with it they are real, with the repo's cached embedding model."""
    home.mkdir(parents=True, exist_ok=True)
    if learning:
        tail = f"""
[kb]
embedding_model_dir = "{minilm_dir()}"
[agent]
facts_budget_s = 3.0
"""
    else:
        tail = """
[kb]
enabled = false
[agent]
facts_budget_s = 0
"""
    (home / "script.json").write_text(json.dumps(script))
    cfg = home / "fazai.toml"
    cfg.write_text(
        f"""
[paths]
state_dir = "{home / "state"}"
runtime_dir = "{home / "run"}"
[ai_provider]
provider = "scripted"
script = "{home / "script.json"}"
[daemon]
host = "127.0.0.1"
port = {port}
{extra}
{tail}"""
    )
    return cfg


class Daemon:
    """``python -m fazai.server`` with its own config; stderr kept for diagnostics."""

    def __init__(
        self,
        home: Path,
        script: list[str],
        extra: str = "",
        learning: bool = False,
        port: int = 0,
        args: tuple[str, ...] = (),
    ):
        self.home = home
        self.config = write_config(home, script, extra, learning=learning)
        self.proc: subprocess.Popen[str] | None = None
        self.port = port  # 0: any free port (the one it got is read from its log)
        self.args = args
        self.lines: list[str] = []

    def start(self, timeout: float = 90.0) -> Daemon:
        # Generous: on a loaded 2-core machine importing the server alone was measured at ~65 s.
        env = {**os.environ, "FAZAI_CONFIG": str(self.config), "PYTHONUNBUFFERED": "1"}
        self.lines = []
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "fazai.server", "--port", str(self.port), *self.args],
            env=env,
            cwd=REPO,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        ready = threading.Event()

        def pump() -> None:
            assert self.proc and self.proc.stderr
            for line in self.proc.stderr:
                self.lines.append(line)
                if '"listening"' in line:
                    self.port = json.loads(line)["port"]
                if '"daemon_ready"' in line:
                    ready.set()

        threading.Thread(target=pump, daemon=True).start()
        deadline = time.monotonic() + timeout
        while not ready.wait(0.05):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                break
        if not ready.is_set():
            self.stop()
            time.sleep(0.1)
            raise RuntimeError("fazaid did not start:\n" + "".join(self.lines[-30:]))
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def token(self) -> str:
        return (self.home / "state" / "daemon.token").read_text().strip()

    def client(self, token: str | None = "auto") -> httpx.Client:
        tok = self.token if token == "auto" else token
        headers = {"Authorization": f"Bearer {tok}"} if tok else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=httpx.Timeout(30.0, read=60.0))

    def kill9(self) -> None:
        assert self.proc
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def sse_messages(resp: httpx.Response) -> Iterator[tuple[str, dict[str, Any], str | None]]:
    """(event name, data, id) of each SSE message of a streaming response."""
    name, data, ident = "message", [], None
    for line in resp.iter_lines():
        if line == "":
            if data:
                yield name, json.loads("\n".join(data)), ident
            name, data, ident = "message", [], None
        elif line.startswith(":"):
            continue
        else:
            field, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if field == "data":
                data.append(value)
            elif field == "event":
                name = value
            elif field == "id":
                ident = value


def run_stream(
    c: httpx.Client,
    resp: httpx.Response,
    *,
    approve: bool | None = True,
    answer: str | None = None,
    on_event: Any = None,
) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """Read a run's SSE stream to its end, replying to approvals/questions; (events, end marker)."""
    events: list[dict[str, Any]] = []
    for name, data, _ in sse_messages(resp):
        if name != "message":
            return events, {"event": name, **data}
        events.append(data)
        if on_event:
            on_event(data)
        if data["kind"] == "approval_required" and approve is not None:
            body = {"session": data["session"], "action": data["data"]["action"], "approved": approve}
            r = c.post("/agent/reply", json=body)
            assert r.status_code == 200, r.text
        elif data["kind"] == "ask":
            body = {"session": data["session"], "action": data["data"]["action"], "answer": answer}
            r = c.post("/agent/reply", json=body)
            assert r.status_code == 200, r.text
    return events, None


def find_procs(marker: str) -> list[int]:
    """Pids whose command line contains ``marker`` (zombies excluded)."""
    out = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            cmd = (d / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            state = (d / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if marker in cmd and state != "Z" and int(d.name) != os.getpid():
            out.append(int(d.name))
    return out


def wait_for(pred: Any, timeout: float = 10.0, step: float = 0.02) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(step)
    raise AssertionError("condition not met in time")
