"""How close a question is to an answerable recipe: the best cosine over the recipe's own examples.

One vector per item (the knowledge base's) blurs several phrasings into one; a recipe answers a
question when the question is close to ONE way operators ask it. The knowledge base finds the
candidates; this scores them against each example. Example vectors come from the packaged starter
cache (instant) or are embedded once per process.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Sequence
from typing import Any

import numpy as np

from fazai.answers.values import extract_values
from fazai.knowledge.kb import Embedder, KBItem

# A name right after the word that says what it is: "user bob", "process named cron", "jail sshd".
_NAMED = re.compile(
    r"\b(user|group|process (?:named|called)|package|jail|container|named|called|usu[aá]rio|grupo)\s+"
    r"(?!(?:is|are|has|have|was|the|a|an|in|on|of|to|for|with|and|or|running|failed|active)\b)"
    r"([A-Za-z0-9][\w.@+-]*)",
    re.I,
)
_PLACEHOLDER = {"path": "/path", "ip": "1.2.3.4"}


def topic_text(text: str) -> str:
    """``text`` with its slot values replaced by placeholders: what a question asks, not about whom.

    "What is the home directory of user bob?" and the example "... of user alice?" differ only in the
    name, yet MiniLM puts the name's weight into the cosine (0.57 against that recipe). Paths, IPs and
    the name after "user"/"group"/"process named"/... become one placeholder each, on both sides. Not
    after "service" or "unit": there the next word says what is asked ("services failed", "service
    running"), and service names come before the word ("the nginx service").
    """
    out = text
    for v in sorted(extract_values(text), key=lambda v: -v.start):
        if v.kind in _PLACEHOLDER:
            out = out[: v.start] + _PLACEHOLDER[v.kind] + out[v.end :]
    return _NAMED.sub(lambda m: f"{m.group(1)} X", out)


class RecipeIndex:
    """Example vectors of answerable recipes, embedded at most once per process."""

    def __init__(self, embedder: Embedder):
        self.embedder = embedder
        self._vectors: dict[str, np.ndarray] = {}
        self._lock = threading.Lock()
        self._cache: dict[str, np.ndarray] | None = None
        self._topic_cache: dict[tuple[str, ...], list[str]] = {}

    def _starter_cache(self) -> dict[str, np.ndarray]:
        if self._cache is None:
            from fazai.knowledge.starter import load_vector_cache

            self._cache = load_vector_cache()
        return self._cache

    def vectors(self, texts: Sequence[str]) -> np.ndarray:
        """Unit vectors of ``texts`` (from the caches, embedding only what is missing)."""
        from fazai.knowledge.starter import text_key

        model_id = getattr(self.embedder, "model_id", "")
        with self._lock:
            missing = [t for t in texts if t not in self._vectors]
            if missing:
                cache = self._starter_cache() if model_id else {}
                todo = []
                for t in missing:
                    v = cache.get(text_key(model_id, t))
                    if v is not None:
                        self._vectors[t] = np.asarray(v, np.float32)
                    else:
                        todo.append(t)
                if todo:
                    for t, v in zip(todo, self.embedder.embed(todo), strict=True):
                        self._vectors[t] = np.asarray(v, np.float32)
            return np.stack([self._vectors[t] for t in texts])

    def _topics(self, examples: Sequence[str]) -> list[str]:
        key = tuple(examples)
        topics = self._topic_cache.get(key)
        if topics is None:
            topics = self._topic_cache[key] = [topic_text(e) for e in examples]
        return topics

    def score(self, query: str, items: Sequence[KBItem]) -> list[tuple[KBItem, float]]:
        """``items`` with their best similarity to ``query`` over their examples, best first."""
        answerable = [i for i in items if i.answer is not None]
        if not answerable:
            return []
        q = np.asarray(self.embedder.embed([topic_text(query)])[0], np.float32)
        out: list[tuple[KBItem, float]] = []
        for item in answerable:
            assert item.answer is not None
            sims = self.vectors(self._topics(item.answer.examples)) @ q
            out.append((item, float(np.max(sims))))
        out.sort(key=lambda x: -x[1])
        return out


_INDEXES: dict[int, RecipeIndex] = {}


def index_for(embedder: Any) -> RecipeIndex:
    """The process's index for one embedder (the daemon and the CLI keep one embedder)."""
    key = id(embedder)
    if key not in _INDEXES:
        _INDEXES[key] = RecipeIndex(embedder)
    return _INDEXES[key]
