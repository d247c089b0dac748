"""Fast paths of the ``fazai`` command: ``sessions`` and ``--help`` with the standard library only.

The full CLI (Typer, Rich, httpx, pydantic settings) costs ~1.4 s to import on a busy machine: ~100x
``python -c pass`` (``bench/bench_cli_startup.py``). ``fazai sessions`` needs four settings keys, one
HTTP GET (or one SQLite read) and a table; ``fazai --help`` needs the list of commands
(:mod:`fazai.cli.help_table`, checked against the real Typer app by ``tests/test_cli_fast.py``).

Anything unusual (an option this parser does not know, a config it cannot read, a daemon that
answers with an error, a store that is not plain SQLite) returns ``None``: the caller then runs the
full CLI, which gives the usual messages and exit codes.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tomllib
from pathlib import Path
from typing import Any

from fazai.config_sources import _env_overrides, _merge, default_config_file, default_state_dir


def base_url(host: str, port: int) -> str:
    """The daemon's URL for a client (a wildcard listen address is reached on loopback)."""
    if host in ("0.0.0.0", "::", ""):
        host = "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}"


# -- the few settings `sessions` needs -----------------------------------------------------------


def light_settings(environ: dict[str, str] | None = None) -> dict[str, Any] | None:
    """``url`` (daemon), ``token_file``, ``database_url``, from the same file and variables as
    :func:`fazai.config.load_settings`; ``None`` when anything is off (the full loader explains)."""
    env = dict(os.environ if environ is None else environ)
    file = Path(env.get("FAZAI_CONFIG") or default_config_file())
    data: dict[str, Any] = {}
    try:
        if file.exists():
            data = tomllib.loads(file.read_text())
        elif "FAZAI_CONFIG" in env:
            return None
    except (OSError, ValueError):  # TOMLDecodeError and UnicodeDecodeError are ValueErrors
        return None
    merged = _merge(data, _env_overrides(env))
    daemon, paths = merged.get("daemon", {}), merged.get("paths", {})
    if not isinstance(daemon, dict) or not isinstance(paths, dict):
        return None
    host, port = daemon.get("host", "127.0.0.1"), daemon.get("port", 3120)
    state, db, tok = paths.get("state_dir"), daemon.get("database_url"), daemon.get("token_file")
    if not isinstance(host, str) or isinstance(port, bool):
        return None
    try:
        port = int(port)
    except (TypeError, ValueError):
        return None
    if not 1 <= port <= 65535 or any(v is not None and not isinstance(v, str) for v in (state, db, tok)):
        return None
    state_dir = Path(state) if state else default_state_dir()
    return {
        "url": base_url(host, port),
        "token_file": Path(tok) if tok else state_dir / "daemon.token",
        "database_url": db or f"sqlite+aiosqlite:///{state_dir / 'fazai.db'}",
    }


# -- fazai sessions ------------------------------------------------------------------------------


def _parse_sessions(argv: list[str]) -> tuple[int, bool] | None:
    limit, as_json, it = 30, False, iter(argv)
    for a in it:
        if a == "--json":
            as_json = True
        elif a in ("--limit", "-n") or a.startswith("--limit="):
            value = a.split("=", 1)[1] if "=" in a else next(it, "")
            if not value.isdigit() or int(value) < 1:
                return None  # Typer's message is the right one
            limit = int(value)
        else:
            return None
    return limit, as_json


def _get(url: str, path: str, token: str | None, timeout: float) -> tuple[int, bytes] | None:
    import http.client
    from urllib.parse import urlsplit

    u = urlsplit(url)
    conn = http.client.HTTPConnection(u.hostname or "127.0.0.1", u.port or 80, timeout=timeout)
    try:
        conn.request("GET", path, headers={"Authorization": f"Bearer {token}"} if token else {})
        resp = conn.getresponse()
        return resp.status, resp.read()
    except (OSError, http.client.HTTPException):
        return None
    finally:
        conn.close()


