"""Commands that only read (and the few close cousins that may write an output file)."""

from __future__ import annotations

from ..cmd import Cmd, Ctx, has_long, has_short, split_opts
from ..model import Finding
from .base import cs, ro, rule, write_target

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


@rule("fc")
def _fc(cmd: Cmd, ctx: Ctx) -> list[Finding]:
    return ro("fc -l") if cmd.argv[1:2] == ["-l"] else cs("fc re-runs commands from history")
