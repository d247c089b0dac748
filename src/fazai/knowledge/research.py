"""Research backends for the ``research`` action: the KB, local docs, Context7 and web search.

Every backend answers one small protocol, ``async search(query, k) -> list[ResearchHit]``, and each
is optional. :func:`research` runs the selected backends concurrently within a time budget; a
backend that fails or is too slow is reported in the result ("web search unavailable: …") and the
others still answer — research never raises because a backend is down.

Action sources map to backends: ``kb`` → the knowledge base, ``docs`` → local documentation and
Context7, ``web`` → SearXNG.
"""

from __future__ import annotations

import asyncio
import gzip
import inspect
import os
import re
import shutil
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import httpx

from fazai.config import ResearchSettings
from fazai.tools.sandbox import run_streaming

SOURCE_TO_BACKENDS: dict[str, tuple[str, ...]] = {
    "kb": ("kb",),
    "docs": ("docs", "context7"),
    "web": ("web",),
}


@dataclass(frozen=True, slots=True)
class ResearchHit:
    """One result: where it comes from (``source`` is the backend name) and what it says."""

    title: str
    url: str
    snippet: str
    source: str


class BackendUnavailable(Exception):
    """A backend cannot answer now (not configured, unreachable, refused). The message says why."""


@runtime_checkable
class ResearchBackend(Protocol):
    """A research backend. ``label`` is the human name used in messages ("web search")."""

    name: str
    label: str

    async def search(self, query: str, k: int) -> list[ResearchHit]:
        """Return at most ``k`` hits for ``query``; raise :class:`BackendUnavailable` if it cannot."""
        ...


@dataclass(slots=True)
class ResearchResult:
    """Hits from every backend that answered, and why the others did not."""

    query: str
    hits: list[ResearchHit] = field(default_factory=list)
    unavailable: list[str] = field(default_factory=list)
    timings_ms: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (the ``research_result`` event data and the observation)."""
        return {
            "query": self.query,
            "hits": [asdict(h) for h in self.hits],
            "unavailable": list(self.unavailable),
            "timings_ms": {k: round(v, 1) for k, v in self.timings_ms.items()},
        }

    def as_text(self, max_chars: int = 4000) -> str:
        """A compact text rendering for the model's history, cut at ``max_chars`` (and saying so)."""
        lines = [f"research: {self.query}"]
        for i, h in enumerate(self.hits, 1):
            lines.append(f"[{i}] ({h.source}) {h.title} — {h.url}\n{h.snippet}")
        if not self.hits:
            lines.append("no results")
        lines += self.unavailable
        text = "\n".join(lines)
        if len(text) > max_chars:
            text = text[:max_chars] + f"\n… (cut at {max_chars} of {len(text)} chars)"
        return text


def _clip(text: str, limit: int) -> str:
    text = text.strip()
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


_WORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]*")
_STOP_TEXT = (
    "a an and are as at be by can check configure config create do does enable disable find fix for "
    "from get how i in install is it list make my of on or set setup show the this to use using "
    "what when where which why with you your me all any see view does change add remove update"
)
_STOP = frozenset(_STOP_TEXT.split())


def keywords(query: str) -> list[str]:
    """Lower-cased words of ``query`` without stop words and ops verbs, in order, unique."""
    out: list[str] = []
    for w in _WORD.findall(query):
        lw = w.lower().strip(".")
        if lw and lw not in _STOP and lw not in out:
            out.append(lw)
    return out


# --------------------------------------------------------------------------------------------- KB


SearchFn = Callable[[str, int], Awaitable[Sequence[Any]] | Sequence[Any]]


def _field(obj: Any, name: str, default: Any = None) -> Any:
    if isinstance(obj, dict):
        return obj.get(name, default)
    return getattr(obj, name, default)


class KBBackend:
    """Adapter over the knowledge base facade's ``search(query, k)``.

    Items may be objects or dicts with ``title``/``snippet``/``id``/``status`` (and ``notes``);
    ``(item, score)`` pairs and hits wrapping an ``item`` are unwrapped. Verified items say so in
    the title. For the KB facade (``search(query, filters=None, k=4)``) use :meth:`from_facade`.
    """

    name = "kb"
    label = "knowledge base"

    def __init__(self, search: SearchFn):
        self._search = search

    @classmethod
    def from_facade(cls, kb: Any) -> KBBackend:
        """Adapter over an object whose ``search`` takes ``k`` by keyword (the KB facade)."""
        return cls(lambda query, k: kb.search(query, k=k))

    async def search(self, query: str, k: int) -> list[ResearchHit]:
        found = self._search(query, k)
        if inspect.isawaitable(found):
            found = await found
        hits = []
        for raw in list(found)[:k]:
            item = raw[0] if isinstance(raw, tuple) else raw
            item = _field(item, "item", item)
            title = str(_field(item, "title", "") or "(untitled)")
            status = _field(item, "status")
            if status == "verified":
                title += " [verified]"
            ident = _field(item, "id", "")
            snippet = str(_field(item, "snippet", ""))
            notes = _field(item, "notes")
            if notes:
                snippet += f"\n{notes}"
            hits.append(ResearchHit(title=title, url=f"kb:{ident}", snippet=snippet, source="kb"))
        return hits


