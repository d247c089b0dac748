"""The vault: AES-GCM at rest, wrong master key, key file modes, master-key rotation (and its crash
recovery), ciphertexts bound to their names, and vault references in the configuration."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import pytest

from fazai.config import ConfigError, load_settings
from fazai.store import Store
from fazai.vault import Vault, VaultError, recover_rotation
from fazai.vault import keys as vkeys


@pytest.fixture
async def store(tmp_path: Path):
    s = await Store.open(f"sqlite+aiosqlite:///{tmp_path / 'state' / 'fazai.db'}")
    yield s
    await s.close()


@pytest.fixture(autouse=True)
def _no_env_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(vkeys.ENV_KEY, raising=False)
    monkeypatch.delenv(vkeys.ENV_FILE, raising=False)


async def test_round_trip_and_encrypted_at_rest(store, tmp_path: Path) -> None:
    v = await Vault.open(store.engine, tmp_path / "state", create=True)
    await v.set("opnsense-key", "canary-7f3a-value")
    assert await v.get("opnsense-key") == "canary-7f3a-value"
    info = await v.set("opnsense-key", "canary-second")
    assert info.version == 2 and await v.get("opnsense-key") == "canary-second"
    raw = (tmp_path / "state" / "fazai.db").read_bytes()
    wal = tmp_path / "state" / "fazai.db-wal"
    raw += wal.read_bytes() if wal.exists() else b""
    assert b"canary" not in raw
    assert oct((tmp_path / "state" / "vault.key").stat().st_mode & 0o777) == "0o600"
    assert [s.name for s in await v.list()] == ["opnsense-key"]
    assert await v.remove("opnsense-key") and not await v.remove("opnsense-key")
    with pytest.raises(VaultError, match="no secret opnsense-key"):
        await v.get("opnsense-key")


async def test_wrong_master_key_changes_nothing(store, tmp_path: Path, monkeypatch) -> None:
    v = await Vault.open(store.engine, tmp_path / "state", create=True)
    await v.set("api", "canary-right")
    async with store.engine.connect() as conn:
        before = (await conn.exec_driver_sql("SELECT ciphertext, version FROM vault_secrets")).all()
    monkeypatch.setenv(vkeys.ENV_KEY, base64.urlsafe_b64encode(os.urandom(32)).decode())
    with pytest.raises(VaultError) as e:
        await Vault.open(store.engine, tmp_path / "state")
    assert "does not open this vault" in str(e.value) and "nothing was decrypted or changed" in str(e.value)
    assert "canary" not in str(e.value)
    # A Vault built around the check (as a careless caller might) still refuses to write.
    wrong = Vault(store.engine, vkeys.load(tmp_path / "state"))
    with pytest.raises(VaultError):
        await wrong.set("api", "canary-overwrite")
    async with store.engine.connect() as conn:
        after = (await conn.exec_driver_sql("SELECT ciphertext, version FROM vault_secrets")).all()
    assert before == after
    monkeypatch.setenv(vkeys.ENV_KEY, "c2hvcnQ")  # base64 of "short"
    with pytest.raises(VaultError, match="bytes; it must have 32"):
        vkeys.load(tmp_path / "state")


async def test_key_file_wider_than_0600_is_refused(store, tmp_path: Path) -> None:
    await Vault.open(store.engine, tmp_path / "state", create=True)
    key = tmp_path / "state" / "vault.key"
    key.chmod(0o644)
    with pytest.raises(VaultError, match="mode is 644, readable by others"):
        await Vault.open(store.engine, tmp_path / "state")


async def test_ciphertext_is_bound_to_its_name(store, tmp_path: Path) -> None:
    v = await Vault.open(store.engine, tmp_path / "state", create=True)
    await v.set("a", "canary-a")
    await v.set("b", "canary-b")
    async with store.engine.begin() as conn:
        # Move a's ciphertext under b's name.
        await conn.exec_driver_sql(
            "UPDATE vault_secrets SET nonce=(SELECT nonce FROM vault_secrets WHERE name='a'), "
            "ciphertext=(SELECT ciphertext FROM vault_secrets WHERE name='a') WHERE name='b'"
        )
    with pytest.raises(VaultError, match="does not decrypt"):
        await v.get("b")


async def test_master_key_rotation_reencrypts_everything(store, tmp_path: Path) -> None:
    state = tmp_path / "state"
    v = await Vault.open(store.engine, state, create=True)
    for i in range(3):
        await v.set(f"s{i}", f"canary-{i}")
    async with store.engine.connect() as conn:
        before = dict((await conn.exec_driver_sql("SELECT name, ciphertext FROM vault_secrets")).all())
    old_key = (state / "vault.key").read_text()
    _new, n = await v.rotate_master(state)
    assert n == 3 and (state / "vault.key").read_text() != old_key
    async with store.engine.connect() as conn:
        after = dict((await conn.exec_driver_sql("SELECT name, ciphertext FROM vault_secrets")).all())
    assert all(before[k] != after[k] for k in before)
    fresh = await Vault.open(store.engine, state)
    assert [await fresh.get(f"s{i}") for i in range(3)] == ["canary-0", "canary-1", "canary-2"]
    # The old key no longer opens it.
    (state / "old.key").write_text(old_key)
    (state / "old.key").chmod(0o600)
    os.environ[vkeys.ENV_FILE] = str(state / "old.key")
    try:
        with pytest.raises(VaultError, match="does not open"):
            await Vault.open(store.engine, state)
    finally:
        del os.environ[vkeys.ENV_FILE]


async def test_rotation_crash_recovery(store, tmp_path: Path) -> None:
    state = tmp_path / "state"
    v = await Vault.open(store.engine, state, create=True)
    await v.set("x", "canary-x")
    key = state / "vault.key"
    # A crash after the commit, before the rename: the staged key is adopted.
    saved = key.read_bytes()
    await v.rotate_master(state)
    rotated = key.read_bytes()
    key.write_bytes(saved)
    (state / "vault.key.new").write_bytes(rotated)
    (state / "vault.key.new").chmod(0o600)
    await recover_rotation(store.engine, state)
    assert key.read_bytes() == rotated and not (state / "vault.key.new").exists()
    assert await (await Vault.open(store.engine, state)).get("x") == "canary-x"
    # A crash before the commit: the staged key is dropped, the old one stays.
    vkeys.write_key_file(state / "vault.key.new", os.urandom(32))
    await recover_rotation(store.engine, state)
    assert key.read_bytes() == rotated and not (state / "vault.key.new").exists()


def test_config_takes_only_vault_references(tmp_path: Path) -> None:
    cfg = tmp_path / "f.toml"
    cfg.write_text('[ai_provider]\nprovider = "openai"\napi_key = "sk-literal-canary"\n')
    with pytest.raises(ConfigError) as e:
        load_settings(cfg, environ={})
    assert "must be a vault reference" in str(e.value)
    cfg.write_text('[ai_provider]\nprovider = "openai"\napi_key = "vault:openai"\n')
    assert load_settings(cfg, environ={}).ai_provider.api_key == "vault:openai"


async def test_opnsense_key_and_secret_from_vault_references(store, tmp_path: Path) -> None:
    from fazai.opnsense.store import FirewallEntry, FirewallStore, StoreError
    from fazai.vault import resolver

    state = tmp_path / "state"
    v = await Vault.open(store.engine, state, create=True)
    await v.set("fw1-key", "canary-fw-key")
    await v.set("fw1-secret", "canary-fw-secret")
    settings = load_settings(environ={"FAZAI_PATHS__STATE_DIR": str(state)})
    fws = FirewallStore(state, resolver(settings))
    fws.add(FirewallEntry("fw1", "https://192.0.2.1"), "vault:fw1-key", "vault:fw1-secret")
    assert b"canary" not in fws.secrets.read_bytes()  # only the references are on disk
    assert fws.credentials("fw1") == ("canary-fw-key", "canary-fw-secret")
    fws.add(FirewallEntry("fw2", "https://192.0.2.2"), "vault:missing", "vault:fw1-secret")
    with pytest.raises(StoreError, match="vault:missing: no secret missing"):
        fws.credentials("fw2")
    with pytest.raises(StoreError, match="no vault is available"):
        FirewallStore(state).credentials("fw1")
