"""Shared access to the knowledge base for processes that run sessions (daemon, embedded CLI).

The embedded store (qdrant-edge) takes an exclusive lock on its folder: one process at a time. A
daemon that kept it open for its lifetime would lock out ``fazai kb verify``; an embedded ``fazai
agent`` would do the same for its whole run. So :class:`KBAccess` keeps the expensive part (the
embedding model, ~0.2 s) loaded and opens the store only for each operation (~0.1 s), waiting a
short while when another process holds it. A Qdrant server (``[kb] url``) has no such lock: its
client stays open.

All methods are synchronous (the store and the embedder are): call them via ``asyncio.to_thread``.
Calls from several threads are serialized.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from fazai.knowledge.kb import INDEXED_FIELDS, Embedder, KBError, KnowledgeBase
from fazai.knowledge.store import LOCK_WAIT_S, VectorStore, open_edge_store


class KBAccess:
    """The configured knowledge base, opened per operation (embedded) or kept open (server)."""

    def __init__(self, settings: Any, *, embedder: Embedder | None = None, lock_wait_s: float = LOCK_WAIT_S):
        self.settings = settings
        self.lock_wait_s = lock_wait_s
        self._embedder = embedder
        self._server: KnowledgeBase | None = None
        self._starter_done = False
        self._lock = threading.Lock()

    @property
    def embedded(self) -> bool:
        """True for the embedded store (per-operation opens); False for a Qdrant server."""
        return not self.settings.kb.url

    def embedder(self) -> Embedder:
        """The embedding model, loaded (and installed on first use) once."""
        if self._embedder is None:
            from fazai.knowledge.embeddings import MiniLMEmbedder

            kb_cfg = self.settings.kb
            if kb_cfg.embedding_model_dir:
                self._embedder = MiniLMEmbedder(Path(kb_cfg.embedding_model_dir), blas_threads=1)
            else:
                assets = Path(self.settings.paths.state_dir) / "assets"
                self._embedder = MiniLMEmbedder.from_assets(assets, blas_threads=1)
        return self._embedder

    @contextlib.contextmanager
    def session(self) -> Iterator[KnowledgeBase]:
        """The knowledge base for one operation (the embedded store is released afterwards)."""
        with self._lock:
            if not self.embedded:
                if self._server is None:
                    from fazai.knowledge.kb import open_kb

                    self._server = open_kb(self.settings, embedder=self.embedder())
                yield self._server
                return
            kb_cfg = self.settings.kb
            state_dir = Path(self.settings.paths.state_dir)
            root = Path(kb_cfg.path) if kb_cfg.path else state_dir / "kb"
            emb = self.embedder()
            store: VectorStore = open_edge_store(
                root / kb_cfg.collection, emb.dim, indexed=INDEXED_FIELDS, wait_s=self.lock_wait_s
            )
            kb = KnowledgeBase(store, emb, verified_boost=kb_cfg.verified_boost, min_score=kb_cfg.min_score)
            try:
                if not self._starter_done:
                    if kb_cfg.import_starter:
                        kb.import_starter(root / f"{kb_cfg.collection}.starter")
                    self._starter_done = True
                yield kb
            finally:
                kb.close()

    def close(self) -> None:
        """Release a server connection (the embedded store is never held between operations)."""
        with self._lock:
            if self._server is not None:
                self._server.close()
                self._server = None


__all__ = ["LOCK_WAIT_S", "KBAccess", "KBError", "open_edge_store"]
