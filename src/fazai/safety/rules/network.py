"""Services, network configuration, firewalls, network clients."""

from __future__ import annotations

import re

from .. import paths
from ..cmd import Cmd, Ctx, first_positional, has_short, split_opts
from ..model import Finding
from .base import crit, cs, de, op, ro, rule, write_target

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
# Units that are the firewall or intrusion protection: stopping one opens the machine.
_FIREWALL_UNITS = re.compile(
    r"^(nftables|firewalld|ufw|iptables|ip6tables|netfilter-persistent|ebtables|shorewall6?|fail2ban|"
    r"crowdsec|csf|lfd|pf|ipset)(\.service)?$"
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
    if sub in {"stop", "kill", "disable", "mask"} and any(_FIREWALL_UNITS.match(u) for u in units):
        return crit(f"systemctl {sub} {' '.join(units)}: turns the firewall off")
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
    if len(args) >= 2 and args[1] == "stop" and _FIREWALL_UNITS.match(args[0]):
        return crit(f"service {args[0]} stop: turns the firewall off")
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


_CURL_UPLOAD = re.compile(r"^(-[a-zA-Z]*[TK]|--upload-file|--config|--netrc-file)$")
_CURL_DATA = re.compile(
    r"^(--data-binary|--data-raw|--data-ascii|--data-urlencode|--data|--json|--form)(?==|$)|^(-d|-F)"
)


def _curl_upload(cmd: Cmd) -> list[Finding]:
    """curl sending a file (-F f=@file, --data @file, -T file, -K config) or a computed value."""
    args = cmd.argv[1:]
    for i, a in enumerate(args):
        if _CURL_UPLOAD.match(a) or a.startswith(("--upload-file=", "--config=")):
            return op(f"curl {a}: uploads a file or reads options from a file")
        m = _CURL_DATA.match(a)
        if not m:
            continue
        inline = a[len(m.group(0)) :].lstrip("=")
        val, arg = (
            (inline, cmd.args[i + 1])
            if inline
            else ((args[i + 1], cmd.args[i + 2]) if i + 1 < len(args) else ("", cmd.args[i + 1]))
        )
        if not arg.literal:
            return op(f"curl {m.group(1)}: sends a value computed at run time")
        flag = m.group(0)
        if flag in {"-F", "--form"} and re.search(r"=[@<]", val):
            return op(f"curl {flag} {val[:40]}: uploads a local file")
        if flag == "--data-urlencode" and re.match(r"^[^=]*@", val):
            return op(f"curl --data-urlencode {val[:40]}: uploads a local file")
        if flag not in {"--data-raw", "-F", "--form", "--data-urlencode"} and val.startswith("@"):
            return op(f"curl {flag} {val[:40]}: uploads a local file (or stdin)")
    return []


@rule("curl")
def _curl(cmd: Cmd, ctx: Ctx) -> list[Finding]:
    args = cmd.argv[1:]
    up = _curl_upload(cmd)
    if up:
        return up
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
    if any(
        a.startswith(("--post-file", "--body-file", "--execute", "-e", "--config", "--use-askpass"))
        for a in args
    ):
        return op("wget --post-file/--body-file/-e/--config: uploads a file or runs wgetrc commands")
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


@rule("ssh", "ftp", "sftp", "lftp", "rclone", "mosh")
def _remote(cmd: Cmd, ctx: Ctx) -> list[Finding]:
    out = cs(f"{cmd.name} opens a connection that can run or send anything")
    if ctx.stdin and (ctx.stdin.upstream or ctx.stdin.file):
        out += op(f"{cmd.name} with local data on stdin: sends it to another host")
    if any(
        a.startswith(("-oProxyCommand", "-oLocalCommand", "ProxyCommand", "LocalCommand")) for a in cmd.argv
    ):
        out += op(f"{cmd.name} ProxyCommand/LocalCommand: runs a local program")
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
            out += [f.but(f"ssh {host}: {f.reason}") for f in ctx.classify_code(" ".join(rest))]
    return out


@rule("nmap", "masscan", "hping3")
def _scan(cmd: Cmd, ctx: Ctx) -> list[Finding]:
    return cs(f"{cmd.name}: active network scan (and can write output files)")
