"""Structured observations: what an action did, as the model sees it.

Output is kept in full in the event log (``exec_log``); the model gets the head and the tail, and the
text states exactly how much was left out.
"""

from __future__ import annotations

from dataclasses import dataclass

from fazai.targets.base import ExecResult


@dataclass(frozen=True, slots=True)
class Excerpt:
    """The head and tail of a text, with what was cut."""

    text: str
    total_chars: int
    omitted_chars: int

    @property
    def truncated(self) -> bool:
        return self.omitted_chars > 0


def excerpt(text: str, head: int, tail: int) -> Excerpt:
    """Keep the first ``head`` and last ``tail`` characters; say how many were omitted between."""
    total = len(text)
    if total <= head + tail:
        return Excerpt(text, total, 0)
    omitted = total - head - tail
    body = (
        text[:head]
        + f"\n[... {omitted} characters omitted: showing the first {head} and the last {tail}"
        + f" of {total} ...]\n"
        + (text[-tail:] if tail else "")
    )
    return Excerpt(body, total, omitted)


def shell_observation(
    action_id: int, command: str, result: ExecResult, head: int, tail: int
) -> tuple[str, dict]:
    """The observation text of a shell command and its structured fields (for the ``observe`` event)."""
    out = excerpt(result.stdout, head, tail)
    err = excerpt(result.stderr, head, tail)
    if result.timed_out:
        status = "timeout"
    elif result.cancelled:
        status = "aborted"
    else:
        status = "ok" if result.exit_code == 0 else "failed"
    header = f"action {action_id} (shell) exit_code={result.exit_code} duration={result.duration_s:.2f}s"
    if result.timed_out:
        header += f" TIMED OUT after {result.duration_s:.0f}s: the command was killed"
    lines = [header]
    if out.text:
        lines.append("stdout:\n" + out.text.rstrip("\n"))
    if err.text:
        lines.append("stderr:\n" + err.text.rstrip("\n"))
    if not out.text and not err.text:
        lines.append("(no output)")
    data = {
        "exit_code": result.exit_code,
        "duration_s": round(result.duration_s, 3),
        "timed_out": result.timed_out,
        "stdout_chars": out.total_chars,
        "stderr_chars": err.total_chars,
        "truncated": out.truncated or err.truncated,
        "command": command,
    }
    return "\n".join(lines), {"status": status, **data}
