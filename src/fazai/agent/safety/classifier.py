"""``classify(command)``: parse a shell command line with bashlex and judge every part of it.

The walk visits every simple command, including those inside pipelines, lists, subshells, ``$(…)``,
backticks, process substitutions, loops, functions and the code given to ``bash -c`` / ``eval`` / ``watch``.
Wrappers (``sudo``, ``env``, ``xargs``, ``timeout`` …) are unwrapped to the command they run. What cannot be
parsed falls back to a conservative tokenizer and is never judged read-only.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import re
import shlex
from typing import Any

import bashlex

from . import paths, rules
from .cmd import Arg, Cmd, Ctx, Stdin, split_opts
from .model import CHANGES_STATE, DESTRUCTIVE, FORBIDDEN, READ_ONLY, Finding, Verdict, verdict_of

MAX_DEPTH = 6
MAX_LEN = 20_000

SHELLS = frozenset({"sh", "bash", "dash", "zsh", "ksh", "ash", "mksh", "fish", "csh", "tcsh", "rbash"})
INTERPRETERS = {
    "python": ("-c",),
    "python2": ("-c",),
    "python3": ("-c",),
    "perl": ("-e", "-E"),
    "ruby": ("-e",),
    "node": ("-e", "--eval", "-p", "--print"),
    "nodejs": ("-e",),
    "php": ("-r",),
    "lua": ("-e",),
    "tclsh": (),
    "osascript": ("-e",),
    "pwsh": ("-c", "-Command"),
}
DOWNLOADERS = frozenset(
    {"curl", "wget", "fetch", "nc", "ncat", "netcat", "socat", "ftp", "lftp", "aria2c", "http", "https"}
)
DECODERS = frozenset(
    {
        "base64",
        "base32",
        "xxd",
        "openssl",
        "uudecode",
        "rev",
        "gunzip",
        "zcat",
        "bzcat",
        "xzcat",
        "basenc",
        "tr",
    }
)

# Wrappers: options that take a value, so the wrapped command is found after them.
_WRAPPERS: dict[str, set[str]] = {
    "sudo": {
        "-u",
        "-g",
        "-C",
        "-h",
        "-p",
        "-r",
        "-t",
        "-U",
        "-D",
        "--user",
        "--group",
        "--host",
        "--prompt",
        "--chdir",
    },
    "doas": {"-u", "-C"},
    "nice": {"-n", "--adjustment"},
    "ionice": {"-c", "-n", "-p", "--class", "--classdata"},
    "nohup": set(),
    "stdbuf": {"-i", "-o", "-e"},
    "time": {"-f", "-o", "--format", "--output"},
    "setsid": set(),
    "unbuffer": set(),
    "chrt": set(),
    "caffeinate": set(),
    "exec": {"-a"},
    "builtin": set(),
    "command": set(),
    "nsenter": {"-t", "--target", "-S", "-G"},
    "torsocks": set(),
    "proxychains": {"-f"},
    "firejail": set(),
    "strace": {"-e", "-o", "-p", "-s", "-u"},
    "ltrace": {"-e", "-o", "-p", "-s", "-u"},
    "catchsegv": set(),
    "eatmydata": set(),
    "runuser": {"-u", "-g", "-G", "--user", "--group"},
    "chroot": set(),
    "sg": set(),
    "flock": {"-w", "-E", "--timeout", "--conflict-exit-code"},
    "taskset": set(),
    "numactl": set(),
    "cgexec": {"-g"},
    "systemd-inhibit": {"--what", "--who", "--why", "--mode"},
    "dbus-launch": set(),
    "xvfb-run": set(),
    "script": set(),
    "systemd-run": {
        "-u",
        "--unit",
        "-p",
        "--property",
        "-M",
        "-H",
        "-E",
        "--setenv",
        "--uid",
        "--gid",
        "--slice",
        "--description",
        "--on-active",
        "--on-calendar",
        "--on-boot",
        "--on-startup",
        "--on-unit-active",
        "--timer-property",
        "--working-directory",
    },
}

# Always-on checks on the raw text: spellings no everyday command contains.
_RAW_FORBIDDEN = [
    (re.compile(r"--no-preserve-root"), "--no-preserve-root: exists only to delete /"),
    (
        re.compile(r"(?<![\w:.-])([\w:.-]{1,40})\s*\(\s*\)\s*\{[^}]{0,300}?\1\s*\|\s*\1\s*&"),
        "fork bomb: a function that pipes itself into itself in the background",
    ),
    (
        re.compile(
            r"fork\s*(\(\s*\))?\s*while\s*fork|while\s*\(?\s*1\s*\)?\s*\{?\s*fork"
            r"|os\.fork\(\)\s*while|while True:\s*os\.fork"
        ),
        "fork bomb in an interpreter",
    ),
    (re.compile(r"/proc/sysrq-trigger"), "writes /proc/sysrq-trigger: crashes or reboots the kernel"),
]


def classify(command: str, *, extra_read_only: frozenset[str] = frozenset()) -> Verdict:
    """Classify a shell command line. Pure, never raises; when in doubt the answer is ``changes_state``."""
    try:
        if not isinstance(command, str):
            return Verdict(CHANGES_STATE, ["not a string"])
        if len(command) > MAX_LEN:
            return Verdict(CHANGES_STATE, [f"command longer than {MAX_LEN} characters: not analysed, asking"])
        if not command.strip() or (command.strip().startswith("#") and "\n" not in command.strip()):
            return Verdict(READ_ONLY, ["empty command or comment"])
        return verdict_of(analyse(command, 0, {}, extra_read_only))
    except RecursionError:
        return Verdict(CHANGES_STATE, ["command nests too deeply to analyse: asking"])
    except Exception as exc:
        return Verdict(CHANGES_STATE, [f"could not analyse the command ({type(exc).__name__}): asking"])


def analyse(
    text: str, depth: int, env: dict[str, str | None], extra_ro: frozenset[str] = frozenset()
) -> list[Finding]:
    """All findings for one piece of shell code."""
    if depth > MAX_DEPTH:
        return [Finding(CHANGES_STATE, "shell code nested too deeply to analyse")]
    findings: list[Finding] = []
    for rx, why in _RAW_FORBIDDEN:
        if rx.search(text):
            findings.append(Finding(FORBIDDEN, why))
    text = _strip_comments_lines(text)
    # bashlex cannot parse $((…)); arithmetic without $(…)/`…` inside runs nothing, so it stands in as 0.
    text = re.sub(r"\$\(\((?:[^()`$]|\$\w+|\$\{\w+\})*\)\)", "0", text)
    # bashlex lacks [[ … ]] and the `time` keyword. As `[ … ]` every part is still judged (an operator inside
    # may split it into odd commands, which only makes the answer more cautious); `time` runs what follows.
    text = re.sub(r"(?<![^\s;&|(!])\[\[(?=\s)", "[", text)
    text = re.sub(r"(?<=\s)\]\](?=$|[\s;&|)])", "]", text)
    text = re.sub(r"(^|[;&|(]\s*|\n\s*)time\s+(?:-p\s+)?(?=\S)", r"\1", text)
    try:
        trees = bashlex.parse(text)
    except Exception as exc:
        return findings + fallback(text, depth, env, extra_ro, f"{type(exc).__name__}: {exc}")
    walker = Walker(text, depth, env, extra_ro)
    for t in trees:
        walker.visit(t)
    return findings + walker.findings


def _strip_comments_lines(text: str) -> str:
    # bashlex rejects a script that is only a comment line; drop whole-line comments.
    return "\n".join(ln for ln in text.split("\n") if not ln.lstrip().startswith("#")) or ":"


# ---------------------------------------------------------------------------------------------------------


class Walker:
    """Visits a bashlex tree, collecting findings for each simple command."""

    def __init__(self, text: str, depth: int, env: dict[str, str | None], extra_ro: frozenset[str]):
        self.text = text
        self.depth = depth
        # Literal assignments seen so far (x=rm; $x …); None = set on this line to something unknown
        # (loop variables, read, assignments from substitutions), so never guessed as empty.
        self.env: dict[str, str | None] = dict(env)
        for name in _bound_names(text):
            self.env.setdefault(name, None)
        self.extra_ro = extra_ro
        self.cwd: str | None = None
        self.findings: list[Finding] = []
        self.functions: dict[str, Any] = {}
        self.tainted: dict[str, str] = {}  # variables holding downloaded/decoded data
        self.files: dict[str, str] = {}  # scripts written on this line: path → content

    # -- tree traversal -----------------------------------------------------------------------------------
    def visit(self, node: Any, upstream: list[Any] | None = None) -> None:
        kind = getattr(node, "kind", None)
        if kind == "command":
            self.command(node, upstream or [])
        elif kind == "pipeline":
            cmds = [p for p in node.parts if p.kind not in {"pipe", "reservedword"}]
            for i, c in enumerate(cmds):
                self.visit(c, cmds[:i])
        elif kind == "function":
            self.function(node)
        elif kind in {"commandsubstitution", "processsubstitution"}:
            self.visit(node.command)
        else:
            for child in _children(node):
                self.visit(child, upstream if kind == "compound" else None)

    def function(self, node: Any) -> None:
        name = node.name.word
        self.functions[name] = node
        body_calls = [c for c in _iter_commands(node.body) if c.parts and c.parts[0].kind == "word"]
        recursive = any(c.parts[0].word == name for c in body_calls)
        body_text = self.text[node.body.pos[0] : node.body.pos[1]]
        if recursive and ("|" in body_text or "&" in body_text):
            self.findings.append(
                Finding(FORBIDDEN, f"fork bomb: function {name} runs itself in a pipe/background")
            )
        self.visit(node.body)

    # -- a simple command ---------------------------------------------------------------------------------
    def command(self, node: Any, upstream: list[Any]) -> None:
        words: list[Any] = []
        here: str | None = None
        assigns: list[Any] = []
        for part in node.parts:
            if part.kind == "word":
                words.append(part)
            elif part.kind == "assignment":
                assigns.append(part)
            elif part.kind == "redirect":
                here = self.redirect(part) or here
            for sub in _substitutions(part):
                self.visit(sub.command)
        for a in assigns:
            self.assignment(a, bare=not words)
        if not words:
            if not assigns:
                self.findings.append(Finding(READ_ONLY, "redirection only"))
            return
        args = [Arg(w.word, self.is_literal(w), _single_source(w)) for w in words]
        if not args[0].literal:
            self.findings.append(
                Finding(
                    CHANGES_STATE,
                    f"command name {self.raw(words[0])!r} is computed at run time: cannot trust it",
                )
            )
        else:
            ups = [_argv_of(u) for u in upstream]
            heres = [_heretext(u) for u in upstream]
            piped = evaluate_pipeline(list(zip(ups, heres, strict=True))) if ups else None
            stdin = Stdin(ups, here, heres, piped)
            self.findings += self.run_argv(Cmd(args), stdin)
        used = {
            (p.value or "").split(":")[0]
            for w in words
            for p in (getattr(w, "parts", None) or [])
            if p.kind == "parameter"
        }
        code_runner = rules.resolve_name(words[0].word)[0] in SHELLS | {"eval", "source", "."}
        for var in used & set(self.tainted):
            if code_runner or not args[0].literal:
                self.findings.append(
                    Finding(DESTRUCTIVE, f"runs ${var}, which holds {self.tainted[var]} data, as code")
                )
        self.remember_write(node, words, here)
        if words[0].word == "cd" and args[0].literal:
            self.cwd = _cd(self.cwd, [a.text for a in args[1:]], all(a.literal for a in args))
        if any(not a.literal for a in args):
            self.deobfuscate(node, words)

    def run_argv(self, cmd: Cmd, stdin: Stdin | None) -> list[Finding]:
        ctx = Ctx(
            classify_code=lambda code: analyse(code, self.depth + 1, self.env, self.extra_ro),
            stdin=stdin,
            cwd=self.cwd,
            evaluate=self.evaluate_node,
            files=self.files,
        )
        return classify_argv(cmd, ctx, self.extra_ro, self.functions)

    def remember_write(self, node: Any, words: list[Any], here: str | None) -> None:
        """``echo CODE > FILE`` / ``cat > FILE <<EOF``: keep FILE's content to judge it if it is run later."""
        targets = [
            (p.type, p.output.word)
            for p in node.parts
            if p.kind == "redirect"
            and p.type in {">", ">>", ">|"}
            and getattr(p.output, "kind", None) == "word"
        ]
        if not targets or not all(self.is_literal(w) for w in words):
            return
        content = evaluate_pipeline([([w.word for w in words], here)])
        if content is None:
            return
        for rtype, target in targets:
            key = paths.norm(target, self.cwd)
            self.files[key] = (self.files.get(key, "") + "\n" + content) if rtype == ">>" else content

    def assignment(self, node: Any, *, bare: bool) -> None:
        name, _, value = node.word.partition("=")
        name = name.rstrip("+")
        parts = getattr(node, "parts", None) or []
        if not parts:
            self.env[name] = value
        elif len(parts) == 1 and parts[0].kind == "commandsubstitution":
            # c=$(echo … | base64 -d): remember the decoded text, or that it came from a download/decoder.
            val = self.evaluate_node(parts[0])
            cmds = _pipeline_commands(parts[0].command) or []
            names = {rules.resolve_name(_argv_of(c)[0])[0] for c in cmds if _argv_of(c)}
            if val is not None:
                self.env[name] = val.rstrip("\n")
            if names & (DOWNLOADERS | DECODERS):
                self.tainted[name] = "downloaded" if names & DOWNLOADERS else "decoded"
        if name in {
            "PATH",
            "LD_PRELOAD",
            "LD_LIBRARY_PATH",
            "BASH_ENV",
            "ENV",
            "IFS",
            "PROMPT_COMMAND",
            "SHELLOPTS",
            "PS4",
        }:
            self.findings.append(
                Finding(CHANGES_STATE, f"sets {name}: changes how commands are found or run")
            )
        elif bare:
            self.findings.append(Finding(READ_ONLY, f"variable assignment {name}"))

    def redirect(self, node: Any) -> str | None:
        """Judge one redirection; return here-string / here-doc text fed to stdin."""
        rtype = node.type
        target = node.output
        if rtype in {"<<", "<<-"}:
            hd = getattr(node, "heredoc", None)
            if hd is not None:
                value = hd.value
                return value.rsplit("\n", 1)[0] if "\n" in value else value
            return None
        if rtype == "<<<":
            return target.word if getattr(target, "kind", None) == "word" else None
        if rtype in {"<", "<&"} or isinstance(target, int):
            return None
        if getattr(target, "kind", None) != "word":
            return None
        if not self.is_literal(target):
            self.findings.append(
                Finding(CHANGES_STATE, f"redirects output to a computed path {self.raw(target)!r}")
            )
            return None
        append = rtype in {">>", "&>>"}
        self.findings += rules.write_target(target.word, append=append, who=f"redirection {rtype}")
        return None

    # -- helpers ------------------------------------------------------------------------------------------
    def raw(self, node: Any) -> str:
        return self.text[node.pos[0] : node.pos[1]]

    def is_literal(self, word: Any) -> bool:
        """Literal: no expansion (variables, substitutions, globs, braces, $'…') can change the word."""
        if any(p.kind != "tilde" for p in getattr(word, "parts", []) or []):
            return False
        raw = self.raw(word)
        if "$" in raw or "`" in raw:
            return False
        unquoted = re.sub(r"'[^']*'|\"[^\"]*\"", "", raw)
        return not re.search(r"[*?]|\[[^\]]*\]|\{[^}]*,[^}]*\}|\{\w+\.\.\w+\}", unquoted)

    def evaluate_node(self, node: Any) -> str | None:
        """The output of a $(…) / <(…) node when it is a literal echo/printf/base64 pipeline."""
        cmds = [c for c in _pipeline_commands(node.command)] if hasattr(node, "command") else None
        if not cmds:
            return None
        return evaluate_pipeline([(_argv_of(c), _heretext(c)) for c in cmds])

    def deobfuscate(self, node: Any, words: list[Any]) -> None:
        """Expand what we can (known variables, ``${IFS}``, ``${x:-default}``, ``$'\\x72m'``, literal
        ``$(printf …)``), re-classify the result, and keep any higher risk it reveals."""
        start, end = node.pos
        src = self.text
        repl: list[tuple[int, int, str]] = []
        for w in words:
            raw = src[w.pos[0] : w.pos[1]]
            if "$'" in raw:
                repl.append((w.pos[0], w.pos[1], _ansi_c(raw)))
                continue
            for p in getattr(w, "parts", []) or []:
                if p.kind == "parameter":
                    val = self.param_value(getattr(p, "value", "") or "")
                    if val is not None:
                        repl.append((p.pos[0], p.pos[1], val))
                elif p.kind == "commandsubstitution":
                    val = self.evaluate_node(p)
                    if val is not None:
                        repl.append((p.pos[0], p.pos[1], val.rstrip("\n")))
        if not repl:
            return
        out, cur = [], start
        for a, b, v in sorted(repl):
            if a < cur:
                continue
            out.append(src[cur:a])
            out.append(v)
            cur = b
        out.append(src[cur:end])
        expanded = "".join(out)
        # Quotes that glued pieces together (r"m") are harmless now: drop them so the name is literal.
        expanded_unq = re.sub(r"[\"']", "", expanded) if not re.search(r"\s['\"]", expanded) else expanded
        for text in {expanded, expanded_unq}:
            for f in analyse(text, self.depth + 1, self.env, self.extra_ro):
                if f.risk > CHANGES_STATE:
                    self.findings.append(
                        Finding(f.risk, f"after expanding to {text.strip()[:80]!r}: {f.reason}")
                    )

    def param_value(self, expr: str) -> str | None:
        if expr in {"IFS", "IFS%?", "IFS%??"} or expr.startswith("IFS"):
            return " "
        m = re.fullmatch(r"(\w+)(:?[-=+?])(.*)", expr)
        if m:
            name, op, default = m.groups()
            if self.env.get(name) is not None and op.endswith(("-", "=")):
                return self.env[name]
            return default if op.endswith(("-", "=")) else None
        m = re.fullmatch(r"(\w+):(\d+)(?::(\d+))?", expr)
        if m and self.env.get(m.group(1)) is not None:
            s = self.env[m.group(1)] or ""
            a = int(m.group(2))
            return s[a : a + int(m.group(3))] if m.group(3) else s[a:]
        if expr in self.env:
            return self.env[expr]  # None: set somewhere on the line to something we cannot know
        if expr in ROOT_ENV:
            return ROOT_ENV[expr]
        if (
            re.fullmatch(r"[A-Za-z_]\w*", expr)
            and expr not in INHERITED_ENV
            and not expr.startswith(_ENV_PREFIXES)
        ):
            # Each command runs in a fresh `bash -lc`: a variable nobody set expands to nothing
            # (`rm -rf "$DIR"/` is `rm -rf /`).
            return ""
        return None


