"""The internal CA and the enrollment registry on a real SQLite store."""

from __future__ import annotations

import asyncio
import datetime as dt
import stat

import pytest
from sqlalchemy import update

from fazai.fleet import ca as ca_mod
from fazai.fleet.registry import EnrollError, Registry, parse_ttl
from fazai.fleet.schema import fleet_tokens
from fazai.store import Store


@pytest.fixture
async def reg(tmp_path):
    store = await Store.open(f"sqlite+aiosqlite:///{tmp_path / 'f.db'}")
    ca = ca_mod.CertificateAuthority.load_or_create(tmp_path / "fleet")
    yield Registry(store.engine, ca)
    await store.close()


def _csr(name: str) -> str:
    return ca_mod.make_csr(ca_mod.new_key(), name).decode()


def test_ca_files_private(tmp_path) -> None:
    ca = ca_mod.CertificateAuthority.load_or_create(tmp_path / "fleet")
    assert stat.S_IMODE(ca.key_path.stat().st_mode) == 0o600
    cert, key = ca.ensure_server_cert(["fleet.example"])
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    # Same CA on reopen, same server certificate while its names are unchanged.
    again = ca_mod.CertificateAuthority.load_or_create(tmp_path / "fleet")
    assert again.pin == ca.pin
    assert again.ensure_server_cert(["fleet.example"])[0].read_bytes() == cert.read_bytes()
    ca.key_path.chmod(0o644)
    with pytest.raises(ca_mod.CAError, match="chmod 600"):
        ca_mod.CertificateAuthority.load_or_create(tmp_path / "fleet")


async def test_enroll_once_then_token_spent(reg: Registry) -> None:
    token, _tid, _ = await reg.create_token("sp", 3600)
    out = await reg.enroll(token, _csr("web-01"))
    assert out.status == "issued" and out.node == "web-01" and out.cert
    serial = ca_mod.cert_serial(out.cert)
    left = ca_mod.cert_not_after(out.cert) - dt.datetime.now(dt.UTC)
    assert dt.timedelta(days=29) < left <= dt.timedelta(days=30)
    assert await reg.check_serial(serial, "web-01") is None
    with pytest.raises(EnrollError) as e:
        await reg.enroll(token, _csr("web-02"))
    assert e.value.code == "token_used" and "one-time" in str(e.value)


async def test_concurrent_reuse_issues_one(reg: Registry) -> None:
    token, _, _ = await reg.create_token("sp", 3600)
    res = await asyncio.gather(*(reg.enroll(token, _csr(f"n{i}")) for i in range(4)), return_exceptions=True)
    assert sum(not isinstance(r, Exception) for r in res) == 1


async def test_expired_wrong_ca_and_bad_tokens(reg: Registry, tmp_path) -> None:
    token, tid, _ = await reg.create_token("sp", 3600)
    async with reg.engine.begin() as conn:
        await conn.execute(
            update(fleet_tokens).where(fleet_tokens.c.id == tid).values(expires_at="2020-01-01T00:00:00.000Z")
        )
    with pytest.raises(EnrollError) as e:
        await reg.enroll(token, _csr("a"))
    assert e.value.code == "token_expired"
    other = ca_mod.CertificateAuthority.load_or_create(tmp_path / "other")
    forged = token.rsplit(".", 1)[0] + "." + other.pin
    with pytest.raises(EnrollError) as e:
        await reg.enroll(forged, _csr("a"))
    assert e.value.code == "wrong_ca"
    with pytest.raises(EnrollError) as e:
        await reg.enroll("hello", _csr("a"))
    assert e.value.code == "bad_token"
    good, _, _ = await reg.create_token("sp", 3600)
    tid2 = good.split(".")[1]
    with pytest.raises(EnrollError) as e:
        await reg.enroll(f"fzt1.{tid2}.wrongsecret.{reg.ca.pin}", _csr("a"))
    assert e.value.code == "bad_token"
    with pytest.raises(EnrollError) as e:
        await reg.enroll(good, "not a csr")
    assert e.value.code == "bad_csr"


async def test_approval_flow_and_reject(reg: Registry) -> None:
    key = ca_mod.new_key()
    csr = ca_mod.make_csr(key, "db-01").decode()
    token, _, _ = await reg.create_token("rj", 60)
    out = await reg.enroll(token, csr, require_approval=True)
    assert out.status == "pending" and out.cert is None
    assert [p["node"] for p in await reg.pending()] == ["db-01"]
    # Another key cannot pick up this enrollment.
    with pytest.raises(EnrollError):
        await reg.poll(out.enrollment, _csr("db-01"))
    assert (await reg.poll(out.enrollment, csr)).status == "pending"
    assert await reg.decide(out.enrollment, True) == "db-01"
    done = await reg.poll(out.enrollment, csr)
    assert done.status == "issued" and done.cert
    token2, _, _ = await reg.create_token("rj", 60)
    csr2 = _csr("db-02")
    out2 = await reg.enroll(token2, csr2, require_approval=True)
    await reg.decide(out2.enrollment, False)
    assert (await reg.poll(out2.enrollment, csr2)).status == "rejected"
    with pytest.raises(EnrollError, match="not pending"):
        await reg.decide(out2.enrollment, True)


async def test_revoke_and_renew(reg: Registry) -> None:
    token, _, _ = await reg.create_token("sp", 60)
    out = await reg.enroll(token, _csr("app-01"))
    serial = ca_mod.cert_serial(out.cert)
    new = await reg.renew("app-01", serial, _csr("app-01"))
    assert new.serial != serial and await reg.check_serial(new.serial, "app-01") is None
    with pytest.raises(EnrollError, match="names"):
        await reg.renew("app-01", serial, _csr("other"))
    assert await reg.revoke("app-01", "stolen laptop") == 2
    why = await reg.check_serial(serial, "app-01")
    assert why and "revoked" in why and "stolen laptop" in why
    with pytest.raises(EnrollError):
        await reg.renew("app-01", new.serial, _csr("app-01"))
    # The name is free again after revocation: a re-enrolled node gets a fresh certificate.
    token2, _, _ = await reg.create_token("sp", 60)
    assert (await reg.enroll(token2, _csr("app-01"))).status == "issued"


async def test_name_taken(reg: Registry) -> None:
    t1, _, _ = await reg.create_token("sp", 60)
    t2, _, _ = await reg.create_token("sp", 60)
    await reg.enroll(t1, _csr("dup"))
    with pytest.raises(EnrollError) as e:
        await reg.enroll(t2, _csr("dup"))
    assert e.value.code == "name_taken" and "revoke" in str(e.value)


def test_parse_ttl() -> None:
    assert parse_ttl("1h") == 3600 and parse_ttl("30m") == 1800 and parse_ttl("45") == 45
    for bad in ("", "1w", "-1h", "0"):
        with pytest.raises(ValueError):
            parse_ttl(bad)
