"""Research backends against real HTTP fakes of Context7 and SearXNG, and this machine's docs."""

from __future__ import annotations

import asyncio
import shutil

import pytest

from fazai.config import ResearchSettings
from fazai.knowledge.research import (
    Context7Backend,
    KBBackend,
    LocalDocsBackend,
    ResearchHit,
    SearxngBackend,
    build_backends,
    keywords,
    missing_sources,
    research,
    select_backends,
)
from research_fakes import FakeState, free_port, serve


async def test_context7_search_then_context_with_bearer_key():
    with serve("context7", FakeState(required_key="ctx7sk-test")) as (url, st):
        backend = Context7Backend(url, api_key="ctx7sk-test", timeout_s=5)
        hits = await backend.search("nginx rate limiting per ip", 5)
    assert [r["path"] for r in st.requests] == ["/api/v2/libs/search", "/api/v2/context"]
    assert st.requests[0]["query"] == {"libraryName": "nginx", "query": "nginx rate limiting per ip"}
    assert st.requests[1]["query"]["libraryId"] == "/nginx/nginx"
    assert st.requests[1]["query"]["type"] == "json"
    assert all(r["auth"] == "Bearer ctx7sk-test" for r in st.requests)
    assert len(hits) == 2
    code, info = hits
    assert code.source == "context7" and "limit_req_zone" in code.snippet
    assert code.url.startswith("https://github.com/nginx/nginx")
    assert info.title == "NGINX: Modules > ngx_http_limit_req_module"
    assert info.url == "https://nginx.org/en/docs/http/ngx_http_limit_req_module.html"


async def test_context7_bad_key_and_rate_limit_are_reported_not_raised():
    with serve("context7", FakeState(required_key="right")) as (url, _):
        result = await research("nginx limits", [Context7Backend(url, api_key="wrong")], timeout_s=5)
    assert result.hits == []
    assert result.unavailable == ["Context7 unavailable: HTTP 401 unauthorized (check the API key)"]
    with serve("context7", FakeState(rate_limited=True)) as (url, _):
        result = await research("nginx limits", [Context7Backend(url)], timeout_s=5)
    assert "429" in result.unavailable[0] and "rate limited" in result.unavailable[0]


async def test_context7_unknown_library_is_no_hits():
    with serve("context7") as (url, st):
        hits = await Context7Backend(url).search("zzfrobnicate widgets", 5)
    assert hits == [] and len(st.requests) == 1
    assert st.requests[0]["auth"] is None  # no key configured: anonymous


async def test_searxng_json_results():
    with serve("searxng") as (url, st):
        hits = await SearxngBackend(url).search("fail2ban banned ips", 5)
    assert st.requests[0]["query"] == {"q": "fail2ban banned ips", "format": "json"}
    assert [h.url for h in hits] == [
        "https://www.fail2ban.org/wiki/index.php/Commands",
        "https://wiki.archlinux.org/title/Fail2ban",
    ]
    assert hits[0].title == "Commands - Fail2ban" and "fail2ban-client status" in hits[0].snippet
    assert {h.source for h in hits} == {"web"}


async def test_searxng_without_json_format_says_how_to_fix():
    with serve("searxng", FakeState(json_enabled=False)) as (url, _):
        result = await research("x", [SearxngBackend(url)], timeout_s=5)
    assert result.unavailable == [
        "web search unavailable: SearXNG refused format=json (add json to search.formats in its settings.yml)"
    ]


async def test_unreachable_and_slow_backends_are_reported_while_others_answer():
    dead = f"http://127.0.0.1:{free_port()}"
    with serve("searxng", FakeState(delay_s=1.5)) as (slow_url, _), serve("context7") as (c7, _):
        result = await research(
            "nginx rate limit",
            [SearxngBackend(slow_url, timeout_s=5), Context7Backend(c7), Context7Backend(dead, timeout_s=2)],
            timeout_s=0.8,
        )
    assert len(result.hits) == 2  # the live Context7 answered
    assert result.unavailable[0] == "web search unavailable: no answer within 0.8s"
    assert result.unavailable[1].startswith("Context7 unavailable: ConnectError")
    text = result.as_text()
    assert "web search unavailable" in text and "limit_req_zone" in text


