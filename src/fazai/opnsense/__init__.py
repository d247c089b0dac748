"""OPNsense connector: an async REST client, idempotent operations with diffs and dry-run,
safe apply with rollback, the ``fazai_block`` blocklist, Suricata alerts and agent tool definitions.

Nothing is installed on the firewall: everything goes through OPNsense's own REST API
(API key/secret over HTTP basic auth).
"""

from fazai.opnsense.client import OPNsenseClient
from fazai.opnsense.errors import OPNsenseError
from fazai.opnsense.version import Capabilities, FirmwareVersion

__all__ = ["Capabilities", "FirmwareVersion", "OPNsenseClient", "OPNsenseError"]
