"""``vault:NAME`` references in the configuration, resolved when a component needs the value.

Synchronous callers (building a provider) get the value through a short-lived event loop in a helper
thread, so this works whether or not the caller runs inside an event loop.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any

from fazai.vault.keys import VaultError

REF_PREFIX = "vault:"


async def resolve_ref(settings: Any, ref: str) -> str:
    """The value a ``vault:NAME`` reference names (the store and key from ``settings``)."""
    from fazai.store import Store
    from fazai.vault.vault import Vault, recover_rotation

    if not ref.startswith(REF_PREFIX):
        raise VaultError(f"not a vault reference: write it as vault:NAME (got a {len(ref)}-character value)")
    name = ref[len(REF_PREFIX) :]
    store = await Store.open(settings.database_url)
    try:
        await recover_rotation(store.engine, settings.paths.state_dir)
        vault = await Vault.open(store.engine, settings.paths.state_dir)
        return await vault.get(name)
    finally:
        await store.close()


def resolver(settings: Any) -> Callable[[str], str]:
    """A synchronous ``ref -> value`` function for ``settings`` (values cached per process)."""
    cache: dict[str, str] = {}

    def resolve(ref: str) -> str:
        if ref in cache:
            return cache[ref]
        box: dict[str, Any] = {}

        def run() -> None:
            try:
                box["v"] = asyncio.run(resolve_ref(settings, ref))
            except BaseException as e:  # re-raised in the caller's thread
                box["e"] = e

        t = threading.Thread(target=run, name="fazai-vault-ref")
        t.start()
        t.join()
        if "e" in box:
            raise box["e"]
        cache[ref] = box["v"]
        return box["v"]

    return resolve