# ------------------------------------------------------------------------------------- local docs

# Commands never run, not even with --help: some ignore the flag (busybox, old sysvinit).
_NEVER_RUN_TEXT = (
    "reboot shutdown poweroff halt init telinit kill killall pkill rm rmdir dd mkfs shred wipefs "
    "fdisk sfdisk parted mkswap swapoff su sudo login passwd useradd userdel usermod groupdel "
    "chpasswd"
)
_NEVER_RUN = frozenset(_NEVER_RUN_TEXT.split())


class LocalDocsBackend:
    """Documentation installed on this machine: ``man -P cat``, ``CMD --help``, ``/usr/share/doc``.

    Commands named in the query (words that are executables on ``PATH``) are looked up first; when
    none is named, ``apropos`` finds candidates. ``--help`` runs inside bubblewrap when present
    (read-only root, no network, no capabilities), never for commands on a deny list, and every
    read is bounded in time and size. Snippets are the lines that mention the query's words.
    """

    name = "docs"
    label = "local docs"

    def __init__(
        self,
        *,
        timeout_s: float = 3.0,
        max_bytes: int = 65536,
        snippet_chars: int = 600,
        doc_root: Path = Path("/usr/share/doc"),
        max_commands: int = 3,
    ):
        self.timeout_s = timeout_s
        self.max_bytes = max_bytes
        self.snippet_chars = snippet_chars
        self.doc_root = doc_root
        self.max_commands = max_commands

    async def _capture(self, argv: list[str], *, sandboxed: bool) -> str:
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C", "LC_ALL": "C", "MANWIDTH": "100"}
        res = await run_streaming(
            argv, timeout_s=self.timeout_s, sandboxed=sandboxed, env=env, keep_lines=self.max_bytes // 40
        )
        text = "\n".join(res.stdout) or "\n".join(res.stderr)
        return text[: self.max_bytes]

    async def _apropos(self, words: list[str]) -> list[str]:
        if not words or not shutil.which("apropos"):
            return []
        out = await self._capture(["apropos", "-a", *words[:3]], sandboxed=False)
        if not out.strip():
            out = await self._capture(["apropos", words[0]], sandboxed=False)
        names = []
        for line in out.splitlines():
            m = re.match(r"^(\S+)\s+\((\d)[^)]*\)", line)
            if m and m.group(2) in "18" and m.group(1) not in names:
                names.append(m.group(1))
        return names

    def _snippet(self, text: str, words: list[str], cmd: str) -> str:
        lines = [ln for ln in text.splitlines() if ln.strip()]
        want = [w for w in words if w != cmd]
        picked = [ln.strip() for ln in lines if any(w in ln.lower() for w in want)] if want else []
        chosen = picked or [ln.strip() for ln in lines[:12]]
        return _clip("\n".join(chosen), self.snippet_chars)

    def _doc_files(self, cmd: str) -> list[Path]:
        pkg_dir = self.doc_root / cmd
        if not pkg_dir.is_dir():
            return []
        names = ("README.Debian", "README", "README.md", "README.gz", "README.md.gz", "README.Debian.gz")
        return [pkg_dir / n for n in names if (pkg_dir / n).is_file()][:1]

    def _read_doc(self, path: Path) -> str:
        try:
            if path.suffix == ".gz":
                with gzip.open(path, "rb") as f:
                    data = f.read(self.max_bytes)
            else:
                with path.open("rb") as f:
                    data = f.read(self.max_bytes)
        except OSError:
            return ""
        return data.decode("utf-8", "replace")

    async def search(self, query: str, k: int) -> list[ResearchHit]:
        words = keywords(query)
        cmds = [w for w in words if shutil.which(w)]
        if not cmds:
            cmds = [c for c in await self._apropos(words) if shutil.which(c)]
        cmds = [c for c in cmds if c not in _NEVER_RUN][: self.max_commands]
        hits: list[ResearchHit] = []
        for cmd in cmds:
            help_text, man_text = await asyncio.gather(
                self._capture([cmd, "--help"], sandboxed=True),
                self._capture(["man", "-P", "cat", cmd], sandboxed=False)
                if shutil.which("man")
                else asyncio.sleep(0, result=""),
            )
            if help_text.strip():
                hits.append(
                    ResearchHit(
                        f"{cmd} --help", f"cmd:{cmd} --help", self._snippet(help_text, words, cmd), "docs"
                    )
                )
            if man_text.strip() and "No manual entry" not in man_text:
                hits.append(
                    ResearchHit(f"man {cmd}", f"man:{cmd}", self._snippet(man_text, words, cmd), "docs")
                )
            for doc in self._doc_files(cmd):
                text = await asyncio.to_thread(self._read_doc, doc)
                if text.strip():
                    hits.append(
                        ResearchHit(f"{doc}", f"file://{doc}", self._snippet(text, words, cmd), "docs")
                    )
        return hits[:k]