ROOT_ENV = {"HOME": "/root", "USER": "root", "LOGNAME": "root", "IFS": " "}
INHERITED_ENV = frozenset(
    [
        "PATH",
        "TERM",
        "LANG",
        "LANGUAGE",
        "PWD",
        "OLDPWD",
        "SHELL",
        "SHLVL",
        "HOSTNAME",
        "HOSTTYPE",
        "OSTYPE",
        "MACHTYPE",
        "RANDOM",
        "SECONDS",
        "LINENO",
        "UID",
        "EUID",
        "PPID",
        "GROUPS",
        "MAIL",
        "EDITOR",
        "VISUAL",
        "PAGER",
        "TMPDIR",
        "TZ",
        "DISPLAY",
        "COLUMNS",
        "LINES",
        "PS1",
        "PS2",
        "PS4",
        "OPTARG",
        "OPTIND",
        "REPLY",
        "PIPESTATUS",
        "FUNCNAME",
        "HISTFILE",
        "HISTSIZE",
        "DEBIAN_FRONTEND",
    ]
)
_ENV_PREFIXES = (
    "BASH",
    "LC_",
    "XDG_",
    "SSH_",
    "SUDO_",
    "FAZAI",
    "COMP_",
    "DBUS_",
    "SYSTEMD_",
    "INVOCATION_",
    "JOURNAL_",
)


