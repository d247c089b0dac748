"""The knowledge base: what FazAI has learned, searchable by meaning.

One facade over a :class:`~fazai.knowledge.store.VectorStore` and an embedder:
``commit``, ``search``, ``get``, ``verify``, ``delete``, ``list_items``, ``export``/``import_items``,
plus :func:`format_for_prompt` (hits → prompt text within a token budget) and
:func:`draft_from_session` (a finished session's working commands → an unverified item).

Ranking: candidates by cosine similarity, then ``score + verified_boost`` for verified items (only
verified items are boosted), near-ties (same score to 2 decimals) broken by recency.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, Literal, Protocol

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from fazai.knowledge.store import FieldMatch, StoredPoint, VectorStore

Status = Literal["verified", "unverified", "rejected"]
Source = Literal["local", "web", "fallback", "operator"]

INDEXED_FIELDS = ("tags", "platform", "service", "status", "source")


class KBError(RuntimeError):
    """A knowledge-base operation failed; the message says what to do."""


class Embedder(Protocol):
    """Anything that turns texts into unit vectors (``MiniLMEmbedder`` in production)."""

    dim: int

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Embed ``texts`` → array (len(texts), dim) of unit vectors."""
        ...


def _now() -> datetime:
    return datetime.now(UTC)


def _new_id() -> str:
    return "kb_" + uuid.uuid4().hex[:12]


class RecipeAnswer(BaseModel):
    """What makes a recipe answer a question by itself: a read-only command and its extractor."""

    model_config = ConfigDict(extra="forbid")

    examples: list[str] = Field(min_length=1, description="questions it answers, as operators ask them")
    command: str = Field(min_length=1, description="read-only command; {slot} is filled from the question")
    extract: str = Field(min_length=1, description="an extractor of fazai.answers.extract")
    slots: dict[str, str] = Field(default_factory=dict, description="slot -> type (path, user, service…)")
    defaults: dict[str, str] = Field(default_factory=dict)
    # Words that tell close questions apart where embeddings do not ("installed version" vs "upgraded
    # to"): the question must match one of ``requires`` (regexes, any case) and none of ``rejects``.
    requires: list[str] = Field(default_factory=list)
    rejects: list[str] = Field(default_factory=list)


