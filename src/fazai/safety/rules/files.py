"""Files: rm, chmod/chown, mv/cp, dd, sed, awk, find, shred, truncate."""

from __future__ import annotations

import re

from .. import paths
from ..cmd import Cmd, Ctx, has_long, has_short, split_opts
from ..model import CHANGES_STATE, DESTRUCTIVE, FORBIDDEN, Finding
from .base import crit, cs, de, fb, op, ro, rule, write_target


def _rm_targets(pos: list[str], ctx: Ctx) -> list[str]:
    out: list[str] = []
    for p in pos:
        out.extend(paths.expand_braces(p))
    return out


@rule("rm", "unlink")
def _rm(cmd: Cmd, ctx: Ctx) -> list[Finding]:
    opts, pos = split_opts(cmd.argv[1:])
    recursive = has_short(opts, "rR") or has_long(opts, "--recursive")
    if has_long(opts, "--no-preserve-root"):
        return fb("rm --no-preserve-root: exists only to delete /")
    targets = _rm_targets(pos, ctx)
    for t in targets:
        if paths.is_auth_file(paths.norm(t, ctx.cwd)):
            return fb(f"rm {t}: deletes an account/auth file, locks everyone out")
        if recursive and paths.is_catastrophic_tree(t, ctx.cwd):
            return fb(f"rm -r {t}: deletes the root, a system directory or root's home")
    if recursive and ctx.cwd == "/" and any(t in {"*", ".", "./*", ".*"} for t in targets):
        return fb("rm -r * after cd /: deletes the whole system")
    if recursive:
        return de(f"rm -r {' '.join(pos) or '(arguments from stdin)'}: deletes a directory tree")
    return de(f"rm {' '.join(pos) or '(arguments from stdin)'}: deletes files")


@rule("rmdir")
def _rmdir(cmd: Cmd, ctx: Ctx) -> list[Finding]:
    return cs("rmdir removes empty directories")


@rule("shred", "srm", "wipe")
def _shred(cmd: Cmd, ctx: Ctx) -> list[Finding]:
    _, pos = split_opts(cmd.argv[1:], {"-n", "-s", "--iterations", "--size"})
    for p in pos:
        if p.startswith("/dev/") and not paths.is_harmless_sink(p):
            return fb(f"{cmd.name} {p}: overwrites a device")
        if paths.is_auth_file(p) or paths.is_catastrophic_tree(p, ctx.cwd):
            return fb(f"{cmd.name} {p}: destroys a system file")
    return de(f"{cmd.name}: irrecoverably overwrites files")


@rule("truncate")
def _truncate(cmd: Cmd, ctx: Ctx) -> list[Finding]:
    _, pos = split_opts(cmd.argv[1:], {"-s", "-r", "--size", "--reference"})
    for p in pos:
        if paths.is_auth_file(p) or paths.is_block_device(p):
            return fb(f"truncate {p}: destroys a system file")
        if paths.is_security_file(p):
            return crit(f"truncate {p}: empties a file that controls logins")
    return de("truncate discards file contents")


@rule("chmod", "chown", "chgrp", "chattr", "setfacl", "chcon", "setfattr")
def _perm(cmd: Cmd, ctx: Ctx) -> list[Finding]:
    opts, pos = split_opts(cmd.argv[1:], {"--reference", "-M", "-m", "-x", "-X", "-n", "-v"})
    recursive = has_short(opts, "R") or has_long(opts, "--recursive")
    # The first positional is the mode / owner, except for setfacl.
    targets = pos if cmd.name == "setfacl" else pos[1:]
    if cmd.name == "chmod":
        modes = [o for o in opts if re.fullmatch(r"-[rwxXst]+", o) and "s" in o]  # chmod -s: split_opts
        if (pos and sets_setid(pos[0])) or modes:
            return crit(f"chmod {pos[0] if pos else modes[0]}: sets a setuid/setgid bit (runs as root)")
    for t in targets:
        if paths.is_security_file(paths.norm(t, ctx.cwd)) and not paths.is_auth_file(t):
            return crit(f"{cmd.name} on {t}: changes who may log in or act as root")
    # `chattr -R +i /`: chattr's mode starts with +/-, so split_opts may have taken it as an option.
    for t in targets:
        for tt in paths.expand_braces(t):
            if recursive and paths.is_catastrophic_tree(tt, ctx.cwd):
                return fb(f"{cmd.name} -R on {tt}: rewrites ownership/permissions of the whole system")
            if paths.norm(tt, ctx.cwd) == "/" or paths.is_auth_file(tt):
                return de(f"{cmd.name} on {tt}: can break logins or the whole system")
    return cs(f"{cmd.name} changes permissions/ownership")


