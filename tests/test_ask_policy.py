"""Question mode's boundaries: read-only, a private scratch dir, and read-only knowledge hints."""

from __future__ import annotations

from pathlib import Path

import pytest

from fazai.agent.ask_policy import ReadOnlyHints, ReadOnlyPolicy, strip_scratch_writes
from fazai.agent.deps import KBHit
from fazai.config import SafetySettings
from fazai.safety.policy import SafetyPolicy


@pytest.fixture
def scratch(tmp_path: Path) -> Path:
    return tmp_path / "scratch" / "s_1"


@pytest.fixture
def policy(scratch: Path) -> ReadOnlyPolicy:
    # assume_yes: --yes must not widen question mode either.
    return ReadOnlyPolicy(SafetyPolicy(SafetySettings(), assume_yes=True), scratch)


@pytest.mark.parametrize(
    "template",
    [
        "ps aux > {s}/ps.txt",
        "df -h >> {s}/df.txt",
        "ss -tlnp | tee {s}/ports.txt",
        "mkdir -p {s}/logs",
        "journalctl -u ssh --no-pager 2>&1 > '{s}/ssh.log'",
    ],
)
def test_writes_into_the_scratch_dir_are_allowed(
    policy: ReadOnlyPolicy, scratch: Path, template: str
) -> None:
    d = policy.check_command(template.format(s=scratch))
    assert d.verdict == "allow", d.reasons
    assert scratch.is_dir() and (scratch.stat().st_mode & 0o777) == 0o700


@pytest.mark.parametrize(
    "template",
    [
        "echo x > /etc/motd",
        "echo x > {s}/../../../etc/motd",  # normalised out of the scratch dir
        "echo x > {s}/a; rm -rf /",  # the rest must still be read-only
        "rm -rf / > {s}/log",
        "ps aux | tee {s}/x /etc/cron.d/job",
        "echo x > {s}/*",  # a glob could expand anywhere
        "echo x > $HOME/x",
        "tee {s}/x < /etc/passwd; tee /etc/shadow < {s}/x",
        "cp /etc/passwd {s}/p",  # only redirections and mkdir are recognised writes
        "mkdir -p /etc/evil",
        "echo x > {s}.evil/x",  # a sibling that merely shares the prefix
    ],
)
def test_writes_elsewhere_stay_refused(policy: ReadOnlyPolicy, scratch: Path, template: str) -> None:
    assert policy.check_command(template.format(s=scratch)).verdict == "deny"


def test_without_a_scratch_dir_every_write_is_refused() -> None:
    p = ReadOnlyPolicy(SafetyPolicy(SafetySettings()))
    assert p.check_command("ps aux > /tmp/x").verdict == "deny"
    assert p.check_command("ps aux").verdict == "allow"


def test_strip_leaves_foreign_redirections_in_place(scratch: Path) -> None:
    assert strip_scratch_writes("ls > /etc/x", scratch) is None
    assert strip_scratch_writes(f"ls > {scratch}/a > /etc/x", scratch) == "ls   > /etc/x"


class _KB:
    def __init__(self, hits: list[KBHit]):
        self.hits = hits

    async def search(self, query: str, *, limit: int) -> list[KBHit]:
        return self.hits[:limit]


async def test_hints_offer_only_verified_relevant_read_only_recipes() -> None:
    hits = [
        KBHit("restart nginx", "systemctl restart nginx", "verified", 0.9, id="a"),
        KBHit("nginx status", "systemctl status <service> --no-pager\nss -ltnp", "verified", 0.8, id="b"),
        KBHit("model guess", "cat /var/log/nginx/error.log", "unverified", 0.85, id="c"),
        KBHit("unrelated", "uptime", "verified", 0.2, id="d"),
        KBHit("write in a loop", "for f in /tmp/*; do rm $f; done", "verified", 0.7, id="e"),
        KBHit("nginx log", "tail -n 50 /var/log/nginx/error.log", "verified", 0.6, id="f"),
    ]
    hints = ReadOnlyHints(_KB(hits), SafetyPolicy(SafetySettings(), assume_yes=True), min_score=0.45)
    got = await hints.search("is nginx healthy?", limit=3)
    assert [h.id for h in got] == ["b", "f"]
    assert "read-only" in hints.heading