def _bound_names(text: str) -> set[str]:
    """Variables given a value somewhere in the text (assignments, for/select/read/getopts/mapfile)."""
    names = set(re.findall(r"(?<![\w$])([A-Za-z_]\w*)\+?=", text))
    names |= set(re.findall(r"\b(?:for|select)\s+([A-Za-z_]\w*)", text))
    for m in re.finditer(r"\b(?:read|mapfile|readarray|getopts\s+\S+)\s+([^;&|\n<>]*)", text):
        names |= {w for w in m.group(1).split() if re.fullmatch(r"[A-Za-z_]\w*", w)}
    return names


def _cd(cwd: str | None, args: list[str], literal: bool) -> str | None:
    if not literal:
        return None
    dest = next((a for a in args if not a.startswith("-")), "~")
    if dest.startswith("/"):
        return dest
    if dest == "~" or dest.startswith("~/"):
        return "/root" + dest[1:]
    if cwd:
        return cwd.rstrip("/") + "/" + dest
    return None


def _ansi_c(raw: str) -> str:
    def dec(m: re.Match[str]) -> str:
        try:
            return codecs.decode(m.group(1), "unicode_escape")
        except Exception:
            return m.group(1)

    return re.sub(r"\$'((?:[^'\\]|\\.)*)'", dec, raw)


