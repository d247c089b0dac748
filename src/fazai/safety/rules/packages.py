"""Package managers."""

from __future__ import annotations

import re

from ..cmd import Cmd, Ctx, first_positional, has_long, has_short, split_opts
from ..model import Finding
from .base import cs, de, ro, rule


@rule("apt", "apt-get", "aptitude")
def _apt(cmd: Cmd, ctx: Ctx) -> list[Finding]:
    args = cmd.argv[1:]
    opts, pos = split_opts(args, {"-o", "-c", "-t", "--target-release"})
    sub = pos[0] if pos else None
    if has_short(opts, "s") or has_long(
        opts, "--simulate", "--dry-run", "--just-print", "--no-act", "--recon"
    ):
        return ro(f"{cmd.name} {sub} (simulated)")
    if sub is None or sub in {
        "list",
        "policy",
        "show",
        "search",
        "depends",
        "rdepends",
        "showsrc",
        "changelog",
        "madison",
        "showpkg",
        "help",
        "why",
        "why-not",
        "versions",
        "check",
    }:
        return ro(f"{cmd.name} {sub}")
    if sub in {"purge", "remove", "autoremove", "autopurge", "full-upgrade", "dist-upgrade"} or has_long(
        opts, "--purge"
    ):
        return de(f"{cmd.name} {sub}: removes packages")
    return cs(f"{cmd.name} {sub}")


@rule("apt-cache", "apt-config", "apt-file", "debsums", "dpkg-query", "rpmquery", "apt-rdepends")
def _apt_ro(cmd: Cmd, ctx: Ctx) -> list[Finding]:
    sub, _ = first_positional(cmd.argv[1:])
    if (cmd.name == "apt-file" and sub == "update") or (cmd.name == "apt-cache" and sub == "gencaches"):
        return cs(f"{cmd.name} {sub}")
    return ro(cmd.name)


@rule("apt-mark")
def _apt_mark(cmd: Cmd, ctx: Ctx) -> list[Finding]:
    sub, _ = first_positional(cmd.argv[1:])
    return ro(f"apt-mark {sub}") if sub and sub.startswith("show") else cs(f"apt-mark {sub}")


@rule("dpkg")
def _dpkg(cmd: Cmd, ctx: Ctx) -> list[Finding]:
    args = cmd.argv[1:]
    ro_flags = {
        "-l",
        "--list",
        "-L",
        "--listfiles",
        "-s",
        "--status",
        "-S",
        "--search",
        "-p",
        "--print-avail",
        "--get-selections",
        "--print-architecture",
        "--print-foreign-architectures",
        "-c",
        "--contents",
        "-I",
        "--info",
        "--audit",
        "-C",
        "--verify",
        "-V",
        "--version",
        "--help",
        "--compare-versions",
        "-W",
        "--show",
    }
    if args and args[0] in ro_flags:
        return ro(f"dpkg {args[0]}")
    if any(a in {"-r", "--remove", "-P", "--purge"} for a in args):
        return de("dpkg --remove/--purge removes packages")
    return cs(f"dpkg {' '.join(args[:2])}")


@rule(
    "yum",
    "dnf",
    "zypper",
    "pacman",
    "apk",
    "snap",
    "flatpak",
    "pip",
    "pip3",
    "npm",
    "gem",
    "brew",
    "pkg",
    "rpm",
)
def _pkgmgr(cmd: Cmd, ctx: Ctx) -> list[Finding]:
    args = cmd.argv[1:]
    if cmd.name == "rpm":
        if any(re.fullmatch(r"-q[a-zA-Z]*|--query|-V|--verify|--version|--help", a) for a in args):
            return ro("rpm query")
        if any(re.fullmatch(r"-e|--erase", a) for a in args):
            return de("rpm -e removes packages")
        return cs("rpm changes packages")
    if cmd.name == "pacman":
        if args and re.fullmatch(r"-Q[a-z]*|-S[is]+|-Ss|-Si|-V|--version|-h", args[0]):
            return ro("pacman query")
        if args and args[0].startswith("-R"):
            return de("pacman -R removes packages")
        return cs("pacman changes packages")
    opts, pos = split_opts(args, {"-c", "--config", "-r", "--root"})
    sub = pos[0] if pos else None
    if sub is None and opts and all(o in {"--version", "-V", "--help", "-h", "-v"} for o in opts):
        return ro(f"{cmd.name} --version")
    ro_subs = {
        "list",
        "info",
        "search",
        "repolist",
        "check-update",
        "provides",
        "whatprovides",
        "show",
        "freeze",
        "check",
        "history",
        "version",
        "find",
        "services",
        "connections",
        "changes",
        "outdated",
        "ls",
        "view",
        "query",
        "se",
        "if",
        "repoquery",
        "deplist",
        "lu",
        "list-updates",
        "config",
        "help",
        "audit",
        "inspect",
        "dump",
        "why",
        "policy",
        "stats",
    }
    writes = len(pos) > 1 and pos[1] in {"undo", "rollback", "redo", "set", "unset", "edit"}
    if sub in ro_subs and not writes:
        return ro(f"{cmd.name} {sub}")
    if sub in {"remove", "erase", "autoremove", "uninstall", "purge", "rm", "del"}:
        return de(f"{cmd.name} {sub}: removes packages")
    return cs(f"{cmd.name} {sub or ''}".rstrip())


@rule("needrestart", "checkrestart")
def _needrestart(cmd: Cmd, ctx: Ctx) -> list[Finding]:
    args = cmd.argv[1:]
    if (
        cmd.name == "checkrestart"
        or "-b" in args
        or ("-r" in args and args[args.index("-r") + 1 :][:1] == ["l"])
    ):
        return ro(f"{cmd.name} (list only)")
    return cs(f"{cmd.name} may restart services")
