"""Failed sign-ins are limited per client address and per user name (in memory, per daemon)."""

from __future__ import annotations

import time
from collections import deque


class LoginLimiter:
    """At most ``limit`` failures per key in ``window_s``; then refuse until the oldest ages out."""

    def __init__(self, limit: int = 5, window_s: float = 60.0, clock=time.monotonic):  # type: ignore[no-untyped-def]
        self.limit = limit
        self.window_s = window_s
        self._clock = clock
        self._fails: dict[str, deque[float]] = {}

    def _recent(self, key: str) -> deque[float]:
        q = self._fails.setdefault(key, deque())
        cutoff = self._clock() - self.window_s
        while q and q[0] < cutoff:
            q.popleft()
        return q

    def retry_after(self, *keys: str) -> float:
        """Seconds to wait before another try (0 = allowed)."""
        wait = 0.0
        for k in keys:
            q = self._recent(k)
            if len(q) >= self.limit:
                wait = max(wait, q[0] + self.window_s - self._clock())
        return max(0.0, wait)

    def failed(self, *keys: str) -> None:
        """Record one failure for each key."""
        now = self._clock()
        for k in keys:
            self._recent(k).append(now)
        if len(self._fails) > 10000:  # bounded memory under a spray of names
            for k in [k for k, q in self._fails.items() if not q][:5000]:
                del self._fails[k]

    def succeeded(self, *keys: str) -> None:
        """Forget the failures of these keys."""
        for k in keys:
            self._fails.pop(k, None)
