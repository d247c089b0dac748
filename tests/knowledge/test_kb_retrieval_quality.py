"""Retrieval quality with real embeddings: paraphrased operator questions → the right starter recipe."""

from __future__ import annotations

from pathlib import Path

from fazai.knowledge.embeddings import MiniLMEmbedder
from fazai.knowledge.kb import INDEXED_FIELDS, KnowledgeBase
from fazai.knowledge.starter import load_starter
from fazai.knowledge.store import EdgeStore

from .retrieval_questions import QUESTIONS


def test_forty_paraphrases_hit_top3(tmp_path: Path, embedder: MiniLMEmbedder) -> None:
    assert len(QUESTIONS) == 40
    ids = {i.id for i in load_starter()}
    assert all(f"starter.{want}" in ids for _, want in QUESTIONS)
    kb = KnowledgeBase(EdgeStore(tmp_path / "kb", embedder.dim, indexed=INDEXED_FIELDS), embedder)
    try:
        kb.import_starter()
        misses = []
        for q, want in QUESTIONS:
            top = [h.item.id for h in kb.search(q, k=3)]
            if f"starter.{want}" not in top:
                misses.append((q, want, top))
        hit_rate = 1 - len(misses) / len(QUESTIONS)
        assert hit_rate >= 0.9, f"top-3 hit rate {hit_rate:.0%}; misses: {misses}"
    finally:
        kb.close()
