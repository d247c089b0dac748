"""System facts: what the machine is and how it is doing, collected at session start."""

from fazai.facts.collect import ExecResult, Facts, LocalRunner, collect_facts
from fazai.facts.collectors import COLLECTORS, Collector

__all__ = ["COLLECTORS", "Collector", "ExecResult", "Facts", "LocalRunner", "collect_facts"]
