"""Safe apply as the real firewall behaves: alias reconfigure reloads the whole filter, pf keeps
established connections across a reload, and apply/{rev} arms the timer before the reload."""

from __future__ import annotations

import httpx
import pytest

from fazai.opnsense import errors as E

LOCKOUT = {"action": "block", "interface": "wan", "source_net": "127.0.0.0/8", "sequence": "1"}


def _names(sim, which="cols"):
    items = sim.cols["rule"].items if which == "cols" else sim.running.get("rule", {})
    return sorted(i["description"] for i in items.values())


async def test_simulated_alias_reconfigure_reloads_staged_rules(make_fw):
    """Core's alias reconfigure runs `filter reload skip_alias`: staged rules go live, no timer."""
    f, sim = await make_fw("26.1")
    try:
        await f.connect()
        await f.ensure_rule("staged", action="pass", interface="lan")
        assert _names(sim, "running") == []
        await f.apply(["alias"])
        assert _names(sim, "running") == ["staged"] and sim.rollback_timers == {}
    finally:
        await f.client.aclose()


def test_simulated_pf_keeps_established_states(servers):
    """A keep-alive connection that passed before a blocking rule went live keeps working; a new one
    from the same address gets no answer."""
    sim, url = servers["26.1"]
    sim.reset()
    sim.add_key("k", "s")
    with httpx.Client(base_url=url + "/api/", auth=("k", "s"), timeout=0.5) as pooled:
        assert pooled.get("core/system/status").status_code == 200
        body = {"rule": {"description": "oops", **LOCKOUT}}
        assert pooled.post("firewall/filter/addRule", json=body).json()["result"] == "saved"
        assert pooled.post("firewall/filter/apply", json={}).json() == {"status": "OK\n\n"}
        assert pooled.get("core/system/status").status_code == 200  # established: still passes
        fresh = httpx.Client(base_url=url + "/api/", auth=("k", "s"), timeout=0.5)
        with fresh, pytest.raises(httpx.TimeoutException):
            fresh.get("core/system/status")


@pytest.mark.parametrize("version", ["25.1", "25.7", "26.1"])
async def test_lockout_inside_safe_apply_is_rolled_back_by_the_timer(make_fw, version):
    """The rule edit and the alias reconfigure both happen inside the 60 s window; the liveness check
    uses a new connection (the pooled one survives the reload), so the timer is never cancelled."""
    f, sim = await make_fw(version, timeout=1.0)  # 0.3 s flaked under load
    try:
        await f.connect()
        await f.ensure_rule("keep", action="pass", interface="wan", sequence="5")
        await f.safe_apply()
        assert _names(sim, "running") == ["keep"]
        f.client.options.read_retries = 0
        reloads_before = sim.filter_reloads

        async def change():
            return await f.ensure_rule("oops", **LOCKOUT)

        r = await f.safe_apply(change=change)
        rev = r.data["revision"]
        assert r.data["status"] == "rollback_pending", r.notes
        assert any("new connection" in n for n in r.notes)
        assert rev in sim.rollback_timers  # never cancelled
        # Every reload after the savepoint happened with the timer armed (apply/{rev} came first;
        # before the fix the alias reconfigure reloaded the filter, lock-out included, with none).
        assert sim.reload_log[reloads_before:] and all(sim.reload_log[reloads_before:])
        assert sim.filter_reloads > reloads_before
        assert _names(sim, "running") == ["keep", "oops"]  # the lock-out is live…
        sim.clock.advance(61)  # …until the timer fires
        assert await f.api_alive()
        assert _names(sim) == ["keep"] and _names(sim, "running") == ["keep"]
        assert sim.rollbacks_done == [rev]
    finally:
        await f.client.aclose()


async def test_unanswered_apply_does_not_escape_and_is_reverted(make_fw):
    """apply/{rev} did its work but its reply never came: safe_apply reports, and reverts at once
    because a new connection still gets in."""
    f, sim = await make_fw("26.1", timeout=0.3)
    try:
        await f.connect()
        f.client.options.read_retries = 0
        sim.drop_reply_of = {"/api/firewall/filter/apply/"}

        async def change():
            return await f.ensure_rule("harmless", action="pass", interface="lan")

        r = await f.safe_apply(change=change)
        assert r.data["status"] == "rolled_back", r.notes
        assert any("got no answer" in n for n in r.notes)
        assert _names(sim) == [] and _names(sim, "running") == []
    finally:
        sim.drop_reply_of = set()
        await f.client.aclose()


async def test_failed_change_applies_nothing(make_fw):
    f, sim = await make_fw("26.1")
    try:
        await f.connect()

        async def change():
            return await f.ensure_rule("bad", action="pass", protocol="any", destination_port="22")

        with pytest.raises(E.ValidationFailed, match="nothing was applied"):
            await f.safe_apply(change=change)
        assert sim.filter_reloads == 0 and sim.rollback_timers == {}
    finally:
        await f.client.aclose()