def _children(node: Any) -> list[Any]:
    out: list[Any] = []
    for attr in ("parts", "list"):
        v = getattr(node, attr, None)
        if isinstance(v, list):
            out.extend(v)
    for attr in ("command",):
        v = getattr(node, attr, None)
        if v is not None and hasattr(v, "kind"):
            out.append(v)
    return out


def _iter_commands(node: Any) -> list[Any]:
    out: list[Any] = []
    stack = [node]
    while stack:
        n = stack.pop()
        if getattr(n, "kind", None) == "command":
            out.append(n)
        stack.extend(_children(n))
    return out


def _substitutions(node: Any) -> list[Any]:
    """$(…), `…` and <(…) anywhere inside a word, assignment or redirection (not nested deeper)."""
    out: list[Any] = []
    stack = list(getattr(node, "parts", []) or [])
    if getattr(node, "kind", None) == "redirect" and hasattr(node.output, "kind"):
        stack.append(node.output)
    while stack:
        n = stack.pop()
        if n.kind in {"commandsubstitution", "processsubstitution"}:
            out.append(n)
        else:
            stack.extend(getattr(n, "parts", []) or [])
    return out


def _single_source(word: Any) -> Any:
    parts = getattr(word, "parts", []) or []
    subs = [p for p in parts if p.kind in {"commandsubstitution", "processsubstitution"}]
    return subs[0] if len(subs) == 1 else None


