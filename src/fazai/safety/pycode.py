"""The risk of a self-written Python tool, derived from its code (a model's declared risk is never trusted).

Every node of the module is walked (imports, names, attributes, calls), not a fixed list of call spellings:
``from os import system``, ``__import__('os').system``, ``getattr(os, 'sys' + 'tem')``,
``subprocess.getoutput`` and ``exec`` are all caught because what they *touch* is judged, however it is
reached. Read-only means: only allow-listed modules, no attribute or name that runs programs, writes,
deletes or reaches code dynamically. Anything the walk cannot vouch for is ``opaque``.
"""

from __future__ import annotations

import ast

from .model import CHANGES_STATE, DESTRUCTIVE, OPAQUE, READ_ONLY, Finding, Risk, verdict_of

# Modules a read-only tool may import: computation, text, parsing, and read-only views of the system.
# Their writing/running parts (os.remove, shutil.rmtree, Path.write_text…) are caught by attribute below.
SAFE_MODULES = frozenset(
    [
        "json",
        "re",
        "math",
        "cmath",
        "statistics",
        "decimal",
        "fractions",
        "numbers",
        "random",
        "datetime",
        "time",
        "calendar",
        "zoneinfo",
        "collections",
        "itertools",
        "functools",
        "operator",
        "copy",
        "pprint",
        "reprlib",
        "string",
        "textwrap",
        "unicodedata",
        "difflib",
        "typing",
        "dataclasses",
        "enum",
        "abc",
        "heapq",
        "bisect",
        "array",
        "struct",
        "codecs",
        "base64",
        "binascii",
        "hashlib",
        "hmac",
        "zlib",
        "ipaddress",
        "uuid",
        "csv",
        "configparser",
        "tomllib",
        "shlex",
        "fnmatch",
        "glob",
        "os",
        "os.path",
        "pathlib",
        "stat",
        "platform",
        "locale",
        "gettext",
        "html",
        "html.parser",
        "xml.etree.ElementTree",
        "xml.dom.minidom",
        "email.utils",
        "email.parser",
        "__future__",
        "shutil",
        "pwd",
        "grp",
    ]
)
# Modules whose purpose is to run programs, reach the network or load code: the tool is opaque.
OPAQUE_MODULES = frozenset(
    [
        "subprocess",
        "pty",
        "ctypes",
        "cffi",
        "socket",
        "ssl",
        "select",
        "selectors",
        "asyncio",
        "multiprocessing",
        "threading",
        "concurrent",
        "signal",
        "importlib",
        "imp",
        "pkgutil",
        "runpy",
        "code",
        "codeop",
        "builtins",
        "sys",
        "gc",
        "inspect",
        "types",
        "marshal",
        "pickle",
        "shelve",
        "dbm",
        "urllib",
        "http",
        "ftplib",
        "smtplib",
        "poplib",
        "imaplib",
        "telnetlib",
        "xmlrpc",
        "socketserver",
        "requests",
        "httpx",
        "aiohttp",
        "paramiko",
        "fabric",
        "sh",
        "plumbum",
        "pexpect",
        "docker",
        "mmap",
        "fcntl",
        "resource",
        "termios",
        "tty",
        "posix",
        "nt",
        "_posixsubprocess",
    ]
)
# Names (builtins) that evaluate or reach code dynamically.
OPAQUE_NAMES = frozenset(
    {
        "exec",
        "eval",
        "compile",
        "__import__",
        "globals",
        "locals",
        "vars",
        "getattr",
        "setattr",
        "delattr",
        "__builtins__",
        "breakpoint",
        "memoryview",
    }
)
# Attribute names that run programs or replace the process: opaque wherever they are reached from.
RUN_ATTRS = frozenset(
    [
        "system",
        "popen",
        "popen2",
        "popen3",
        "spawnl",
        "spawnle",
        "spawnlp",
        "spawnlpe",
        "spawnv",
        "spawnve",
        "spawnvp",
        "spawnvpe",
        "posix_spawn",
        "posix_spawnp",
        "execl",
        "execle",
        "execlp",
        "execlpe",
        "execv",
        "execve",
        "execvp",
        "execvpe",
        "fork",
        "forkpty",
        "startfile",
        "getoutput",
        "getstatusoutput",
        "check_output",
        "check_call",
        "Popen",
        "call",
        "run_command",
        "create_subprocess_exec",
        "create_subprocess_shell",
        "load_module",
        "exec_module",
        "import_module",
        "dlopen",
        "CDLL",
    ]
)
DELETE_ATTRS = frozenset(
    ["remove", "unlink", "rmdir", "removedirs", "rmtree", "kill", "killpg", "truncate", "ftruncate", "abort"]
)
WRITE_ATTRS = frozenset(
    [
        "write_text",
        "write_bytes",
        "mkdir",
        "makedirs",
        "rename",
        "renames",
        "replace",
        "chmod",
        "lchmod",
        "chown",
        "lchown",
        "chflags",
        "symlink",
        "symlink_to",
        "hardlink_to",
        "link",
        "link_to",
        "touch",
        "mkfifo",
        "mknod",
        "copy",
        "copy2",
        "copyfile",
        "copytree",
        "copymode",
        "copystat",
        "move",
        "utime",
        "setuid",
        "setgid",
        "seteuid",
        "setegid",
        "setgroups",
        "putenv",
        "unsetenv",
        "chdir",
        "chroot",
        "nice",
        "sync",
    ]
)


