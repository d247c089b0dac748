"""``classify(command)``: parse a shell command line with bashlex and judge every part of it.

The walk visits every simple command, including those inside pipelines, lists, subshells, ``$(…)``,
backticks, process substitutions, loops, functions and the code given to ``bash -c`` / ``eval`` / ``watch``.
Wrappers (``sudo``, ``env``, ``xargs``, ``timeout`` …) are unwrapped to the command they run. What cannot be
parsed falls back to a conservative tokenizer and is never judged read-only."""

from __future__ import annotations

import re
from typing import Any

import bashlex

from . import paths, rules
from .cmd import Arg, Cmd, Ctx, Stdin
from .dispatch import SHELLS, classify_argv
from .fallback import fallback
from .model import (
    CHANGES_STATE,
    DESTRUCTIVE,
    FORBIDDEN,
    OPAQUE,
    READ_ONLY,
    Finding,
    Verdict,
    verdict_of,
)
from .nodes import (
    argv_of,
    children,
    heretext,
    iter_commands,
    pipeline_commands,
    single_source,
    substitutions,
)
from .payload import DECODERS, DOWNLOADERS, ansi_c, evaluate_pipeline
from .progvars import PROGRAM_VARS, program_var
from .shellenv import ENV_PREFIXES, INHERITED_ENV, ROOT_ENV, bound_names, cd_target

MAX_DEPTH = 6


MAX_LEN = 20_000


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
            return Verdict(OPAQUE, [f"command longer than {MAX_LEN} characters: not analysed, asking"])
        if not command.strip() or (command.strip().startswith("#") and "\n" not in command.strip()):
            return Verdict(READ_ONLY, ["empty command or comment"])
        return verdict_of(analyse(command, 0, {}, extra_read_only))
    except RecursionError:
        return Verdict(OPAQUE, ["command nests too deeply to analyse: asking"])
    except Exception as exc:
        return Verdict(OPAQUE, [f"could not analyse the command ({type(exc).__name__}): asking"])


def analyse(
    text: str, depth: int, env: dict[str, str | None], extra_ro: frozenset[str] = frozenset()
) -> list[Finding]:
    """All findings for one piece of shell code."""
    if depth > MAX_DEPTH:
        return [Finding(OPAQUE, "shell code nested too deeply to analyse")]
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
        inner = lambda code: analyse(code, depth + 1, env, extra_ro)  # noqa: E731
        return findings + fallback(text, inner, extra_ro, f"{type(exc).__name__}: {exc}")
    walker = Walker(text, depth, env, extra_ro)
    for t in trees:
        walker.visit(t)
    return findings + walker.findings


def _strip_comments_lines(text: str) -> str:
    # bashlex rejects a script that is only a comment line; drop whole-line comments.
    return "\n".join(ln for ln in text.split("\n") if not ln.lstrip().startswith("#")) or ":"


