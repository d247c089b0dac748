"""A recipe's own answer must pass the grounding gate on the output it was read from.

When it does not, the run falls back to the model with a right answer thrown away (seen in the ops
bench: the top-memory and journal recipes answered right, the gate refused them, the 0.5B then ran out
of time). Each case is a real tool's output, the question an operator asks, and the extractor.
"""

from __future__ import annotations

import pytest

from fazai.answers.evidence import Evidence
from fazai.answers.extract import EXTRACTORS
from fazai.answers.grounding import ground

PS_RSS = """     87 281412 fazai
      3 218796 memhog
     45  34356 smallproc
    191   4492 ps
"""
NFT = """table inet filter {
\tchain input {
\t\ttype filter hook input priority filter; policy drop;
\t\tct state established,related accept
\t\tiif "lo" accept
\t\ttcp dport 22 accept
\t\ttcp dport { 80, 443 } accept
\t\tip saddr 198.51.100.0/24 drop
\t}
}
"""
JOURNAL = """\
Nov 23 09:00:01 ops-01 postfix/smtp[811]: error: connect to relay.example.net[192.0.2.10]:587: timed out
Nov 23 09:05:01 ops-01 postfix/smtp[812]: error: connect to relay.example.net[192.0.2.10]:587: timed out
Nov 23 09:10:01 ops-01 postfix/smtp[813]: error: connect to relay.example.net[192.0.2.10]:587: timed out
Nov 23 09:12:44 ops-01 nginx[640]: [emerg] bind() to 0.0.0.0:80 failed (98: Address already in use)
Nov 23 09:15:01 ops-01 postfix/smtp[814]: error: connect to relay.example.net[192.0.2.10]:587: timed out
"""
IPTABLES = """-P INPUT ACCEPT
-A INPUT -s 203.0.113.7/32 -j DROP
-A INPUT -s 198.51.100.23/32 -j DROP
-A INPUT -p tcp -m tcp --dport 22 -j ACCEPT
-A INPUT -s 192.0.2.45/32 -j REJECT --reject-with icmp-port-unreachable
-A INPUT -s 10.9.9.9/32 -j DROP
"""
DF = """Filesystem     Type  1024-blocks     Used Available Capacity Mounted on
/dev/vda       ext4    264212084 29446532  76944380      28% /
tmpfs          tmpfs       65536        0     65536       0% /tmp
tmpfs          tmpfs       65536    59392      6144      91% /mnt
"""
APT = """Listing... Done
bash/stable-security 5.2.15-2+b8 amd64 [upgradable from: 5.2.15-2+b7]
openssl/stable-security 3.0.16-1~deb12u1 amd64 [upgradable from: 3.0.15-1~deb12u1]
tzdata/stable-updates 2025b-0+deb12u1 all [upgradable from: 2024b-0+deb12u1]
"""


def _evidence(question: str, command: str, out: str) -> Evidence:
    ev = Evidence()
    ev.feed("context", {"goal": question})
    ev.feed("action", {"id": 1, "kind": "shell", "action": {"action": "shell", "command": command}})
    ev.feed("exec_log", {"action": 1, "cmd": 0, "stream": "stdout", "text": out})
    ev.feed("exec_end", {"action": 1, "cmd": 0, "command": command, "exit_code": 0})
    return ev


@pytest.mark.parametrize(
    ("question", "extract", "command", "out", "slots", "want"),
    [
        ("Which process is using the most memory?", "top_process",
         "ps -eo pid,rss,comm --sort=-rss --no-headers | head -n 5", PS_RSS, {}, "memhog"),
        ("What is the default policy of the nftables input chain?", "nft_input", "nft list ruleset", NFT,
         {}, "drop"),
        ("Which TCP ports does the nftables input chain accept?", "nft_input", "nft list ruleset", NFT, {},
         "443"),
        ("Which service logged the most errors in the journal?", "journal_top_unit",
         "journalctl -p err -b --no-pager -o short", JOURNAL, {}, "postfix"),
        ("How many source IPs are dropped by iptables INPUT rules?", "iptables_drops", "iptables -S INPUT",
         IPTABLES, {}, "4"),
        ("Is any filesystem above 90% usage? Which one?", "df_over",
         "df -P -T -k -x devtmpfs -x squashfs -x overlay", DF, {"limit": "90"}, "/mnt"),
        ("How many packages can be upgraded?", "apt_upgradable", "apt list --upgradable 2>/dev/null", APT,
         {}, "3"),
    ],
)  # fmt: skip
def test_a_recipe_answer_passes_the_gate_on_its_own_output(
    question: str, extract: str, command: str, out: str, slots: dict, want: str
) -> None:
    answer = EXTRACTORS[extract](out, slots, question)
    assert want in answer, answer
    verdict = ground(answer, _evidence(question, command, out))
    assert verdict.ok, (answer, verdict.problems)


def test_the_top_process_is_not_fazai_itself() -> None:
    # The pilot's own process is on every machine it reads: the operator asks about their workload.
    answer = EXTRACTORS["top_process"](PS_RSS, {}, "Which process is using the most memory?")
    assert answer.startswith("`memhog`"), answer
    assert "fazai" in answer  # said, not hidden