def _argv_of(node: Any) -> list[str]:
    if getattr(node, "kind", None) != "command":
        return ["(compound)"]
    return [p.word for p in node.parts if p.kind == "word"]


def _heretext(node: Any) -> str | None:
    for p in getattr(node, "parts", []) or []:
        if p.kind == "redirect":
            if p.type == "<<<" and getattr(p.output, "kind", None) == "word":
                return p.output.word
            hd = getattr(p, "heredoc", None)
            if hd is not None:
                return hd.value.rsplit("\n", 1)[0]
    return None


def _pipeline_commands(node: Any) -> list[Any] | None:
    if node.kind == "command":
        return [node]
    if node.kind == "pipeline":
        cmds = [p for p in node.parts if p.kind not in {"pipe"}]
        return cmds if all(c.kind == "command" for c in cmds) else None
    return None


# ---------------------------------------------------------------------------------------------------------
# Evaluating tiny literal pipelines (echo … | base64 -d) so a hidden payload can be judged.


def evaluate_pipeline(cmds: list[tuple[list[str], str | None]]) -> str | None:
    data: str | None = None
    for argv, here in cmds:
        if not argv:
            return None
        name = rules.resolve_name(argv[0])[0]
        args = argv[1:]
        if here is not None:
            data = here
        if name == "echo":
            flags = [a for a in args if re.fullmatch(r"-[neE]+", a)]
            rest = args[len(flags) :]
            data = " ".join(rest)
            if any("e" in f for f in flags):
                data = _unescape(data)
        elif name == "printf":
            if not args:
                return None
            fmt = _unescape(args[0])
            for a in args[1:]:
                fmt = re.sub(r"%[bs]", lambda _m, a=a: _unescape(a), fmt, count=1)
            data = fmt.replace("%%", "%")
        elif name == "cat" and not args:
            pass
        elif name in {"base64", "base32", "basenc"} and any(a in {"-d", "--decode", "-D"} for a in args):
            if data is None:
                return None
            try:
                raw = (
                    base64.b64decode(data.strip() + "==", validate=False)
                    if name != "base32"
                    else base64.b32decode(data.strip())
                )
                data = raw.decode("utf-8", "replace")
            except (binascii.Error, ValueError):
                return None
        elif name == "openssl" and ("-d" in args and ({"-base64", "-a", "base64"} & set(args))):
            if data is None:
                return None
            try:
                data = base64.b64decode(data.strip() + "==", validate=False).decode("utf-8", "replace")
            except (binascii.Error, ValueError):
                return None
        elif name == "xxd" and any(a.startswith("-r") for a in args):
            if data is None:
                return None
            try:
                data = bytes.fromhex(re.sub(r"\s", "", data)).decode("utf-8", "replace")
            except ValueError:
                return None
        elif name == "rev":
            if data is None:
                return None
            data = "\n".join(line[::-1] for line in data.split("\n"))
        else:
            return None
    return data


def _unescape(s: str) -> str:
    try:
        s2 = re.sub(r"\\([0-7]{1,3})", lambda m: chr(int(m.group(1), 8)), s)
        return codecs.decode(s2, "unicode_escape")
    except Exception:
        return s


# ---------------------------------------------------------------------------------------------------------
# One simple command: unwrap wrappers, then interpreters, then the per-command rule.


