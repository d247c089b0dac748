"""Files: rm, chmod/chown, mv/cp, dd, sed, awk, find, shred, truncate."""

from __future__ import annotations

import re

from .. import paths
from ..cmd import Cmd, Ctx, has_long, has_short, split_opts
from ..model import CHANGES_STATE, DESTRUCTIVE, FORBIDDEN, Finding
from .base import cs, de, fb, ro, rule, write_target


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
    return de("truncate discards file contents")


@rule("chmod", "chown", "chgrp", "chattr", "setfacl", "chcon", "setfattr")
def _perm(cmd: Cmd, ctx: Ctx) -> list[Finding]:
    opts, pos = split_opts(cmd.argv[1:], {"--reference", "-M", "-m", "-x", "-X", "-n", "-v"})
    recursive = has_short(opts, "R") or has_long(opts, "--recursive")
    # The first positional is the mode / owner, except for setfacl.
    targets = pos if cmd.name == "setfacl" else pos[1:]
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
    if pos:
        w = write_target(pos[-1], append=False, who=cmd.name)
        if w and w[0].risk > CHANGES_STATE:
            return w
    return cs(f"{cmd.name} writes files")


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
    if has_short([o for o in opts if not o.startswith("-e")], "i") or has_long(opts, "--in-place"):
        return cs("sed -i edits files in place")
    if "-f" in opts or has_long(opts, "--file"):
        return cs("sed -f runs a script file")
    scripts = [opts[i + 1] for i, o in enumerate(opts[:-1]) if o in {"-e", "--expression"}]
    if not scripts and pos:
        scripts = [pos[0]]
    for s in scripts:
        # `w file` writes, `e` executes a shell command, `s///e` / `s///w` likewise.
        if re.search(r"(^|[;{}\n])\s*[0-9,$/!]*\s*[ewWR]\s", s) or re.search(
            r"(^|[;\n])\s*s(.).*\2.*\2[gpiImM0-9]*[ew]", s
        ):
            return cs("sed script writes a file or runs a command (w/e)")
    return ro("sed without -i")


_AWK_DANGER = re.compile(
    r"system\s*\(|\|\s*getline|\"\s*\|\s*getline|print[f]?[^;}]*(>|\|)|fflush|close\s*\("
)


@rule("awk", "gawk", "mawk", "nawk")
def _awk(cmd: Cmd, ctx: Ctx) -> list[Finding]:
    opts, pos = split_opts(cmd.argv[1:], {"-F", "-v", "-f", "--field-separator", "--assign", "--file"})
    if "-f" in opts or has_long(opts, "--file"):
        return cs("awk -f runs a program file")
    prog = pos[0] if pos else ""
    if _AWK_DANGER.search(prog):
        # Strings given to system() or piped to getline are shell code.
        found = [f for s in re.findall(r"\"([^\"]*)\"", prog) if " " in s for f in ctx.classify_code(s)]
        found = [f for f in found if f.risk >= DESTRUCTIVE]
        return found + cs("awk program runs commands or writes files (system(), print >, | getline)")
    return ro(cmd.name)


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
                out += cs(f"find {a} {inner[0]} -c with {{}}: file names become shell code")
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
