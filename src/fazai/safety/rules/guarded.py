"""Read-only tools that stay read-only only with some arguments: each rule lists the argument forms that
keep the command read-only, and everything else falls to a stricter class (allow-list, not deny-list)."""

from __future__ import annotations

import re
import shlex

from ..cmd import Cmd, Ctx, has_long, has_short, split_opts
from ..model import Finding
from ..progvars import less_options_read_only, program_var
from .base import crit, cs, de, fb, op, ro, rule, write_target


@rule("parted")
def _parted(cmd: Cmd, ctx: Ctx) -> list[Finding]:
    # Read-only: -l/--list, or `[unit U] print [free|all|list|devices]` on a device. `-s` is --script.
    opts, pos = split_opts(cmd.argv[1:], {"-a", "--align"})
    ok_opts = {"-l", "--list", "-s", "--script", "-m", "--machine", "-j", "--json", "-f", "--fix", "-a"}
    if any(o not in ok_opts and o.split("=", 1)[0] not in {"--align"} for o in opts if o.startswith("-")):
        return de("parted with an option not known to be read-only")
    if "-l" in opts or "--list" in opts:
        return ro("parted --list") if not pos else de("parted --list with commands")
    words = pos[1:]  # after the device
    while words[:1] == ["unit"] and len(words) >= 2:
        words = words[2:]
    if (
        words
        and words[0] in {"print", "p"}
        and all(w in {"free", "all", "list", "devices"} for w in words[1:])
    ):
        return ro("parted print")
    if any(w in {"mklabel", "mktable", "rm", "mkpart", "resizepart"} for w in words):
        return fb(f"parted {' '.join(words)}: rewrites the partition table")
    return de(f"parted {' '.join(words) or '(interactive)'}: can rewrite the partition table")


@rule("ss")
def _ss(cmd: Cmd, ctx: Ctx) -> list[Finding]:
    opts, _ = split_opts(cmd.argv[1:], {"-f", "--family", "-A", "--query", "-F", "--filter", "-N", "-D"})
    if has_short([o for o in opts if not o.startswith("--")], "K") or has_long(opts, "--kill"):
        return de("ss -K kills matching sockets: can cut remote access")
    if "-D" in opts or has_long(opts, "--diag"):
        return cs("ss -D dumps raw data to a file")
    return ro("ss")


@rule("less", "more", "zless", "zmore", "most", "bzless", "xzless")
def _less(cmd: Cmd, ctx: Ctx) -> list[Finding]:
    args = cmd.argv[1:]
    if cmd.name in {"less", "zless", "bzless", "xzless"}:
        if not less_options_read_only(args):
            return op(f"{cmd.name} with options that log to a file or run commands (-o, +!cmd, +|cmd)")
        return ro(cmd.name)
    # more: +N / +/pattern / -d -l -f -p -c -s -u -n N are display options.
    for a in args:
        if a.startswith("+") and not re.fullmatch(r"\+(\d+|/[^!|\n]*)", a):
            return op(f"{cmd.name} {a}: an initial command")
    return ro(cmd.name)


@rule("man")
def _man(cmd: Cmd, ctx: Ctx) -> list[Finding]:
    args = cmd.argv[1:]
    out: list[Finding] = []
    for i, a in enumerate(args):
        val = None
        if a in {"-P", "--pager"} and i + 1 < len(args):
            val = args[i + 1]
        elif a.startswith("--pager="):
            val = a.split("=", 1)[1]
        elif a.startswith("-P") and len(a) > 2:
            val = a[2:]
        if val is not None:
            out += program_var("PAGER", val, not cmd.args[1 + i].literal, ctx.classify_code)
        if a.startswith(("-H", "--html", "-X", "--gxditview", "--browser", "-C", "--config-file")):
            return op(f"man {a}: runs a browser/viewer or reads another config (which names the pager)")
    return out or ro("man")


@rule("xmllint")
def _xmllint(cmd: Cmd, ctx: Ctx) -> list[Finding]:
    args = cmd.argv[1:]
    for i, a in enumerate(args):
        if a in {"--output", "-o"} and i + 1 < len(args):
            return write_target(args[i + 1], append=False, who=f"xmllint {a}") or cs("xmllint writes a file")
        if a.startswith("--output="):
            return write_target(a.split("=", 1)[1], append=False, who="xmllint --output") or cs("xmllint")
        if a in {"--shell", "--debugent"}:
            return cs(f"xmllint {a}: an interactive shell that can write files")
    return ro("xmllint")


