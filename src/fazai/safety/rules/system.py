"""Processes, power, accounts, scheduling, kernel and system settings."""

from __future__ import annotations

import re

from ..cmd import Cmd, Ctx, has_long, has_short, split_opts
from ..model import Finding
from .base import crit, cs, de, fb, op, ro, rule


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
    why = _privileged_account(cmd)
    if why:
        return crit(f"{cmd.name}: {why}")
    opts, pos = split_opts(cmd.argv[1:])
    if (
        cmd.name == "usermod"
        and "root" in pos
        and (has_short(opts, "Le") or has_long(opts, "--lock", "--expiredate"))
    ):
        return de("usermod locks root")
    return cs(f"{cmd.name} changes accounts")


# Groups whose members are root in all but name.
ADMIN_GROUPS = frozenset(
    {"root", "sudo", "wheel", "admin", "adm", "docker", "lxd", "disk", "shadow", "libvirt"}
)


def _privileged_account(cmd: Cmd) -> str | None:
    """Why this account command grants root (uid/gid 0, an admin group, an empty password), or None."""
    args = cmd.argv[1:]
    vals: dict[str, str] = {}
    for i, a in enumerate(args):
        m = re.fullmatch(r"(-[ugGp]|--uid|--gid|--groups|--password)(?:=?(.*))?", a)
        if m:
            v = m.group(2) if m.group(2) else (args[i + 1] if i + 1 < len(args) else "")
            vals[m.group(1)] = v
        elif re.fullmatch(r"-a?G", a) or a == "-aG" or re.fullmatch(r"-[a-zA-Z]*G", a):
            vals["-G"] = args[i + 1] if i + 1 < len(args) else ""
    if vals.get("-u") == "0" or vals.get("--uid") == "0":
        return "creates or turns an account into uid 0 (a second root)"
    if vals.get("-g") in {"0", "root"} or vals.get("--gid") in {"0", "root"}:
        return "gives an account the root group"
    groups = set((vals.get("-G") or vals.get("--groups") or "").split(","))
    if groups & ADMIN_GROUPS:
        return f"adds an account to an admin group ({', '.join(sorted(groups & ADMIN_GROUPS))})"
    if ("-p" in vals or "--password" in vals) and (vals.get("-p") or vals.get("--password") or "") in {
        "",
        "''",
    }:
        return "sets an empty password"
    _, pos = split_opts(args)
    adds = any(a in {"-a", "--add", "-M", "--members", "-A"} for a in args)
    if cmd.name == "gpasswd" and adds and pos and pos[-1] in ADMIN_GROUPS:
        return f"adds a member to the admin group {pos[-1]}"
    if cmd.name in {"adduser", "addgroup"} and len(pos) == 2 and pos[1] in ADMIN_GROUPS:
        return f"adds {pos[0]} to the admin group {pos[1]}"
    return None


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
    if pos in ([], ["-"]) and ctx.stdin and ctx.stdin.content is None and ctx.stdin.fed:
        return op("crontab installs a table read from stdin whose content is not known")
    if pos in ([], ["-"]) and ctx.stdin and ctx.stdin.content is not None:
        for line in ctx.stdin.content.splitlines():
            m = re.match(r"\s*(?:@\w+|(?:\S+\s+){5})(.+)", line)
            if m and not line.lstrip().startswith("#"):
                out += [f.but(f"crontab entry: {f.reason}") for f in ctx.classify_code(m.group(1))]
    return out


@rule("at", "batch", "atrm", "systemd-run")
def _at(cmd: Cmd, ctx: Ctx) -> list[Finding]:
    args = cmd.argv[1:]
    if cmd.name == "at" and args in (["-l"],):
        return ro("at -l")
    out = cs(f"{cmd.name} schedules or runs a job")
    if cmd.name in {"at", "batch"} and ctx.stdin and ctx.stdin.content is not None:
        out += [f.but(f"{cmd.name} job: {f.reason}") for f in ctx.classify_code(ctx.stdin.content)]
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