async def test_web_not_configured_is_reported():
    result = await research("anything", [SearxngBackend(None)])
    assert result.unavailable == [
        "web search unavailable: no SearXNG instance configured (set research.searxng_url)"
    ]


async def test_local_docs_finds_ls_help():
    hits = await LocalDocsBackend(timeout_s=5).search("ls sort by size", 5)
    help_hits = [h for h in hits if h.title == "ls --help"]
    assert help_hits, hits
    assert "--size" in help_hits[0].snippet or "-S" in help_hits[0].snippet
    assert help_hits[0].source == "docs"


async def test_local_docs_never_runs_dangerous_commands():
    hits = await LocalDocsBackend(timeout_s=5).search("reboot shutdown", 5)
    assert not any("--help" in h.title for h in hits)


async def test_kb_adapter_sync_and_async_search():
    items = [
        {"id": "r1", "title": "Failed systemd units", "snippet": "systemctl --failed", "status": "verified"},
        {"id": "r2", "title": "Disk usage", "snippet": "df -h", "status": "unverified"},
    ]

    async def asearch(query: str, k: int):
        await asyncio.sleep(0)
        return [(items[0], 0.9), (items[1], 0.5)][:k]

    hits = await KBBackend(asearch).search("failed units", 1)
    assert hits == [ResearchHit("Failed systemd units [verified]", "kb:r1", "systemctl --failed", "kb")]
    hits = await KBBackend(lambda q, k: items).search("disk", 5)
    assert [h.url for h in hits] == ["kb:r1", "kb:r2"]

    class Facade:  # the KB facade's shape: search(query, filters=None, k=4) -> hits wrapping items
        def search(self, query, filters=None, k=4):
            assert filters is None
            return [type("Hit", (), {"item": {**items[1], "notes": "look at Use%"}, "similarity": 0.7})()][:k]

    hits = await KBBackend.from_facade(Facade()).search("disk full", 3)
    assert hits == [ResearchHit("Disk usage", "kb:r2", "df -h\nlook at Use%", "kb")]


async def test_build_and_select_backends_from_settings():
    s = ResearchSettings(searxng_url="http://127.0.0.1:1", enabled=["kb", "docs", "context7", "web"])
    backends = build_backends(s, kb_search=lambda q, k: [], environ={"CONTEXT7_API_KEY": "k1"})
    assert list(backends) == ["kb", "docs", "context7", "web"]
    assert backends["context7"].api_key == "k1"  # type: ignore[attr-defined]
    assert [b.name for b in select_backends(backends, ["docs"])] == ["docs", "context7"]
    assert [b.name for b in select_backends(backends, ["web", "kb"])] == ["web", "kb"]
    assert len(select_backends(backends, None)) == 4
    no_kb = build_backends(ResearchSettings(enabled=["kb"]))
    assert no_kb == {}
    result = await research("x", select_backends(no_kb, ["kb"]))
    assert result.unavailable == ["no research backend is enabled (see [research] enabled)"]
    assert missing_sources(backends, ["web", "kb"]) == []
    assert missing_sources(no_kb, ["kb", "web"]) == [
        "knowledge base unavailable: not enabled here (see [research] enabled)",
        "web search unavailable: not enabled here (see [research] enabled)",
    ]


def test_keywords_drop_stop_words():
    assert keywords("How do I configure Nginx rate limiting?") == ["nginx", "rate", "limiting"]


def _has_man_page(cmd: str) -> bool:
    import subprocess

    if shutil.which("man") is None:
        return False
    return subprocess.run(["man", "-w", cmd], capture_output=True).returncode == 0


@pytest.mark.skipif(not _has_man_page("ls"), reason="no man page for ls on this machine")
async def test_local_docs_reads_man_pages_when_installed():
    hits = await LocalDocsBackend(timeout_s=5).search("ls", 5)
    assert any(h.url == "man:ls" and "list directory contents" in h.snippet for h in hits)
