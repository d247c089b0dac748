"""Grounded answers: the concrete values of an answer, checked against what the session observed.

``ground(answer, evidence)`` → :class:`Verdict`. The evidence is built from the session's events
(:class:`Evidence`), so the live loop, a resumed run and the benchmark judge an answer the same way.
"""

from fazai.answers.evidence import Evidence, Source
from fazai.answers.grounding import Grounding, Verdict, ground
from fazai.answers.values import Value, extract_values

__all__ = ["Evidence", "Grounding", "Source", "Value", "Verdict", "extract_values", "ground"]
