"""Archives, containers, version control, databases, mail/web daemons, certificates."""

from __future__ import annotations

import re

from .. import paths
from ..cmd import Cmd, Ctx, has_long, has_short, split_opts
from ..model import Finding
from .base import cs, de, op, ro, rule


@rule("tar", "bsdtar")
def _tar(cmd: Cmd, ctx: Ctx) -> list[Finding]:
    args = cmd.argv[1:]
    first = args[0] if args else ""
    modes = set()
    if first and not first.startswith("-") and re.fullmatch(r"[A-Za-z]+", first):
        modes.update(first)
    for a in args:
        if re.fullmatch(r"-[A-Za-z]+", a):
            modes.update(a[1:])
        elif a in {"--list"}:
            modes.add("t")
        elif a in {"--extract", "--get"}:
            modes.add("x")
        elif a in {"--create"}:
            modes.add("c")
        elif a.startswith(
            (
                "--to-command",
                "--use-compress-program",
                "--checkpoint-action",
                "--info-script",
                "--new-volume-script",
                "--rsh-command",
            )
        ) or a in {"-I", "-F"}:
            return op("tar runs an external command given on its command line")
    if "t" in modes and not modes & {"x", "c", "r", "u"}:
        return ro("tar --list")
    if "x" in modes and any(
        a in {"-C", "--directory"} and i + 1 < len(args) and paths.norm(args[i + 1]) == "/"
        for i, a in enumerate(args)
    ):
        return de("tar -x -C /: overwrites system files")
    return cs("tar writes files")


@rule(
    "gzip", "gunzip", "bzip2", "bunzip2", "xz", "unxz", "zstd", "unzstd", "lz4", "unzip", "zip", "7z", "lzma"
)
def _compress(cmd: Cmd, ctx: Ctx) -> list[Finding]:
    opts, _ = split_opts(cmd.argv[1:])
    if cmd.name == "zip" and any(
        o in {"-TT", "--unzip-command"} or o.startswith("--unzip-command=") for o in opts
    ):
        return op("zip -TT runs the given command")
    if has_short(opts, "clt") or has_long(opts, "--stdout", "--list", "--test", "--to-stdout"):
        return ro(f"{cmd.name} to stdout / listing")
    if cmd.name == "unzip" and has_short(opts, "lvZ"):
        return ro("unzip -l")
    return cs(f"{cmd.name} writes files")


@rule("xxd")
def _xxd(cmd: Cmd, ctx: Ctx) -> list[Finding]:
    _, pos = split_opts(cmd.argv[1:], {"-c", "-g", "-l", "-s", "-o", "-n"})
    return cs("xxd writes its output file") if len(pos) >= 2 else ro("xxd")


@rule("openssl")
def _openssl(cmd: Cmd, ctx: Ctx) -> list[Finding]:
    args = cmd.argv[1:]
    sub = args[0] if args else None
    rest = args[1:]
    writes = any(
        a in {"-out", "-keyout", "-new", "-newkey", "-genkey", "-signkey", "-CAcreateserial"} for a in rest
    )
    if (
        sub
        in {
            "x509",
            "s_client",
            "verify",
            "version",
            "ciphers",
            "crl",
            "dgst",
            "list",
            "asn1parse",
            "req",
            "rsa",
            "ec",
            "pkey",
            "pkcs12",
            "s_time",
            "sess_id",
            "ocsp",
            "rand",
            "base64",
            "enc",
            "speed",
            "prime",
            "errstr",
            "crl2pkcs7",
            "pkcs7",
            "storeutl",
            "help",
            None,
        }
        and not writes
    ):
        if sub == "pkcs12" and "-export" in rest:
            return cs("openssl pkcs12 -export writes a file")
        return ro(f"openssl {sub}")
    return cs(f"openssl {sub} writes keys/certificates")


_DOCKER_RO = frozenset(
    [
        "ps",
        "images",
        "inspect",
        "logs",
        "stats",
        "top",
        "version",
        "info",
        "port",
        "diff",
        "history",
        "search",
        "events",
    ]
)
_DOCKER_GROUP_RO = frozenset(
    [
        "ls",
        "list",
        "inspect",
        "logs",
        "top",
        "port",
        "diff",
        "stats",
        "history",
        "df",
        "info",
        "ps",
        "config",
        "images",
        "version",
        "show",
    ]
)
_DOCKER_DESTROY = frozenset(["rm", "rmi", "kill", "prune", "down"])


@rule("docker", "podman", "nerdctl", "docker-compose", "crictl", "ctr")
def _docker(cmd: Cmd, ctx: Ctx) -> list[Finding]:
    _, pos = split_opts(
        cmd.argv[1:],
        {
            "-H",
            "--host",
            "--context",
            "-c",
            "--config",
            "-f",
            "--file",
            "-p",
            "--project-name",
            "--log-level",
            "-n",
            "--namespace",
        },
    )
    if cmd.name == "docker-compose":
        pos = ["compose", *pos]
    if not pos:
        return ro(cmd.name)
    sub = pos[0]
    if sub in _DOCKER_RO:
        if sub == "stats" and "--no-stream" not in cmd.argv:
            return ro(f"{cmd.name} stats")
        return ro(f"{cmd.name} {sub}")
    if sub in {
        "container",
        "image",
        "network",
        "volume",
        "system",
        "compose",
        "builder",
        "context",
        "node",
        "service",
        "stack",
        "plugin",
        "secret",
        "config",
        "pod",
        "buildx",
    }:
        sub2 = pos[1] if len(pos) > 1 else None
        if sub2 is None or sub2 in _DOCKER_GROUP_RO:
            return ro(f"{cmd.name} {sub} {sub2 or ''}".rstrip())
        if sub2 in _DOCKER_DESTROY or sub2 in {"remove", "reset"}:
            return de(f"{cmd.name} {sub} {sub2}: deletes containers/images/volumes")
        return cs(f"{cmd.name} {sub} {sub2}")
    if sub in _DOCKER_DESTROY:
        return de(f"{cmd.name} {sub}: deletes containers/images")
    if sub == "exec" or sub == "run":
        return cs(f"{cmd.name} {sub} runs a command in a container")
    return cs(f"{cmd.name} {sub}")


