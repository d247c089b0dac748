"""Client behaviour: auth and privilege errors, 404 per version, retries for reads only, TLS."""

from __future__ import annotations

import httpx
import pytest

from fazai.opnsense import errors as E
from fazai.opnsense.client import ClientOptions, OPNsenseClient
from opnsense_sim import Simulator, serve
from opnsense_sim.pki import make_pki as _pki


async def test_bad_credentials_say_what_to_do(make_fw):
    f, _ = await make_fw("26.1", key="wrong", secret="nope")
    async with f.client:
        with pytest.raises(E.AuthenticationFailed) as ei:
            await f.connect()
    assert ei.value.status == 401 and "API keys" in str(ei.value)
    assert ei.value.body == {"status": 401, "message": "Authentication Failed"}


async def test_missing_privilege_and_readonly_user(make_fw):
    f, _ = await make_fw("25.7", key="aliasonly", secret="ao-secret")
    async with f.client:
        await f.connect()  # firmware info is allowed
        await f.ensure_alias("ok_alias", "host", ["192.0.2.1"])  # alias ACL is allowed
        with pytest.raises(E.PermissionDenied) as ei:
            await f.ensure_rule("x", action="pass")
        assert "Effective Privileges" in str(ei.value) and "firewall/filter" in str(ei.value)
    f, _ = await make_fw("25.7", key="readonly", secret="ro-secret")
    async with f.client:
        await f.connect()
        with pytest.raises(E.PermissionDenied, match="user-config-readonly"):
            await f.ensure_alias("x_alias", "host", ["192.0.2.1"])


async def test_endpoint_missing_on_this_version(make_fw):
    f, _ = await make_fw("26.7")
    async with f.client:
        with pytest.raises(E.EndpointNotFound, match="does not exist on this OPNsense version"):
            await f.client.post("firewall/filter/savepoint")
    f, _ = await make_fw("25.1")
    async with f.client:
        await f.client.post("firewall/filter/savepoint")  # exists up to 26.1


def test_simulator_routing_and_auth_shapes(servers):
    sim, url = servers["26.1"]
    with httpx.Client(base_url=url) as c:
        # Unknown routes are 404 before auth; snake_case and camelCase actions both resolve.
        r = c.get("/api/firewall/nothing/here")
        assert (r.status_code, r.json()) == (404, {"errorMessage": "Endpoint not found"})
        r = c.get("/api/firewall/alias/getItem/a/b")  # too many arguments
        assert r.status_code == 404
        r = c.get("/api/firewall/alias/search_item")
        assert r.status_code == 401 and r.content == b""  # no Authorization header: empty body
        r = c.post(
            "/api/firewall/alias/addItem",
            auth=(next(iter(sim.keys)), sim.keys[next(iter(sim.keys))].secret),
            headers={"content-type": "application/json"},
        )
        assert (r.status_code, r.json()) == (400, {"status": 400, "message": "Invalid JSON syntax"})


async def test_reads_retry_writes_do_not(make_fw):
    f, sim = await make_fw("26.1")
    async with f.client:
        await f.connect()
        sim.fail_next = [503, 502]
        assert await f.list_aliases() == []  # retried twice with backoff
        sim.fail_next = [503]
        with pytest.raises(E.ServerError, match="HTTP 503"):
            await f.client.post("firewall/alias/addItem", {"alias": {"name": "a1", "type": "host"}})
        assert sim.cols["alias"].items == {}


async def test_unreachable_firewall_is_a_transport_error():
    c = OPNsenseClient(
        "http://127.0.0.1:9", "k", "s", ClientOptions(timeout_s=1, read_retries=1, backoff_s=0.01)
    )
    async with c:
        with pytest.raises(E.TransportError, match="cannot connect"):
            await c.connect()


async def test_tls_with_ca_bundle(tmp_path):
    pki = _pki(tmp_path)
    ca, cert, key = pki["ca"], pki["cert"], pki["key"]
    sim = Simulator("26.1.2")
    sim.add_key("k", "s")
    with serve(sim, certfile=cert, keyfile=key) as url:
        assert url.startswith("https://")
        async with OPNsenseClient(url, "k", "s", ClientOptions(ca_file=ca, timeout_s=5)) as c:
            info = await c.connect()
            assert str(info.version) == "26.1.2"
        # Without the CA the certificate is refused, and the message says how to fix it.
        async with OPNsenseClient(url, "k", "s", ClientOptions(timeout_s=5, read_retries=0)) as c:
            with pytest.raises(E.TransportError, match="--ca-file"):
                await c.connect()


def test_simulator_crud_contract(servers):
    """The simulator keeps OPNsense's CRUD contract (what the connector relies on)."""
    sim, url = servers["25.1"]
    sim.reset()
    key = next(iter(sim.keys))
    with httpx.Client(base_url=url + "/api/firewall/alias/", auth=(key, sim.keys[key].secret)) as c:
        assert c.get("getItem/00000000-0000-4000-8000-000000000000").json() == []  # unknown uuid
        assert c.get("addItem").json() == {"result": "failed"}  # mutations need POST
        u = "11111111-2222-4333-8444-555555555555"
        body = {"alias": {"name": "upserted", "type": "host", "content": "192.0.2.1"}}
        assert c.post(f"setItem/{u}", json=body).json() == {"result": "saved"}  # upsert
        assert c.post("setItem/not-a-uuid", json=body).json() == {"result": "failed"}
        item = c.get(f"getItem/{u}").json()["alias"]
        assert item["type"]["host"] == {"value": "Host(s)", "selected": 1}
        assert item["content"]["192.0.2.1"]["selected"] == 1
        row = c.get("searchItem").json()["rows"][0]
        assert row == {"uuid": u, "enabled": "1", "name": "upserted", "type": "Host(s)", "description": "",
                       "content": "192.0.2.1"}  # fmt: skip
        assert c.post(f"toggleItem/{u}/0", json={}).json() == {"result": "Disabled", "changed": True}
        assert c.post(f"toggleItem/{u}/0", json={}).json() == {"result": "Disabled", "changed": False}
        r = c.post("addItem", json={"alias": {"name": "upserted", "type": "host"}}).json()
        assert r == {
            "result": "failed",
            "validations": {"alias.name": "An alias with this name already exists."},
        }
        assert c.post(f"delItem/{u}", json={}).json() == {"result": "deleted"}
        assert c.post(f"delItem/{u}", json={}).json() == {"result": "not found"}


async def test_mutual_tls_client_certificate(tmp_path):
    pki = _pki(tmp_path)
    sim = Simulator("26.7.2")
    sim.add_key("k", "s")
    with serve(sim, certfile=pki["cert"], keyfile=pki["key"], client_ca=pki["ca"]) as url:
        opts = ClientOptions(ca_file=pki["ca"], client_cert=pki["client_cert"], client_key=pki["client_key"])
        async with OPNsenseClient(url, "k", "s", opts) as c:
            assert str((await c.connect()).version) == "26.7.2"
        # Without the client certificate the TLS handshake is refused.
        async with OPNsenseClient(
            url, "k", "s", ClientOptions(ca_file=pki["ca"], timeout_s=5, read_retries=0)
        ) as c:
            with pytest.raises(E.TransportError):
                await c.connect()
