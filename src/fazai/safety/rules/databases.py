"""Database clients: inline SQL is read-only only when it is a plain query (allow-listed functions, one
statement); JavaScript shells (mongo, mongosh) and scripts are opaque; dropping data is destructive."""

from __future__ import annotations

import re

from ..cmd import Cmd, Ctx, split_opts
from ..model import Finding
from .base import cs, de, op, ro, rule

_SQL_DESTROY = re.compile(
    r"\b(drop\s+(database|schema|table|user|role)|truncate|delete\s+from|flushall|flushdb|dropdb)\b", re.I
)
_SQL_WRITE = re.compile(
    r"\b(insert|update|create|alter|grant|revoke|replace|set\s+global|load\s+data|copy|vacuum|reindex|call|do|lock|rename)\b",
    re.I,
)


# Functions a read-only query may call; any other call (pg_terminate_backend, sys_exec, lo_export,
# set_config, nextval…) may change state, so the query is opaque.
_SQL_READ_FUNCS = frozenset(
    [
        "count",
        "sum",
        "avg",
        "min",
        "max",
        "version",
        "now",
        "current_date",
        "current_timestamp",
        "current_user",
        "current_database",
        "database",
        "user",
        "session_user",
        "pg_size_pretty",
        "pg_database_size",
        "pg_total_relation_size",
        "pg_relation_size",
        "pg_table_size",
        "pg_indexes_size",
        "pg_is_in_recovery",
        "pg_last_xact_replay_timestamp",
        "pg_current_wal_lsn",
        "pg_postmaster_start_time",
        "pg_backend_pid",
        "inet_server_addr",
        "coalesce",
        "lower",
        "upper",
        "length",
        "round",
        "extract",
        "date_trunc",
        "to_char",
        "cast",
        "concat",
        "substring",
        "substr",
        "age",
        "greatest",
        "least",
        "abs",
        "floor",
        "ceil",
    ]
)
_SQL_READ_START = re.compile(r"^\s*(select|show|describe|desc|explain|with|values|table)\b", re.I)
_SQL_META_RO = re.compile(
    r"^\s*(\\(l|l\+|d[a-zA-Z+]*|conninfo|dn|du|dt|dp|z)(\s+[\w.*]+)?|\.(tables|schema|indexes|databases|dbinfo|show)(\s+\w+)?)\s*;?\s*$"
)


def sql_read_only(sql: str) -> bool:
    """A single query that only reads: SELECT/SHOW/… calling only known read functions, no INTO,
    no second statement; or a listing meta-command (``\\l``, ``\\dt``, ``.tables``)."""
    if _SQL_META_RO.match(sql):
        return True
    # bashlex drops the backslash of "\l" in double quotes: a bare meta-command name is a listing too.
    if re.fullmatch(r"\s*(l\+?|d[tnuvsfi]?\+?|conninfo|dp|z)\s*", sql):
        return True
    body = re.sub(r"'(?:[^']|'')*'", "''", sql).strip().rstrip(";")
    if ";" in body or not _SQL_READ_START.match(body) or _SQL_WRITE.search(body):
        return False
    if re.search(r"\binto\b|\bfor\s+update\b|\bload_file\b", body, re.I):
        return False
    calls = {c.lower() for c in re.findall(r"([A-Za-z_][\w.]*)\s*\(", body)}
    calls = {c.rsplit(".", 1)[-1] for c in calls} - {"in", "exists", "as", "values", "from", "on", "using"}
    return calls <= _SQL_READ_FUNCS


def sql_risk(sql: str, who: str) -> list[Finding]:
    """Inline SQL: destroying statements are destructive, a strictly read-only query is read-only,
    anything else is opaque (triggers, functions and client commands are not visible here)."""
    if _SQL_DESTROY.search(sql):
        return de(f"{who}: {sql.strip()[:60]} destroys data") + op(f"{who}: inline SQL is not analysed")
    if sql_read_only(sql):
        return ro(f"{who} query")
    return op(f"{who}: {sql.strip()[:60]!r} is not a plain read-only query")