@rule("kubectl", "oc", "helm")
def _kubectl(cmd: Cmd, ctx: Ctx) -> list[Finding]:
    _, pos = split_opts(
        cmd.argv[1:],
        {"-n", "--namespace", "--context", "-o", "--output", "-l", "--selector", "--kubeconfig", "-f", "-c"},
    )
    sub = pos[0] if pos else None
    if sub is None or sub in {
        "get",
        "describe",
        "logs",
        "top",
        "version",
        "explain",
        "api-resources",
        "api-versions",
        "cluster-info",
        "auth",
        "list",
        "status",
        "history",
        "show",
        "search",
        "diff",
    }:
        return ro(f"{cmd.name} {sub}")
    if (
        sub == "config"
        and len(pos) > 1
        and pos[1] in {"view", "get-contexts", "current-context", "get-clusters"}
    ):
        return ro(f"{cmd.name} config {pos[1]}")
    if sub in {"delete", "drain", "uninstall", "cordon"}:
        return de(f"{cmd.name} {sub}")
    return cs(f"{cmd.name} {sub}")


_GIT_RO = frozenset(
    [
        "status",
        "log",
        "diff",
        "show",
        "rev-parse",
        "ls-files",
        "ls-tree",
        "blame",
        "describe",
        "shortlog",
        "grep",
        "reflog",
        "ls-remote",
        "cat-file",
        "whatchanged",
        "show-ref",
        "rev-list",
        "name-rev",
        "count-objects",
        "fsck",
        "help",
        "version",
        "var",
        "check-ignore",
        "merge-base",
    ]
)


@rule("git")
def _git(cmd: Cmd, ctx: Ctx) -> list[Finding]:
    _, pos = split_opts(cmd.argv[1:], {"-C", "-c", "--git-dir", "--work-tree"})
    sub = pos[0] if pos else None
    if any(a == "-c" or a.startswith("--config-env") for a in cmd.argv[1:]):
        return op("git -c sets config (pager, aliases, hooks, ssh) that can run any command")
    if any(
        a.startswith(("--output", "-O", "--open-files-in-pager", "--ext-diff", "--exec"))
        for a in cmd.argv[1:]
    ):
        return cs("git option writes a file or runs a program")
    rest = cmd.argv[cmd.argv.index(sub) + 1 :] if sub else []
    ropts, rpos = split_opts(rest)
    if sub is None or sub in _GIT_RO:
        return ro(f"git {sub}")
    if (
        sub == "branch"
        and (
            not rpos
            or has_short(ropts, "alrv")
            or has_long(ropts, "--list", "--all", "--remotes", "--contains")
        )
        and not has_short(ropts, "dDmMcC")
    ):
        return ro("git branch (list)")
    if (
        sub in {"tag", "remote", "stash", "config", "worktree", "submodule"}
        and (
            not rpos
            or rpos[0] in {"list", "-l", "show", "get", "status"}
            or has_short(ropts, "lv")
            or has_long(ropts, "--list", "--get", "--get-all", "--get-regexp")
        )
        and not (
            sub == "config"
            and rpos
            and len(rpos) >= 2
            and not has_long(ropts, "--get", "--get-all", "--list")
        )
    ):
        return ro(f"git {sub} (list)")
    if sub == "clean" and (has_short(ropts, "f") or has_long(ropts, "--force")) and not has_short(ropts, "n"):
        return de("git clean -f deletes untracked files")
    if sub == "reset" and "--hard" in ropts:
        return de("git reset --hard discards changes")
    if sub == "push" and (
        has_short(ropts, "fd") or has_long(ropts, "--force", "--delete", "--mirror", "--force-with-lease")
    ):
        return de("git push --force/--delete rewrites the remote")
    if sub in {"checkout", "restore"} and ("." in rpos or "--" in rest):
        return de(f"git {sub} discards local changes")
    if sub == "branch" and has_short(ropts, "D"):
        return de("git branch -D deletes a branch")
    return cs(f"git {sub}")


@rule(
    "mysqldump",
    "pg_dump",
    "pg_dumpall",
    "pg_isready",
    "pg_lsclusters",
    "postconf",
    "postsuper",
    "certbot",
    "doveconf",
    "exim-bp",
)
def _mail_db_misc(cmd: Cmd, ctx: Ctx) -> list[Finding]:
    args = cmd.argv[1:]
    if cmd.name == "postconf":
        return (
            cs("postconf -e edits main.cf")
            if any(a.startswith(("-e", "-X", "-M#", "-#")) for a in args)
            else ro("postconf")
        )
    if cmd.name == "postsuper":
        return (
            de("postsuper -d deletes queued mail")
            if any(a.startswith(("-d", "-D")) for a in args)
            else cs("postsuper")
        )
    if cmd.name == "certbot":
        return (
            ro("certbot certificates")
            if args and args[0] in {"certificates", "--version", "plugins"}
            else cs("certbot changes certificates")
        )
    if cmd.name in {"mysqldump", "pg_dump", "pg_dumpall"} and any(
        a.startswith(("-f", "--file", "-r", "--result-file")) for a in args
    ):
        return cs(f"{cmd.name} writes a dump file")
    return ro(cmd.name)
