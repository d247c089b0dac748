"""Playbooks: declarative responses to alerts, metrics, schedules and node state changes —
schema and loader, trigger matching, guard rails, planning (what-if) and the run engine."""

from fazai.playbooks.engine import run_playbook
from fazai.playbooks.env import FirewallPool, PlaybookEnv
from fazai.playbooks.loader import PlaybookError, load_dir, load_playbook, parse_playbook
from fazai.playbooks.schema import Playbook

__all__ = [
    "FirewallPool",
    "Playbook",
    "PlaybookEnv",
    "PlaybookError",
    "load_dir",
    "load_playbook",
    "parse_playbook",
    "run_playbook",
]
