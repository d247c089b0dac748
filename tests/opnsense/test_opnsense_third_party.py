"""A third-party client from PyPI (oxl-opnsense-client, built against OPNsense 26.1) drives the
simulator over HTTPS: its login-page probe, model ``get``s, CRUD, idempotency and apply must work
as they do against a real firewall. It knows 26.1's field set, so older series are not driven."""

from __future__ import annotations

import pytest

from opnsense_sim import Simulator, serve
from opnsense_sim.pki import make_pki

oxl = pytest.importorskip("oxl_opnsense_client")

RULE = {
    "match_fields": ["description"],
    "description": "oxl: block ssh from bad hosts",
    "interface": ["wan"],
    "action": "block",
    "source_net": "bad_hosts",
    "protocol": "TCP",
    "destination_port": "22",
    "log": True,
}


@pytest.mark.parametrize("version", ["26.1", "26.7"])
def test_oxl_client_manages_aliases_and_rules(tmp_path, version):
    pki = make_pki(tmp_path)
    sim = Simulator(version)
    sim.add_key("oxl-key", "oxl-secret")
    with serve(sim, certfile=pki["cert"], keyfile=pki["key"]) as url:
        port = int(url.rsplit(":", 1)[1])
        c = oxl.Client(
            firewall="127.0.0.1", port=port, token="oxl-key", secret="oxl-secret",
            ssl_ca_file=str(pki["ca"]), api_timeout=5, shell=False,
        )  # fmt: skip
        assert c.test() is True  # reachable, the login page says OPNsense, the credentials work

        def run(module: str, **params):
            out = c.run_module(module, params=params)
            assert out["error"] is None, out["error"]
            return out["result"]

        alias = {"name": "bad_hosts", "type": "host", "content": ["203.0.113.7", "198.51.100.9"]}
        assert run("alias", **alias)["changed"] is True
        assert run("alias", **alias)["changed"] is False  # the model get reads back what was saved
        assert run("alias", **{**alias, "content": ["203.0.113.7"]})["changed"] is True
        item = next(iter(sim.cols["alias"].items.values()))
        assert item["content"] == "203.0.113.7"

        assert run("rule", **RULE, reload=True)["changed"] is True
        rule = next(iter(sim.cols["rule"].items.values()))
        assert (rule["interface"], rule["source_net"], rule["interfacenot"]) == ("wan", "bad_hosts", "0")
        assert "filter" in sim.applied  # reload=True applied it
        assert run("rule", **RULE)["changed"] is False
        assert run("rule", **{**RULE, "log": False})["changed"] is True
        listed = run("list", target="rule")["data"]
        assert [r["description"] for r in listed] == [RULE["description"]]

        assert run("rule", **RULE, state="absent")["changed"] is True
        assert sim.cols["rule"].items == {}
        assert run("alias", name="bad_hosts", state="absent")["changed"] is True
        assert sim.cols["alias"].items == {}
