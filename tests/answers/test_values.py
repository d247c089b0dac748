"""Value extraction: the types both sides of a grounding check speak."""

from __future__ import annotations

import pytest

from fazai.answers.values import content_words, duration_seconds, extract_values, words_related

GiB = 1024**3


def kinds(text: str) -> list[tuple[str, str]]:
    return [(v.kind, v.text) for v in extract_values(text)]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "up 5 hours, 16 minutes; / is 23% full (58 GiB of 252 GiB)",
            [("duration", "5 hours, 16 minutes"), ("path", "/"), ("percent", "23%"), ("size", "58 GiB"),
             ("size", "252 GiB")],
        ),
        ("The largest file is /srv/data/archive/db-dump-2026-11-01.sql (25M).",
         [("path", "/srv/data/archive/db-dump-2026-11-01.sql"), ("size", "25M")]),
        ("banned: 203.0.113.7, 198.51.100.23/32 and fe80::1, ::1",
         [("ip", "203.0.113.7"), ("ip", "198.51.100.23/32"), ("ip", "fe80::1"), ("ip", "::1")]),
        ("fail2ban jails: postfix, nginx", [("name", "fail2ban"), ("name", "postfix"), ("name", "nginx")]),
        ("Kernel 6.1.0-18-amd64, bash 5.2.15-2+b7",
         [("version", "6.1.0-18-amd64"), ("version", "5.2.15-2+b7")]),
        ("The backup runs at 02:30 every day", [("time", "02:30")]),
        ("the memhog process uses 200M", [("name", "memhog"), ("size", "200M")]),
        ("timezone Etc/UTC", [("name", "Etc/UTC")]),
        ("listening on 127.0.0.1:8089, port 8089", [("ip", "127.0.0.1:8089"), ("number", "8089")]),
        ("Mem:  23Gi  5.1Gi", [("size", "23Gi"), ("size", "5.1Gi")]),
        ("mode -rw------- on /srv/app/secret.key", [("name", "-rw-------"), ("path", "/srv/app/secret.key")]),
        ("Nov 23 08:01:11 ops sshd[101]: Failed",
         [("date", "Nov 23"), ("time", "08:01:11"), ("number", "101")]),
        ("question mode is read-only and up-to-date", []),
        ("use `memhog` or \"smallproc\"", [("name", "memhog"), ("name", "smallproc")]),
        ("TCP/UDP and/or", []),
    ],
)  # fmt: skip
def test_extracts_typed_values(text: str, expected: list[tuple[str, str]]) -> None:
    assert kinds(text) == expected


def test_numbers_carry_base_units_and_precision() -> None:
    size = extract_values("23 GiB")[0]
    assert size.number == 23 * GiB and size.unit_step == GiB
    assert extract_values("2.5 GiB")[0].unit_step == pytest.approx(0.1 * GiB)
    pct = extract_values("23.5%")[0]
    assert pct.number == 23.5 and pct.unit_step == pytest.approx(0.1)
    dur = extract_values("1d 2h")[0]
    assert dur.number == 26 * 3600 and dur.unit_step == 3600


def test_sizes_and_minutes_are_told_apart_by_case() -> None:
    assert kinds("25M 25m 3G 3h 10K") == [
        ("size", "25M"), ("duration", "25m"), ("size", "3G"), ("duration", "3h"), ("size", "10K"),
    ]  # fmt: skip


def test_composite_durations_in_english_and_portuguese() -> None:
    assert duration_seconds("5 hours, 16 minutes") == (18960.0, 60.0)
    assert duration_seconds("2 dias e 3 horas") == (2 * 86400 + 3 * 3600, 3600.0)
    assert duration_seconds("no time here") is None


def test_content_words_relate_across_plurals_and_prefixes() -> None:
    assert words_related(content_words("Currently banned: 3"), content_words("5 IPs banned"))
    assert words_related(content_words("Mem: 23Gi"), content_words("total memory"))
    assert not words_related(content_words("Number of jail: 2"), content_words("2 IPs banned"))