@rule("mv")
def _mv(cmd: Cmd, ctx: Ctx) -> list[Finding]:
    _, pos = split_opts(cmd.argv[1:], {"-t", "-S", "--target-directory", "--suffix"})
    for p in pos[:-1]:
        for pp in paths.expand_braces(p):
            if paths.is_catastrophic_tree(pp, ctx.cwd):
                return fb(f"mv {pp}: moves away the root or a system directory")
    if pos:
        dest = pos[-1]
        if paths.is_harmless_sink(dest):
            return de(f"mv … {dest}: destroys the source")
        w = write_target(dest, append=False, who="mv")
        if w and w[0].risk > CHANGES_STATE:
            return [Finding(max(w[0].risk, DESTRUCTIVE), w[0].reason)]
    return cs("mv moves/renames files")


@rule("cp", "install", "rsync", "scp", "ln")
def _cp(cmd: Cmd, ctx: Ctx) -> list[Finding]:
    opts, pos = split_opts(cmd.argv[1:], {"-t", "-S", "-m", "-o", "-g", "--target-directory", "-e", "-P"})
    if cmd.name == "rsync" and has_long(
        opts, "--delete", "--delete-before", "--delete-after", "--remove-source-files"
    ):
        return de("rsync --delete removes files at the destination")
    if cmd.name == "install":
        for i, o in enumerate(opts):
            mode = (
                opts[i + 1]
                if o == "-m" and i + 1 < len(opts)
                else o.split("=", 1)[1]
                if o.startswith("--mode=")
                else None
            )
            if mode and sets_setid(mode):
                return crit(f"install -m {mode}: installs a setuid/setgid program")
    if cmd.name in {"rsync", "scp"}:
        found = _remote_copy(cmd.name, cmd.argv[1:], pos)
        if found:
            return found
    if pos:
        w = write_target(pos[-1], append=False, who=cmd.name)
        if w and w[0].risk > CHANGES_STATE:
            return w
    return cs(f"{cmd.name} writes files")


def _remote_copy(name: str, args: list[str], pos: list[str]) -> list[Finding]:
    """rsync/scp: a remote shell given on the command line, or local files sent to another host."""
    for i, a in enumerate(args):
        if a in {"-e", "--rsh", "--rsync-path", "-S"} or a.startswith(("--rsh=", "--rsync-path=")):
            return op(f"{name} {a}: runs the given program as its transport")
        if name == "scp" and a == "-o" and i + 1 < len(args) and "ProxyCommand" in args[i + 1]:
            return op("scp -o ProxyCommand: runs a program")
    remote = [bool(re.match(r"^([\w.@-]+):(?!//)", p)) and not p.startswith("/") for p in pos]
    if len(pos) >= 2 and remote[-1] and not all(remote[:-1]):
        return op(f"{name} sends local files ({' '.join(pos[:-1])[:60]}) to another host")
    return []


def sets_setid(mode: str) -> bool:
    """A chmod/install mode that sets the setuid or setgid bit (4xxx, 2xxx, u+s, g=s, +s…)."""
    if re.fullmatch(r"0*[0-7]{4}", mode):
        return int(mode.lstrip("0")[-4] if len(mode.lstrip("0")) >= 4 else "0") & 6 != 0
    return any(
        re.fullmatch(r"[ugoa]*[+=][rwxXtugo]*s[rwxXst]*", part) is not None for part in mode.split(",")
    )


@rule("dd")
def _dd(cmd: Cmd, ctx: Ctx) -> list[Finding]:
    out = None
    for a in cmd.argv[1:]:
        if a.startswith("of="):
            out = a[3:]
    if out is None:
        return ro("dd writing to stdout")
    w = write_target(out, append=False, who="dd")
    if out.startswith("/dev/") and not paths.is_harmless_sink(out) and not (w and w[0].risk == FORBIDDEN):
        return fb(f"dd of={out}: writes raw data to a device")
    return w or ro("dd to a harmless sink")


@rule("sed")
def _sed(cmd: Cmd, ctx: Ctx) -> list[Finding]:
    args = cmd.argv[1:]
    opts, pos = split_opts(args, {"-e", "-f", "--expression", "--file", "-l"})
    scripts = [opts[i + 1] for i, o in enumerate(opts[:-1]) if o in {"-e", "--expression"}]
    files = pos if scripts else pos[1:]
    if not scripts and pos:
        scripts = [pos[0]]
    out: list[Finding] = []
    for s in scripts:
        # `e` / `s///e` executes the pattern space as a shell command.
        if re.search(r"(^|[;{}\n])\s*[0-9,$/!]*\s*e(\s|$)", s) or re.search(
            r"(^|[;\n])\s*s(.).*\2.*\2[gpiImM0-9]*e", s
        ):
            return op("sed e command: runs text as shell commands")
        # `w file` / `s///w file` writes a file.
        for m in re.finditer(r"(?:(?:^|[;{}\n])\s*[0-9,$/!]*\s*[wW]|s(.).*\1.*\1[gpiImM0-9]*w)\s+(\S+)", s):
            out += write_target(m.group(2), append=False, who="sed w") or cs("sed w writes a file")
    if has_short([o for o in opts if not o.startswith("-e")], "i") or has_long(opts, "--in-place"):
        for f in files:
            if paths.is_security_file(paths.norm(f, ctx.cwd)):
                return crit(f"sed -i {f}: edits a file that controls logins or root access")
        return out + cs("sed -i edits files in place")
    if "-f" in opts or has_long(opts, "--file"):
        return op("sed -f runs a script file that is not analysed")
    return out or ro("sed without -i")


