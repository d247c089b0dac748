"""Grounding: an answer's values against the session's evidence, on real benchmark answers and on the
failure classes the issue names (invented values, contradictions, empty or unrelated output)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fazai.answers import Evidence, ground

PAIRS = Path(__file__).resolve().parents[1] / "data" / "grounding" / "pairs.jsonl"

FACTS = """System facts (local):
- OS: Debian GNU/Linux 12 (bookworm); kernel 6.1.0-18-amd64 x86_64, up 5h 16m
- CPU: 2 cores; load 0.5 0.4 0.3
- Memory: 20.1 GiB available of 23.3 GiB; swap used 0.0 GiB of 0.0 GiB
- Disks: / 23% of 251.0 GiB (ext4); /boot 40% of 0.5 GiB (ext2)"""


def evidence(
    question: str, *outputs: tuple[str, str], facts: str | None = None, exit_code: int = 0
) -> Evidence:
    """Evidence fed the way the loop feeds it: a context event, then actions and their output."""
    ev = Evidence()
    ev.feed("context", {"goal": question, **({"facts": facts} if facts else {})})
    for i, (command, out) in enumerate(outputs, 1):
        ev.feed("action", {"id": i, "action": {"action": "shell", "command": command}})
        ev.feed("exec_log", {"action": i, "stream": "stdout", "text": out})
        ev.feed("exec_end", {"action": i, "exit_code": exit_code})
    return ev


DEMO = "How long has this machine been up, and how full is its root filesystem?"
F2B = "Quantos IPs estão bloqueados no fail2ban?"
F2B_STATUS = ("fail2ban-client status", "Status\n|- Number of jail:\t2\n`- Jail list:\tsshd, asterisk")


def test_the_demo_answer_that_shipped_as_success_is_caught() -> None:
    v = ground(
        "The machine has been up 5 hours 16 minutes; its root filesystem is full.",
        evidence(DEMO, facts=FACTS),
    )
    assert not v.ok and [c.claim for c in v.contradictions] == ["is full"]
    assert "/ is at 23%" in v.problems()[0]


def test_a_right_demo_answer_is_grounded_with_its_derivations() -> None:
    v = ground("Up 5 hours, 16 minutes; / is 23% full (58 GiB used of 251 GiB).", evidence(DEMO, facts=FACTS))
    assert v.ok, v.problems()
    how = {g.value.text: g.how for g in v.grounded}
    assert how["58 GiB"] == "23% of 251.0 GiB" and how["5 hours, 16 minutes"].startswith("converted")


def test_a_part_bigger_than_its_whole_is_a_contradiction() -> None:
    v = ground("It uses 79 GiB out of 23.5 GiB.", evidence(DEMO, facts=FACTS))
    assert "79 GiB" in {u.text for u in v.ungrounded}
    assert v.contradictions[0].evidence == "a part cannot exceed its whole"


def test_a_sum_across_outputs_is_a_recorded_derivation() -> None:
    ev = evidence(
        F2B,
        F2B_STATUS,
        ("fail2ban-client status sshd", "   |- Currently banned:\t3\n   |- Total banned:\t9"),
        ("fail2ban-client status asterisk", "   |- Currently banned:\t2\n"),
    )
    v = ground("5 IPs bloqueados (3 no sshd, 2 no asterisk).", ev)
    assert v.ok, v.problems()
    assert {g.value.text: g.how for g in v.grounded}["5"].startswith("sum 3 + 2")


def test_a_number_from_unrelated_output_is_not_grounded() -> None:
    v = ground("2 IPs are banned in fail2ban.", evidence(F2B, F2B_STATUS))
    assert not v.ok and "unrelated output" in v.problems()[0] and "Number of jail" in v.problems()[0]


def test_invented_names_are_named() -> None:
    v = ground("fail2ban jails: postfix, nginx", evidence("Which fail2ban jails are configured?", F2B_STATUS))
    assert [u.text for u in v.ungrounded] == ["postfix", "nginx"]


def test_a_value_from_empty_output_is_not_grounded() -> None:
    q = "How many failed SSH password attempts are in /var/log/auth.log?"
    v = ground(
        "0 failed SSH password attempts in /var/log/auth.log.",
        evidence(q, ("grep Failed /var/log/auth.log", ""), exit_code=1),
    )
    assert not v.ok and [u.text for u in v.ungrounded] == ["0"]


def test_a_count_printed_by_the_command_is_not_its_line_count() -> None:
    q = "How many processes named worker are running?"
    v = ground("1 worker process running.", evidence(q, ("ps aux | grep -c worker", "8\n")))
    assert not v.ok and [u.text for u in v.ungrounded] == ["1"]
    assert ground("8 worker processes.", evidence(q, ("ps aux | grep -c worker", "8\n"))).ok


def test_lines_of_a_listing_count() -> None:
    passwd = "root:x:0:0::/root:/bin/bash\nalice:x:1001:1001::/home/alice:/bin/bash\n"
    passwd += "bob:x:1002:1002::/home/bob:/bin/bash"
    v = ground(
        "3 users have /bin/bash.",
        evidence("How many users use bash?", ("grep /bin/bash /etc/passwd", passwd)),
    )
    assert v.ok and v.grounded[0].how == "3 lines of output"


def test_service_state_contradiction() -> None:
    v = ground(
        "ssh is not running.", evidence("Is the ssh service running?", ("systemctl is-active ssh", "active"))
    )
    assert not v.ok and "active" in v.contradictions[0].evidence


def test_threshold_claims_against_df() -> None:
    df = "Filesystem Size Used Avail Use% Mounted on\n/dev/vda 252G 58G 181G 24% /\ntmpfs 64M 60M 4M 94% /mnt"
    q = "Is any filesystem above 90% usage? Which one?"
    assert not ground("No filesystem is above 90% usage.", evidence(q, ("df -h", df))).ok
    assert ground("Yes: /mnt is at 94%.", evidence(q, ("df -h", df))).ok
    assert not ground("Yes, / is above 90%.", evidence(q, ("df -h", df))).ok


def test_clock_times_from_cron_fields_and_sizes_from_byte_counts() -> None:
    cron = ("cat /etc/cron.d/backup", "30 2 * * * root /usr/local/sbin/backup.sh")
    assert ground("At 02:30 every day.", evidence("At what time does the backup run?", cron)).ok
    ls = ("ls -lS /srv/data", "-rw-r--r-- 1 root root 26214400 Nov 23 db-dump.sql")
    v = ground(
        "The largest is /srv/data/db-dump.sql (25M).",
        evidence("What is the largest file under /srv/data?", ls),
    )
    assert v.ok, v.problems()


def test_an_answer_that_does_not_answer() -> None:
    q = "What server_name is set in /srv/etc/nginx/site.conf?"
    v = ground("1", evidence(q, ("grep -c server_name /srv/etc/nginx/site.conf", "1\n")))
    assert not v.ok and "only gives a number" in str(v.unanswered)
    q = "Which certificate in /srv/certs expires first?"
    v = ground(
        "The certificate in /srv/certs expires first.", evidence(q, ("ls /srv/certs", "api.pem\nwww.pem"))
    )
    assert not v.ok and v.unanswered == "it gives no value"


def test_a_number_the_question_gives_is_not_what_it_asks() -> None:
    """ "Which user has UID 1001?" asks a name: "alice" answers it (was "it gives no value")."""
    passwd = ("getent passwd 1001", "alice:x:1001:1001:Alice Ops:/home/alice:/bin/bash\n")
    assert ground("alice", evidence("Which user has UID 1001?", passwd)).ok
    ss = ("ss -tlnp 'sport = :22'", 'LISTEN 0 128 0.0.0.0:22 0.0.0.0:* users:(("sshd",pid=612,fd=3))')
    assert ground("sshd", evidence("Which process listens on port 22?", ss)).ok
    # Asked, not given: a port question still wants the number.
    v = ground("sshd", evidence("What port does sshd listen on?", ss))
    assert not v.ok and v.unanswered


def test_a_change_goal_is_judged_by_its_values_only() -> None:
    ev = evidence("restart nginx", ("systemctl restart nginx", ""))
    assert ground("nginx was restarted.", ev).ok
    assert not ground("nginx 1.25.3 was restarted on port 8443.", ev).ok


def _load() -> list[dict]:
    return [json.loads(line) for line in PAIRS.read_text().splitlines() if line.strip()]


@pytest.mark.parametrize("pair", _load(), ids=lambda p: p["id"])
def test_real_benchmark_answers_keep_their_reviewed_verdict(pair: dict) -> None:
    """Answers the 0.5B gave in `bench/ops` runs, with that run's command outputs, labelled by review."""
    ev = evidence(pair["question"], facts=pair["facts"] or None)
    for i, s in enumerate(pair["sources"], 1):
        ev.feed("action", {"id": i, "action": {"action": "shell", "command": s["command"]}})
        ev.feed("exec_log", {"action": i, "stream": "stdout", "text": s["output"]})
        ev.feed("exec_end", {"action": i, "exit_code": s["exit_code"]})
    v = ground(pair["answer"], ev)
    assert ("grounded" if v.ok else "ungrounded") == pair["label"], v.problems()


