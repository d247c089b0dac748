"""The firewall as a system against the simulator over HTTP: CARP status, the firmware check, update
and upgrade with their progress, config revert to a stored backup, service restarts; and the
simulator's per-version answers for them (opnsense/core's controllers)."""

from __future__ import annotations

import httpx
import pytest

from fazai.opnsense import errors as E
from fazai.opnsense import firmware as fwm
from fazai.opnsense import reads, revert, services
from opnsense_sim.keys import KEY, SECRET

PKGS = [{"name": "opnsense", "current_version": "26.1", "new_version": "26.1.2", "repository": "OPNsense"}]


async def test_carp_status(fw2):
    f, sim = fw2
    none = await reads.carp_status(f)
    assert none["vips"] == [] and none["summary"] == "no CARP virtual IPs on this firewall"
    assert "Could not locate any defined CARP interfaces" in none["message"]
    sim.ops.vips = [
        {"interface": "wan", "vhid": "1", "subnet": "192.0.2.10", "mode": "carp", "advskew": "0"},
        {"interface": "lan", "vhid": "2", "subnet": "10.0.0.1", "mode": "carp", "advskew": "100"},
        {"interface": "lan", "vhid": "", "subnet": "10.0.0.50", "mode": "ipalias"},  # no vhid: not listed
    ]
    sim.ops.carp_state = {"1": "MASTER", "2": "BACKUP"}
    st = await reads.carp_status(f)
    assert [(v["interface"], v["vhid"], v["status"]) for v in st["vips"]] == [
        ("WAN", "1", "MASTER"),
        ("LAN", "2", "BACKUP"),
    ]
    assert st["summary"] == "MASTER for 1 of 2 CARP VIPs (BACKUP, MASTER)" and not st["maintenance_mode"]
    sim.ops.carp_maintenance, sim.ops.carp_demotion = True, 240
    st = await reads.carp_status(f)
    assert st["maintenance_mode"] and st["summary"].endswith("; maintenance mode ON; demotion 240")
    sim.ops.carp_allow = 0  # CARP disabled on this node: core reports every VIP DISABLED
    st = await reads.carp_status(f)
    assert {v["status"] for v in st["vips"]} == {"DISABLED"} and "CARP disabled" in st["summary"]


async def test_firmware_check_then_update_with_progress(fw2):
    f, sim = fw2
    sim.ops.available = {"kind": "update", "packages": PKGS, "needs_reboot": "0"}
    with pytest.raises(E.OperationFailed, match="firmware check"):
        await fwm.update(f, dry_run=True)  # nothing checked yet: no update is known
    lines: list[str] = []
    res = await fwm.check(f, poll_s=0.01, progress=lines.append)
    assert lines[0] == "***GOT REQUEST TO CHECK FOR UPDATES***" and lines[-1] == "***DONE***"
    assert res.data["firmware"]["status"] == "update"
    assert res.data["firmware"]["packages"] == [
        {"name": "opnsense", "old": "26.1", "new": "26.1.2", "reason": "upgrade"}
    ]
    plan = await fwm.update(f, dry_run=True)
    assert plan.changes[0].dry_run and "opnsense 26.1 → 26.1.2" in plan.changes[0].note
    assert not plan.data["reboot_expected"] and sim.ops.updates_run == []
    lines.clear()
    res = await fwm.update(f, poll_s=0.01, progress=lines.append)
    assert sim.ops.updates_run == ["update"] and sim.ops.reboots == 0
    assert res.data["job"] == "done" and any("Upgrading opnsense from 26.1 to 26.1.2" in x for x in lines)
    assert [e["action"] for e in f.journal.list()] == ["firmware_update"]
    # The update flushed the check: a second update is refused until the next check.
    with pytest.raises(E.OperationFailed, match="no firmware update is pending"):
        await fwm.update(f)
    again = await fwm.check(f, poll_s=0.01)  # a second check with the same log still ends
    assert again.data["firmware"]["status"] == "none"


