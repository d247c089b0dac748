"""Per-command rules: what one simple command (after unwrapping sudo/env/xargs…) does to the machine.

Every rule returns findings; a command with no rule is ``changes_state`` ("when unsure, ask").
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Callable

from . import paths
from .cmd import SYSTEM_BIN_DIRS, Cmd, Ctx, first_positional, has_long, has_short, split_opts
from .model import CHANGES_STATE, DESTRUCTIVE, FORBIDDEN, READ_ONLY, Finding

Rule = Callable[[Cmd, Ctx], list[Finding]]
RULES: dict[str, Rule] = {}


def rule(*names: str) -> Callable[[Rule], Rule]:
    def deco(fn: Rule) -> Rule:
        for n in names:
            RULES[n] = fn
        return fn

    return deco


def ro(what: str) -> list[Finding]:
    return [Finding(READ_ONLY, f"{what}: read-only")]


def cs(what: str) -> list[Finding]:
    return [Finding(CHANGES_STATE, what)]


def de(what: str) -> list[Finding]:
    return [Finding(DESTRUCTIVE, what)]


def fb(what: str) -> list[Finding]:
    return [Finding(FORBIDDEN, what)]


# ---------------------------------------------------------------------------------------------------------
# Commands that only read, whatever their arguments (output redirections are judged separately).
READ_ONLY_COMMANDS = frozenset(
    [
        "ls",
        "ll",
        "dir",
        "vdir",
        "cat",
        "tac",
        "head",
        "tail",
        "grep",
        "egrep",
        "fgrep",
        "zgrep",
        "zegrep",
        "zfgrep",
        "rg",
        "ag",
        "ack",
        "wc",
        "cut",
        "tr",
        "column",
        "nl",
        "rev",
        "strings",
        "file",
        "stat",
        "readlink",
        "realpath",
        "basename",
        "dirname",
        "pwd",
        "whoami",
        "id",
        "groups",
        "uname",
        "uptime",
        "cal",
        "w",
        "who",
        "last",
        "lastb",
        "lastlog",
        "users",
        "free",
        "vmstat",
        "iostat",
        "mpstat",
        "sar",
        "pidstat",
        "ps",
        "pgrep",
        "pstree",
        "pidof",
        "lsof",
        "df",
        "du",
        "lsblk",
        "blkid",
        "findmnt",
        "lscpu",
        "lspci",
        "lsusb",
        "lsmod",
        "lshw",
        "dmidecode",
        "lsinitramfs",
        "lsattr",
        "getfacl",
        "ss",
        "netstat",
        "ping",
        "ping6",
        "traceroute",
        "traceroute6",
        "tracepath",
        "mtr",
        "dig",
        "nslookup",
        "host",
        "whois",
        "md5sum",
        "sha1sum",
        "sha224sum",
        "sha256sum",
        "sha384sum",
        "sha512sum",
        "b2sum",
        "cksum",
        "sum",
        "diff",
        "diff3",
        "cmp",
        "comm",
        "jq",
        "xmllint",
        "getent",
        "nproc",
        "printenv",
        "locale",
        "which",
        "whereis",
        "type",
        "test",
        "[",
        "true",
        "false",
        "echo",
        "printf",
        "sleep",
        "seq",
        "yes",
        "expr",
        "tput",
        "tty",
        "getconf",
        "cd",
        "pushd",
        "popd",
        "dirs",
        "set",
        "shopt",
        "local",
        "read",
        "wait",
        "exit",
        "return",
        "break",
        "continue",
        ":",
        "shift",
        "getopts",
        "hash",
        "help",
        "man",
        "apropos",
        "whatis",
        "info",
        "zcat",
        "zless",
        "zmore",
        "bzcat",
        "xzcat",
        "zstdcat",
        "lzcat",
        "less",
        "more",
        "od",
        "hexdump",
        "base64",
        "base32",
        "numfmt",
        "fold",
        "fmt",
        "paste",
        "join",
        "expand",
        "unexpand",
        "top",
        "look",
        "tsort",
        "factor",
        "arch",
        "lsb_release",
        "hostid",
        "logname",
        "stty",
        "lsns",
        "lsipc",
        "lslocks",
        "lslogins",
        "lsmem",
        "iotop",
        "ifstat",
        "nstat",
        "arp-scan",
        "fping",
        "ipcalc",
        "sipcalc",
        "ethtool",
        "iwconfig",
        "iw",
        "nmap",
        "curl-config",
        "pkg-config",
        "ldd",
        "nm",
        "objdump",
        "readelf",
        "size",
        "uniq",
        "sort",
        "tree",
        "namei",
        "mailq",
        "postqueue",
        "systemd-analyze",
        "systemd-cgls",
        "systemd-cgtop",
        "systemd-detect-virt",
        "systemd-delta",
        "virt-what",
        "ntpq",
        "ntpstat",
        "atq",
        "vnstat",
        "nethogs",
        "iftop",
        "bmon",
        "slabtop",
        "sensors",
        "repquota",
        "quota",
        "whatis",
        "named-checkconf",
        "named-checkzone",
        "zdump",
        "clear",
        "htop",
        "btop",
        "glances",
        "tload",
        "jobs",
        "fc",
        "history",
        "declare",
        "typeset",
    ]
)
# Commands also listed here with a rule of their own below (sort, uniq…) get that rule: later wins.


@rule(*READ_ONLY_COMMANDS)
def _read_only(cmd: Cmd, ctx: Ctx) -> list[Finding]:
    return ro(cmd.name)


@rule("sort")
def _sort(cmd: Cmd, ctx: Ctx) -> list[Finding]:
    opts, _ = split_opts(cmd.argv[1:], {"-k", "-t", "-S", "-T", "-o"})
    if "-o" in opts or has_long(opts, "--output") or any(o.startswith("-o") and len(o) > 2 for o in opts):
        return cs("sort -o writes a file")
    return ro("sort")


@rule("uniq")
def _uniq(cmd: Cmd, ctx: Ctx) -> list[Finding]:
    _, pos = split_opts(cmd.argv[1:], {"-f", "-s", "-w"})
    return cs("uniq IN OUT writes OUT") if len(pos) >= 2 else ro("uniq")


@rule("tee")
def _tee(cmd: Cmd, ctx: Ctx) -> list[Finding]:
    opts, pos = split_opts(cmd.argv[1:])
    append = has_short(opts, "a") or has_long(opts, "--append")
    out: list[Finding] = []
    for p in pos:
        out += write_target(p, append=append, who="tee")
    return out or ro("tee to stdout")


def write_target(path: str, *, append: bool, who: str) -> list[Finding]:
    """Risk of writing ``path`` (by a redirection, tee, cp/dd destination…)."""
    if paths.is_harmless_sink(path):
        return []
    if "$" in path or "`" in path:
        return cs(f"{who} writes to a path computed at run time ({path})")
    p = paths.norm(path)
    if paths.is_block_device(p):
        return fb(f"{who} writes to the block/memory device {p}: destroys the disk or the kernel's memory")
    if p == "/proc/sysrq-trigger":
        return fb(f"{who} writes to /proc/sysrq-trigger: crashes, reboots or powers off the machine at once")
    if paths.is_auth_file(p):
        if append:
            return de(f"{who} appends to {p}, an account/auth file")
        return fb(f"{who} overwrites {p}: locks every user (and root) out")
    if p.startswith("/boot/") or p == "/boot":
        return de(f"{who} writes into /boot: can leave the machine unbootable")
    return cs(f"{who} writes {p}")


# ---------------------------------------------------------------------------------------------------------
# Files


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
                    out.append(Finding(f.risk, f"find {a}: {f.reason}"))
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


# ---------------------------------------------------------------------------------------------------------
# Disks, filesystems, boot


@rule("wipefs")
def _wipefs(cmd: Cmd, ctx: Ctx) -> list[Finding]:
    opts, _ = split_opts(cmd.argv[1:], {"-o", "--offset", "-t", "--types"})
    if (has_short(opts, "ao") or has_long(opts, "--all", "--offset")) and not (
        has_short(opts, "n") or has_long(opts, "--no-act")
    ):
        return fb("wipefs -a erases filesystem signatures")
    return ro("wipefs listing signatures")


@rule("mkswap")
def _mkswap(cmd: Cmd, ctx: Ctx) -> list[Finding]:
    if any(a.startswith("/dev/") for a in cmd.argv[1:]):
        return fb("mkswap on a device destroys its data")
    return cs("mkswap on a file")


@rule("blkdiscard", "mke2fs", "mkdosfs", "mkntfs", "mkexfatfs", "zerofree")
def _always_forbidden_disk(cmd: Cmd, ctx: Ctx) -> list[Finding]:
    return fb(f"{cmd.name} erases a disk or filesystem")


@rule("badblocks")
def _badblocks(cmd: Cmd, ctx: Ctx) -> list[Finding]:
    opts, _ = split_opts(cmd.argv[1:], {"-b", "-c", "-o", "-p", "-t"})
    return fb("badblocks -w overwrites the disk") if has_short(opts, "w") else cs("badblocks scans a disk")


@rule("fdisk", "sfdisk", "cfdisk", "gdisk", "sgdisk", "parted", "partprobe", "cgdisk")
def _partition(cmd: Cmd, ctx: Ctx) -> list[Finding]:
    args = cmd.argv[1:]
    opts, pos = split_opts(args)
    if cmd.name == "sgdisk" and (has_short(opts, "ZozR") or has_long(opts, "--zap", "--zap-all", "--clear")):
        return fb("sgdisk --zap/--clear wipes the partition table")
    if cmd.name == "sfdisk" and (has_long(opts, "--delete", "--wipe") or has_short(opts, "W")):
        return fb("sfdisk --delete/--wipe erases partitions")
    listing = has_short(opts, "lsp") or has_long(opts, "--list", "--dump", "--show-size", "--print", "--json")
    if listing and not (cmd.name == "sfdisk" and ctx.stdin and (ctx.stdin.text or ctx.stdin.upstream)):
        return ro(f"{cmd.name} listing")
    if cmd.name == "parted" and pos and pos[-1] in {"print", "p"}:
        return ro("parted print")
    if cmd.name == "parted" and any(w in {"mklabel", "rm", "mkpart", "resizepart"} for w in pos):
        return fb("parted mklabel/rm rewrites the partition table")
    return de(f"{cmd.name} can rewrite the partition table")


@rule(
    "grub-install",
    "grub2-install",
    "update-grub",
    "grub-mkconfig",
    "grub2-mkconfig",
    "update-initramfs",
    "dracut",
)
def _boot(cmd: Cmd, ctx: Ctx) -> list[Finding]:
    return cs(f"{cmd.name} rewrites boot files")


@rule("efibootmgr")
def _efi(cmd: Cmd, ctx: Ctx) -> list[Finding]:
    opts, _ = split_opts(cmd.argv[1:], {"-b", "-o", "-L", "-l", "-d", "-p", "-t"})
    if has_short(opts, "BoOcaAnNt") or has_long(opts, "--delete-bootnum", "--bootorder", "--create"):
        return de("efibootmgr changes the firmware boot entries")
    return ro("efibootmgr listing")


@rule("hdparm")
def _hdparm(cmd: Cmd, ctx: Ctx) -> list[Finding]:
    args = cmd.argv[1:]
    if any(
        a.startswith(("--security-erase", "--write-sector", "--trim-sector", "--security-set-pass"))
        for a in args
    ):
        return fb("hdparm secure-erase/write-sector destroys the disk")
    opts, _ = split_opts(args)
    if opts and all(re.fullmatch(r"-[iIgCtT]+", o) for o in opts):
        return ro("hdparm query")
    return cs("hdparm changes drive settings")


@rule("nvme")
def _nvme(cmd: Cmd, ctx: Ctx) -> list[Finding]:
    sub, _ = first_positional(cmd.argv[1:])
    if sub in {"format", "sanitize", "write-zeroes", "delete-ns", "write"}:
        return fb(f"nvme {sub} destroys the drive's data")
    if sub in {"list", "smart-log", "id-ctrl", "id-ns", "error-log", "list-subsys", "version", "help", None}:
        return ro(f"nvme {sub}")
    return cs(f"nvme {sub}")


@rule("cryptsetup")
def _cryptsetup(cmd: Cmd, ctx: Ctx) -> list[Finding]:
    sub, _ = first_positional(cmd.argv[1:], {"-d", "--key-file", "-c", "-s", "-h", "--type"})
    if sub in {"luksFormat", "erase", "luksErase", "reencrypt"}:
        return fb(f"cryptsetup {sub} destroys the volume's keys/data")
    if sub in {"status", "luksDump", "isLuks", "luksUUID", "benchmark", "--version"}:
        return ro(f"cryptsetup {sub}")
    if sub in {"luksKillSlot", "luksRemoveKey"}:
        return de(f"cryptsetup {sub} removes a key")
    return cs(f"cryptsetup {sub}")


@rule("mount", "swapon")
def _mount(cmd: Cmd, ctx: Ctx) -> list[Finding]:
    opts, pos = split_opts(cmd.argv[1:])
    if not pos and (not opts or all(o in {"-l", "--show", "-s", "--summary", "-v", "-t"} for o in opts)):
        return ro(f"{cmd.name} listing")
    return cs(f"{cmd.name} changes mounts/swap")


@rule("umount", "swapoff")
def _umount(cmd: Cmd, ctx: Ctx) -> list[Finding]:
    opts, pos = split_opts(cmd.argv[1:])
    if has_short(opts, "a") or has_long(opts, "--all") or "/" in pos:
        return de(f"{cmd.name} -a / of / unmounts the system")
    return cs(f"{cmd.name} unmounts")


@rule("pvremove", "vgremove", "lvremove")
def _lvm_remove(cmd: Cmd, ctx: Ctx) -> list[Finding]:
    return de(f"{cmd.name} deletes a volume")


@rule("pvs", "vgs", "lvs", "pvdisplay", "vgdisplay", "lvdisplay", "pvscan", "vgscan", "lvscan")
def _lvm_ro(cmd: Cmd, ctx: Ctx) -> list[Finding]:
    return ro(cmd.name)


@rule("zpool", "zfs")
def _zfs(cmd: Cmd, ctx: Ctx) -> list[Finding]:
    sub, _ = first_positional(cmd.argv[1:])
    if sub in {"destroy", "labelclear", "rollback"}:
        return de(f"{cmd.name} {sub} destroys data")
    if sub in {"list", "status", "get", "iostat", "history", "events", "version", None}:
        return ro(f"{cmd.name} {sub}")
    return cs(f"{cmd.name} {sub}")


@rule("mdadm")
def _mdadm(cmd: Cmd, ctx: Ctx) -> list[Finding]:
    opts, _ = split_opts(cmd.argv[1:])
    if has_long(opts, "--zero-superblock") or has_long(opts, "--create") or has_short(opts, "C"):
        return fb("mdadm --create/--zero-superblock destroys array data")
    if has_long(opts, "--detail", "--examine", "--query") or has_short(opts, "DEQ"):
        return ro("mdadm query")
    return cs("mdadm changes arrays")


@rule("smartctl")
def _smartctl(cmd: Cmd, ctx: Ctx) -> list[Finding]:
    opts, _ = split_opts(cmd.argv[1:])
    if has_short(opts, "st") or has_long(opts, "--set", "--test", "--smart"):
        return cs("smartctl changes settings / starts a test")
    return ro("smartctl")


# ---------------------------------------------------------------------------------------------------------
# Processes, power


@rule("kill")
def _kill(cmd: Cmd, ctx: Ctx) -> list[Finding]:
    args = cmd.argv[1:]
    if any(a in {"-l", "-L", "--list", "--table"} for a in args):
        return ro("kill -l")
    sig = None
    targets: list[str] = []
    i = 0
    while i < len(args):
        a = args[i]
        if a in {"-s", "-n", "--signal"} and i + 1 < len(args):
            sig = args[i + 1]
            i += 2
            continue
        if a == "--":
            targets.extend(args[i + 1 :])
            break
        if sig is None and not targets and re.fullmatch(r"-[A-Za-z0-9+]+", a):
            sig = a[1:]
        else:
            targets.append(a)
        i += 1
    if "-1" in targets:
        return fb("kill … -1 signals every process: takes the whole system down")
    if sig and sig.upper().removeprefix("SIG") in {"9", "KILL"}:
        if "1" in targets:
            return fb("kill -9 1 targets init")
        return de("kill -9 kills without letting the process clean up")
    return cs("kill sends a signal to a process")


@rule("pkill", "killall", "skill", "slay")
def _pkill(cmd: Cmd, ctx: Ctx) -> list[Finding]:
    args = cmd.argv[1:]
    _, pos = split_opts(args, {"-u", "-U", "-g", "-G", "-t", "-P", "-s", "--signal", "-n"})
    if any(re.search(r"ssh|systemd|init|dbus|networkd|NetworkManager", p) for p in pos):
        return de(f"{cmd.name} of a system process ({' '.join(pos)}): can cut access")
    if any(a in {"-9", "-KILL", "-SIGKILL"} or a.endswith(("KILL", "9")) for a in args if a.startswith("-")):
        return de(f"{cmd.name} -9 kills without cleanup")
    if cmd.name == "killall" and not pos:
        return ro("killall listing")
    return cs(f"{cmd.name} signals processes")


@rule("killall5")
def _killall5(cmd: Cmd, ctx: Ctx) -> list[Finding]:
    return fb("killall5 signals every process")


@rule("fuser")
def _fuser(cmd: Cmd, ctx: Ctx) -> list[Finding]:
    opts, _ = split_opts(cmd.argv[1:])
    return de("fuser -k kills processes") if has_short(opts, "k") or has_long(opts, "--kill") else ro("fuser")


@rule("reboot", "shutdown", "poweroff", "halt", "kexec", "telinit", "init")
def _power(cmd: Cmd, ctx: Ctx) -> list[Finding]:
    args = cmd.argv[1:]
    if cmd.name == "shutdown" and "-c" in args:
        return cs("shutdown -c cancels a shutdown")
    if cmd.name in {"init", "telinit"} and args and args[0] not in {"0", "6", "1", "s", "S"}:
        return cs(f"{cmd.name} changes runlevel")
    if cmd.name in {"reboot", "halt", "poweroff"} and any(a in {"--help", "--version"} for a in args):
        return ro(cmd.name)
    return de(f"{cmd.name}: takes the machine down")


@rule("renice", "ionice")
def _renice(cmd: Cmd, ctx: Ctx) -> list[Finding]:
    return cs(f"{cmd.name} changes process priority")


# ---------------------------------------------------------------------------------------------------------
# Services, network, firewall

_SYSTEMCTL_RO = frozenset(
    [
        "status",
        "show",
        "cat",
        "is-active",
        "is-enabled",
        "is-failed",
        "is-system-running",
        "list-units",
        "list-unit-files",
        "list-sockets",
        "list-timers",
        "list-jobs",
        "list-dependencies",
        "list-machines",
        "list-automounts",
        "list-paths",
        "get-default",
        "show-environment",
        "help",
        "--version",
        "-h",
        "--help",
    ]
)
_SYSTEMCTL_POWER = frozenset(
    [
        "reboot",
        "poweroff",
        "halt",
        "kexec",
        "suspend",
        "hibernate",
        "hybrid-sleep",
        "rescue",
        "emergency",
        "soft-reboot",
    ]
)
_ACCESS_UNITS = re.compile(
    r"^(ssh|sshd|openssh|networking|network|NetworkManager|systemd-networkd|systemd-resolved|dbus|systemd-logind|getty|wg-quick|openvpn|tailscaled)([@.].*)?$"
)


@rule("systemctl")
def _systemctl(cmd: Cmd, ctx: Ctx) -> list[Finding]:
    sub, rest = first_positional(
        cmd.argv[1:],
        {"-p", "--property", "-t", "--type", "-n", "--lines", "-H", "-M", "--state", "-o", "--output"},
    )
    if sub is None or sub in _SYSTEMCTL_RO:
        return ro(f"systemctl {sub or 'list-units'}")
    if sub in _SYSTEMCTL_POWER or (
        sub == "isolate"
        and any(r.startswith(("rescue", "emergency", "poweroff", "reboot", "halt")) for r in rest)
    ):
        return de(f"systemctl {sub}: takes the machine down")
    units = [r for r in rest if not r.startswith("-")]
    if sub in {
        "stop",
        "kill",
        "disable",
        "mask",
        "restart",
        "try-restart",
        "reload-or-restart",
        "isolate",
    } and any(_ACCESS_UNITS.match(u) for u in units):
        if sub in {"restart", "try-restart", "reload-or-restart"}:
            return cs(f"systemctl {sub} {' '.join(units)}")
        return de(f"systemctl {sub} {' '.join(units)}: can cut remote access")
    if sub in {"stop", "kill", "mask"} and any(
        u.startswith(("systemd-journald", "systemd-udevd", "cron")) for u in units
    ):
        return de(f"systemctl {sub} {' '.join(units)}: stops a core service")
    return cs(f"systemctl {sub} {' '.join(units)}".rstrip() + ": changes service/system state")


@rule("service")
def _service(cmd: Cmd, ctx: Ctx) -> list[Finding]:
    args = cmd.argv[1:]
    if not args or args[0] in {"--status-all", "--help", "-h", "--version"}:
        return ro("service --status-all")
    if len(args) >= 2 and args[1] in {"status"}:
        return ro(f"service {args[0]} status")
    if len(args) >= 2 and args[1] == "stop" and _ACCESS_UNITS.match(args[0]):
        return de(f"service {args[0]} stop: can cut remote access")
    return cs(f"service {' '.join(args)}")


_IP_OBJECTS_RO_CMDS = frozenset(
    {"show", "list", "lst", "ls", "sh", "s", "get", "help", "l", "monitor", "identify", "pids"}
)


@rule("ip")
def _ip(cmd: Cmd, ctx: Ctx) -> list[Finding]:
    args = cmd.argv[1:]
    opts, pos = split_opts(args, {"-n", "-netns", "-f", "-family", "-b", "-batch", "-rc", "-l", "-loops"})
    if "-b" in opts or "-batch" in opts:
        return cs("ip -batch runs a file of commands")
    if not pos:
        return ro("ip")
    obj, sub = pos[0], pos[1] if len(pos) > 1 else None
    if obj in {"monitor", "help"} or sub is None or sub in _IP_OBJECTS_RO_CMDS:
        return ro(f"ip {obj} {sub or ''}".rstrip())
    if obj in {"link", "l"} and sub == "set" and "down" in pos:
        return de("ip link set … down: can cut network access")
    if sub == "flush" or (obj.startswith("r") and sub in {"del", "delete"} and "default" in pos):
        return de(f"ip {obj} {sub}: can cut network access")
    if obj == "netns" and sub == "exec":
        return cs("ip netns exec runs a command")
    return cs(f"ip {obj} {sub}")


@rule("ifconfig")
def _ifconfig(cmd: Cmd, ctx: Ctx) -> list[Finding]:
    args = [a for a in cmd.argv[1:] if a not in {"-a", "-s", "-v"}]
    if len(args) <= 1:
        return ro("ifconfig")
    if "down" in args:
        return de("ifconfig … down: can cut network access")
    return cs("ifconfig changes an interface")


@rule("ifdown", "ifup", "nmcli", "netplan", "resolvectl", "wg", "brctl", "tc")
def _netcfg(cmd: Cmd, ctx: Ctx) -> list[Finding]:
    args = cmd.argv[1:]
    if cmd.name == "ifdown":
        return de("ifdown: can cut network access")
    if cmd.name == "nmcli":
        if any(a in {"delete", "down", "off", "modify", "disconnect"} for a in args):
            return de("nmcli down/delete/modify: can cut network access")
        if (
            not args
            or any(a in {"show", "status", "list", "monitor"} for a in args)
            or (args[0] in {"general", "-t", "-f"} and "show" in args)
        ):
            return ro("nmcli show")
    if cmd.name == "netplan" and args and args[0] in {"get", "info", "--help"}:
        return ro("netplan get")
    if cmd.name == "resolvectl" and (
        not args or (args[0] in {"status", "query", "statistics", "dns", "domain"} and len(args) <= 2)
    ):
        return ro("resolvectl status")
    if cmd.name == "wg" and (not args or args[0] in {"show", "showconf"}):
        return ro("wg show")
    if (cmd.name == "tc" and len(args) >= 2 and args[1] in {"show", "ls", "list"}) or (
        cmd.name == "tc" and "show" in args
    ):
        return ro("tc show")
    if cmd.name == "brctl" and args and args[0] in {"show", "showmacs", "showstp"}:
        return ro("brctl show")
    return cs(f"{cmd.name} changes network configuration")


@rule("route")
def _route(cmd: Cmd, ctx: Ctx) -> list[Finding]:
    args = cmd.argv[1:]
    if "del" in args and "default" in args:
        return de("route del default: can cut network access")
    if any(a in {"add", "del", "flush"} for a in args):
        return cs("route changes the routing table")
    return ro("route")


@rule("arp")
def _arp(cmd: Cmd, ctx: Ctx) -> list[Finding]:
    opts, _ = split_opts(cmd.argv[1:])
    return cs("arp -d/-s changes the ARP table") if has_short(opts, "dsf") else ro("arp")


@rule(
    "iptables",
    "ip6tables",
    "iptables-legacy",
    "ip6tables-legacy",
    "iptables-nft",
    "ip6tables-nft",
    "arptables",
    "ebtables",
)
def _iptables(cmd: Cmd, ctx: Ctx) -> list[Finding]:
    args = cmd.argv[1:]
    longmap = {
        "--list": "L",
        "--list-rules": "S",
        "--check": "C",
        "--flush": "F",
        "--delete-chain": "X",
        "--policy": "P",
        "--zero": "Z",
        "--append": "A",
        "--insert": "I",
        "--delete": "D",
        "--replace": "R",
        "--new-chain": "N",
        "--rename-chain": "E",
        "--version": "V",
        "--help": "h",
    }
    acts: set[str] = set()
    for a in args:
        if a.startswith("--"):
            if a.split("=")[0] in longmap:
                acts.add(longmap[a.split("=")[0]])
        elif re.fullmatch(r"-[A-Za-z]+", a):
            acts.update(c for c in a[1:] if c in "LSCFXPZAIDRNEVh")
    # -n / -v / -x / -t are modifiers; LSCVh are queries.
    if acts and acts <= {"L", "S", "C", "V", "h"}:
        return ro(f"{cmd.name} listing")
    if "F" in acts or "X" in acts:
        return de(f"{cmd.name} -F/-X flushes firewall rules")
    if "P" in acts:
        return de(f"{cmd.name} -P changes a chain's default policy: can open the firewall or lock you out")
    if not acts:
        return ro(f"{cmd.name} listing") if not args else cs(f"{cmd.name} {' '.join(args)}")
    return cs(f"{cmd.name} changes firewall rules")


@rule("iptables-save", "ip6tables-save")
def _ipt_save(cmd: Cmd, ctx: Ctx) -> list[Finding]:
    opts, _ = split_opts(cmd.argv[1:], {"-f", "--file", "-t", "--table", "-M"})
    return (
        cs("iptables-save -f writes a file")
        if "-f" in opts or has_long(opts, "--file")
        else ro("iptables-save")
    )


@rule("iptables-restore", "ip6tables-restore")
def _ipt_restore(cmd: Cmd, ctx: Ctx) -> list[Finding]:
    opts, _ = split_opts(cmd.argv[1:])
    if has_short(opts, "t") or has_long(opts, "--test"):
        return ro("iptables-restore --test")
    if has_short(opts, "n") or has_long(opts, "--noflush"):
        return cs("iptables-restore --noflush adds rules")
    return de("iptables-restore replaces the whole firewall ruleset")


@rule("nft")
def _nft(cmd: Cmd, ctx: Ctx) -> list[Finding]:
    args = cmd.argv[1:]
    opts, pos = split_opts(args, {"-f", "--file", "-I", "--includepath", "-D", "--define"})
    if "-f" in opts or has_long(opts, "--file"):
        if has_short(opts, "c") or has_long(opts, "--check"):
            return ro("nft --check -f")
        return cs("nft -f loads a ruleset file")
    if not pos:
        return ro("nft") if opts else cs("nft interactive")
    sub = pos[0]
    if sub in {"list", "describe", "monitor", "--version", "-v"}:
        return ro(f"nft {sub}")
    if sub == "flush" or sub in {"delete", "destroy"}:
        return de(f"nft {' '.join(pos[:3])}: removes firewall rules")
    return cs(f"nft {' '.join(pos[:3])}")


@rule("ufw")
def _ufw(cmd: Cmd, ctx: Ctx) -> list[Finding]:
    sub, _ = first_positional(cmd.argv[1:])
    if sub in {"status", "show", "version", "app", None, "--version", "help"}:
        return ro(f"ufw {sub}")
    if sub in {"disable", "reset"}:
        return de(f"ufw {sub}: turns the firewall off / drops all rules")
    return cs(f"ufw {sub}")


@rule("firewall-cmd")
def _firewalld(cmd: Cmd, ctx: Ctx) -> list[Finding]:
    args = cmd.argv[1:]
    if (
        args
        and all(
            a.startswith(
                (
                    "--state",
                    "--list",
                    "--get",
                    "--query",
                    "--info",
                    "--zone",
                    "--permanent",
                    "--version",
                    "--help",
                )
            )
            for a in args
        )
        and (
            not any(a.startswith("--permanent") for a in args)
            or all(
                a.startswith(("--list", "--get", "--query", "--zone", "--permanent", "--info")) for a in args
            )
        )
    ):
        return ro("firewall-cmd query")
    if any(a.startswith(("--panic-on", "--complete-reload")) for a in args):
        return de("firewall-cmd --panic-on drops all traffic")
    return cs("firewall-cmd changes the firewall")


@rule("fail2ban-client")
def _f2b(cmd: Cmd, ctx: Ctx) -> list[Finding]:
    _, pos = split_opts(cmd.argv[1:], {"-c", "-s", "-p"})
    sub = pos[0] if pos else None
    if sub is None or sub in {"status", "ping", "version", "get", "banned", "echo", "help"}:
        return ro(f"fail2ban-client {sub or ''}".rstrip())
    if sub == "stop":
        return de("fail2ban-client stop: turns off intrusion protection")
    return cs(f"fail2ban-client {' '.join(pos[:4])}")


@rule("fail2ban-regex", "sshd-t")
def _f2b_regex(cmd: Cmd, ctx: Ctx) -> list[Finding]:
    return ro(cmd.name)


@rule(
    "sshd",
    "nginx",
    "apache2ctl",
    "apachectl",
    "httpd",
    "haproxy",
    "named",
    "postfix",
    "dovecot",
    "visudo",
    "unbound-checkconf",
    "php-fpm",
    "squid",
    "exim",
)
def _daemon_checks(cmd: Cmd, ctx: Ctx) -> list[Finding]:
    args = cmd.argv[1:]
    ro_flags = {
        "-t",
        "-T",
        "-v",
        "-V",
        "-c",
        "-M",
        "-S",
        "-l",
        "-h",
        "-n",
        "-q",
        "--version",
        "-tt",
        "configtest",
        "-bp",
        "-bV",
        "check",
        "status",
        "-D",
        "-g",
        "-bt",
    }
    if (
        args
        and all(
            a in ro_flags
            or (a.startswith("-") and a[1:2] in "tTvVcMS" and len(a) == 2)
            or (not a.startswith("-") and args[args.index(a) - 1] in {"-f", "-c", "-C", "-D"})
            for a in args
        )
        and (cmd.name != "postfix" or (args and args[0] in {"check", "status"}))
    ):
        return ro(f"{cmd.name} {' '.join(args)}")
    if cmd.name in {"postfix", "apache2ctl", "apachectl"} and args and args[0] in {"stop", "graceful-stop"}:
        return cs(f"{cmd.name} stop")
    return cs(f"{cmd.name} {' '.join(args)}".rstrip())


# ---------------------------------------------------------------------------------------------------------
# Packages


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


# ---------------------------------------------------------------------------------------------------------
# Accounts, scheduling, system settings


@rule("userdel", "deluser", "groupdel", "delgroup")
def _userdel(cmd: Cmd, ctx: Ctx) -> list[Finding]:
    _, pos = split_opts(cmd.argv[1:])
    if "root" in pos:
        return fb(f"{cmd.name} root")
    return de(f"{cmd.name} deletes an account")


@rule(
    "useradd",
    "adduser",
    "usermod",
    "groupadd",
    "groupmod",
    "addgroup",
    "gpasswd",
    "chpasswd",
    "chsh",
    "chfn",
    "newusers",
)
def _useradd(cmd: Cmd, ctx: Ctx) -> list[Finding]:
    opts, pos = split_opts(cmd.argv[1:])
    if (
        cmd.name == "usermod"
        and "root" in pos
        and (has_short(opts, "Le") or has_long(opts, "--lock", "--expiredate"))
    ):
        return de("usermod locks root")
    return cs(f"{cmd.name} changes accounts")


@rule("passwd")
def _passwd(cmd: Cmd, ctx: Ctx) -> list[Finding]:
    opts, _pos = split_opts(cmd.argv[1:])
    if has_short(opts, "S") or has_long(opts, "--status"):
        return ro("passwd -S")
    if has_short(opts, "dl") or has_long(opts, "--delete", "--lock"):
        return de("passwd -d/-l removes or locks a password")
    return cs("passwd changes a password")


@rule("chage")
def _chage(cmd: Cmd, ctx: Ctx) -> list[Finding]:
    opts, _ = split_opts(cmd.argv[1:])
    return (
        ro("chage -l") if opts == ["-l"] or has_long(opts, "--list") else cs("chage changes password ageing")
    )


@rule("crontab")
def _crontab(cmd: Cmd, ctx: Ctx) -> list[Finding]:
    opts, pos = split_opts(cmd.argv[1:], {"-u"})
    if has_short(opts, "r") or has_long(opts, "--remove"):
        return de("crontab -r deletes the crontab")
    if has_short(opts, "l") and not pos:
        return ro("crontab -l")
    out = cs("crontab installs a crontab")
    if pos in ([], ["-"]) and ctx.stdin and ctx.stdin.content is not None:
        for line in ctx.stdin.content.splitlines():
            m = re.match(r"\s*(?:@\w+|(?:\S+\s+){5})(.+)", line)
            if m and not line.lstrip().startswith("#"):
                out += [Finding(f.risk, f"crontab entry: {f.reason}") for f in ctx.classify_code(m.group(1))]
    return out


@rule("at", "batch", "atrm", "systemd-run")
def _at(cmd: Cmd, ctx: Ctx) -> list[Finding]:
    args = cmd.argv[1:]
    if cmd.name == "at" and args in (["-l"],):
        return ro("at -l")
    out = cs(f"{cmd.name} schedules or runs a job")
    if cmd.name in {"at", "batch"} and ctx.stdin and ctx.stdin.content is not None:
        out += [Finding(f.risk, f"{cmd.name} job: {f.reason}") for f in ctx.classify_code(ctx.stdin.content)]
    return out


@rule("sysctl")
def _sysctl(cmd: Cmd, ctx: Ctx) -> list[Finding]:
    opts, pos = split_opts(cmd.argv[1:])
    if (
        has_short(opts, "wpf")
        or has_long(opts, "--write", "--load", "--system")
        or any("=" in p for p in pos)
    ):
        return cs("sysctl changes kernel parameters")
    return ro("sysctl")


@rule("hostname")
def _hostname(cmd: Cmd, ctx: Ctx) -> list[Finding]:
    opts, pos = split_opts(cmd.argv[1:])
    return cs("hostname NAME sets the hostname") if pos or has_short(opts, "bF") else ro("hostname")


@rule(
    "hostnamectl",
    "timedatectl",
    "localectl",
    "loginctl",
    "busctl",
    "resolvconf",
    "networkctl",
    "bootctl",
    "coredumpctl",
    "machinectl",
    "udevadm",
    "journalctl",
    "dmesg",
    "date",
    "hwclock",
    "chronyc",
    "ntpdate",
)
def _ctl(cmd: Cmd, ctx: Ctx) -> list[Finding]:
    args = cmd.argv[1:]
    opts, pos = split_opts(
        args,
        {
            "-u",
            "--unit",
            "-p",
            "--priority",
            "-n",
            "--lines",
            "-o",
            "--output",
            "-S",
            "--since",
            "-U",
            "--until",
            "-b",
            "--boot",
            "-t",
            "--identifier",
            "-g",
            "--grep",
            "-F",
            "--field",
            "-k",
            "-H",
            "-M",
            "-d",
            "--date",
            "-r",
            "--reference",
            "--facility",
            "-l",
            "--level",
            "-f",
            "--file",
            "--action",
            "-a",
            "--attribute-match",
            "-q",
            "--query",
            "--name",
        },
    )
    n = cmd.name
    if n == "journalctl":
        if has_long(
            opts,
            "--vacuum-size",
            "--vacuum-time",
            "--vacuum-files",
            "--rotate",
            "--flush",
            "--sync",
            "--relinquish-var",
            "--setup-keys",
            "--update-catalog",
        ):
            return cs("journalctl maintenance changes the journal")
        return ro("journalctl")
    if n == "dmesg":
        if has_short(opts, "cCDEn") or has_long(
            opts, "--clear", "--read-clear", "--console-off", "--console-on", "--console-level"
        ):
            return cs("dmesg -c/-n changes the kernel log")
        return ro("dmesg")
    if n == "date":
        if has_short(opts, "s") or has_long(opts, "--set") or any(not p.startswith("+") for p in pos):
            return cs("date sets the clock")
        return ro("date")
    if n == "hwclock":
        return (
            cs("hwclock sets the clock")
            if has_long(opts, "--systohc", "--hctosys", "--set", "--adjust") or has_short(opts, "wsa")
            else ro("hwclock")
        )
    if n == "chronyc":
        return (
            ro("chronyc query")
            if not pos
            or pos[0]
            in {"tracking", "sources", "sourcestats", "activity", "clients", "ntpdata", "serverstats"}
            else cs("chronyc changes time sync")
        )
    if n == "ntpdate":
        return ro("ntpdate -q") if has_short(opts, "q") else cs("ntpdate sets the clock")
    if n == "udevadm":
        return (
            ro("udevadm info")
            if pos and pos[0] in {"info", "monitor", "test", "settle", "verify", "cat"}
            else cs("udevadm trigger/control")
        )
    if n == "bootctl":
        return (
            ro("bootctl status")
            if not pos or pos[0] in {"status", "list", "is-installed"}
            else de("bootctl changes the boot loader")
        )
    if n == "coredumpctl":
        return ro("coredumpctl") if not pos or pos[0] in {"list", "info", "dump"} else cs("coredumpctl debug")
    if (
        n == "loginctl"
        and pos
        and pos[0]
        in {"terminate-session", "terminate-user", "kill-session", "kill-user", "poweroff", "reboot"}
    ):
        return de(f"loginctl {pos[0]}")
    ro_subs = {
        "status",
        "show",
        "list",
        "list-sessions",
        "list-users",
        "list-seats",
        "list-timezones",
        "list-locales",
        "list-keymaps",
        "show-session",
        "show-user",
        "session-status",
        "user-status",
        "seat-status",
        "timesync-status",
        "show-timesync",
        "tree",
        "introspect",
        "get-property",
        "query",
        "statistics",
        "lldp",
        "cat",
        "-a",
        "--version",
    }
    if not pos or pos[0] in ro_subs:
        return ro(f"{n} {pos[0] if pos else ''}".rstrip())
    return cs(f"{n} {pos[0]}")


@rule("modprobe", "insmod", "rmmod", "depmod")
def _mod(cmd: Cmd, ctx: Ctx) -> list[Finding]:
    opts, _ = split_opts(cmd.argv[1:])
    if cmd.name == "modprobe" and (
        has_short(opts, "nc") or has_long(opts, "--dry-run", "--show-depends", "--showconfig")
    ):
        return ro("modprobe --dry-run")
    return cs(f"{cmd.name} changes kernel modules")


@rule("ulimit", "umask")
def _ulimit(cmd: Cmd, ctx: Ctx) -> list[Finding]:
    args = cmd.argv[1:]
    if (
        not args
        or args in (["-a"], ["-S"], ["-H"], ["-n"], ["-u"], ["-S", "-a"])
        or (all(a.startswith("-") and a != "-" for a in args) and cmd.name == "ulimit" and len(args) == 1)
    ):
        return ro(cmd.name)
    return cs(f"{cmd.name} changes limits for the shell")


# ---------------------------------------------------------------------------------------------------------
# Archives and compression


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
            )
        ):
            return cs("tar runs an external command")
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


# ---------------------------------------------------------------------------------------------------------
# Network clients


@rule("curl")
def _curl(cmd: Cmd, ctx: Ctx) -> list[Finding]:
    args = cmd.argv[1:]
    for i, a in enumerate(args):
        if a in {
            "-o",
            "--output",
            "-O",
            "--remote-name",
            "--remote-name-all",
            "-T",
            "--upload-file",
            "-c",
            "--cookie-jar",
            "-K",
            "--config",
            "-D",
            "--dump-header",
            "--trace",
            "--trace-ascii",
            "--libcurl",
            "--output-dir",
        } or re.fullmatch(r"-[a-zA-Z]*[oOTKcD][a-zA-Z]*", a):
            if a in {"-o", "--output", "-D", "--dump-header"} and i + 1 < len(args):
                if paths.is_harmless_sink(args[i + 1]):
                    continue
                return write_target(args[i + 1], append=False, who=f"curl {a}") or cs("curl writes a file")
            return cs("curl writes a file or uploads")
        if a.startswith(("-d", "--data", "-F", "--form", "--json")) or (
            a in {"-X", "--request"} and i + 1 < len(args) and args[i + 1].upper() not in {"GET", "HEAD"}
        ):
            return cs("curl sends data / a non-GET request (changes remote state)")
    return ro("curl (GET to stdout)")


@rule("wget")
def _wget(cmd: Cmd, ctx: Ctx) -> list[Finding]:
    args = cmd.argv[1:]
    if "--spider" in args:
        return ro("wget --spider")
    for i, a in enumerate(args):
        if a in {"-O", "--output-document"} and i + 1 < len(args) and args[i + 1] in {"-", "/dev/null"}:
            return ro("wget -O- (to stdout)")
        if re.fullmatch(r"-[a-zA-Z]*O-?", a) and (
            a.endswith("-") or (i + 1 < len(args) and args[i + 1] == "-")
        ):
            return ro("wget -O- (to stdout)")
        if a.startswith("--output-document=") and a.split("=", 1)[1] in {"-", "/dev/null"}:
            return ro("wget -O- (to stdout)")
        if a in {"-O", "--output-document"} and i + 1 < len(args):
            return write_target(args[i + 1], append=False, who="wget -O") or cs("wget saves a file")
    return cs("wget saves files")


@rule("ssh", "nc", "ncat", "netcat", "socat", "telnet", "ftp", "sftp", "lftp", "rclone", "mosh")
def _remote(cmd: Cmd, ctx: Ctx) -> list[Finding]:
    out = cs(f"{cmd.name} opens a connection that can run or send anything")
    if cmd.name == "ssh":
        ssh_values = {
            "-p",
            "-i",
            "-l",
            "-o",
            "-F",
            "-J",
            "-L",
            "-R",
            "-D",
            "-b",
            "-c",
            "-E",
            "-e",
            "-m",
            "-O",
            "-Q",
            "-S",
            "-W",
            "-w",
            "-B",
            "-I",
        }
        host, rest = first_positional(cmd.argv[1:], ssh_values)
        if host and rest:
            # The remote command runs as shell code on the other host: judge it the same way.
            out += [Finding(f.risk, f"ssh {host}: {f.reason}") for f in ctx.classify_code(" ".join(rest))]
    return out


# ---------------------------------------------------------------------------------------------------------
# Containers, VCS, databases


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
        return cs("git -c sets config (pager, aliases, hooks) that can run commands")
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


_SQL_DESTROY = re.compile(
    r"\b(drop\s+(database|schema|table|user|role)|truncate|delete\s+from|flushall|flushdb|dropdb)\b", re.I
)
_SQL_WRITE = re.compile(
    r"\b(insert|update|create|alter|grant|revoke|replace|set\s+global|load\s+data|copy|vacuum|reindex|call|do|lock|rename)\b",
    re.I,
)


def sql_risk(sql: str, who: str) -> list[Finding]:
    if _SQL_DESTROY.search(sql):
        return de(f"{who}: {sql.strip()[:60]} destroys data")
    if _SQL_WRITE.search(sql) or "into outfile" in sql.lower():
        return cs(f"{who}: {sql.strip()[:60]} changes data")
    return ro(f"{who} query")


@rule("mysql", "mariadb", "psql", "sqlite3", "redis-cli", "mongo", "mongosh", "clickhouse-client", "sqlcmd")
def _db(cmd: Cmd, ctx: Ctx) -> list[Finding]:
    args = cmd.argv[1:]
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
    if not queries:
        return cs(f"{cmd.name} reads SQL from stdin or a session: cannot see what it runs")
    out: list[Finding] = []
    for q in queries:
        # Client meta-commands that run a shell: psql \!, mysql system / \!, sqlite3 .shell / .system.
        m = re.search(r"(?:\\!|^\s*!|^\s*system\s|^\s*\.(?:shell|system)\s)(.*)", q, re.S | re.M)
        if m:
            out += cs(f"{cmd.name}: the query runs a shell command")
            out += [
                Finding(f.risk, f"{cmd.name} shell escape: {f.reason}") for f in ctx.classify_code(m.group(1))
            ]
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


# ---------------------------------------------------------------------------------------------------------
# Shell builtins with their own rules


@rule("export", "declare", "typeset", "local", "readonly")
def _export(cmd: Cmd, ctx: Ctx) -> list[Finding]:
    for a in cmd.argv[1:]:
        if re.match(r"(PATH|LD_PRELOAD|LD_LIBRARY_PATH|BASH_ENV|ENV|IFS|PROMPT_COMMAND|SHELLOPTS|PS4)=", a):
            return cs(f"export {a.split('=')[0]} changes how later commands resolve/run")
    return ro("export")


@rule("alias")
def _alias(cmd: Cmd, ctx: Ctx) -> list[Finding]:
    out: list[Finding] = []
    for a in cmd.argv[1:]:
        if "=" in a:
            out += ctx.classify_code(a.split("=", 1)[1])
            out += cs(f"alias {a.split('=')[0]} redefines a command name")
    return out or ro("alias listing")


@rule("unalias", "unset", "enable")
def _unset(cmd: Cmd, ctx: Ctx) -> list[Finding]:
    return cs(f"{cmd.name} changes what later command names mean") if cmd.name != "unset" else ro("unset")


@rule("trap")
def _trap(cmd: Cmd, ctx: Ctx) -> list[Finding]:
    args = cmd.argv[1:]
    if not args or args[0] in {"-l", "-p"}:
        return ro("trap -l")
    return ctx.classify_code(args[0]) + ro("trap handler")


@rule("watch")
def _watch(cmd: Cmd, ctx: Ctx) -> list[Finding]:
    head, tail = first_positional(cmd.argv[1:], {"-n", "--interval", "-q", "--equexit"})
    pos = [head, *tail] if head is not None else []
    return (
        [Finding(f.risk, f"watch: {f.reason}") for f in ctx.classify_code(" ".join(pos))]
        if pos
        else ro("watch")
    )


def resolve_name(name: str) -> tuple[str, bool]:
    """Map ``/usr/bin/rm`` → ``rm``. The flag says whether the path is a trusted system directory
    (a copy called ``ls`` in /tmp is not the real ls)."""
    if "/" not in name:
        return name, True
    d, base = posixpath.split(name)
    return base, posixpath.normpath(d) in SYSTEM_BIN_DIRS


def mkfs_like(name: str) -> bool:
    return name == "mkfs" or name.startswith(("mkfs.", "mke2fs", "mkfs-", "mkdosfs", "mkntfs"))


@rule("conntrack")
def _conntrack(cmd: Cmd, ctx: Ctx) -> list[Finding]:
    opts, _ = split_opts(cmd.argv[1:])
    if has_short(opts, "F") or has_long(opts, "--flush"):
        return de("conntrack -F drops the connection-tracking table")
    if has_short(opts, "LSCEG") or has_long(opts, "--dump", "--stats", "--count", "--event", "--get"):
        return ro("conntrack listing")
    return cs("conntrack changes connection tracking")


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


@rule("tree", "dmidecode", "hash", "ethtool", "postqueue")
def _ro_unless_writes(cmd: Cmd, ctx: Ctx) -> list[Finding]:
    args = cmd.argv[1:]
    n = cmd.name
    if n == "tree" and any(a == "-o" or a.startswith("-o") for a in args):
        return cs("tree -o writes a file")
    if n == "dmidecode" and any(a.startswith("--dump-bin") for a in args):
        return cs("dmidecode --dump-bin writes a file")
    if n == "hash" and any(a.startswith("-p") or a == "-d" or a == "-r" for a in args):
        return cs("hash -p/-d/-r changes which program a name runs")
    if n == "ethtool":
        opts = [a for a in args if a.startswith("-")]
        ro_opts = {
            "-i",
            "-S",
            "-k",
            "-g",
            "-a",
            "-c",
            "-l",
            "-m",
            "-T",
            "-P",
            "-d",
            "-e",
            "-n",
            "-x",
            "--statistics",
            "--driver",
            "--show-features",
            "--show-ring",
            "--show-pause",
            "--show-coalesce",
            "--show-channels",
            "--module-info",
            "--show-time-stamping",
            "--show-permaddr",
            "--show-eee",
            "--show-fec",
            "-h",
            "--version",
        }
        if any(o not in ro_opts for o in opts):
            return cs("ethtool changes interface settings")
    if n == "postqueue" and any(a in {"-f", "-i", "-s"} for a in args):
        return cs("postqueue -f/-i/-s flushes the mail queue")
    return ro(n)


@rule("nmap", "masscan", "hping3")
def _scan(cmd: Cmd, ctx: Ctx) -> list[Finding]:
    return cs(f"{cmd.name}: active network scan (and can write output files)")


@rule("fc")
def _fc(cmd: Cmd, ctx: Ctx) -> list[Finding]:
    return ro("fc -l") if cmd.argv[1:2] == ["-l"] else cs("fc re-runs commands from history")
