"""Hypothesis fuzzing: classify never raises, and an injected destructive command is never read-only."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fazai.safety import Risk, classify

BENIGN = ["ls -la", "df -h", "uptime", "cat /etc/hosts", "ps aux", "grep x /var/log/syslog", "echo hi"]
DANGER = {
    "rm -rf /": Risk.FORBIDDEN,
    "mkfs.ext4 /dev/sda1": Risk.FORBIDDEN,
    "dd if=/dev/zero of=/dev/sda": Risk.FORBIDDEN,
    "echo x > /dev/sda": Risk.FORBIDDEN,
    "wipefs -a /dev/sdb": Risk.FORBIDDEN,
    "chmod -R 777 /": Risk.FORBIDDEN,
    "rm -rf /var/www": Risk.DESTRUCTIVE,
    "iptables -F": Risk.DESTRUCTIVE,
    "reboot": Risk.DESTRUCTIVE,
    "userdel bob": Risk.DESTRUCTIVE,
}
SEPS = [" ; ", " && ", " || ", " | ", "\n", " & "]
WRAPS = ["{}", "sudo {}", "( {} )", "{{ {}; }}", "echo $({})", "echo `{}`", "bash -c '{}'", "env A=1 {}"]

FRAGMENT = st.text(alphabet="abcdefghij -/.|&;()$>{}=0123456789\n", max_size=25)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=200))
def test_never_raises(text: str) -> None:
    v = classify(text)
    assert isinstance(v.risk, Risk)
    assert isinstance(v.reasons, list)


@settings(max_examples=300, deadline=None)
@given(
    before=st.lists(st.sampled_from(BENIGN), max_size=3),
    after=st.lists(st.sampled_from(BENIGN), max_size=3),
    danger=st.sampled_from(sorted(DANGER)),
    wrap=st.sampled_from(WRAPS),
    seps=st.lists(st.sampled_from(SEPS), min_size=7, max_size=7),
)
def test_injected_danger_in_structured_commands(
    before: list[str], after: list[str], danger: str, wrap: str, seps: list[str]
) -> None:
    parts = [*before, wrap.format(danger), *after]
    cmd = parts[0]
    for sep, part in zip(seps, parts[1:], strict=False):
        cmd += sep + part
    v = classify(cmd)
    # Backgrounding (&) or piping does not make a command safe: the full class is expected.
    assert v.risk >= DANGER[danger], (cmd, v)


@settings(max_examples=400, deadline=None)
@given(prefix=FRAGMENT, suffix=FRAGMENT, danger=st.sampled_from(sorted(DANGER)))
def test_injected_danger_in_random_text_is_never_read_only(prefix: str, suffix: str, danger: str) -> None:
    cmd = f"{prefix}\n{danger}\n{suffix}"
    v = classify(cmd)
    assert v.risk > Risk.READ_ONLY, (cmd, v)
