"""The CRUD collections the connector manages (paths and wrapper keys from OPNsense's controllers)."""

from __future__ import annotations

from fazai.opnsense.model import Resource

ALIAS = Resource(
    kind="alias",
    base="firewall/alias",
    noun="Item",
    key="alias",
    id_fields=("name",),
    newline_fields=frozenset({"content"}),
    set_fields=frozenset({"proto", "categories"}),
    apply_path="firewall/alias/reconfigure",
)
_RULE_SETS = frozenset({"interface", "source_net", "destination_net", "categories"})
RULE = Resource(
    kind="rule",
    base="firewall/filter",
    noun="Rule",
    key="rule",
    id_fields=("description",),
    set_fields=_RULE_SETS,
    apply_path="firewall/filter/apply",
    model_get="firewall/filter/get",
    model_node=("filter", "rules", "rule"),
    interface_views=True,
    interface_list="firewall/filter/getInterfaceList",
)
SOURCE_NAT = Resource(
    kind="snat",
    base="firewall/source_nat",
    noun="Rule",
    key="rule",
    id_fields=("description",),
    set_fields=_RULE_SETS,
    apply_path="firewall/filter/apply",
)
ONE_TO_ONE = Resource(
    kind="one_to_one",
    base="firewall/one_to_one",
    noun="Rule",
    key="rule",
    id_fields=("description",),
    set_fields=_RULE_SETS,
    apply_path="firewall/filter/apply",
)
DNAT = Resource(  # 26.1+: port forwards; nested source/destination, ``descr`` instead of ``description``
    kind="dnat",
    base="firewall/d_nat",
    noun="Rule",
    key="rule",
    id_fields=("descr",),
    set_fields=frozenset({"interface", "categories"}),
    apply_path="firewall/filter/apply",
    lower_fields=frozenset({"protocol"}),  # DNat's ProtocolField has ChangeCase lower: TCP → tcp
)
HOST_OVERRIDE = Resource(
    kind="host_override",
    base="unbound/settings",
    noun="HostOverride",
    key="host",
    id_fields=("hostname", "domain"),
    apply_path="unbound/service/reconfigure",
)
DNSBL = Resource(  # 26.1+: a list of blocklists
    kind="dnsbl",
    base="unbound/settings",
    noun="Dnsbl",
    key="blocklist",
    id_fields=("description",),
    set_fields=frozenset({"type", "source_nets"}),
    apply_path="unbound/service/dnsbl",
)
WG_SERVER = Resource(
    kind="wg_server",
    base="wireguard/server",
    noun="Server",
    key="server",
    id_fields=("name",),
    set_fields=frozenset({"tunneladdress", "peers", "dns"}),
    apply_path="wireguard/service/reconfigure",
)
WG_PEER = Resource(
    kind="wg_peer",
    base="wireguard/client",
    noun="Client",
    key="client",
    id_fields=("name",),
    set_fields=frozenset({"tunneladdress", "servers"}),
    apply_path="wireguard/service/reconfigure",
)
IDS_POLICY = Resource(
    kind="ids_policy",
    base="ids/settings",
    noun="Policy",
    key="policy",
    id_fields=("description",),
    set_fields=frozenset({"action", "rulesets", "content"}),
    apply_path="ids/service/reloadRules",
)