async def test_firmware_update_that_reboots_and_major_upgrade(make_fw):
    f, sim = await make_fw("26.1")
    sim.requests.clear()
    try:
        sim.ops.available = {"kind": "update", "packages": PKGS, "needs_reboot": "1"}
        await fwm.check(f, poll_s=0.01)
        assert (await fwm.update(f, dry_run=True)).data["reboot_expected"]
        res = await fwm.update(f, poll_s=0.01)
        assert res.data["job"] == "reboot" and res.data["api_back"] is True and sim.ops.reboots == 1
        sim.ops.available = {"kind": "upgrade", "major": "26.7", "packages": [
            {"name": "base", "current_version": "26.1", "new_version": "26.7", "repository": "OPNsense"}
        ]}  # fmt: skip
        await fwm.check(f, poll_s=0.01)
        with pytest.raises(E.OperationFailed, match="no firmware update is pending"):
            await fwm.update(f, "update")  # a major upgrade is not an update
        res = await fwm.update(f, "upgrade", poll_s=0.01)
        assert sim.ops.updates_run == ["update", "upgrade"] and res.data["job"] == "reboot"
        assert [m for m, p in sim.requests if p.endswith("core/firmware/upgrade")] == ["POST"]
    finally:
        await f.client.aclose()


async def test_firmware_timeout_and_busy_lock_are_clear_errors(make_fw):
    f, sim = await make_fw("25.7")
    try:
        sim.ops.available = {"kind": "update", "packages": PKGS}
        await fwm.check(f, poll_s=0.01)
        sim.ops.hang = True  # the mirror stalls: the job never ends
        with pytest.raises(fwm.FirmwareTimeout, match=r"still running after 0\.3s") as ei:
            await fwm.update(f, timeout_s=0.3, poll_s=0.05)
        assert "do not power it off" in str(ei.value) and "firmware progress" in str(ei.value)
        job = await fwm.progress_of(f)
        assert job["running"] == "busy" and job["status"] == "running"
        with pytest.raises(E.OperationFailed, match="another firmware job is running"):
            await fwm.check(f)
    finally:
        await f.client.aclose()


async def test_config_revert_to_a_stored_backup_and_back(fw):
    f, sim = fw
    sim.requests.clear()
    await f.ensure_alias("admins", "host", ["10.0.0.9"])
    kept = await f.backup("good state")  # config.xml with admins = 10.0.0.9
    await f.ensure_alias("admins", "host", ["10.0.0.66"])
    await f.ensure_alias("extra", "host", ["10.0.0.7"])
    running_before = dict(sim.running)
    plan = await revert.revert(f, kept.data["id"], dry_run=True)
    assert plan.changes[0].action == "rollback" and plan.changes[0].dry_run
    assert any("10.0.0.66" in line and line.startswith("-") for line in plan.data["diff"])
    assert not [p for m, p in sim.requests if "revertBackup" in p]  # the plan changed nothing
    locals_before = len(f.backups.list())
    res = await revert.revert(f, kept.data["id"])
    assert res.data["backup_before"] == f.backups.get("latest").id
    contents = sorted((a["name"], a["content"]) for a in sim.cols["alias"].items.values())
    assert contents == [("admins", "10.0.0.9")]
    assert sim.running == running_before  # core reloads nothing: config.xml only
    assert len(f.backups.list()) == locals_before + 1  # a fresh backup came first
    assert f.backups.get("latest").note.startswith("before revert to config-")
    entry = f.journal.list()[-1]
    assert entry["action"] == "config_revert" and entry["undo"]["op"] == "config_revert"
    with pytest.raises(E.OperationFailed, match="backup revert"):
        await f.undo()  # a revert is undone by a confirmed revert, not by `undo`
    # Undo: revert to the revision the revert replaced (also found from the fresh local backup).
    await revert.revert(f, entry["undo"]["backup"])
    contents = sorted((a["name"], a["content"]) for a in sim.cols["alias"].items.values())
    assert contents == [("admins", "10.0.0.66"), ("extra", "10.0.0.7")]
    newest = (await revert.history(f))[0]["id"]
    noop = await revert.revert(f, newest)
    assert noop.changes[0].action == "noop"