def _session_rows(cfg: dict[str, Any], limit: int) -> list[dict[str, Any]] | None:
    health = _get(cfg["url"], "/healthz", None, 0.5)
    up = False
    if health is not None and health[0] == 200:
        try:
            up = json.loads(health[1]).get("service") == "fazaid"
        except (ValueError, AttributeError):
            up = False
    if not up:
        from fazai.cli.quick_sessions import list_sessions

        return list_sessions(cfg["database_url"], limit)
    from fazai.sessions.token import read_token

    token = os.environ.get("FAZAI_DAEMON_TOKEN") or read_token(cfg["token_file"])
    got = _get(cfg["url"], f"/agent/sessions?limit={limit}", token, 30.0)
    if got is None or got[0] != 200:
        return None  # 401, a replica's error…: the full client words it
    try:
        rows = json.loads(got[1])
    except ValueError:
        return None
    return rows if isinstance(rows, list) else None


_COLORS = {"done": "32", "failed": "31", "running": "36", "interrupted": "33", "aborted": "33"}


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else (text[: width - 1] + "…" if width > 0 else "")


def render_sessions(rows: list[dict[str, Any]], width: int | None = None, color: bool | None = None) -> str:
    """The session table. Ids are never cut (``fazai replay ID`` needs them whole): goal and summary
    give way to the terminal's width instead."""
    width = width or shutil.get_terminal_size((100, 24)).columns
    if color is None:
        color = sys.stdout.isatty() and "NO_COLOR" not in os.environ
    cells = [
        [
            r["id"],
            r["status"],
            (r.get("updated_at") or "")[:19].replace("T", " "),
            (r.get("goal") or "").replace("\n", " ")[:50],
            (r.get("summary") or "").replace("\n", " ")[:50],
        ]
        for r in rows
    ]
    head = ["id", "status", "updated", "goal", "summary"]
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(head)]
    # Goal, then summary, shrink (to 10 columns at least) until the line fits; the rest never does.
    gap = 2
    for i in (3, 4):
        over = sum(widths) + gap * (len(widths) - 1) - width
        if over > 0:
            widths[i] = max(min(widths[i], 10), widths[i] - over)
    over = sum(widths) + gap * (len(widths) - 1) - width
    if over > 0:  # a very narrow terminal: summary goes, then goal
        widths[4] = max(0, widths[4] - over)
        over = sum(widths) + gap * (len(widths) - 1) - width
        widths[3] = max(0, widths[3] - max(0, over))

    def line(values: list[str], status: str | None = None) -> str:
        out = []
        for i, (v, w) in enumerate(zip(values, widths, strict=True)):
            if w == 0 and i >= 3:
                continue
            text = _cut(v, w).ljust(w) if i < len(values) - 1 else _cut(v, w)
            if i == 1 and status is not None and color:
                text = f"\x1b[{_COLORS.get(status, '37')}m{text}\x1b[0m"
            out.append(text)
        return (" " * gap).join(out).rstrip()

    title = line(head)
    if color:
        title = f"\x1b[1m{title}\x1b[0m"
    return "\n".join([title, *(line(c, c[1]) for c in cells)])


def print_sessions(rows: list[dict[str, Any]], as_json: bool) -> None:
    """What ``fazai sessions`` prints for ``rows`` (shared by the fast path and the full command)."""
    if as_json:
        print(json.dumps(rows, indent=2))
    elif not rows:
        print('no sessions yet: fazai agent "…" starts one', file=sys.stderr)
    else:
        print(render_sessions(rows))


def sessions(argv: list[str]) -> bool:
    """Run ``fazai sessions ARGV`` on the fast path; False: use the full CLI instead."""
    parsed = _parse_sessions(argv)
    cfg = light_settings() if parsed else None
    if parsed is None or cfg is None:
        return False
    rows = _session_rows(cfg, parsed[0])
    if rows is None:
        return False
    print_sessions(rows, parsed[1])
    return True


# -- fazai --help --------------------------------------------------------------------------------


def help_text(width: int | None = None) -> str:
    """``fazai --help`` from the generated table of commands."""
    from fazai.cli.help_table import COMMANDS, SUMMARY

    width = width or shutil.get_terminal_size((100, 24)).columns
    name_w = max(len(n) for n, _ in COMMANDS)
    room = max(20, width - name_w - 4)
    rows = [f"  {n.ljust(name_w)}  {_cut(h, room)}".rstrip() for n, h in COMMANDS]
    return "\n".join(
        [
            "Usage: fazai [OPTIONS] COMMAND [ARGS]...",
            "",
            f"  {SUMMARY}",
            "",
            "Options:",
            "  -h, --help  Show this message and exit.",
            "",
            "Commands:",
            *rows,
            "",
            "`fazai COMMAND --help` shows a command's options.",
        ]
    )