@rule("sort")
def _sort(cmd: Cmd, ctx: Ctx) -> list[Finding]:
    args = cmd.argv[1:]
    for i, a in enumerate(args):
        target = None
        if a in {"-o", "--output"} and i + 1 < len(args):
            target = args[i + 1]
        elif a.startswith("--output="):
            target = a.split("=", 1)[1]
        elif re.fullmatch(r"-[a-zA-Z]*o.+", a) and not a.startswith("--"):
            target = a[a.index("o") + 1 :]
        if target is not None:
            return write_target(target, append=False, who="sort -o") or cs("sort -o writes a file")
        if a.startswith("--compress-program"):
            return op("sort --compress-program runs a program")
    return ro("sort")


@rule("uniq")
def _uniq(cmd: Cmd, ctx: Ctx) -> list[Finding]:
    _, pos = split_opts(cmd.argv[1:], {"-f", "-s", "-w"})
    if len(pos) >= 2:
        return write_target(pos[1], append=False, who="uniq IN OUT") or cs("uniq IN OUT writes OUT")
    return ro("uniq")


@rule("tcpdump", "tshark", "dumpcap")
def _tcpdump(cmd: Cmd, ctx: Ctx) -> list[Finding]:
    args = cmd.argv[1:]
    out: list[Finding] = []
    for i, a in enumerate(args):
        nxt = args[i + 1] if i + 1 < len(args) else ""
        if a == "-z" or (cmd.name == "tcpdump" and a.startswith("-z") and len(a) > 2):
            return op(f"{cmd.name} -z: runs a program on every saved file")
        if a == "-w" or (a.startswith("-w") and len(a) > 2 and cmd.name == "tcpdump"):
            out += write_target(nxt if a == "-w" else a[2:], append=False, who=f"{cmd.name} -w") or cs(
                f"{cmd.name} -w writes a capture file"
            )
    return out or ro(f"{cmd.name} (print packets)")


@rule("pfctl")
def _pfctl(cmd: Cmd, ctx: Ctx) -> list[Finding]:
    args = cmd.argv[1:]
    # Short options may be clustered (-sr, -Fa, -nf): read the letters one by one.
    letters: list[str] = []
    table_cmd = None
    for i, a in enumerate(args):
        if a in {"-T"} and i + 1 < len(args):
            table_cmd = args[i + 1]
        if re.fullmatch(r"-[A-Za-z]+.*", a) and not a.startswith("--"):
            letters.extend(ch for ch in a[1:] if ch.isalpha())
    if "n" in letters and not {"d", "F", "k", "K"} & set(letters) and table_cmd in {None, "show", "test"}:
        return ro("pfctl -n (parse only)")
    if "d" in letters:
        return crit("pfctl -d disables the packet filter: the firewall is off")
    if "F" in letters:
        return crit("pfctl -F flushes rules/states/tables: opens the firewall or cuts connections")
    if "f" in letters:
        return crit("pfctl -f replaces the loaded ruleset")
    if "k" in letters or "K" in letters:
        return de("pfctl -k/-K kills states or source nodes: can cut connections")
    if table_cmd is not None:
        if table_cmd in {"show", "test"}:
            return ro(f"pfctl -T {table_cmd}")
        if table_cmd in {"flush", "delete", "kill", "replace", "zero", "expire"}:
            return crit(f"pfctl -T {table_cmd}: empties or replaces a firewall table")
        return cs(f"pfctl -T {table_cmd} changes a firewall table")
    if set(letters) <= {"s", "r", "i", "v", "a", "g", "q", "x"} and "s" in letters:
        return ro("pfctl -s (show)")
    if letters == ["e"]:
        return cs("pfctl -e enables the packet filter")
    return cs(f"pfctl {' '.join(args)}")


@rule("configctl")
def _configctl(cmd: Cmd, ctx: Ctx) -> list[Finding]:
    _, pos = split_opts(cmd.argv[1:])
    # Backend actions that only report (`configctl interface list ifconfig`, `configctl filter list states`,
    # `configctl system diag …`, `configctl firmware status`): the verb after the service says so.
    if len(pos) >= 2 and pos[1] in {"list", "show", "status", "diag", "info", "dump", "get"}:
        return ro(f"configctl {pos[0]} {pos[1]}")
    if pos and pos[0] == "filter":
        return crit(f"configctl filter {' '.join(pos[1:])}: reloads or changes the live firewall")
    return cs(f"configctl {' '.join(pos)}: runs an OPNsense backend action")


@rule("opnsense-version", "sockstat", "gstat", "pkg-static-info")
def _bsd_read(cmd: Cmd, ctx: Ctx) -> list[Finding]:
    return ro(cmd.name)