@rule("mysql", "mariadb", "psql", "sqlite3", "redis-cli", "mongo", "mongosh", "clickhouse-client", "sqlcmd")
def _db(cmd: Cmd, ctx: Ctx) -> list[Finding]:
    args = cmd.argv[1:]
    if args in (["--version"], ["-V"], ["--help"], ["-?"]):
        return ro(f"{cmd.name} --version")
    if cmd.name in {"mongo", "mongosh"}:
        # JavaScript (--eval, a script file, stdin): opaque, whatever it looks like.
        if any(
            a in {"--eval", "-e", "--file", "-f"} or a.startswith("--eval=") or a.endswith(".js")
            for a in args
        ):
            return op(f"{cmd.name} runs JavaScript: it may do anything (child_process, drop, shutdown)")
        return op(f"{cmd.name} opens a JavaScript shell")
    if any(a in {"-f", "--file"} or a.startswith("--file=") for a in args) and cmd.name in {"psql", "sqlcmd"}:
        return op(f"{cmd.name} -f runs a script file that is not analysed")
    queries = []
    for i, a in enumerate(args):
        if a in {"-e", "--execute", "-c", "--command", "--eval", "-q", "--query"} and i + 1 < len(args):
            queries.append(args[i + 1])
        elif a.startswith(("--execute=", "--command=", "--eval=", "--query=")):
            queries.append(a.split("=", 1)[1])
    if cmd.name == "sqlite3":
        _, pos = split_opts(args, {"-cmd", "-separator"})
        queries += pos[1:]
    if cmd.name == "redis-cli":
        _, pos = split_opts(args, {"-h", "-p", "-a", "-n", "-u", "--user", "--pass", "-i", "-r", "-d", "-s"})
        if not pos and any(a in {"--stat", "--latency", "--bigkeys", "--memkeys", "--scan"} for a in args):
            return ro("redis-cli statistics")
        if pos:
            verb = pos[0].lower()
            if verb in {"flushall", "flushdb", "shutdown", "del", "unlink", "debug"}:
                return de(f"redis-cli {verb} destroys data")
            if verb in {
                "info",
                "ping",
                "get",
                "keys",
                "scan",
                "dbsize",
                "ttl",
                "type",
                "hgetall",
                "llen",
                "smembers",
                "config-get",
                "client",
                "slowlog",
                "memory",
                "lrange",
                "exists",
                "mget",
            }:
                return ro(f"redis-cli {verb}")
            return cs(f"redis-cli {verb}")
    if any(a in {"-l", "--list"} for a in args) and cmd.name == "psql":
        return ro("psql -l")
    if cmd.name == "redis-cli" and any(
        q.lower().startswith(("eval", "script", "module", "config set")) for q in queries
    ):
        return op("redis-cli EVAL/SCRIPT/MODULE/CONFIG SET: runs code in the server")
    if not queries:
        return op(f"{cmd.name} reads SQL from stdin or a session: cannot see what it runs")
    out: list[Finding] = []
    for q in queries:
        # Client meta-commands that run a shell: psql \!, mysql system / \!, sqlite3 .shell / .system.
        m = re.search(r"(?:\\!|^\s*!|^\s*system\s|^\s*\.(?:shell|system)\s)(.*)", q, re.S | re.M)
        if m:
            out += op(f"{cmd.name}: the query runs a shell command")
            out += [f.but(f"{cmd.name} shell escape: {f.reason}") for f in ctx.classify_code(m.group(1))]
            continue
        out += sql_risk(q, cmd.name)
    return out


@rule("mysqladmin")
def _mysqladmin(cmd: Cmd, ctx: Ctx) -> list[Finding]:
    _, pos = split_opts(cmd.argv[1:], {"-u", "-p", "-h", "-P", "-S"})
    if any(p in {"drop", "shutdown", "kill"} for p in pos):
        return de("mysqladmin drop/shutdown/kill")
    if not pos or all(
        p in {"status", "processlist", "version", "ping", "variables", "extended-status"} for p in pos
    ):
        return ro("mysqladmin status")
    return cs("mysqladmin changes the server")


@rule("dropdb", "dropuser")
def _dropdb(cmd: Cmd, ctx: Ctx) -> list[Finding]:
    return de(f"{cmd.name} deletes a database object")
