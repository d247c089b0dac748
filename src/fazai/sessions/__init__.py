"""Running agent sessions: the manager (start, continue, abort, persist), the live hub that fans
events out, the glue from settings to the agent loop, run metrics and structured logs.

Shared by the daemon (``fazai.server``, which adds HTTP/SSE and access control on top) and the CLI's
embedded mode, so that neither imports the other.
"""