@rule("pluginctl")
def _pluginctl(cmd: Cmd, ctx: Ctx) -> list[Finding]:
    # pluginctl -s [service]: lists services; with an action (restart/stop…) it changes them.
    args = cmd.argv[1:]
    if (args[:1] == ["-s"] and len(args) <= 2) or (args[:1] in (["-g"], ["-c"]) and len(args) <= 2):
        return ro("pluginctl -s/-g")
    if any(a in {"stop", "restart"} for a in args) and any(a in {"pf", "filter"} for a in args):
        return crit("pluginctl stops or restarts the firewall")
    return cs(f"pluginctl {' '.join(args)}")


@rule("ipset")
def _ipset(cmd: Cmd, ctx: Ctx) -> list[Finding]:
    _, pos = split_opts(cmd.argv[1:])
    sub = pos[0] if pos else None
    if sub in {None, "list", "save", "test", "help", "version", "-L", "-l"}:
        return ro(f"ipset {sub or 'list'}")
    if sub in {"flush", "destroy", "x", "F", "swap"}:
        return crit(f"ipset {sub}: empties or removes firewall sets")
    return cs(f"ipset {sub}")


_DANGEROUS_CAPS = re.compile(
    r"cap_(setuid|setgid|sys_admin|dac_override|dac_read_search|sys_ptrace|sys_module|chown|fowner|"
    r"net_admin|net_raw|sys_rawio|bpf)|^all[=+]|^=",
    re.I,
)


@rule("setcap")
def _setcap(cmd: Cmd, ctx: Ctx) -> list[Finding]:
    opts, pos = split_opts(cmd.argv[1:])
    if "-r" in opts:
        return cs("setcap -r removes file capabilities")
    if "-v" in opts:
        return ro("setcap -v verifies")
    if pos and _DANGEROUS_CAPS.search(pos[0]):
        return crit(f"setcap {pos[0]}: gives a program root powers")
    return cs("setcap changes file capabilities")


@rule("getcap", "pwck", "grpck")
def _check_only(cmd: Cmd, ctx: Ctx) -> list[Finding]:
    if cmd.name in {"pwck", "grpck"} and "-r" not in cmd.argv[1:]:
        return crit(f"{cmd.name} without -r may rewrite the account files")
    return ro(cmd.name)


@rule("ssh-keygen")
def _ssh_keygen(cmd: Cmd, ctx: Ctx) -> list[Finding]:
    opts, _ = split_opts(cmd.argv[1:], {"-f", "-F", "-E", "-t", "-b", "-C", "-N", "-P", "-O", "-R", "-n"})
    if has_short(opts, "lyFB") and not has_short(opts, "RpcAeiuN"):
        return ro("ssh-keygen -l/-y/-F (fingerprint, public key, lookup)")
    if has_short(opts, "R"):
        return cs("ssh-keygen -R edits known_hosts")
    return cs("ssh-keygen writes keys")


@rule("nc", "ncat", "netcat", "socat", "telnet")
def _netcat(cmd: Cmd, ctx: Ctx) -> list[Finding]:
    args = cmd.argv[1:]
    if cmd.name == "socat":
        if any(re.match(r"(?i)(exec|system|file|open|create|gopen|pty):", a) for a in args):
            return op(
                "socat with EXEC:/SYSTEM:/FILE: addresses: runs a program or moves a file over the network"
            )
        return op("socat relays data between sockets")
    opts, _ = split_opts(args, {"-w", "-p", "-s", "-i", "-q", "-x", "-X", "-e", "-c", "--exec", "--sh-exec"})
    if any(o in {"-e", "-c", "--exec", "--sh-exec", "--lua-exec"} or o.startswith("--exec=") for o in opts):
        return op(f"{cmd.name} -e/-c: gives a remote peer a program (a shell)")
    if ctx.stdin and ctx.stdin.fed:
        return op(f"{cmd.name} with data on stdin: sends local data over the network")
    if has_short([o for o in opts if not o.startswith("--")], "z") and cmd.name != "telnet":
        return ro(f"{cmd.name} -z (port check, no data)")
    return cs(f"{cmd.name} opens a raw connection")


@rule("vi", "vim", "nvim", "ex", "view", "vimdiff", "nano", "emacs", "mcedit", "joe", "gdb")
def _editor(cmd: Cmd, ctx: Ctx) -> list[Finding]:
    args = cmd.argv[1:]
    if cmd.name == "gdb":
        if any(
            a in {"-ex", "--ex", "-eval-command", "--eval-command", "-x", "--command", "-p"} for a in args
        ):
            return op("gdb -ex/-x/-p: runs debugger commands (including shell escapes) or attaches")
        return cs("gdb runs or attaches to a program")
    if any(a in {"-c", "--cmd", "-S", "--eval", "-l", "--load", "-x"} or a.startswith("+") for a in args):
        return op(f"{cmd.name} with startup commands: can run anything")
    return cs(f"{cmd.name} edits files")


def _split(value: str) -> list[str]:
    try:
        return shlex.split(value)
    except ValueError:
        return []
