"""Tools made on demand: spec → code → validation → registry → run.

* :mod:`fazai.tools.spec` — the tool interface (``SPEC`` + ``run(args, ctx)``), read without running it.
* :mod:`fazai.tools.smith` — ``tool_spec``: the model writes the code, FazAI validates and registers it.
* :mod:`fazai.tools.registry` — built-in, generated (per session) and stable tools.
* :mod:`fazai.tools.use` — ``use_tool``: run a tool with a time limit, streaming its logs.
* :mod:`fazai.tools.sandbox` — bubblewrap / subprocess runner with timeouts.
"""