def test_the_real_pairs_cover_right_and_wrong_answers() -> None:
    pairs = _load()
    right = [p for p in pairs if p["correct"]]
    wrong = [p for p in pairs if not p["correct"]]
    assert len(pairs) >= 30 and right and wrong
    # The point of the module: right answers pass, most wrong ones are caught.
    assert sum(p["label"] == "grounded" for p in right) / len(right) >= 0.9
    assert sum(p["label"] == "ungrounded" for p in wrong) / len(wrong) >= 0.6


def test_a_zero_count_from_a_filter_that_matched_nothing_is_not_evidence() -> None:
    # A real bench answer that shipped as success: the filter was wrong, not the count zero.
    q = "How many of the upgradable packages come from the security repository?"
    ev = evidence(q, ("dpkg-query -l | grep '^security' | wc -l", "0\n"))
    v = ground("0 upgradable packages from the security repository.", ev)
    assert not v.ok and [u.text for u in v.ungrounded] == ["0"]
    assert "filter that matched nothing" in v.problems()[0]
    # The same pipeline counting something is evidence, and so is a zero the tool states itself.
    assert ground("5", evidence(q, ("apt list --upgradable | grep -c security", "5\n"))).ok
    failed = ("systemctl --failed --no-legend | wc -l", "0\n")
    assert ground("0 units have failed.", evidence("How many systemd units have failed?", failed)).ok


def test_a_zero_or_a_whole_unit_off_duration_is_not_a_conversion() -> None:
    q = "In how many days does the certificate /srv/certs/www.pem expire?"
    facts = FACTS.replace("up 5h 16m", "up 3h 1m")
    for wrong in ("0 days", "1 day"):
        v = ground(wrong, evidence(q, facts=facts))
        assert not v.ok, wrong
    # Rounded or cut to the unit stays grounded: 1 day 20 h is "1 day" or "2 days".
    up = FACTS.replace("up 5h 16m", "up 1d 20h")
    assert ground("Up 1 day.", evidence(DEMO, facts=up)).grounded
    assert ground("Up 2 days.", evidence(DEMO, facts=up)).grounded
