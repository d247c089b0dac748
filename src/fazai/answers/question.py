"""What kind of answer a question asks for, and whether an answer gives it.

"Which process uses the most memory?" wants a name; "How many IPs are banned?" a number; "Is ssh
running?" a yes or no. An answer that only restates the question ("The certificate in /srv/certs
expires first.") or answers a count with nothing but a number when a name was asked ("1" to "What
server_name is set?") does not answer, however grounded its values are.
"""

from __future__ import annotations

import re
from typing import Literal

from fazai.answers.values import Value

Wants = Literal["number", "measure", "name", "yes_no", "any"]

_NUMBER = re.compile(
    r"\bhow many\b|\bhow much\b|\bnumber of\b|\bcount\b|\bquant[oa]s?\b|\bqual o n[uú]mero\b|\btotal\b",
    re.I,
)
_MEASURE = re.compile(
    r"\bhow (?:long|big|large|full|old)\b|\bhow much (?:space|memory|ram|disk)\b|\bsize\b|\bpercent|%|"
    r"\busage\b|\buptime\b|\bwhen\b|\bwhat time\b|\bat what time\b|\bexpires?\b|\bversion\b|\bports?\b|"
    r"\b(?:status|exit|return|error|response) codes?\b|"
    r"\bpid\b|\buid\b|\bgid\b|\bload\b|\bh[aá] quanto tempo\b|\btamanho\b|\bvers[aã]o\b|\bportas?\b|"
    r"\bset to\b|\bvalue of\b|\bvalor de\b",
    re.I,
)
_YES_NO = re.compile(
    r"^\s*(?:is|are|does|do|did|can|has|have|was|were|will|should|[eé]|est[aá]|existe|h[aá]|tem)\b", re.I
)
_NAME = re.compile(
    r"^\s*(?:which|what|who|whose|where|qual|quais|quem|onde|name|list|show|top)\b|\bwhich\b|\bwhat is the\b",
    re.I,
)
_YES_WORDS = re.compile(r"\b(?:yes|no|not|none|sim|n[aã]o|nenhum|nenhuma|true|false)\b|n't\b", re.I)


# "Which user has UID 1001?", "which process listens on port 22?": the number is given, not asked.
_GIVEN = re.compile(r"\b(?:uid|gid|pid|ports?|portas?)\s+\d+\b", re.I)


def wants(question: str) -> Wants:
    """The kind of value the question asks for."""
    q = _GIVEN.sub("#", question.strip())
    if _YES_NO.search(q) and not _NAME.search(q.split("?")[0][:12]):
        return "yes_no"
    if _NUMBER.search(q):
        return "number"
    if _MEASURE.search(q):
        return "measure"
    if _NAME.search(q):
        return "name"
    return "any"


def missing_answer(question: str, answer: str, values: list[Value], given: set[int]) -> str | None:
    """Why ``answer`` does not answer ``question`` (None when it does).

    ``given`` holds the positions of values the question itself supplied (restating them answers
    nothing).
    """
    want = wants(question)
    new = [v for v in values if v.start not in given]
    if want == "yes_no":
        return None if _YES_WORDS.search(answer) or new else "it does not say yes or no"
    if want == "name":
        if any(v.kind != "number" for v in new):
            return None
        short = len(re.findall(r"[^\W\d_]{2,}", answer)) <= 3 and not any(v.kind == "number" for v in new)
        if short and answer.strip():
            return None  # a one-word answer ("root", "drop") is the name itself
        return "it does not name what was asked" + (" (it only gives a number)" if new else "")
    if want in ("number", "measure") and not new:
        if re.search(r"\b(?:no|none|zero|nenhum|nenhuma|not)\b", answer, re.I):
            return None  # "none are banned" answers a count
        return "it gives no value"
    return None