def derive_risk(source: str) -> tuple[Risk, list[str]]:
    """The least risk class this code implies and why (``(read_only, [])`` when nothing was found)."""
    try:
        tree = ast.parse(source)
    except SyntaxError as e:
        return OPAQUE, [f"does not parse ({e.msg}): cannot be analysed"]
    found: list[Finding] = []
    for node in ast.walk(tree):
        found += _judge(node)
    if not found:
        return READ_ONLY, []
    v = verdict_of(found)
    return v.risk, v.reasons


def _judge(node: ast.AST) -> list[Finding]:
    if isinstance(node, ast.Import):
        return [f for a in node.names for f in _module(a.name)]
    if isinstance(node, ast.ImportFrom):
        if node.level:
            return [Finding(OPAQUE, "relative import: loads code the check cannot see")]
        out = _module(node.module or "")
        for a in node.names:
            if a.name == "*":
                out.append(Finding(OPAQUE, f"from {node.module} import *: names not known"))
            else:
                out += _attr(a.name, f"from {node.module} import {a.name}")
        return out
    if isinstance(node, ast.Name):
        if node.id in OPAQUE_NAMES:
            return [Finding(OPAQUE, f"uses {node.id}: code or attributes reached at run time")]
        return []
    if isinstance(node, ast.Attribute):
        if node.attr.startswith("__") and node.attr.endswith("__"):
            return [Finding(OPAQUE, f"uses the dunder attribute {node.attr}: a way around any check")]
        return _attr(node.attr, f".{node.attr}")
    if isinstance(node, ast.Call):
        fn = node.func
        name = fn.id if isinstance(fn, ast.Name) else fn.attr if isinstance(fn, ast.Attribute) else None
        if name in {"open", "fdopen"} and _open_writes(node, name == "open" and isinstance(fn, ast.Name)):
            return [Finding(CHANGES_STATE, "opens a file for writing")]
        if name is None and not isinstance(fn, ast.Subscript | ast.Lambda):
            return [Finding(OPAQUE, "calls the result of an expression: the callee is not known")]
    if (
        isinstance(node, ast.Subscript)
        and isinstance(node.value, ast.Attribute)
        and node.value.attr in {"modules", "environ"}
        and isinstance(node.ctx, ast.Store | ast.Del)
    ):
        return [Finding(CHANGES_STATE, f"changes {node.value.attr}")]
    return []


def _module(name: str) -> list[Finding]:
    root = name.split(".")[0]
    if name in OPAQUE_MODULES or root in OPAQUE_MODULES:
        return [Finding(OPAQUE, f"imports {name}: runs programs, reaches the network or loads code")]
    if name in SAFE_MODULES or root in SAFE_MODULES:
        return []
    return [Finding(OPAQUE, f"imports {name}, which the check does not know: it may do anything")]


def _attr(attr: str, how: str) -> list[Finding]:
    if attr in RUN_ATTRS or attr.startswith(("exec", "spawn")):
        return [Finding(OPAQUE, f"{how}: runs a program the policy cannot see")]
    if attr in DELETE_ATTRS:
        return [Finding(DESTRUCTIVE, f"{how}: deletes files or kills processes")]
    if attr in WRITE_ATTRS:
        return [Finding(CHANGES_STATE, f"{how}: changes files or the process")]
    if attr == "open":
        return []  # judged at the call (mode)
    return []


def _open_writes(call: ast.Call, builtin_open: bool) -> bool:
    # open(path, mode) / Path.open(mode) / os.fdopen(fd, mode): w/a/x/+ (or a computed mode) writes.
    pos = 1 if builtin_open else 0
    mode: ast.expr | None = call.args[pos] if len(call.args) > pos else None
    fdopen = isinstance(call.func, ast.Attribute) and call.func.attr == "fdopen"
    if not builtin_open and len(call.args) > 1 and fdopen:
        mode = call.args[1]
    for kw in call.keywords:
        if kw.arg in {"mode", "flags"}:
            mode = kw.value
    if mode is None:
        return False
    if isinstance(mode, ast.Constant) and isinstance(mode.value, str):
        return any(c in mode.value for c in "wax+")
    return True