class Walker:
    """Visits a bashlex tree, collecting findings for each simple command."""

    def __init__(self, text: str, depth: int, env: dict[str, str | None], extra_ro: frozenset[str]):
        self.text = text
        self.depth = depth
        # Literal assignments seen so far (x=rm; $x …); None = set on this line to something unknown
        # (loop variables, read, assignments from substitutions), so never guessed as empty.
        self.env: dict[str, str | None] = dict(env)
        for name in bound_names(text):
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
            for child in children(node):
                self.visit(child, upstream if kind == "compound" else None)

    def function(self, node: Any) -> None:
        name = node.name.word
        self.functions[name] = node
        body_calls = [c for c in iter_commands(node.body) if c.parts and c.parts[0].kind == "word"]
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
            for sub in substitutions(part):
                self.visit(sub.command)
        for a in assigns:
            self.assignment(a, bare=not words)
        if not words:
            if not assigns:
                self.findings.append(Finding(READ_ONLY, "redirection only"))
            return
        args = [Arg(w.word, self.is_literal(w), single_source(w)) for w in words]
        if not args[0].literal:
            self.findings.append(
                Finding(
                    OPAQUE,
                    f"command name {self.raw(words[0])!r} is computed at run time: cannot see what runs",
                )
            )
        else:
            ups = [argv_of(u) for u in upstream]
            heres = [heretext(u) for u in upstream]
            piped = evaluate_pipeline(list(zip(ups, heres, strict=True))) if ups else None
            stdin = Stdin(ups, here, heres, piped, self._input_file(node))
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
            self.cwd = cd_target(self.cwd, [a.text for a in args[1:]], all(a.literal for a in args))
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
            self.findings += self.later_code(key, content)

    def later_code(self, path: str, content: str) -> list[Finding]:
        """Code written into a cron table or a login script runs later, as root: judge it now."""
        p = "/root" + path[1:] if path.startswith("~") else path
        if paths.CRON_FILE.search(p):
            system = not p.startswith("/var/spool/")  # /etc/crontab, cron.d: a user field first
            user = r"\S+\s+" if system else ""
            code = [
                m.group(1)
                for line in content.splitlines()
                if not line.lstrip().startswith("#")
                and (m := re.match(rf"\s*(?:@\w+\s+|(?:\S+\s+){{5}}){user}(.+)", line))
            ]
        elif paths.LOGIN_SCRIPT.search(p):
            code = [content]
        else:
            return []
        out: list[Finding] = []
        for c in code:
            for f in analyse(c, self.depth + 1, self.env, self.extra_ro):
                if f.risk > CHANGES_STATE:
                    out.append(f.but(f"{path} will run {c.strip()[:60]!r} later: {f.reason}"))
        return out

    def assignment(self, node: Any, *, bare: bool) -> None:
        name, _, value = node.word.partition("=")
        name = name.rstrip("+")
        parts = getattr(node, "parts", None) or []
        if not parts:
            self.env[name] = value
        elif len(parts) == 1 and parts[0].kind == "commandsubstitution":
            # c=$(echo … | base64 -d): remember the decoded text, or that it came from a download/decoder.
            val = self.evaluate_node(parts[0])
            cmds = pipeline_commands(parts[0].command) or []
            names = {rules.resolve_name(argv_of(c)[0])[0] for c in cmds if argv_of(c)}
            if val is not None:
                self.env[name] = val.rstrip("\n")
            if names & (DOWNLOADERS | DECODERS):
                self.tainted[name] = "downloaded" if names & DOWNLOADERS else "decoded"
        if name in PROGRAM_VARS:
            code = value if not parts else self.raw(node).partition("=")[2]
            self.findings += program_var(
                name, code, bool(parts), lambda c: analyse(c, self.depth + 1, self.env, self.extra_ro)
            )
            if bare:
                self.findings.append(Finding(READ_ONLY, f"variable assignment {name}"))
        elif name in {
            "PATH",
            "LD_PRELOAD",
            "LD_LIBRARY_PATH",
            "BASH_ENV",
            "ENV",
            "IFS",
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
        if isinstance(target, int) or getattr(target, "kind", None) != "word":
            return None
        if paths.NET_DEVICE.match(paths.norm(target.word)):
            self.findings.append(Finding(OPAQUE, f"redirection {rtype} {target.word}: a network socket"))
            return None
        if rtype in {"<", "<&"}:
            return None
        if not self.is_literal(target):
            known = self.expand_word(target)
            if known is None:
                self.findings.append(
                    Finding(CHANGES_STATE, f"redirects output to a computed path {self.raw(target)!r}")
                )
            else:
                self.findings += [
                    f.but(f"{self.raw(target)} is {known}: {f.reason}")
                    for f in rules.write_target(
                        known, append=rtype in {">>", "&>>"}, who=f"redirection {rtype}"
                    )
                ]
            return None
        append = rtype in {">>", "&>>"}
        self.findings += rules.write_target(target.word, append=append, who=f"redirection {rtype}")
        return None

    # -- helpers ------------------------------------------------------------------------------------------
    def expand_word(self, word: Any) -> str | None:
        """The value of a word made only of literal text and variables assigned literally on this line
        (``F=/etc/passwd; : > $F``); None when any part is unknown."""
        raw = self.raw(word)
        if "`" in raw or "$(" in raw:
            return None
        out, unknown = [], False

        def sub(m: re.Match[str]) -> str:
            nonlocal unknown
            name = m.group(1) or m.group(2)
            val = self.env.get(name)
            if val is None:
                unknown = True
                return ""
            return val

        text = re.sub(r"\$\{(\w+)\}|\$(\w+)", sub, raw)
        if unknown or "$" in text:
            return None
        out.append(re.sub(r"[\"']", "", text))
        return "".join(out)

    def _input_file(self, node: Any) -> str | None:
        """The file a command reads on stdin (``cmd < FILE``), when literal."""
        for p in node.parts:
            if p.kind == "redirect" and p.type == "<" and getattr(p.output, "kind", None) == "word":
                return str(p.output.word)
        return None

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
        cmds = [c for c in pipeline_commands(node.command)] if hasattr(node, "command") else None
        if not cmds:
            return None
        return evaluate_pipeline([(argv_of(c), heretext(c)) for c in cmds])

    def deobfuscate(self, node: Any, words: list[Any]) -> None:
        """Expand what we can (known variables, ``${IFS}``, ``${x:-default}``, ``$'\\x72m'``, literal
        ``$(printf …)``), re-classify the result, and keep any higher risk it reveals."""
        start, end = node.pos
        src = self.text
        repl: list[tuple[int, int, str]] = []
        for w in words:
            raw = src[w.pos[0] : w.pos[1]]
            if "$'" in raw:
                repl.append((w.pos[0], w.pos[1], ansi_c(raw)))
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
        if expanded == src[start:end]:
            return  # nothing actually changed ('^$' looks like $'…'): no second round
        # Quotes that glued pieces together (r"m") are harmless now: drop them so the name is literal.
        expanded_unq = re.sub(r"[\"']", "", expanded) if not re.search(r"\s['\"]", expanded) else expanded
        for text in {expanded, expanded_unq}:
            for f in analyse(text, self.depth + 1, self.env, self.extra_ro):
                if f.risk > CHANGES_STATE:
                    self.findings.append(f.but(f"after expanding to {text.strip()[:80]!r}: {f.reason}"))

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
            and not expr.startswith(ENV_PREFIXES)
        ):
            # Each command runs in a fresh bash: a variable nobody set expands to nothing
            # (`rm -rf "$DIR"/` is `rm -rf /`).
            return ""
        return None