# --------------------------------------------------------------------------------------- Context7


def _http_error(label: str, resp: httpx.Response) -> BackendUnavailable:
    detail = ""
    try:
        body = resp.json()
        if isinstance(body, dict):
            detail = str(body.get("error") or body.get("message") or "")
    except ValueError:
        detail = resp.text[:200]
    hint = {
        401: " (check the API key)",
        403: " (access refused)",
        429: " (rate limited; set an API key or wait)",
    }.get(resp.status_code, "")
    return BackendUnavailable(f"HTTP {resp.status_code} {detail}".strip() + hint)


class Context7Backend:
    """Library documentation from Context7 (``/api/v2/libs/search`` then ``/api/v2/context``).

    The library is guessed from the query's first significant word; the best match's code and
    info snippets become hits. Works without an API key (Context7's anonymous rate limits apply).
    """

    name = "context7"
    label = "Context7"

    def __init__(
        self,
        base_url: str = "https://context7.com",
        *,
        api_key: str | None = None,
        timeout_s: float = 5.0,
        snippet_chars: int = 600,
        transport: httpx.AsyncBaseTransport | None = None,
    ):
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self.timeout_s = timeout_s
        self.snippet_chars = snippet_chars
        self._transport = transport

    def _client(self) -> httpx.AsyncClient:
        headers = {"Accept": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        return httpx.AsyncClient(
            base_url=self.base_url, headers=headers, timeout=self.timeout_s, transport=self._transport
        )

    async def search(self, query: str, k: int) -> list[ResearchHit]:
        words = keywords(query)
        if not words:
            return []
        try:
            async with self._client() as client:
                resp = await client.get(
                    "/api/v2/libs/search", params={"libraryName": words[0], "query": query}
                )
                if resp.status_code != 200:
                    raise _http_error(self.label, resp)
                libs = (resp.json() or {}).get("results") or []
                if not libs:
                    return []
                lib = libs[0]
                lib_id = str(lib.get("id", ""))
                resp = await client.get(
                    "/api/v2/context", params={"libraryId": lib_id, "query": query, "type": "json"}
                )
                if resp.status_code != 200:
                    raise _http_error(self.label, resp)
                body = resp.json() or {}
        except httpx.HTTPError as e:
            raise BackendUnavailable(f"{type(e).__name__}: {e}") from e
        except ValueError as e:
            raise BackendUnavailable(f"invalid JSON from Context7: {e}") from e
        lib_url = f"{self.base_url}{lib_id}" if lib_id.startswith("/") else self.base_url
        lib_title = str(lib.get("title") or lib_id)
        hits = []
        for s in body.get("codeSnippets") or []:
            code = "\n".join(str(c.get("code", "")) for c in s.get("codeList") or [])
            text = (str(s.get("codeDescription") or "") + "\n" + code).strip()
            cid = str(s.get("codeId") or "")
            hits.append(
                ResearchHit(
                    title=f"{lib_title}: {s.get('codeTitle') or 'example'}",
                    url=cid if cid.startswith("http") else lib_url,
                    snippet=_clip(text, self.snippet_chars),
                    source="context7",
                )
            )
        for s in body.get("infoSnippets") or []:
            pid = str(s.get("pageId") or "")
            hits.append(
                ResearchHit(
                    title=f"{lib_title}: {s.get('breadcrumb') or 'documentation'}",
                    url=pid if pid.startswith("http") else lib_url,
                    snippet=_clip(str(s.get("content") or ""), self.snippet_chars),
                    source="context7",
                )
            )
        return hits[:k]


# ----------------------------------------------------------------------------------- web (SearXNG)


class SearxngBackend:
    """Web search through a SearXNG instance's JSON API (``/search?q=…&format=json``)."""

    name = "web"
    label = "web search"

    def __init__(
        self,
        base_url: str | None,
        *,
        timeout_s: float = 5.0,
        snippet_chars: int = 600,
        transport: httpx.AsyncBaseTransport | None = None,
    ):
        self.base_url = base_url.rstrip("/") if base_url else None
        self.timeout_s = timeout_s
        self.snippet_chars = snippet_chars
        self._transport = transport

    async def search(self, query: str, k: int) -> list[ResearchHit]:
        if not self.base_url:
            raise BackendUnavailable("no SearXNG instance configured (set research.searxng_url)")
        try:
            async with httpx.AsyncClient(
                base_url=self.base_url, timeout=self.timeout_s, transport=self._transport
            ) as client:
                resp = await client.get("/search", params={"q": query, "format": "json"})
                if resp.status_code == 403:
                    raise BackendUnavailable(
                        "SearXNG refused format=json (add json to search.formats in its settings.yml)"
                    )
                if resp.status_code != 200:
                    raise _http_error(self.label, resp)
                body = resp.json() or {}
        except httpx.HTTPError as e:
            raise BackendUnavailable(f"{type(e).__name__}: {e}") from e
        except ValueError as e:
            raise BackendUnavailable(f"invalid JSON from SearXNG: {e}") from e
        hits = []
        for r in body.get("results") or []:
            if not r.get("url"):
                continue
            hits.append(
                ResearchHit(
                    title=str(r.get("title") or r["url"]),
                    url=str(r["url"]),
                    snippet=_clip(str(r.get("content") or ""), self.snippet_chars),
                    source="web",
                )
            )
        return hits[:k]


# -------------------------------------------------------------------------------------- research


def build_backends(
    settings: ResearchSettings,
    *,
    kb_search: SearchFn | None = None,
    environ: dict[str, str] | None = None,
) -> dict[str, ResearchBackend]:
    """The backends enabled by ``[research]``, by name. ``kb`` needs the KB facade's search."""
    env = os.environ if environ is None else environ
    out: dict[str, ResearchBackend] = {}
    for name in settings.enabled:
        if name == "kb" and kb_search is not None:
            out["kb"] = KBBackend(kb_search)
        elif name == "docs":
            out["docs"] = LocalDocsBackend(
                timeout_s=min(3.0, settings.timeout_s),
                max_bytes=settings.docs_max_bytes,
                snippet_chars=settings.snippet_chars,
            )
        elif name == "context7":
            out["context7"] = Context7Backend(
                settings.context7_url,
                api_key=env.get(settings.context7_api_key_env) or None,
                timeout_s=settings.backend_timeout_s,
                snippet_chars=settings.snippet_chars,
            )
        elif name == "web":
            out["web"] = SearxngBackend(
                settings.searxng_url,
                timeout_s=settings.backend_timeout_s,
                snippet_chars=settings.snippet_chars,
            )
    return out


def select_backends(
    backends: dict[str, ResearchBackend], sources: Iterable[str] | None
) -> list[ResearchBackend]:
    """The backends an action's ``sources`` ask for (all of them when ``sources`` is empty)."""
    if not sources:
        return list(backends.values())
    names: list[str] = []
    for s in sources:
        for b in SOURCE_TO_BACKENDS.get(s, (s,)):
            if b in backends and b not in names:
                names.append(b)
    return [backends[n] for n in names]


_SOURCE_LABELS = {"kb": "knowledge base", "docs": "documentation", "web": "web search"}


def missing_sources(backends: dict[str, ResearchBackend], sources: Iterable[str] | None) -> list[str]:
    """Lines for requested sources that have no backend here ("web search unavailable: not enabled")."""
    out = []
    for s in sources or ():
        if not any(b in backends for b in SOURCE_TO_BACKENDS.get(s, (s,))):
            out.append(f"{_SOURCE_LABELS.get(s, s)} unavailable: not enabled here (see [research] enabled)")
    return out


async def research(
    query: str,
    backends: Sequence[ResearchBackend],
    *,
    k: int = 5,
    timeout_s: float = 8.0,
) -> ResearchResult:
    """Ask every backend at once; keep what arrives within ``timeout_s``.

    Hits are ordered by backend (in the given order), then by each backend's own ranking. A backend
    that fails or runs out of time adds a line to ``unavailable``; this function never raises for it.
    """
    result = ResearchResult(query=query)
    if not backends:
        result.unavailable.append("no research backend is enabled (see [research] enabled)")
        return result

    async def one(b: ResearchBackend) -> list[ResearchHit]:
        t0 = time.perf_counter()
        try:
            return await b.search(query, k)
        finally:
            result.timings_ms[b.name] = (time.perf_counter() - t0) * 1000

    tasks = [asyncio.create_task(one(b)) for b in backends]
    _, pending = await asyncio.wait(tasks, timeout=timeout_s)
    for task in pending:
        task.cancel()
    if pending:
        await asyncio.gather(*pending, return_exceptions=True)
    for b, task in zip(backends, tasks, strict=True):
        if task in pending:
            result.unavailable.append(f"{b.label} unavailable: no answer within {timeout_s:g}s")
            continue
        exc = task.exception()
        if exc is not None:
            reason = str(exc) or type(exc).__name__
            result.unavailable.append(f"{b.label} unavailable: {reason}")
            continue
        result.hits.extend(task.result())
    return result