class KBItem(BaseModel):
    """One piece of knowledge: a recipe (commands or config) and what it is for."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(default_factory=_new_id, pattern=r"^[A-Za-z0-9_.:-]{1,120}$")
    title: str = Field(min_length=3, max_length=300)
    tags: list[str] = Field(default_factory=list)
    os: str = Field(default="linux", description="linux, opnsense, freebsd…")
    distros: list[str] = Field(default_factory=list, description="distros it was checked on, e.g. debian-12")
    version: str | None = Field(default=None, description="software version it applies to, e.g. nginx 1.22")
    service: str | None = None
    snippet: str = Field(min_length=1, description="commands or configuration")
    notes: str = Field(default="", description="when to use it and how to read the output")
    status: Status = "unverified"
    source: Source = "local"
    created: datetime = Field(default_factory=_now)
    updated: datetime = Field(default_factory=_now)
    diff: str | None = None
    evidence: str | None = Field(default=None, description="test evidence, e.g. GTUBE/EICAR results")
    check: str | None = Field(
        default=None, description="a read-only command that exits 0 when the recipe's result holds"
    )
    origin_session: str | None = Field(default=None, description="the session that saved it (model items)")
    answer: RecipeAnswer | None = Field(
        default=None, description="operator recipes that answer by themselves"
    )

    @field_validator("tags", "distros")
    @classmethod
    def _normalize_list(cls, v: list[str]) -> list[str]:
        out: list[str] = []
        for t in v:
            t = t.strip().lower()
            if t and t not in out:
                out.append(t)
        return out

    @field_validator("service", "os")
    @classmethod
    def _lower(cls, v: str | None) -> str | None:
        return v.strip().lower() if v else v

    def platform(self) -> list[str]:
        """Keywords the ``os`` filter matches: the OS, each distro and its version-less name."""
        keys = [self.os]
        for d in self.distros:
            keys += [d, re.split(r"[-\s]", d, maxsplit=1)[0]]
        return list(dict.fromkeys(k for k in keys if k))

    def embed_text(self) -> str:
        """The text whose embedding represents the item (what an operator would ask about)."""
        if self.answer is not None:  # matched against questions: embed the questions it answers
            return ". ".join([self.title, *self.answer.examples])
        parts = [self.title]
        if self.notes:
            parts.append(self.notes)
        if self.tags:
            parts.append("tags: " + ", ".join(self.tags))
        if self.service:
            parts.append("service: " + self.service)
        parts.append(self.snippet[:120])
        return ". ".join(parts)

    def content_hash(self) -> str:
        """Hash of what the item says (not its timestamps or status)."""
        keep = self.model_dump(mode="json", include={"title", "tags", "os", "distros", "version", "service",
                                                     "snippet", "notes", "diff", "answer"})  # fmt: skip
        return hashlib.sha256(json.dumps(keep, sort_keys=True).encode()).hexdigest()[:16]


@dataclass
class KBFilters:
    """Search/list filters. Every given filter must hold; tags must all be present."""

    tags: Sequence[str] = ()
    os: str | None = None  # matches the OS, a distro ("debian-12") or a distro name ("debian")
    service: str | None = None
    status: Status | None = None
    source: Source | None = None
    # Any of these platforms (e.g. the machine's ``debian-12``, ``debian``, ``linux``): the agent's filter.
    platforms: Sequence[str] = ()
    include_rejected: bool = False

    def to_store(self) -> list[FieldMatch]:
        """The store-level conditions."""
        out = [FieldMatch.of("tags", t.strip().lower()) for t in self.tags if t.strip()]
        if self.os:
            out.append(FieldMatch.of("platform", self.os.strip().lower()))
        plats = [p.strip().lower() for p in self.platforms if p.strip()]
        if plats:
            out.append(FieldMatch.of("platform", *plats))
        if self.service:
            out.append(FieldMatch.of("service", self.service.strip().lower()))
        if self.status:
            out.append(FieldMatch.of("status", self.status))
        elif not self.include_rejected:  # a rejected item is kept for the record, never offered
            out.append(FieldMatch.of("status", "verified", "unverified"))
        if self.source:
            out.append(FieldMatch.of("source", self.source))
        return out


@dataclass
class KBHit:
    """A search result: the item, its cosine similarity, and the score it was ranked by."""

    item: KBItem
    similarity: float
    rank_score: float


def _to_payload(item: KBItem) -> dict[str, Any]:
    p = item.model_dump(mode="json")
    p["platform"] = item.platform()
    p["updated_ts"] = item.updated.timestamp()
    p["content_hash"] = item.content_hash()
    return p


def _from_payload(pid: str, payload: dict[str, Any]) -> KBItem:
    data = {k: v for k, v in payload.items() if k in KBItem.model_fields}
    data["id"] = pid
    return KBItem.model_validate(data)


class KnowledgeBase:
    """The facade the agent, the daemon and ``fazai kb`` use."""

    def __init__(
        self,
        store: VectorStore,
        embedder: Embedder,
        *,
        verified_boost: float = 0.1,
        min_score: float = 0.25,
    ) -> None:
        if store.dim != embedder.dim:
            raise KBError(f"store dimension {store.dim} != embedder dimension {embedder.dim}")
        self.store = store
        self.embedder = embedder
        self.verified_boost = verified_boost
        self.min_score = min_score

    # ---------------------------------------------------------------- writes

    def commit(self, item: KBItem) -> KBItem:
        """Embed and upsert an item. Re-committing an id keeps its ``created`` and bumps ``updated``."""
        return self.commit_many([item])[0]

    def commit_many(
        self, items: Sequence[KBItem], vectors: Sequence[np.ndarray | None] | None = None
    ) -> list[KBItem]:
        """Embed (in one batch) and upsert several items; ``vectors`` may supply precomputed ones."""
        if not items:
            return []
        existing = {p.id: p for p in self.store.get([i.id for i in items])}
        now = _now()
        stored: list[KBItem] = []
        for it in items:
            old = existing.get(it.id)
            created = datetime.fromisoformat(old.payload["created"]) if old else it.created
            stored.append(it.model_copy(update={"created": created, "updated": now if old else it.updated}))
        given = list(vectors) if vectors is not None else [None] * len(stored)
        missing = [n for n, v in enumerate(given) if v is None]
        if missing:
            fresh = self.embedder.embed([stored[n].embed_text() for n in missing])
            for n, v in zip(missing, fresh, strict=True):
                given[n] = v
        vecs = given
        self.store.upsert([(i.id, v, _to_payload(i)) for i, v in zip(stored, vecs, strict=True)])
        return stored

    def verify(self, item_id: str, evidence: str | None = None) -> KBItem:
        """Mark an item verified (optionally recording the test evidence)."""
        item = self.get(item_id)
        if item is None:
            raise KBError(f"no knowledge item {item_id!r} (see `fazai kb list`)")
        update: dict[str, Any] = {"status": "verified", "updated": _now()}
        if evidence:
            update["evidence"] = evidence
        return self.commit(item.model_copy(update=update))

    def reject(self, item_id: str, reason: str | None = None) -> KBItem:
        """Mark an item rejected: kept for the record, never offered again (search skips it)."""
        item = self.get(item_id)
        if item is None:
            raise KBError(f"no knowledge item {item_id!r} (see `fazai kb list`)")
        update: dict[str, Any] = {"status": "rejected", "updated": _now()}
        if reason:
            update["evidence"] = f"rejected: {reason}"
        return self.commit(item.model_copy(update=update))

    def delete(self, item_id: str) -> bool:
        """Remove an item; False when there was none."""
        if not self.store.get([item_id]):
            return False
        self.store.delete([item_id])
        return True

    # ---------------------------------------------------------------- reads

    def get(self, item_id: str) -> KBItem | None:
        """The item with this id, or None."""
        pts = self.store.get([item_id])
        return _from_payload(pts[0].id, pts[0].payload) if pts else None

    def count(self, filters: KBFilters | None = None) -> int:
        """How many items match."""
        return self.store.count(filters.to_store() if filters else ())

    def list_items(self, filters: KBFilters | None = None, limit: int | None = None) -> list[KBItem]:
        """Items matching ``filters``, most recently updated first."""
        pts: list[StoredPoint] = list(self.store.scroll(filters.to_store() if filters else ()))
        pts.sort(key=lambda p: p.payload.get("updated_ts", 0.0), reverse=True)
        items = [_from_payload(p.id, p.payload) for p in pts]
        return items[:limit] if limit is not None else items

    def search(self, query: str, filters: KBFilters | None = None, k: int = 4) -> list[KBHit]:
        """The ``k`` best items for ``query``: verified boosted, then similarity, then recency."""
        if k <= 0 or not query.strip():
            return []
        vec = self.embedder.embed([query])[0]
        cands = self.store.search(vec, max(k * 5, 20), (filters or KBFilters()).to_store())
        hits: list[tuple[tuple[float, float], KBHit]] = []
        for c in cands:
            if c.score < self.min_score:
                continue
            item = _from_payload(c.id, c.payload)
            rank = c.score + (self.verified_boost if item.status == "verified" else 0.0)
            hits.append(((round(rank, 2), c.payload.get("updated_ts", 0.0)), KBHit(item, c.score, rank)))
        hits.sort(key=lambda h: h[0], reverse=True)
        return [h for _, h in hits[:k]]

    # ---------------------------------------------------------------- export / import

    def export(self, out: IO[str], filters: KBFilters | None = None) -> int:
        """Write matching items as JSON lines (one item per line); returns how many."""
        n = 0
        for item in reversed(self.list_items(filters)):
            out.write(item.model_dump_json() + "\n")
            n += 1
        return n

    def import_items(self, lines: Iterable[str], *, source_name: str = "input") -> int:
        """Import JSON lines written by :meth:`export`. Validates everything before writing anything."""
        items: list[KBItem] = []
        for no, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                items.append(KBItem.model_validate_json(line))
            except ValidationError as e:
                first = e.errors()[0]
                where = ".".join(str(x) for x in first["loc"]) or "line"
                raise KBError(f"{source_name}:{no}: not a knowledge item: {where}: {first['msg']}") from e
        for start in range(0, len(items), 64):
            self.store.upsert(
                [
                    (i.id, v, _to_payload(i))
                    for i, v in zip(
                        items[start : start + 64],
                        self.embedder.embed([i.embed_text() for i in items[start : start + 64]]),
                        strict=True,
                    )
                ]
            )
        return len(items)

    def import_starter(self, marker: Path | None = None) -> int:
        """Import the packaged starter recipes (idempotent); returns how many were written.

        With ``marker``, a file remembering the starter set's hash: when it matches, nothing is read
        or embedded (fast start). Otherwise only new or changed recipes are written, so an operator's
        edits to other items are untouched.
        """
        from fazai.knowledge.starter import load_starter, load_vector_cache, starter_hash, text_key

        digest = starter_hash()
        if marker is not None and marker.exists() and marker.read_text().strip() == digest:
            return 0
        recipes = load_starter()
        have = {p.id: p.payload.get("content_hash") for p in self.store.get([r.id for r in recipes])}
        todo = [r for r in recipes if have.get(r.id) != r.content_hash()]
        model_id = getattr(self.embedder, "model_id", None)
        cache = load_vector_cache() if model_id and todo else {}
        self.commit_many(
            todo, [cache.get(text_key(model_id, r.embed_text())) for r in todo] if cache else None
        )
        if marker is not None:
            marker.parent.mkdir(parents=True, exist_ok=True)
            marker.write_text(digest + "\n")
        return len(todo)

    def close(self) -> None:
        """Release the store."""
        self.store.close()


# -------------------------------------------------------------------- prompt formatting


def estimate_tokens(text: str) -> int:
    """A conservative token estimate (~3.5 characters per token for commands and English)."""
    return max(1, int(len(text) / 3.5) + 1)


def _hit_block(n: int, item: KBItem, snippet: str, *, notes: bool = True) -> str:
    where = ", ".join(item.distros) or item.os
    meta = f"{item.status}; {where}"
    if item.tags:
        meta += "; tags: " + ", ".join(item.tags[:6])
    head = f"[{n}] {item.title} ({meta}) id={item.id}"
    body = (
        f"{head}\n{item.notes}\n```\n{snippet}\n```"
        if item.notes and notes
        else f"{head}\n```\n{snippet}\n```"
    )
    return body


PROMPT_HEADER = (
    "Known recipes from the knowledge base (verified ones were tested; adapt, don't copy blindly):"
)


def format_for_prompt(
    hits: Sequence[KBHit],
    token_budget: int,
    *,
    count_tokens: Callable[[str], int] = estimate_tokens,
    header: str = PROMPT_HEADER,
) -> str:
    """Render hits for the model's prompt, best first, never exceeding ``token_budget``.

    Hits that do not fit are left out; if even the first does not fit whole, its snippet is cut and the
    cut is stated. Returns "" when nothing fits or there are no hits.
    """
    if not hits or token_budget <= 0:
        return ""
    parts = [header]

    def fits(block: str) -> bool:
        # Count the joined text, separators included, so the budget holds exactly for count_tokens.
        return count_tokens("\n\n".join([*parts, block])) <= token_budget

    for n, hit in enumerate(hits, 1):
        block = _hit_block(n, hit.item, hit.item.snippet)
        if fits(block):
            parts.append(block)
            continue
        if len(parts) == 1:  # nothing shown yet: show a truncated first hit rather than nothing
            snippet, item = hit.item.snippet, hit.item
            while snippet and not fits(_hit_block(n, item, snippet + "\n… (truncated)", notes=False)):
                snippet = snippet[: int(len(snippet) * 0.8)]
            if snippet:
                parts.append(_hit_block(n, item, snippet + "\n… (truncated)", notes=False))
        break
    return "\n\n".join(parts) if len(parts) > 1 else ""


# -------------------------------------------------------------------- learning loop

_KNOWN_SERVICES = tuple(
    [
        "nginx",
        "apache2",
        "httpd",
        "postfix",
        "dovecot",
        "fail2ban",
        "sshd",
        "ssh",
        "nftables",
        "iptables",
        "docker",
        "mysql",
        "mariadb",
        "postgresql",
        "redis",
        "bind9",
        "named",
        "unbound",
        "haproxy",
        "spamassassin",
        "clamav",
        "rspamd",
        "systemd",
        "journald",
        "cron",
        "ufw",
        "firewalld",
        "chrony",
        "ntp",
        "opnsense",
    ]
)
_SKIP_TAG_WORDS = {"sudo", "echo", "cat", "grep", "head", "tail", "sort", "awk", "sed", "wc", "cut", "xargs"}


def draft_from_session(
    goal: str,
    commands_that_worked: Sequence[str],
    *,
    answer: str | None = None,
    os_name: str = "linux",
    distro: str | None = None,
    source: Source = "local",
) -> KBItem | None:
    """Draft an unverified item from a session that ended done/success (the daemon calls this).

    Returns None when there is nothing worth keeping (no command worked).
    """
    cmds = list(dict.fromkeys(c.strip() for c in commands_that_worked if c and c.strip()))
    if not cmds or not goal.strip():
        return None
    text = (goal + " " + " ".join(cmds)).lower()
    service = next((s for s in _KNOWN_SERVICES if re.search(rf"\b{re.escape(s)}\b", text)), None)
    tags: list[str] = ["learned"]
    for c in cmds:
        first = re.split(r"\s+", c.lstrip("( "), maxsplit=1)[0].rsplit("/", 1)[-1]
        if re.fullmatch(r"[a-z][a-z0-9_.+-]{1,30}", first) and first not in _SKIP_TAG_WORDS:
            tags.append(first)
    if service:
        tags.append(service)
    title = " ".join(goal.split())
    if len(title) > 200:
        title = title[:197] + "..."
    return KBItem(
        title=title,
        tags=tags[:10],
        os=os_name,
        distros=[distro] if distro else [],
        service=service,
        snippet="\n".join(cmds),
        notes=(answer or "").strip()[:500],
        status="unverified",
        source=source,
    )


# -------------------------------------------------------------------- opening from settings


def open_kb(
    settings: Any, *, embedder: Embedder | None = None, import_starter: bool | None = None
) -> KnowledgeBase:
    """Open the configured knowledge base (embedded by default, a Qdrant server with ``[kb] url``).

    Loads (installing on first use) the embedding model and imports the starter recipes the first
    time unless ``[kb] import_starter = false``.
    """
    from fazai.knowledge.embeddings import MiniLMEmbedder
    from fazai.knowledge.store import QdrantServerStore, open_edge_store

    kb_cfg = settings.kb
    state_dir = Path(settings.paths.state_dir)
    if embedder is None:
        if kb_cfg.embedding_model_dir:
            embedder = MiniLMEmbedder(Path(kb_cfg.embedding_model_dir), blas_threads=1)
        else:
            embedder = MiniLMEmbedder.from_assets(state_dir / "assets", blas_threads=1)
    store: VectorStore
    if kb_cfg.url:
        api_key = os.environ.get(kb_cfg.api_key_env) if kb_cfg.api_key_env else None
        if kb_cfg.api_key_env and not api_key:
            raise KBError(f"[kb] api_key_env names ${kb_cfg.api_key_env}, which is not set")
        store = QdrantServerStore.from_url(
            kb_cfg.url, kb_cfg.collection, embedder.dim, api_key=api_key, indexed=INDEXED_FIELDS
        )
        marker = state_dir / "kb-markers" / f"{kb_cfg.collection}.starter"
    else:
        path = Path(kb_cfg.path) if kb_cfg.path else state_dir / "kb"
        # Waits a little when an embedded `fazai agent` run or the daemon is reading or writing it.
        store = open_edge_store(path / kb_cfg.collection, embedder.dim, indexed=INDEXED_FIELDS)
        marker = path / f"{kb_cfg.collection}.starter"
    kb = KnowledgeBase(store, embedder, verified_boost=kb_cfg.verified_boost, min_score=kb_cfg.min_score)
    if kb_cfg.import_starter if import_starter is None else import_starter:
        kb.import_starter(marker)
    return kb