def classify_argv(
    cmd: Cmd, ctx: Ctx, extra_ro: frozenset[str] = frozenset(), functions: dict[str, Any] | None = None
) -> list[Finding]:
    out: list[Finding] = []
    for _ in range(12):  # wrappers can nest (sudo env nice timeout rm …)
        if not cmd.args:
            return out or [Finding(READ_ONLY, "empty command")]
        name, trusted = rules.resolve_name(cmd.name)
        if not cmd.args[0].literal:
            return [
                *out,
                Finding(CHANGES_STATE, f"command name {cmd.name!r} is computed at run time: cannot trust it"),
            ]
        argv = cmd.argv
        if name in _WRAPPERS or name in {
            "env",
            "timeout",
            "xargs",
            "busybox",
            "su",
            "parallel",
            "eval",
            "source",
            ".",
        }:
            nxt = unwrap(name, cmd, ctx)
            if isinstance(nxt, list):
                return out + nxt
            if nxt is None:
                return [*out, Finding(READ_ONLY, f"{name} without a command")]
            cmd = nxt
            continue
        if name in SHELLS or (name == "busybox" and len(argv) > 1 and argv[1] in SHELLS):
            return out + shell_code(name, cmd, ctx)
        if name in INTERPRETERS:
            return out + interpreter(name, cmd, ctx)
        if rules.mkfs_like(name):
            return [*out, Finding(FORBIDDEN, f"{name}: creates a filesystem, erasing the device")]
        if name in extra_ro:
            return [*out, Finding(READ_ONLY, f"{name}: read-only by [safety] extra_read_only")]
        if "/" in cmd.name and ctx.written(cmd.name) is not None:
            code = ctx.written(cmd.name) or ""
            return [
                *out,
                Finding(CHANGES_STATE, f"{cmd.name}: runs a script written on this line"),
                *(Finding(f.risk, f"{cmd.name}: {f.reason}") for f in ctx.classify_code(code)),
            ]
        if functions and name in functions:
            return [*out, Finding(CHANGES_STATE, f"calls shell function {name}")]
        fn = rules.RULES.get(name)
        if fn is None:
            return [*out, Finding(CHANGES_STATE, f"{name}: unknown command, asking")]
        found = fn(Cmd([Arg(name, True, None), *cmd.args[1:]]), ctx)
        if not trusted:
            found = [
                Finding(
                    max(f.risk, CHANGES_STATE), f"{cmd.name} is not in a system bin directory; {f.reason}"
                )
                for f in found
            ]
        return out + found
    return [*out, Finding(CHANGES_STATE, "too many nested wrappers")]


def unwrap(name: str, cmd: Cmd, ctx: Ctx) -> Cmd | list[Finding] | None:
    """The command a wrapper runs, or findings when the wrapper itself decides (eval, su -c, xargs…)."""
    args = cmd.args[1:]
    texts = [a.text for a in args]
    if name in {"eval"}:
        return ctx.classify_code(" ".join(texts)) or [Finding(READ_ONLY, "empty eval")]
    if name in {"source", "."}:
        src = args[0] if args else None
        if src is not None and src.source is not None:
            return _code_from_producer(src.source, ctx, f"{name} <(…)")
        if src is not None and src.text in {"/dev/stdin", "/proc/self/fd/0", "/dev/fd/0", "-"}:
            return _stdin_code(name, ctx)
        written = ctx.written(src.text) if src is not None else None
        if written is not None:
            return [Finding(f.risk, f"{name} {src.text}: {f.reason}") for f in ctx.classify_code(written)] + [
                Finding(CHANGES_STATE, f"{name} runs a script written on this line")
            ]
        return [Finding(CHANGES_STATE, f"{name} runs a script file whose content is not known")]
    if name == "env":
        i = 0
        while i < len(texts):
            t = texts[i]
            if t in {"-u", "--unset", "-C", "--chdir"}:
                i += 2
            elif t in {"-S", "--split-string"} and i + 1 < len(texts):
                return ctx.classify_code(" ".join(texts[i + 1 :]))
            elif t.startswith("-") or re.match(r"\w+=", t):
                if re.match(r"(PATH|LD_PRELOAD|LD_LIBRARY_PATH|BASH_ENV)=", t):
                    return [
                        Finding(CHANGES_STATE, f"env {t.split('=')[0]}=…: changes how the command runs"),
                        *_rest(cmd, i + 1, ctx),
                    ]
                i += 1
            else:
                break
        return Cmd(args[i:]) if i < len(args) else None
    if name == "timeout":
        _, _pos = split_opts(texts, {"-s", "--signal", "-k", "--kill-after"})
        i = 0
        while i < len(texts) and texts[i].startswith("-"):
            i += 2 if texts[i] in {"-s", "--signal", "-k", "--kill-after"} else 1
        return Cmd(args[i + 1 :]) if i + 1 < len(args) else None
    if name == "busybox":
        return Cmd(args) if args else None
    if name in {"su"}:
        for i, t in enumerate(texts):
            if t in {"-c", "--command"} and i + 1 < len(texts):
                return ctx.classify_code(texts[i + 1])
        return [Finding(CHANGES_STATE, "su opens a root shell")]
    if name in {"xargs", "parallel"}:
        withv = {
            "-I",
            "-i",
            "-n",
            "-P",
            "-d",
            "-a",
            "-E",
            "-L",
            "-s",
            "-e",
            "--delimiter",
            "--arg-file",
            "--max-args",
            "--max-procs",
            "-j",
        }
        i = 0
        while i < len(texts) and texts[i].startswith("-"):
            i += 2 if texts[i] in withv else 1
        inner = args[i:] or [Arg("echo")]
        # Literal items piped in (echo / | xargs rm -rf) become arguments.
        extra: list[Arg] = []
        if ctx.stdin and ctx.stdin.upstream:
            data = evaluate_pipeline([(u, None) for u in ctx.stdin.upstream])
            if data is not None:
                extra = [Arg(t) for t in data.split()][:32]
        found = classify_argv(Cmd(inner + extra), Ctx(ctx.classify_code, None, ctx.cwd, ctx.evaluate))
        return [Finding(f.risk, f"{name}: {f.reason}") for f in found]
    opts_with_value = _WRAPPERS.get(name, set())
    i = 0
    if name == "chroot":
        i = 1  # chroot NEWROOT cmd…
        while i - 1 < len(texts) and texts[i - 1].startswith("-"):
            i += 1
    elif name in {"taskset", "chrt", "sg", "flock", "numactl"}:
        # the first positional is a mask / priority / group / lock file
        j = 0
        while j < len(texts) and texts[j].startswith("-"):
            j += 2 if texts[j] in opts_with_value else 1
        i = j + 1
    else:
        while i < len(texts):
            t = texts[i]
            if t == "--":
                i += 1
                break
            if not t.startswith("-"):
                break
            if name == "command" and t in {"-v", "-V"}:
                return [Finding(READ_ONLY, "command -v: looks a name up")]
            i += 2 if t in opts_with_value else 1
    if name in {"sudo", "doas"} and i < len(texts) and re.match(r"\w+=", texts[i]):
        while i < len(texts) and re.match(r"\w+=", texts[i]):
            i += 1
    if (
        name in {"sudo"}
        and any(t in {"-e", "--edit", "-s", "-i", "--shell", "--login"} for t in texts[:i])
        and i >= len(texts)
    ):
        return [Finding(CHANGES_STATE, "sudo -e/-s/-i: an editor or interactive root shell")]
    return Cmd(args[i:]) if i < len(args) else None


