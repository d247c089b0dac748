"""Serve a :class:`Simulator` over real HTTP(S) with uvicorn on a free port, in a thread."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import uvicorn

from tests.opnsense_sim.app import Simulator


@contextmanager
def serve(sim: Simulator, *, certfile: Path | None = None, keyfile: Path | None = None) -> Iterator[str]:
    """Yield the base URL (``http://127.0.0.1:PORT``) while the simulator is served."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))  # free port chosen by the kernel, handed to uvicorn as a socket
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        sim,
        log_level="warning",
        lifespan="off",
        ssl_certfile=str(certfile) if certfile else None,
        ssl_keyfile=str(keyfile) if keyfile else None,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the OPNsense simulator did not start")
        time.sleep(0.01)
    scheme = "https" if certfile else "http"
    try:
        yield f"{scheme}://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=5)
        sock.close()
