"""Facts collect over any target: the same collectors over ssh give what they give locally."""

from __future__ import annotations

from fazai.facts import collect_facts
from fazai.targets.local import LocalTarget
from targets.sshd import SSHServer
from targets.test_contract import ssh_target


async def test_facts_over_ssh_match_the_local_facts(sshd: SSHServer) -> None:
    t = ssh_target(sshd)
    try:
        remote = await collect_facts(t, budget_s=20)
        local = await collect_facts(LocalTarget(), budget_s=20)
    finally:
        await t.close()
    assert remote.target == "sshd-test" and local.target == "local"
    # The sshd runs on this machine: the machine-wide facts agree.
    assert remote.os == local.os and remote.os is not None
    assert remote.kernel == local.kernel and remote.cpu and remote.cpu["cores"] == local.cpu["cores"]
    assert remote.memory and remote.memory["total"] == local.memory["total"]
    assert {d["mount"] for d in remote.disks or []} == {d["mount"] for d in local.disks or []}
    assert set(remote.errors) == set(local.errors)  # what cannot be collected here, fails there too
    assert t.connects == 1  # ten collectors, one connection