def _rest(cmd: Cmd, start: int, ctx: Ctx) -> list[Finding]:
    rest = cmd.args[1 + start :]
    return classify_argv(Cmd(rest), ctx) if rest else []


def _code_from_producer(node: Any, ctx: Ctx, who: str) -> list[Finding]:
    """Shell code that comes from ``<(…)`` / ``$(…)``: judge its source (download, decoder, literal)."""
    cmds = _pipeline_commands(node.command) if hasattr(node, "command") else None
    if not cmds:
        return [Finding(CHANGES_STATE, f"{who}: runs code produced by a command")]
    return _judge_producer([_argv_of(c) for c in cmds], [_heretext(c) for c in cmds], ctx, who)


def _judge_producer(upstream: list[list[str]], heres: list[str | None], ctx: Ctx, who: str) -> list[Finding]:
    names = {rules.resolve_name(u[0])[0] if u else "" for u in upstream}
    out: list[Finding] = []
    if names & DOWNLOADERS:
        out.append(Finding(DESTRUCTIVE, f"{who}: downloads code and runs it as root (curl|sh)"))
    decoded = evaluate_pipeline(list(zip(upstream, heres, strict=False)))
    if names & DECODERS or (
        any(n == "printf" for n in names) and decoded and "\\" in " ".join(" ".join(u) for u in upstream)
    ):
        out.append(Finding(DESTRUCTIVE, f"{who}: decodes an obfuscated payload and runs it"))
    if decoded is not None:
        out += [Finding(f.risk, f"{who}, decoded payload: {f.reason}") for f in ctx.classify_code(decoded)]
    elif not out:
        out.append(Finding(CHANGES_STATE, f"{who}: runs code produced by {' | '.join(sorted(names))}"))
    return out


def shell_code(name: str, cmd: Cmd, ctx: Ctx) -> list[Finding]:
    args = cmd.args[1:]
    if name == "busybox":
        args = args[1:]
    texts = [a.text for a in args]
    i = 0
    while i < len(texts):
        t = texts[i]
        if t == "-c" or (re.fullmatch(r"-[a-zA-Z]*c[a-zA-Z]*", t) and not t.startswith("--")):
            if i + 1 >= len(texts):
                return [Finding(CHANGES_STATE, f"{name} -c without code")]
            code_arg = args[i + 1]
            if not code_arg.literal and code_arg.source is not None:
                return _code_from_producer(code_arg.source, ctx, f'{name} -c "$(…)"')
            found = ctx.classify_code(code_arg.text)
            return [Finding(f.risk, f"{name} -c: {f.reason}") for f in found]
        if t in {"-s", "-", "--"} or t.startswith("-"):
            i += 2 if t in {"-o", "+o", "-O", "+O", "--rcfile", "--init-file"} else 1
            continue
        # a script file or <(…)
        if args[i].source is not None:
            return _code_from_producer(args[i].source, ctx, f"{name} <(…)")
        written = ctx.written(t)
        if written is not None:
            return [Finding(CHANGES_STATE, f"{name} {t}: runs a script written on this line")] + [
                Finding(f.risk, f"{name} {t}: {f.reason}") for f in ctx.classify_code(written)
            ]
        return [Finding(CHANGES_STATE, f"{name} {t}: runs a script whose content is not analysed")]
    return _stdin_code(name, ctx)


def _stdin_code(name: str, ctx: Ctx) -> list[Finding]:
    st = ctx.stdin
    if st and st.text is not None:
        return [Finding(f.risk, f"{name} <<<: {f.reason}") for f in ctx.classify_code(st.text)]
    if st and st.upstream:
        return _judge_producer(st.upstream, st.upstream_here or [None] * len(st.upstream), ctx, f"… | {name}")
    return [Finding(CHANGES_STATE, f"{name} reads commands from stdin/terminal")]


