"""Prometheus metrics of the agent, derived from the event stream (the log is the source of truth)."""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from fazai.protocol import Event

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
_DURATION_BUCKETS = (0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 1800, 3600, 7200)


class AgentMetrics:
    """Counters and histograms of one daemon (its own registry, so several apps can coexist)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.ttft = Histogram(
            "fazai_time_to_first_token_seconds",
            "Time from the start of an iteration's generation to its first token",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.tokens_per_s = Histogram(
            "fazai_tokens_per_second",
            "Generation speed of one iteration (token events per second)",
            buckets=(1, 5, 10, 20, 50, 100, 200, 500, 1000, 5000),
            registry=r,
        )
        self.tokens = Counter("fazai_tokens_total", "Token events streamed", registry=r)
        self.iterations = Counter("fazai_iterations_total", "Agent iterations (actions chosen)", registry=r)
        self.actions = Counter(
            "fazai_actions_total", "Actions by kind and outcome", ["kind", "outcome"], registry=r
        )
        self.sessions = Counter(
            "fazai_sessions_total", "Session runs by final status", ["status"], registry=r
        )
        self.session_duration = Histogram(
            "fazai_session_duration_seconds",
            "Wall time of session runs",
            buckets=_DURATION_BUCKETS,
            registry=r,
        )
        self.running = Gauge("fazai_sessions_running", "Session runs in progress", registry=r)
        self.sse_lagged = Counter("fazai_sse_lagged_total", "SSE clients dropped for lagging", registry=r)
        # Set to read the event writer's count (SessionManager): transactions of the session log.
        self.store_commits = Gauge(
            "fazai_store_commits", "Event-log transactions written since start", registry=r
        )
        # Question mode (`fazai ask`).
        self.ask_questions = Counter(
            "fazai_ask_questions_total", "Questions answered, by final status and what stopped them",
            ["status", "stopped_by"], registry=r,
        )  # fmt: skip
        self.ask_commands = Counter(
            "fazai_ask_commands_total", "Question-mode commands by outcome (run, cached, redundant, refused)",
            ["outcome"], registry=r,
        )  # fmt: skip
        self.ask_dangerous = Counter(
            "fazai_ask_dangerous_executed_total",
            "Question-mode commands executed whose class was opaque, destructive or forbidden (must stay 0)",
            registry=r,
        )
        self.ask_duration = Histogram(
            "fazai_ask_duration_seconds", "Wall time of questions", buckets=_LATENCY_BUCKETS, registry=r
        )

    def render(self) -> bytes:
        """The exposition text."""
        return generate_latest(self.registry)

    def run_tracker(self) -> RunTracker:
        """A per-run observer of events."""
        return RunTracker(self)


class RunTracker:
    """Turns one run's events into metric observations."""

    def __init__(self, m: AgentMetrics):
        self.m = m
        self.start = time.perf_counter()
        self.gen_start = self.start
        self.first_token: float | None = None
        self.n_tokens = 0
        self.pending: dict[object, str] = {}  # action id → kind, until its outcome is known
        m.running.inc()

    def observe(self, ev: Event) -> None:
        now = time.perf_counter()
        if ev.kind == "token":
            if self.first_token is None:
                self.first_token = now
                self.m.ttft.observe(now - self.gen_start)
            self.n_tokens += 1
            self.m.tokens.inc()
            return
        if ev.kind == "action":
            self.m.iterations.inc()
            if self.first_token is not None and self.n_tokens > 1 and now > self.first_token:
                self.m.tokens_per_s.observe(self.n_tokens / (now - self.first_token))
            inner = ev.data.get("action")
            kind = str(ev.data.get("kind") or (inner.get("action") if isinstance(inner, dict) else "unknown"))
            if kind == "done":
                status = inner.get("status", "success") if isinstance(inner, dict) else "success"
                self.m.actions.labels(kind, str(status)).inc()
            else:
                self.pending[ev.data.get("id")] = kind
        elif ev.kind == "exec_skip":
            self.m.ask_commands.labels(str(ev.data.get("reason") or "skipped")).inc()
        elif ev.kind == "exec_end" and "risk" in ev.data:  # question-mode commands carry their class
            self.m.ask_commands.labels("run").inc()
            if ev.data.get("risk") in ("opaque", "destructive", "forbidden"):
                self.m.ask_dangerous.inc()
        elif ev.kind == "done" and ev.data.get("mode") == "ask":
            self.m.ask_questions.labels(
                str(ev.data.get("status", "success")), str(ev.data.get("limit") or "answer")
            ).inc()
            self.m.ask_duration.observe(now - self.start)
        if ev.kind == "observe":
            aid = ev.data.get("action")
            if aid is None and ev.data.get("status") == "format_error":
                self.m.actions.labels("invalid", "format_error").inc()
            elif aid in self.pending:
                self.m.actions.labels(self.pending.pop(aid), str(ev.data.get("status") or "ok")).inc()
        # Anything but a token closes the current generation; the next one starts now.
        self.first_token = None
        self.n_tokens = 0
        self.gen_start = now

    def finish(self, status: str) -> None:
        for kind in self.pending.values():
            # Actions cut short by the end of the run (abort, restart, error).
            outcome = status if status in ("aborted", "interrupted") else "unfinished"
            self.m.actions.labels(kind, outcome).inc()
        self.pending.clear()
        self.m.running.dec()
        self.m.sessions.labels(status).inc()
        self.m.session_duration.observe(time.perf_counter() - self.start)
