"""Firewalls: iptables/nft/ufw/firewalld/fail2ban/conntrack. Flushing, default policies, disabling and
lock-out of the management port are security-critical (``crit``): only an operator approves them."""

from __future__ import annotations

import re

from ..cmd import Cmd, Ctx, first_positional, has_long, has_short, split_opts
from ..model import Finding
from .base import crit, cs, de, ro, rule


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
        return crit(f"{cmd.name} -F/-X flushes firewall rules")
    if "P" in acts:
        return crit(f"{cmd.name} -P changes a chain's default policy: can open the firewall or lock you out")
    if acts & {"A", "I", "R"} and _locks_out(args):
        return crit(f"{cmd.name}: drops incoming traffic to the management port (or all of it): lock-out")
    if not acts:
        return ro(f"{cmd.name} listing") if not args else cs(f"{cmd.name} {' '.join(args)}")
    return cs(f"{cmd.name} changes firewall rules")


MGMT_PORTS = frozenset({"22", "ssh"})


def _locks_out(args: list[str]) -> bool:
    """An INPUT rule that drops/rejects traffic to the management port, or all input not narrowed by a
    source address or port."""
    chain = next(
        (
            args[i + 1]
            for i, a in enumerate(args[:-1])
            if a in {"-A", "-I", "-R", "--append", "--insert", "--replace"}
        ),
        "",
    )
    if chain != "INPUT":
        return False
    target = next((args[i + 1] for i, a in enumerate(args[:-1]) if a in {"-j", "--jump"}), "")
    if target not in {"DROP", "REJECT"}:
        return False
    ports: set[str] = set()
    for i, a in enumerate(args[:-1]):
        if a in {"--dport", "--destination-port", "--dports", "--destination-ports"}:
            ports |= set(re.split(r"[,:]", args[i + 1]))
    if ports:
        return bool(ports & MGMT_PORTS)
    narrowed = {"-s", "--source", "-i", "--in-interface", "--sport", "--src-range", "-m"}
    return not any(a in narrowed for a in args)


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
    return crit("iptables-restore replaces the whole firewall ruleset")


@rule("nft")
def _nft(cmd: Cmd, ctx: Ctx) -> list[Finding]:
    args = cmd.argv[1:]
    opts, pos = split_opts(args, {"-f", "--file", "-I", "--includepath", "-D", "--define"})
    if "-f" in opts or has_long(opts, "--file"):
        if has_short(opts, "c") or has_long(opts, "--check"):
            return ro("nft --check -f")
        return crit("nft -f loads a ruleset file (which may flush the running one)")
    if not pos:
        return ro("nft") if opts else cs("nft interactive")
    sub = pos[0]
    if sub in {"list", "describe", "monitor", "--version", "-v"}:
        return ro(f"nft {sub}")
    if sub == "flush" or sub in {"delete", "destroy", "replace"}:
        return crit(f"nft {' '.join(pos[:3])}: removes firewall rules")
    words = " ".join(pos)
    if (
        sub in {"add", "insert", "create"}
        and re.search(r"\b(drop|reject)\b", words)
        and (re.search(r"\binput\b", words) or re.search(r"\bpolicy\b", words))
    ):
        port_m = re.findall(r"\bdport\s+\{?\s*([\w, -]+)", words)
        ports = {p.strip() for grp in port_m for p in re.split(r"[,\s]+", grp) if p.strip()}
        narrowed = re.search(r"\b(saddr|iifname|iif|sport|ct state)\b", words)
        if (ports & MGMT_PORTS) or (not ports and not narrowed):
            return crit(f"nft {sub}: drops incoming traffic to the management port (or all of it): lock-out")
    return cs(f"nft {' '.join(pos[:3])}")


@rule("ufw")
def _ufw(cmd: Cmd, ctx: Ctx) -> list[Finding]:
    sub, rest = first_positional(cmd.argv[1:])
    if sub in {"status", "show", "version", "app", None, "--version", "help"}:
        return ro(f"ufw {sub}")
    if sub in {"disable", "reset"}:
        return crit(f"ufw {sub}: turns the firewall off / drops all rules")
    if sub == "default" and rest and rest[0] == "allow":
        return crit("ufw default allow: opens the firewall")
    if (
        sub in {"deny", "reject", "limit"}
        and sub != "limit"
        and (set(re.split(r"[/\s]", " ".join(rest))) & (MGMT_PORTS | {"OpenSSH"}))
    ):
        return crit(f"ufw {sub} ssh: locks out remote access")
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
        return crit("firewall-cmd --panic-on drops all traffic")
    if any(re.match(r"--set-default-zone=(trusted|drop|block)$", a) for a in args):
        return crit("firewall-cmd --set-default-zone: opens everything or drops everything")
    if any(re.match(r"--remove-(service|port)=(ssh|22/tcp)$", a) for a in args):
        return crit("firewall-cmd removes ssh: locks out remote access")
    return cs("firewall-cmd changes the firewall")


@rule("fail2ban-client")
def _f2b(cmd: Cmd, ctx: Ctx) -> list[Finding]:
    _, pos = split_opts(cmd.argv[1:], {"-c", "-s", "-p"})
    sub = pos[0] if pos else None
    if sub is None or sub in {"status", "ping", "version", "get", "banned", "echo", "help"}:
        return ro(f"fail2ban-client {sub or ''}".rstrip())
    if sub == "stop":
        return crit("fail2ban-client stop: turns off intrusion protection")
    if sub == "unban" and "--all" in cmd.argv:
        return crit("fail2ban-client unban --all: lifts every ban")
    return cs(f"fail2ban-client {' '.join(pos[:4])}")


@rule("fail2ban-regex", "sshd-t")
def _f2b_regex(cmd: Cmd, ctx: Ctx) -> list[Finding]:
    return ro(cmd.name)


@rule("conntrack")
def _conntrack(cmd: Cmd, ctx: Ctx) -> list[Finding]:
    opts, _ = split_opts(cmd.argv[1:])
    if has_short(opts, "F") or has_long(opts, "--flush"):
        return de("conntrack -F drops the connection-tracking table")
    if has_short(opts, "LSCEG") or has_long(opts, "--dump", "--stats", "--count", "--event", "--get"):
        return ro("conntrack listing")
    return cs("conntrack changes connection tracking")
