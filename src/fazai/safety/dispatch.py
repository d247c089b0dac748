"""One simple command: unwrap wrappers (sudo, env, xargs…), judge code given to shells and interpreters,
then apply the per-command rule."""

from __future__ import annotations

import re
from typing import Any

from . import rules
from .cmd import Arg, Cmd, Ctx, split_opts
from .model import CHANGES_STATE, DESTRUCTIVE, FORBIDDEN, OPAQUE, READ_ONLY, Finding
from .nodes import argv_of, heretext, pipeline_commands
from .payload import DECODERS, DOWNLOADERS, evaluate_pipeline
from .progvars import PROGRAM_VARS, program_var

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
    "Rscript": ("-e",),
    "R": ("-e",),
    "expect": ("-c",),
    "julia": ("-e", "--eval"),
    "deno": ("eval",),
    "bun": ("-e", "--eval"),
}


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
                Finding(OPAQUE, f"command name {cmd.name!r} is computed at run time: cannot see what runs"),
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
                *(f.but(f"{cmd.name}: {f.reason}") for f in ctx.classify_code(code)),
            ]
        if functions and name in functions:
            return [*out, Finding(CHANGES_STATE, f"calls shell function {name}")]
        fn = rules.RULES.get(name)
        if fn is None:
            return [*out, Finding(CHANGES_STATE, f"{name}: unknown command, asking")]
        found = fn(Cmd([Arg(name, True, None), *cmd.args[1:]]), ctx)
        if not trusted:
            found = [
                f.but(f"{cmd.name} is not in a system bin directory; {f.reason}", max(f.risk, CHANGES_STATE))
                for f in found
            ]
        return out + found
    return [*out, Finding(CHANGES_STATE, "too many nested wrappers")]


def unwrap(name: str, cmd: Cmd, ctx: Ctx) -> Cmd | list[Finding] | None:
    """The command a wrapper runs, or findings when the wrapper itself decides (eval, su -c, xargs…)."""
    args = cmd.args[1:]
    texts = [a.text for a in args]
    if name in {"eval"}:
        # eval builds code at run time; even literal text goes through a second round of expansion.
        return [
            Finding(OPAQUE, "eval runs text as code: its meaning is only known at run time"),
            *ctx.classify_code(" ".join(texts)),
        ]
    if name in {"source", "."}:
        src = args[0] if args else None
        if src is not None and src.source is not None:
            return _code_from_producer(src.source, ctx, f"{name} <(…)")
        if src is not None and src.text in {"/dev/stdin", "/proc/self/fd/0", "/dev/fd/0", "-"}:
            return _stdin_code(name, ctx)
        written = ctx.written(src.text) if src is not None else None
        if written is not None:
            return [f.but(f"{name} {src.text}: {f.reason}") for f in ctx.classify_code(written)] + [
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
                var = t.split("=", 1)[0]
                if var in PROGRAM_VARS and "=" in t:
                    found = program_var(var, t.split("=", 1)[1], not args[i].literal, ctx.classify_code)
                    if found:
                        return [*found, *_rest(cmd, i + 1, ctx)]
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
        replace = any(t in {"-I", "-i"} or t.startswith(("-I", "-i", "--replace")) for t in texts[:i])
        inner_name = rules.resolve_name(inner[0].text)[0]
        if replace and (inner_name in SHELLS or inner_name in INTERPRETERS or inner_name == "eval"):
            return [Finding(OPAQUE, f"{name} -I … {inner_name}: builds code from its input")]
        # Literal items piped in (echo / | xargs rm -rf) become arguments.
        extra: list[Arg] = []
        if ctx.stdin and ctx.stdin.upstream:
            data = evaluate_pipeline([(u, None) for u in ctx.stdin.upstream])
            if data is not None:
                extra = [Arg(t) for t in data.split()][:32]
        found = classify_argv(Cmd(inner + extra), Ctx(ctx.classify_code, None, ctx.cwd, ctx.evaluate))
        return [f.but(f"{name}: {f.reason}") for f in found]
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
    cmds = pipeline_commands(node.command) if hasattr(node, "command") else None
    if not cmds:
        return [Finding(OPAQUE, f"{who}: runs code produced by a command")]
    return _judge_producer([argv_of(c) for c in cmds], [heretext(c) for c in cmds], ctx, who)


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
    out.append(Finding(OPAQUE, f"{who}: runs code produced by {' | '.join(sorted(names))}"))
    if decoded is not None:
        out += [f.but(f"{who}, decoded payload: {f.reason}") for f in ctx.classify_code(decoded)]
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
            return [f.but(f"{name} -c: {f.reason}") for f in found]
        if t in {"-s", "-", "--"} or t.startswith("-"):
            i += 2 if t in {"-o", "+o", "-O", "+O", "--rcfile", "--init-file"} else 1
            continue
        # a script file or <(…)
        if args[i].source is not None:
            return _code_from_producer(args[i].source, ctx, f"{name} <(…)")
        written = ctx.written(t)
        if written is not None:
            return [Finding(CHANGES_STATE, f"{name} {t}: runs a script written on this line")] + [
                f.but(f"{name} {t}: {f.reason}") for f in ctx.classify_code(written)
            ]
        return [Finding(CHANGES_STATE, f"{name} {t}: runs a script whose content is not analysed")]
    return _stdin_code(name, ctx)


def _stdin_code(name: str, ctx: Ctx) -> list[Finding]:
    st = ctx.stdin
    if st and st.text is not None:
        # A here-doc/here-string fed to a shell: judged, and still opaque (a second round of expansion).
        return [
            Finding(OPAQUE, f"{name} reads its code from a here-document"),
            *(f.but(f"{name} <<<: {f.reason}") for f in ctx.classify_code(st.text)),
        ]
    if st and st.file is not None:
        return [Finding(OPAQUE, f"{name} < {st.file}: runs a script file that is not analysed")]
    if st and st.upstream:
        return _judge_producer(st.upstream, st.upstream_here or [None] * len(st.upstream), ctx, f"… | {name}")
    return [Finding(CHANGES_STATE, f"{name} reads commands from stdin/terminal")]


def interpreter(name: str, cmd: Cmd, ctx: Ctx) -> list[Finding]:
    flags = INTERPRETERS[name]
    texts = cmd.argv[1:]
    in_place = any(re.fullmatch(r"-[a-zA-Z]*i[a-zA-Z.~]*", t) for t in texts) and name in {"perl", "ruby"}
    if in_place:
        from .paths import is_security_file

        hit = next((t for t in texts if not t.startswith("-") and is_security_file(t)), None)
        if hit:
            return [
                Finding(DESTRUCTIVE, f"{name} -i edits {hit}: a file that controls logins", critical=True),
                Finding(OPAQUE, f"{name} inline code is not analysed: it may do anything"),
            ]
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
    if ctx.stdin and ctx.stdin.file is not None and ctx.stdin.text is None:
        return [Finding(OPAQUE, f"{name} < {ctx.stdin.file}: runs a program that is not analysed")]
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
    out = [Finding(OPAQUE, f"{name} inline code is not analysed: it may do anything")]
    for m in _STRINGS.finditer(code):
        s = next((g for g in m.groups() if g is not None), "")
        if s and " " in s:
            for f in ctx.classify_code(s):
                if f.risk >= DESTRUCTIVE:
                    out.append(f.but(f"{name} code contains {s[:60]!r}: {f.reason}"))
    if re.search(r"shutil\.rmtree\(\s*['\"]/['\"]", code):
        out.append(Finding(FORBIDDEN, f"{name}: rmtree('/')"))
    return out
