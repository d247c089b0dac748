"""Answer from verified recipes first: a question a recipe answers is run and read, not generated.

For a new goal, each part of the question (:func:`fazai.answers.slots.split_question`) is matched
against the knowledge base's answerable recipes (operator-verified items with a command and an
extractor). A part matches when the best recipe's similarity reaches ``threshold`` (measured by
``bench/bench_recipes.py``), its slots fill from the part, and the part names nothing the recipe does
not take. Matched commands run through the same executor and policy as the model's (read-only only),
their output streams as usual, and the extractor reads the answer. When every part is answered and the
answer passes the grounding gate, the run ends there (``answer_source: "recipe"``); otherwise the model
takes over with those outputs already in its history.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import aclosing
from dataclasses import dataclass, field
from typing import Any

from fazai.answers.extract import EXTRACTORS, NoAnswer
from fazai.answers.question import wants
from fazai.answers.slots import fill_slots, split_question, substitute, unconsumed
from fazai.answers.values import content_words, extract_values, words_related
from fazai.protocol import ShellAction, action_line

log = logging.getLogger(__name__)

RecipeSearch = Callable[[str, int], Awaitable[list[tuple[Any, float]]]]  # (item, similarity)


@dataclass(frozen=True, slots=True)
class Match:
    """A recipe that answers one part of the question, with its command ready to run."""

    part: str
    item_id: str
    title: str
    similarity: float
    command: str
    extract: str
    slots: dict[str, str]


@dataclass
class DirectAnswers:
    """Matches question parts to answerable recipes (``search``: the KB's recipe search)."""

    search: RecipeSearch
    threshold: float = 0.76  # KBSettings.answer_threshold
    policy: Any = None  # only commands the safety policy classifies read-only are offered
    questions_only: bool = False  # agent mode: only a goal that asks something (not "restart nginx")
    # Embeddings rank "which kernel modules are loaded?" close to the kernel-version recipe; words do not:
    # the share of the question's content words the recipe's own words cover moves the score.
    vocabulary_weight: float = 0.2
    misses: list[dict[str, Any]] = field(default_factory=list)  # why parts did not match (for the log)

    async def plan(self, question: str) -> list[Match | None]:
        """One entry per part: its match, or None."""
        self.misses = []
        if self.questions_only and wants(question) == "any" and not question.rstrip().endswith("?"):
            return []
        return [await self._match(p) for p in split_question(question)]

    async def _match(self, part: str) -> Match | None:
        try:
            hits = await self.search(part, 3)
        except Exception as e:  # the KB is a shortcut, never a reason to fail
            log.warning("recipe search failed: %s", e)
            return None
        ranked = sorted(
            (
                (item, sim + self.vocabulary_weight * (_vocabulary_share(part, item) - 0.5))
                for item, sim in hits
            ),
            key=lambda h: -h[1],
        )
        # Only the best: falling back to the runner-up answers another question, unless the best
        # is ruled out by its own words (``requires``/``rejects``), which tell close recipes apart,
        # or by the question (it names no value the recipe needs, or it asks which and the best counts).
        for item, score in ranked[:2]:
            spec = item.answer
            if spec is None or score < self.threshold:
                return None
            if (spec.requires and not any(re.search(r, part, re.I) for r in spec.requires)) or any(
                re.search(r, part, re.I) for r in spec.rejects
            ):
                self.misses.append({"part": part, "recipe": item.id, "why": "its words rule it out"})
                continue
            if spec.extract == "count" and wants(part) == "name":  # "top source of failed logins?"
                self.misses.append({"part": part, "recipe": item.id, "why": "it counts; the part asks which"})
                continue
            filled = fill_slots(part, spec.slots, spec.defaults)
            if filled is None:  # the question names no user for a per-user recipe: not what it asks
                self.misses.append({"part": part, "recipe": item.id, "why": "a value it needs is not named"})
                continue
            extra = unconsumed(part, filled, " ".join([item.title, *spec.examples]))
            if extra:
                why = "the question names " + ", ".join(v.text for v in extra)
                self.misses.append({"part": part, "recipe": item.id, "why": why})
                return None
            command = substitute(spec.command, filled.values)
            if self.policy is not None and _risk(self.policy.check_command(command)) != "read_only":
                self.misses.append({"part": part, "recipe": item.id, "why": "its command is not read-only"})
                return None
            return Match(part, item.id, item.title, round(score, 3), command, spec.extract, filled.values)
        return None


_GENERIC = frozenset(
    [
        "machine",
        "server",
        "box",
        "host",
        "system",
        "this",
        "here",
        "right",
        "now",
        "currently",
        "give",
        "tell",
        "list",
        "show",
    ]
)


def _vocabulary_share(part: str, item: Any) -> float:
    """How much of what the question is about the recipe's own words (title, examples, tags) cover:
    embeddings rank "which kernel modules are loaded?" close to the kernel-version recipe; words do not."""
    asked = {w for w in content_words(part) if w not in _GENERIC}
    asked -= {w for v in extract_values(part) for w in content_words(v.text)}  # slot values, not topics
    if not asked:
        return 1.0
    vocab = content_words(" ".join([item.title, *item.answer.examples, *item.tags]))
    return sum(1 for w in asked if words_related({w}, vocab)) / len(asked)


def _risk(decision: Any) -> str:
    return str(getattr(decision.risk, "value", decision.risk))


@dataclass
class DirectResult:
    """What the direct path did: the answer when every part was answered, else None."""

    answer: str | None = None
    answered: list[str] = field(default_factory=list)
    recipes: list[str] = field(default_factory=list)


async def answer_directly(
    question: str, direct: DirectAnswers, run_action: Callable[..., AsyncIterator[Any]], out: DirectResult
) -> AsyncIterator[Any]:
    """Run the matched recipes (``run_action(action, match)`` yields events, then the outcome data);
    yields their events and fills ``out``."""
    t0 = time.monotonic()
    matches = await direct.plan(question)
    if not any(matches):
        return
    answers: list[str] = []
    for m in matches:
        if m is None:
            continue
        action = ShellAction(command=m.command)
        output: dict[str, Any] = {}
        async with aclosing(run_action(action, m, output)) as events:
            async for e in events:
                yield e
        stdout = str(output.get("stdout") or "")
        if output.get("failed"):
            continue
        try:
            text = EXTRACTORS[m.extract](stdout, m.slots, m.part)
        except (NoAnswer, ValueError, KeyError, IndexError) as e:
            log.info("recipe %s did not answer %r: %s", m.item_id, m.part, e)
            continue
        answers.append(text)
        out.answered.append(m.part)
        out.recipes.append(m.item_id)
    if len(answers) == len(matches) and all(matches):
        out.answer = " ".join(answers)
    log.debug("direct answers in %.3fs: %d of %d parts", time.monotonic() - t0, len(answers), len(matches))


def said_for(action: ShellAction, match: Match) -> str:
    """What the history records as the assistant's turn for a recipe's command."""
    return f"(verified recipe {match.item_id}: {match.title})\n" + action_line(action)
