"""The categorised corpus (``tests/safety_corpus/categories/*.txt``) through the policy, with and without
``--yes``: per category, how many dangerous commands would run unasked, how many ``--yes`` would approve,
and how many benign look-alikes would be sent to approval.

Only :class:`SafetyPolicy`'s public decision is used (not the classifier's internals), so the same report
measures any version of the policy.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from fazai.config import SafetySettings

from .policy import SafetyPolicy

NEWLINE_MARK = "⏎"
DANGEROUS = frozenset({"opaque", "destructive", "forbidden"})
LABELS = frozenset({"benign", "changes_state", *DANGEROUS})
# What the session runner approves by itself under --yes when the policy still asks (see
# fazai.sessions.manager): anything it would approve counts as auto-approved.
_YES_APPROVES = frozenset({"read_only", "changes_state"})


@dataclass
class Case:
    """One labelled corpus line."""

    category: str
    label: str
    command: str


def load_categories(directory: Path) -> list[Case]:
    """Every ``LABEL COMMAND`` line of every ``*.txt`` in ``directory`` (category = file stem)."""
    cases: list[Case] = []
    for path in sorted(directory.glob("*.txt")):
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            label, _, cmd = line.partition(" ")
            if label not in LABELS or not cmd:
                raise ValueError(f"{path}:{n}: expected 'LABEL COMMAND' with LABEL in {sorted(LABELS)}")
            cases.append(Case(path.stem, label, cmd.replace(NEWLINE_MARK, "\n")))
    return cases


@dataclass
class CategoryStats:
    """Counts for one category; the lists hold (command, what the policy said)."""

    dangerous: int = 0
    benign: int = 0
    other: int = 0
    allowed: list[tuple[str, str]] = field(default_factory=list)  # dangerous/changes run without asking
    yes_approved: list[tuple[str, str]] = field(default_factory=list)  # dangerous run under --yes
    benign_blocked: list[tuple[str, str]] = field(default_factory=list)


def _risk(d: object) -> str:
    r = getattr(d, "risk", None)
    return str(getattr(r, "value", r))


def run_categories(directory: Path, settings: SafetySettings | None = None) -> dict[str, CategoryStats]:
    """Decide every case with the default policy and with ``--yes``; collect what went wrong."""
    s = settings or SafetySettings()
    plain, yes = SafetyPolicy(s), SafetyPolicy(s, assume_yes=True)
    out: dict[str, CategoryStats] = {}
    for c in load_categories(directory):
        st = out.setdefault(c.category, CategoryStats())
        d = plain.check_command(c.command)
        dy = yes.check_command(c.command)
        said = f"{d.verdict} {_risk(d)}"
        if c.label == "benign":
            st.benign += 1
            if d.verdict != "allow":
                st.benign_blocked.append((c.command, said))
            continue
        if c.label in DANGEROUS:
            st.dangerous += 1
        else:
            st.other += 1
        if d.verdict == "allow":
            st.allowed.append((c.command, said))
        if c.label in DANGEROUS and (
            dy.verdict == "allow" or (dy.verdict == "ask" and _risk(dy) in _YES_APPROVES)
        ):
            st.yes_approved.append((c.command, f"{dy.verdict} {_risk(dy)}"))
    return out


def render(stats: dict[str, CategoryStats], *, verbose: bool = False) -> str:
    """A table: category, dangerous, allowed unasked, auto-approved under --yes, benign, benign blocked."""
    rows = [
        f"{'category':<14} {'dangerous':>9} {'allowed':>8} {'--yes ran':>9} {'benign':>7} {'blocked':>8}",
    ]
    tot = CategoryStats()
    for name, st in sorted(stats.items()):
        rows.append(
            f"{name:<14} {st.dangerous:>9} {len(st.allowed):>8} {len(st.yes_approved):>9} "
            f"{st.benign:>7} {len(st.benign_blocked):>8}"
        )
        tot.dangerous += st.dangerous
        tot.benign += st.benign
        tot.allowed += st.allowed
        tot.yes_approved += st.yes_approved
        tot.benign_blocked += st.benign_blocked
    rate = len(tot.benign_blocked) / tot.benign if tot.benign else 0.0
    rows.append(
        f"{'total':<14} {tot.dangerous:>9} {len(tot.allowed):>8} {len(tot.yes_approved):>9} "
        f"{tot.benign:>7} {len(tot.benign_blocked):>8}  (benign blocked {rate:.1%})"
    )
    if verbose:
        for title, items in (
            ("run without asking", tot.allowed),
            ("dangerous, run under --yes", tot.yes_approved),
            ("benign sent to approval", tot.benign_blocked),
        ):
            rows += [f"  {title}: {cmd!r} → {said}" for cmd, said in items]
    return "\n".join(rows)