def interpreter(name: str, cmd: Cmd, ctx: Ctx) -> list[Finding]:
    flags = INTERPRETERS[name]
    texts = cmd.argv[1:]
    for i, t in enumerate(texts):
        if t in flags or (
            t.startswith("-")
            and not t.startswith("--")
            and any(f[1:] in t[1:] for f in flags if len(f) == 2)
            and len(t) <= 4
        ):
            code = texts[i + 1] if i + 1 < len(texts) else ""
            return _foreign_code(name, code, ctx)
        if t == "-m":
            mod = texts[i + 1] if i + 1 < len(texts) else ""
            if mod in {"json.tool", "site", "platform", "sysconfig", "pip"} and (
                mod != "pip"
                or (len(texts) > i + 2 and texts[i + 2] in {"list", "show", "freeze", "--version"})
            ):
                return [Finding(READ_ONLY, f"{name} -m {mod}")]
            return [Finding(CHANGES_STATE, f"{name} -m {mod}: runs a module")]
        if t in {"--version", "-V", "-v"} and len(texts) == 1:
            return [Finding(READ_ONLY, f"{name} --version")]
        if not t.startswith("-"):
            src = cmd.args[i + 1].source
            if src is not None:
                return [
                    f if f.risk > CHANGES_STATE else Finding(CHANGES_STATE, f.reason)
                    for f in _code_from_producer(src, _no_shell(ctx), f"{name} <(…)")
                ]
            return [Finding(CHANGES_STATE, f"{name} {t}: runs a program that is not analysed")]
    if ctx.stdin and (ctx.stdin.upstream or ctx.stdin.text is not None):
        if ctx.stdin.text is not None:
            return _foreign_code(name, ctx.stdin.text, ctx)
        return [
            f if f.risk > CHANGES_STATE else Finding(CHANGES_STATE, f.reason)
            for f in _judge_producer(
                ctx.stdin.upstream,
                ctx.stdin.upstream_here or [None] * len(ctx.stdin.upstream),
                _no_shell(ctx),
                f"… | {name}",
            )
        ]
    return [Finding(CHANGES_STATE, f"{name}: interactive interpreter")]


def _no_shell(ctx: Ctx) -> Ctx:
    # Decoded payloads for a non-shell interpreter: judge only the quoted shell strings inside.
    return Ctx(lambda code: _foreign_code("payload", code, ctx), ctx.stdin, ctx.cwd, ctx.evaluate)


_STRINGS = re.compile(r"\"((?:[^\"\\]|\\.)*)\"|'((?:[^'\\]|\\.)*)'|`([^`]*)`")
_FOREIGN_DANGER = re.compile(
    r"rmtree|unlink|remove|rmdir|os\.system|subprocess|popen|exec|system\s*\(|`|kill|truncate|chmod|chown|mkfs|/dev/sd|socket|urlopen|requests\.|open\([^)]*['\"][wa]"
)


def _foreign_code(name: str, code: str, ctx: Ctx) -> list[Finding]:
    """Code for python/perl/ruby…: not parsed, never read-only; quoted shell strings in it are judged."""
    out = [Finding(CHANGES_STATE, f"{name} code is not analysed: asking")]
    for m in _STRINGS.finditer(code):
        s = next((g for g in m.groups() if g is not None), "")
        if s and " " in s:
            for f in ctx.classify_code(s):
                if f.risk >= DESTRUCTIVE:
                    out.append(Finding(f.risk, f"{name} code contains {s[:60]!r}: {f.reason}"))
    if re.search(r"shutil\.rmtree\(\s*['\"]/['\"]", code):
        out.append(Finding(FORBIDDEN, f"{name}: rmtree('/')"))
    return out


# ---------------------------------------------------------------------------------------------------------
# Fallback when bashlex cannot parse: split on shell operators with shlex and judge each piece.


def fallback(
    text: str, depth: int, env: dict[str, str | None], extra_ro: frozenset[str], why: str
) -> list[Finding]:
    floor = Finding(CHANGES_STATE, f"could not fully parse the command ({why[:80]}): asking")
    out = [floor]
    try:
        lex = shlex.shlex(text, posix=True, punctuation_chars=";&|()<>")
        lex.whitespace_split = True
        lex.commenters = ""
        tokens = list(lex)
    except ValueError:
        tokens = re.split(r"\s+|(?=[;&|()<>])|(?<=[;&|()<>])", text)
        tokens = [t for t in tokens if t]
    pieces: list[list[str]] = [[]]
    redir_next = None
    for t in tokens:
        if t and set(t) <= set(";&|()"):
            pieces.append([])
            redir_next = None
        elif t and set(t) <= set("<>&"):
            redir_next = t
        elif redir_next is not None:
            if ">" in redir_next:
                out += rules.write_target(t, append=">>" in redir_next, who=f"redirection {redir_next}")
            redir_next = None
        else:
            pieces[-1].append(t)
    ctx = Ctx(classify_code=lambda code: analyse(code, depth + 1, env, extra_ro), stdin=None)
    skip = {
        "if",
        "then",
        "else",
        "elif",
        "fi",
        "do",
        "done",
        "while",
        "until",
        "for",
        "in",
        "case",
        "esac",
        "{",
        "}",
        "!",
        "[[",
        "]]",
        "function",
        "select",
        "time",
        "coproc",
    }
    for p in pieces:
        while p and (
            p[0] in skip or re.fullmatch(r"\w+=\S*", p[0]) or (p[0].endswith(")") and len(p[0]) < 20)
        ):
            p = p[1:]
        if not p:
            continue
        literal = not re.search(r"[$`*?{]", p[0])
        try:
            out += classify_argv(
                Cmd([Arg(p[0], literal), *[Arg(x, "$" not in x and "`" not in x) for x in p[1:]]]),
                ctx,
                extra_ro,
            )
        except Exception:
            out.append(floor)
    # Anything below the floor is raised to it: unparsed code is never read-only.
    return [
        f if f.risk >= CHANGES_STATE else Finding(CHANGES_STATE, f.reason + " (unparsed context)")
        for f in out
    ]
