"""KnowledgeBase: commit/get/verify/delete, ranking, filters, export/import, starter import, prompt text."""

from __future__ import annotations

import io
import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from fazai.config import Settings
from fazai.knowledge.embeddings import MiniLMEmbedder
from fazai.knowledge.kb import (
    INDEXED_FIELDS,
    KBError,
    KBFilters,
    KBHit,
    KBItem,
    KnowledgeBase,
    draft_from_session,
    estimate_tokens,
    format_for_prompt,
    open_kb,
)
from fazai.knowledge.starter import load_starter, load_vector_cache, text_key
from fazai.knowledge.store import EdgeStore


@pytest.fixture
def kb(tmp_path: Path, embedder: MiniLMEmbedder) -> Iterator[KnowledgeBase]:
    k = KnowledgeBase(EdgeStore(tmp_path / "kb", embedder.dim, indexed=INDEXED_FIELDS), embedder)
    yield k
    k.close()


def _item(**kw: object) -> KBItem:
    base: dict[str, object] = {
        "title": "Restart nginx",
        "snippet": "systemctl restart nginx",
        "tags": ["nginx"],
    }
    base.update(kw)
    return KBItem.model_validate(base)


def test_commit_get_verify_delete(kb: KnowledgeBase) -> None:
    it = kb.commit(_item(id="t.nginx", service="Nginx", tags=["Web", "nginx", "web"]))
    got = kb.get("t.nginx")
    assert got is not None and got.title == "Restart nginx"
    assert got.tags == ["web", "nginx"] and got.service == "nginx" and got.status == "unverified"
    time.sleep(0.01)
    v = kb.verify("t.nginx", evidence="nginx -t ok; curl 200")
    assert v.status == "verified" and v.evidence == "nginx -t ok; curl 200"
    assert v.created == it.created and v.updated > it.updated
    assert kb.get("t.nginx").status == "verified"  # type: ignore[union-attr]
    assert kb.delete("t.nginx") is True
    assert kb.delete("t.nginx") is False
    assert kb.get("t.nginx") is None
    with pytest.raises(KBError, match="no knowledge item"):
        kb.verify("t.nginx")


def test_bad_items_are_rejected() -> None:
    with pytest.raises(ValueError):
        KBItem(title="x", snippet="ls")  # title too short
    with pytest.raises(ValueError):
        KBItem(title="a title", snippet="ls", status="maybe")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        KBItem(id="has spaces", title="a title", snippet="ls")


def test_verified_boost_beats_a_slightly_better_unverified_match(kb: KnowledgeBase) -> None:
    q = "count banned IP addresses in fail2ban"
    kb.commit(
        _item(id="u", title="count banned IP addresses in fail2ban jails", snippet="fail2ban-client banned")
    )
    kb.commit(
        _item(
            id="v",
            title="number of banned IPs in fail2ban",
            snippet="fail2ban-client status",
            status="verified",
        )
    )
    kb.verified_boost = 0.0
    plain = kb.search(q, k=2)
    assert [h.item.id for h in plain] == ["u", "v"]
    gap = plain[0].similarity - plain[1].similarity
    assert 0 < gap < 0.3
    kb.verified_boost = gap + 0.02  # the verified item is "about as similar": it goes first
    hits = kb.search(q, k=2)
    assert [h.item.id for h in hits] == ["v", "u"]
    assert hits[0].rank_score == pytest.approx(hits[0].similarity + kb.verified_boost)
    assert hits[1].rank_score == pytest.approx(hits[1].similarity)  # only verified items are boosted
    kb.verified_boost = max(gap - 0.02, 0.0)  # a clearly better unverified match still wins
    assert [h.item.id for h in kb.search(q, k=2)] == ["u", "v"]


def test_much_better_unverified_match_still_wins(kb: KnowledgeBase) -> None:
    kb.commit(_item(id="v", title="check disk space usage", snippet="df -h", status="verified"))
    kb.commit(
        _item(
            id="u", title="reload the nginx web server configuration", snippet="nginx -t && nginx -s reload"
        )
    )
    assert kb.search("reload nginx config", k=1)[0].item.id == "u"


def test_recency_breaks_ties(kb: KnowledgeBase) -> None:
    old = datetime.now(UTC) - timedelta(days=30)
    kb.commit(_item(id="old", created=old, updated=old))
    kb.commit(_item(id="new"))
    assert [h.item.id for h in kb.search("restart nginx", k=2)] == ["new", "old"]


def test_filters_by_tags_os_service_status(kb: KnowledgeBase) -> None:
    kb.commit(_item(id="a", tags=["nginx", "web"], service="nginx", distros=["debian-12"]))
    kb.commit(
        _item(id="b", title="Restart nginx on Rocky", tags=["nginx"], service="nginx", distros=["rocky-9"])
    )
    kb.commit(_item(id="c", title="OPNsense reload firewall", tags=["firewall"], os="opnsense", service="pf"))
    q = "restart"
    ids = lambda f: sorted(h.item.id for h in kb.search(q, f, k=10))  # noqa: E731
    kb.min_score = -1.0  # keep every candidate: this test is about filters
    assert ids(KBFilters(os="debian")) == ["a"]
    assert ids(KBFilters(os="debian-12")) == ["a"]
    assert ids(KBFilters(os="linux")) == ["a", "b"]
    assert ids(KBFilters(os="opnsense")) == ["c"]
    assert ids(KBFilters(tags=["nginx", "web"])) == ["a"]
    assert ids(KBFilters(tags=["NGINX"])) == ["a", "b"]
    assert ids(KBFilters(service="pf")) == ["c"]
    assert ids(KBFilters(status="verified")) == []
    assert kb.count(KBFilters(service="nginx")) == 2
    assert [i.id for i in kb.list_items(KBFilters(tags=["firewall"]))] == ["c"]


