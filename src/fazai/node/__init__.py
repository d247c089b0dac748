"""``fazai-agent``: the node agent. It dials out to fazaid over WSS with mutual TLS, runs what it is
sent within its own safety policy and capability allow-list, and keeps results on disk until fazaid
has them. Dependency-light on purpose: it imports only :mod:`fazai.wire`, :mod:`fazai.safety`,
:mod:`fazai.config`, the local target and the standard library (plus ``websockets``/``cryptography``).
"""
