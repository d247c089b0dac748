"""A target that runs commands inside a Linux network namespace (``nsenter --net=PATH``).

For nodes that are network namespaces of this machine (containers, the tests' ``unshare -n``
namespaces): the command runs in bash under ``nsenter``, everything else as :class:`LocalTarget`.
"""

from __future__ import annotations

import asyncio
import shlex

from fazai.targets.base import ExecResult, OutputCallback
from fazai.targets.local import LocalTarget


class NetnsTarget:
    """Runs commands on this machine inside the network namespace at ``netns`` (a /proc or /run path)."""

    def __init__(self, netns: str, *, name: str | None = None):
        self.netns = netns
        self.name = name or f"netns:{netns}"
        self._local = LocalTarget(name=self.name)

    def wrap(self, command: str) -> str:
        """The command line that runs ``command`` in the namespace."""
        return f"nsenter --net={shlex.quote(self.netns)} bash --noprofile --norc -c {shlex.quote(command)}"

    async def run(
        self,
        command: str,
        *,
        timeout: float | None = None,  # noqa: ASYNC109 (the target enforces it itself)
        on_output: OutputCallback | None = None,
        cancel: asyncio.Event | None = None,
    ) -> ExecResult:
        """Run ``command`` in the namespace (see ``Target.run``)."""
        return await self._local.run(self.wrap(command), timeout=timeout, on_output=on_output, cancel=cancel)

    async def put_file(self, path: str, data: bytes, mode: int = 0o644) -> None:
        """Files are shared with this machine (only the network is namespaced)."""
        await self._local.put_file(path, data, mode)

    async def get_file(self, path: str) -> bytes:
        """Files are shared with this machine."""
        return await self._local.get_file(path)