def test_min_score_drops_unrelated(kb: KnowledgeBase) -> None:
    kb.commit(_item(id="a"))
    assert kb.search("banana bread recipe with walnuts", k=3) == []
    assert kb.search("", k=3) == [] and kb.search("nginx", k=0) == []


def test_export_import_roundtrip(kb: KnowledgeBase, tmp_path: Path, embedder: MiniLMEmbedder) -> None:
    kb.commit(_item(id="a", status="verified", diff="--- a\n+++ b\n", evidence="GTUBE rejected"))
    kb.commit(_item(id="b", title="Show failed units", snippet="systemctl --failed", source="web"))
    buf = io.StringIO()
    assert kb.export(buf) == 2
    lines = buf.getvalue().splitlines()
    assert {json.loads(x)["id"] for x in lines} == {"a", "b"}
    other = KnowledgeBase(EdgeStore(tmp_path / "other", embedder.dim, indexed=INDEXED_FIELDS), embedder)
    try:
        assert other.import_items(lines) == 2
        a = other.get("a")
        assert a == kb.get("a")  # everything survives, timestamps included
        assert other.search("failed systemd units", k=1)[0].item.id == "b"
        # Bad input: clear error naming the line, nothing written.
        with pytest.raises(KBError, match="input:2"):
            other.import_items([lines[0].replace('"a"', '"z"'), '{"title": "no snippet"}'])
        assert other.get("z") is None
    finally:
        other.close()


def test_starter_set_is_big_verified_and_distinct() -> None:
    items = load_starter()
    assert len(items) >= 50
    assert all(i.status == "verified" and i.id.startswith("starter.") for i in items)
    assert len({i.id for i in items}) == len(items)
    checked = [i for i in items if i.distros]
    assert len(checked) >= 50 and all("debian-12" in i.distros for i in checked)


def test_shipped_vectors_are_fresh(embedder: MiniLMEmbedder) -> None:
    """recipes/vectors.npz must match the recipes: run `python -m fazai.knowledge.starter .cache/assets`."""
    cache = load_vector_cache()
    items = load_starter()
    keys = [text_key(embedder.model_id, i.embed_text()) for i in items]
    missing = [i.id for i, k in zip(items, keys, strict=True) if k not in cache]
    assert not missing, (
        f"stale starter vectors for {missing}: run python -m fazai.knowledge.starter .cache/assets"
    )
    sample = items[:5]
    fresh = embedder.embed([i.embed_text() for i in sample])
    np.testing.assert_allclose(np.stack([cache[k] for k in keys[:5]]), fresh, atol=1e-5)


def test_starter_import_is_idempotent(kb: KnowledgeBase, tmp_path: Path) -> None:
    marker = tmp_path / "starter.marker"
    n = kb.import_starter(marker)
    assert n == kb.count() >= 50
    assert kb.import_starter(marker) == 0  # marker matches: nothing read
    marker.unlink()
    assert kb.import_starter(marker) == 0  # no marker: compared by content hash, nothing changed
    kb.delete("starter.uptime")
    marker.unlink()
    assert kb.import_starter(marker) == 1
    assert kb.count() == n


def test_format_for_prompt_respects_budget(kb: KnowledgeBase) -> None:
    kb.import_starter()
    hits = kb.search("how many IPs are banned in fail2ban", k=4)
    full = format_for_prompt(hits, 10_000)
    assert full.count("```") == 2 * len(hits) and "fail2ban-client" in full
    for budget in (60, 150, 300, 600):
        text = format_for_prompt(hits, budget)
        assert estimate_tokens(text) <= budget
    small = format_for_prompt(hits, 110)
    assert "[1]" in small and "[2]" not in small and "(truncated)" in small
    assert format_for_prompt(hits, 20) == ""  # not even the header and a title fit
    assert format_for_prompt(hits, 0) == "" and format_for_prompt([], 500) == ""
    exact = format_for_prompt(hits, 200, count_tokens=lambda s: len(s.split()))
    assert len(exact.split()) <= 200


def test_format_for_prompt_truncates_a_huge_first_hit() -> None:
    big = _item(snippet="echo line\n" * 2000)
    text = format_for_prompt([KBHit(big, 0.9, 0.9)], 100)
    assert "(truncated)" in text and estimate_tokens(text) <= 100


def test_draft_from_session() -> None:
    d = draft_from_session(
        "How many IPs are banned in fail2ban?",
        ["fail2ban-client status", "fail2ban-client status sshd", "fail2ban-client status", "  "],
        answer="3 IPs banned in sshd",
        distro="debian-12",
    )
    assert d is not None
    assert d.status == "unverified" and d.source == "local"
    assert d.snippet == "fail2ban-client status\nfail2ban-client status sshd"
    assert d.service == "fail2ban" and "fail2ban-client" in d.tags and "learned" in d.tags
    assert d.distros == ["debian-12"] and d.notes == "3 IPs banned in sshd"
    assert draft_from_session("goal", []) is None


def test_open_kb_from_settings(tmp_path: Path, embedder: MiniLMEmbedder) -> None:
    s = Settings.model_validate({"paths": {"state_dir": str(tmp_path)}})
    kb = open_kb(s, embedder=embedder)
    try:
        assert kb.count() >= 50
        assert (tmp_path / "kb" / "fazai_kb.starter").exists()
    finally:
        kb.close()
    kb = open_kb(s, embedder=embedder)  # reopens the same store; starter import skipped
    try:
        top = kb.search("failed systemd units", k=1)[0].item.id
        assert top in {"starter.failed-units", "starter.answer-failed-units"}
    finally:
        kb.close()