async def test_config_revert_unknown_ids_are_clear_and_change_nothing(fw2):
    f, sim = fw2
    sim.requests.clear()
    await f.ensure_alias("admins", "host", ["10.0.0.9"])
    with pytest.raises(E.OperationFailed, match="no single backup matches 'nope'"):
        await revert.revert(f, "nope")
    with pytest.raises(E.OperationFailed, match=r"no configuration revision 'config-1\.0000\.xml'"):
        await revert.revert(f, "config-1.0000.xml")
    # A kept backup the firewall no longer has in its history (pruned): found by SHA-256, or not.
    f.backups.save(b'<?xml version="1.0"?>\n<opnsense><gone/></opnsense>\n', "from another firewall")
    with pytest.raises(E.OperationFailed, match="no longer in the firewall's configuration history"):
        await revert.revert(f, "latest")
    assert not [p for m, p in sim.requests if "revertBackup" in p]
    assert [a["name"] for a in sim.cols["alias"].items.values()] == ["admins"]


@pytest.mark.parametrize("version", ["25.1", "25.7", "26.1", "26.7"])
def test_simulated_backup_and_service_endpoints_follow_core(servers, version):
    sim, url = servers[version]
    sim.reset()
    sim.add_key(KEY, SECRET)
    sim.add_key("ro", "ro-secret", user="auditor", readonly=True)
    with httpx.Client(base_url=url + "/api/", auth=(KEY, SECRET)) as c:
        first = c.get("core/backup/backups/this").json()["items"][-1]["id"]
        # revertBackup: every series has it; 26.1+ want a POST (a GET answers "failed").
        got = c.get(f"core/backup/revertBackup/{first}").json()
        assert got == ({"status": "failed"} if version >= "26.1" else {"status": "reverted"})
        assert c.post(f"core/backup/revertBackup/{first}", json={}).json() == {"status": "reverted"}
        assert c.post("core/backup/revertBackup/config-1.xml", json={}).json() == {"status": "not_found"}
        # Restart answers ok for any name (core does not check it) and only for a POST.
        assert c.post("core/service/restart/nosuchservice", json={}).json() == {"result": "ok"}
        assert c.get("core/service/restart/unbound").json() == {"result": "failed"}
        assert c.get("core/firmware/check").json() == {"status": "failure"}
        assert c.get("core/firmware/upgradestatus").json() == {"status": "error", "log": ""}
        assert c.get("diagnostics/interface/getVipStatus").json()["carp"]["allow"] == "1"
    with httpx.Client(base_url=url + "/api/", auth=("ro", "ro-secret")) as ro:
        r = ro.post(f"core/backup/revertBackup/{first}", json={})
        assert r.status_code == 500 and "denied for write access" in r.json()["errorMessage"]


async def test_service_restart(fw2):
    f, sim = fw2
    with pytest.raises(E.OperationFailed, match=r"no service 'nosuch'.*unbound"):
        await services.restart(f, "nosuch")  # core would answer ok: FazAI checks the name first
    plan = await services.restart(f, "Unbound ", dry_run=True)
    assert plan.changes[0].name == "unbound" and sim.ops.restarts == []
    await services.restart(f, "unbound")
    await services.restart(f, "dpinger")  # one instance: found by name
    assert sim.ops.restarts == [("unbound", ""), ("dpinger", "WAN_GW")]
    assert [e["target"] for e in f.journal.list()] == ["unbound", "dpinger/WAN_GW"]
    # pf's restart is a filter reload: a staged rule goes live (why it is security-critical).
    await f.ensure_rule("staged", action="block", interface="wan", source_net="198.51.100.0/24")
    assert not sim.running.get("rule")
    await services.restart(f, "pf")
    assert [r["description"] for r in sim.running["rule"].values()] == ["staged"]
    for name in ("pf", " PF", "pf/", "webgui", "openssh", "configd", "routing"):
        assert services.critical_reason({"service": name}), name
    assert services.critical_reason({"service": "unbound"}) is None
