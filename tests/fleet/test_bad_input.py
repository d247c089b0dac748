"""Bad input at the gateway: each is refused or cut with a logged reason, and a good connection held
alongside keeps working. Real TLS and WebSockets on loopback (the hub in-process, raw clients)."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import ssl
from pathlib import Path

import pytest
import structlog
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import NameOID
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus, WebSocketException

from fazai import wire
from fazai.config import Settings
from fazai.fleet import ca as ca_mod
from fazai.fleet.gateway import Fleet, start_fleet
from fazai.node.identity import Identity, IdentityError, enroll
from fazai.store import Store
from fleet.harness import free_port


@pytest.fixture
async def fleet(tmp_path):
    settings = Settings.model_validate(
        {
            "paths": {"state_dir": str(tmp_path / "srv")},
            "fleet": {
                "enabled": True,
                "gateway_port": free_port(),
                "enroll_port": free_port(),
                "credits": 8,
                "max_frame_bytes": 65536,
                "revocation_poll_s": 0.2,
            },
        }
    )
    store = await Store.open(f"sqlite+aiosqlite:///{tmp_path / 'f.db'}")
    f = await start_fleet(settings, store.engine)
    yield f
    await f.stop()
    await store.close()


async def issue(fleet: Fleet, folder: Path, name: str) -> ssl.SSLContext:
    """Enroll ``name`` through the registry; a client context holding its certificate."""
    key = ca_mod.new_key()
    token, _, _ = await fleet.registry.create_token("lab", 60)
    out = await fleet.registry.enroll(token, ca_mod.make_csr(key, name).decode())
    return _ctx(fleet, folder, name, key, out.cert or "")


def _ctx(fleet: Fleet, folder: Path, name: str, key, cert_pem: str) -> ssl.SSLContext:
    folder.mkdir(parents=True, exist_ok=True)
    ca_mod.write_private(folder / f"{name}.key", ca_mod.key_pem(key))
    (folder / f"{name}.crt").write_text(cert_pem)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(cafile=str(fleet.ca.cert_path))
    ctx.load_cert_chain(folder / f"{name}.crt", folder / f"{name}.key")
    return ctx


async def dial(fleet: Fleet, ctx: ssl.SSLContext, hello: bool = True) -> ClientConnection:
    ws = await connect(
        f"wss://127.0.0.1:{fleet.gateway_port}",
        ssl=ctx,
        compression=None,
        max_size=None,
        open_timeout=10,
        proxy=None,
    )
    if hello:
        await ws.send(wire.frame("hello", wire.Hello(agent_version="test")))
        env, spec = wire.parse(await ws.recv())
        assert env.kind == "ack" and spec.accepted
    return ws


async def still_works(fleet: Fleet, ws: ClientConnection, name: str) -> None:
    """The good connection gets an action and its result is stored."""
    (st,) = await fleet.hub.submit([name], "command.exec", {"command": "true"})
    env, _ = wire.parse(await asyncio.wait_for(ws.recv(), 10))
    assert env.kind == "command.exec" and env.id == st.id
    await ws.send(wire.frame("command.exit", wire.CommandExit(action=st.id, exit_code=0)))
    row = await fleet.hub.wait(st.id, 10)
    assert row["state"] == "done"
    env, _ = wire.parse(await asyncio.wait_for(ws.recv(), 10))
    assert env.kind == "ack"


async def refused_tls(fleet: Fleet, ctx: ssl.SSLContext) -> None:
    with pytest.raises((ssl.SSLError, OSError, WebSocketException)):
        ws = await dial(fleet, ctx, hello=False)
        await ws.recv()  # TLS 1.3: the server's refusal can arrive after the client's handshake


async def test_tls_refusals_are_logged(fleet: Fleet, tmp_path) -> None:
    good = await dial(fleet, await issue(fleet, tmp_path, "good"))
    plain = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    plain.load_verify_locations(cafile=str(fleet.ca.cert_path))
    other = ca_mod.CertificateAuthority.load_or_create(tmp_path / "other-ca")
    key = ca_mod.new_key()
    foreign_pem = other.sign_node(ca_mod.make_csr(key, "foreign"), "foreign", "lab", 30).pem
    foreign = _ctx(fleet, tmp_path, "foreign", key, foreign_pem)
    # Expired: signed by our CA, known to the registry, but past its not_after.
    key2 = ca_mod.new_key()
    now = dt.datetime.now(dt.UTC)
    expired = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "old")]))
        .issuer_name(fleet.ca.cert.subject)
        .public_key(key2.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=40))
        .not_valid_after(now - dt.timedelta(days=10))
        .sign(fleet.ca.key, hashes.SHA256())
    )
    from cryptography.hazmat.primitives import serialization

    old = _ctx(fleet, tmp_path, "old", key2, expired.public_bytes(serialization.Encoding.PEM).decode())
    with structlog.testing.capture_logs() as logs:
        await refused_tls(fleet, plain)
        await refused_tls(fleet, foreign)
        await refused_tls(fleet, old)
        await asyncio.sleep(0.2)
    reasons = [e["reason"] for e in logs if e["event"] == "tls_refused"]
    assert any("no client certificate" in r for r in reasons), reasons
    assert any("unable to get local issuer" in r or "not signed by" in r for r in reasons), reasons
    assert any("expired" in r for r in reasons), reasons
    await still_works(fleet, good, "good")


async def test_revoked_refused_at_handshake_and_cut_live(fleet: Fleet, tmp_path) -> None:
    good = await dial(fleet, await issue(fleet, tmp_path, "good"))
    ctx = await issue(fleet, tmp_path, "bad")
    live = await dial(fleet, ctx)
    with structlog.testing.capture_logs() as logs:
        await fleet.registry.revoke("bad", "key leaked")
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(live.recv(), 5)
        assert closed.value.rcvd is not None and closed.value.rcvd.reason == "certificate revoked"
        with pytest.raises(InvalidStatus) as e:
            await dial(fleet, ctx)
    assert e.value.response.status_code == 403 and b"key leaked" in e.value.response.body
    assert any(x["event"] == "agent_refused" and "key leaked" in x["reason"] for x in logs)
    await still_works(fleet, good, "good")


@pytest.mark.parametrize(
    ("payload", "code", "words"),
    [
        ("{not json", 1008, "not JSON"),
        (json.dumps({"v": 1, "kind": "hello.world", "id": "x"}), 1008, "unknown kind"),
        (json.dumps({"v": 1, "kind": "command.exit", "id": "x", "spec": {"action": 5}}), 1008, "invalid"),
        ("x" * 70000, 1009, ""),
    ],
)
async def test_malformed_and_oversized_frames_cut(fleet: Fleet, tmp_path, payload, code, words) -> None:
    good = await dial(fleet, await issue(fleet, tmp_path, "good"))
    bad = await dial(fleet, await issue(fleet, tmp_path, "noisy"))
    with structlog.testing.capture_logs() as logs:
        await bad.send(payload)
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                await asyncio.wait_for(bad.recv(), 5)
        await asyncio.sleep(0.1)
    frame = closed.value.rcvd
    assert frame is not None and frame.code == code
    cut = [x for x in logs if x["event"] == "agent_cut" and x["node"] == "noisy"]
    assert cut and words in cut[0]["reason"]
    await still_works(fleet, good, "good")


async def test_unknown_version_and_no_hello(fleet: Fleet, tmp_path) -> None:
    good = await dial(fleet, await issue(fleet, tmp_path, "good"))
    ctx = await issue(fleet, tmp_path, "future")
    for first in (
        json.dumps({"v": 2, "kind": "hello", "id": "h", "spec": {"agent_version": "9"}}),
        wire.frame("heartbeat", wire.Heartbeat()),
    ):
        ws = await dial(fleet, ctx, hello=False)
        await ws.send(first)
        env, spec = wire.parse(await ws.recv())
        assert env.kind == "error"
        assert "version" in spec.message or "first frame must be hello" in spec.message
        with pytest.raises(ConnectionClosed):
            await ws.recv()
    await still_works(fleet, good, "good")


async def test_credit_flood_cut(fleet: Fleet, tmp_path) -> None:
    good = await dial(fleet, await issue(fleet, tmp_path, "good"))
    flood = await dial(fleet, await issue(fleet, tmp_path, "flood"))
    (st,) = await fleet.hub.submit(["flood"], "command.exec", {"command": "yes"})
    await flood.recv()
    with structlog.testing.capture_logs() as logs:
        with pytest.raises(ConnectionClosed):
            for i in range(100000):  # ignores the window of 8 and never waits for an ack
                out = wire.CommandOutput(action=st.id, seq=i, stream="stdout", data="y\n" * 1000)
                await flood.send(wire.frame("command.output", out))
        await asyncio.sleep(0.1)
    assert any(x["event"] == "agent_cut" and "credit exceeded" in x["reason"] for x in logs)
    await still_works(fleet, good, "good")


async def test_token_reuse_and_wrong_pin_over_the_wire(fleet: Fleet, tmp_path) -> None:
    token, _, _ = await fleet.registry.create_token("lab", 60)
    url = f"wss://127.0.0.1:{fleet.enroll_port}"
    await enroll(Identity(tmp_path / "a1"), url, token, "first")
    with pytest.raises(IdentityError, match="already used"):
        await enroll(Identity(tmp_path / "a2"), url, token, "second")
    other = ca_mod.CertificateAuthority.load_or_create(tmp_path / "other")
    t2, _, _ = await fleet.registry.create_token("lab", 60)
    with pytest.raises(IdentityError, match="does not match the token's pin"):
        await enroll(Identity(tmp_path / "a3"), url, t2.rsplit(".", 1)[0] + "." + other.pin, "third")
    t3, _, _ = await fleet.registry.create_token("lab", 0.001)
    await asyncio.sleep(0.05)
    with pytest.raises(IdentityError, match="expired"):
        await enroll(Identity(tmp_path / "a4"), url, t3, "fourth")


async def test_renewal_over_the_live_connection(fleet: Fleet, tmp_path) -> None:
    ctx = await issue(fleet, tmp_path, "renew-me")
    ws = await dial(fleet, ctx)
    old_serial = ca_mod.cert_serial((tmp_path / "renew-me.crt").read_text())
    csr = ca_mod.make_csr(ca_mod.new_key(), "renew-me").decode()
    await ws.send(wire.frame("cert.renew", wire.CertRenew(csr=csr)))
    env, spec = wire.parse(await asyncio.wait_for(ws.recv(), 10))
    assert env.kind == "cert.issued"
    new_serial = ca_mod.cert_serial(spec.cert)
    assert new_serial != old_serial and await fleet.registry.check_serial(new_serial, "renew-me") is None
    # A CSR for another name is refused with a reason; the connection stays up.
    await ws.send(
        wire.frame("cert.renew", wire.CertRenew(csr=ca_mod.make_csr(ca_mod.new_key(), "x").decode()))
    )
    env, spec = wire.parse(await asyncio.wait_for(ws.recv(), 10))
    assert env.kind == "error" and "names 'x'" in spec.message
    await still_works(fleet, ws, "renew-me")


def test_agent_renews_with_a_third_of_its_life_left(tmp_path) -> None:
    ca = ca_mod.CertificateAuthority.load_or_create(tmp_path / "ca")
    ident = Identity(tmp_path / "agent")
    ident.save_cert(ca.sign_node(ident.csr("n"), "n", "lab", 30).pem)
    now = dt.datetime.now(dt.UTC)
    assert not ident.needs_renewal(1 / 3, now + dt.timedelta(days=19))
    assert ident.needs_renewal(1 / 3, now + dt.timedelta(days=21))
