"""Serve a :class:`Simulator` over real HTTP(S) with uvicorn on a free port, in a thread."""

from __future__ import annotations

import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import uvicorn

from .app import Simulator


@contextmanager
def serve(
    sim: Simulator,
    *,
    certfile: Path | None = None,
    keyfile: Path | None = None,
    client_ca: Path | None = None,
) -> Iterator[str]:
    """Yield the base URL (``http://127.0.0.1:PORT``) while the simulator is served.

    ``certfile``/``keyfile`` serve HTTPS; ``client_ca`` also requires a client certificate (mTLS).
    """
    # Port 0: the kernel picks a free port; we read it back once the server listens. (Handing uvicorn a
    # pre-bound socket instead leaves Nagle on, which costs ~40 ms per request.)
    config = uvicorn.Config(
        sim,
        host="127.0.0.1",
        port=0,
        log_level="warning",
        lifespan="off",
        ssl_certfile=str(certfile) if certfile else None,
        ssl_keyfile=str(keyfile) if keyfile else None,
        ssl_ca_certs=str(client_ca) if client_ca else None,
        ssl_cert_reqs=ssl.CERT_REQUIRED if client_ca else ssl.CERT_NONE,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the OPNsense simulator did not start")
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    scheme = "https" if certfile else "http"
    try:
        yield f"{scheme}://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=5)