_AWK_DANGER = re.compile(
    r"system\s*\(|\|\s*getline|\"\s*\|\s*getline|print[f]?[^;}]*(>|\|)|fflush|close\s*\("
)


@rule("awk", "gawk", "mawk", "nawk")
def _awk(cmd: Cmd, ctx: Ctx) -> list[Finding]:
    opts, pos = split_opts(cmd.argv[1:], {"-F", "-v", "-f", "--field-separator", "--assign", "--file"})
    if "-f" in opts or has_long(opts, "--file"):
        return cs("awk -f runs a program file")
    prog = pos[0] if pos else ""
    if re.search(r"system\s*\(|\|\s*getline|\|\s*&|print[f]?[^;}]*\|", prog):
        # Strings given to system() or piped to getline are shell code.
        found = [f for s in re.findall(r"\"([^\"]*)\"", prog) if " " in s for f in ctx.classify_code(s)]
        found = [f for f in found if f.risk >= DESTRUCTIVE]
        return found + op("awk program runs shell commands (system(), | getline, print |)")
    out: list[Finding] = []
    for m in re.finditer(r"print[f]?[^;}]*?>>?\s*(\"([^\"]*)\"|\S+)", prog):
        target = m.group(2)
        out += (
            write_target(target, append=">>" in m.group(0), who="awk print >")
            if target is not None
            else cs("awk print > a computed file")
        ) or cs("awk writes a file")
    if _AWK_DANGER.search(prog) and not out:
        out += cs("awk program writes files or closes streams")
    return out or ro(cmd.name)


@rule("find")
def _find(cmd: Cmd, ctx: Ctx) -> list[Finding]:
    args = cmd.argv[1:]
    out: list[Finding] = []
    roots = []
    for a in args:
        if a.startswith("-") or a in {"(", "!", ")"}:
            break
        roots.append(a)
    i = 0
    while i < len(args):
        a = args[i]
        if a in {"-exec", "-execdir", "-ok", "-okdir"}:
            j = i + 1
            inner = []
            while j < len(args) and args[j] not in {";", "+", "\\;"}:
                inner.append(args[j])
                j += 1
            # Not narrowed by a test, find hands its start directory itself to the command: {} is the root.
            found = roots[0] if roots and not _find_narrowed(args) else "/found/file"
            if inner and inner[0] in {"sh", "bash", "dash", "zsh"} and any("{}" in w for w in inner[1:]):
                out += op(f"find {a} {inner[0]} -c with {{}}: file names become shell code")
            inner_cmd = " ".join(_q(w.replace("{}", found)) for w in inner)
            whole_tree = any(paths.is_catastrophic_tree(r, ctx.cwd) for r in roots) and not _find_narrowed(
                args
            )
            for f in ctx.classify_code(inner_cmd):
                if whole_tree and f.risk >= DESTRUCTIVE:
                    out += fb(f"find {' '.join(roots)} {a} over the whole tree: {f.reason}")
                else:
                    out.append(f.but(f"find {a}: {f.reason}"))
            i = j
        elif a == "-delete":
            if any(paths.is_catastrophic_tree(r, ctx.cwd) for r in roots) and not _find_narrowed(args):
                out += fb(f"find {' '.join(roots)} -delete: deletes a system tree")
            else:
                out += de("find -delete deletes the files it matches")
        elif a in {"-fprint", "-fprint0", "-fprintf", "-fls"}:
            out += write_target(args[i + 1] if i + 1 < len(args) else "", append=False, who=f"find {a}")
        i += 1
    return out or ro("find without -exec/-delete")


def _find_narrowed(args: list[str]) -> bool:
    # `find / -name '*.tmp' -delete` is narrowed by a test; `find / -delete` is not.
    tests = {"-name", "-iname", "-path", "-ipath", "-regex", "-iregex", "-newer", "-mtime", "-user", "-size"}
    # A pattern that matches everything (`-name '*'`, `-regex '.*'`) narrows nothing.
    return any(
        a in tests and i + 1 < len(args) and args[i + 1] not in {"*", ".*", "/*"} for i, a in enumerate(args)
    )


def _q(w: str) -> str:
    if re.fullmatch(r"[A-Za-z0-9_./=:,+@%-]+", w):
        return w
    return "'" + w.replace("'", "'\\''") + "'"
