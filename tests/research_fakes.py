"""Local stand-ins for Context7 and SearXNG, served over real HTTP on loopback.

They follow the real APIs' shapes (Context7 REST v2 as used by its SDK: ``/api/v2/libs/search``
returns ``{"results": [...], "metadata": {...}}``, ``/api/v2/context`` returns ``codeSnippets`` and
``infoSnippets`` for ``type=json`` and text otherwise, errors are JSON ``{"error", "message"}`` with
401/404/429; SearXNG's ``/search?format=json`` returns ``results``/``answers``/``suggestions``/
``unresponsive_engines`` and answers 403 when the JSON format is not enabled).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

LIBRARIES = [
    {
        "id": "/nginx/nginx",
        "title": "NGINX",
        "description": "HTTP and reverse proxy server, mail proxy server, generic TCP/UDP proxy server",
        "branch": "master",
        "lastUpdateDate": "2026-10-02T09:12:44.000Z",
        "state": "finalized",
        "totalTokens": 412034,
        "totalSnippets": 2210,
        "stars": 24000,
        "trustScore": 9.1,
        "benchmarkScore": 81.5,
        "versions": ["1.27.2"],
    },
    {
        "id": "/postfix/postfix",
        "title": "Postfix",
        "description": "Postfix mail transfer agent",
        "branch": "main",
        "lastUpdateDate": "2026-09-14T17:01:02.000Z",
        "state": "finalized",
        "totalTokens": 150220,
        "totalSnippets": 830,
        "trustScore": 8.0,
        "benchmarkScore": 70.2,
    },
]

CONTEXT = {
    "/nginx/nginx": {
        "codeSnippets": [
            {
                "codeTitle": "Limit request rate per client IP",
                "codeDescription": "Define a shared zone keyed by the client address, then apply it.",
                "codeLanguage": "nginx",
                "codeTokens": 64,
                "codeId": "https://github.com/nginx/nginx/blob/master/docs/limit_req.md#_snippet_0",
                "pageTitle": "ngx_http_limit_req_module",
                "codeList": [
                    {
                        "language": "nginx",
                        "code": "limit_req_zone $binary_remote_addr zone=one:10m rate=1r/s;\n"
                        "location /search/ { limit_req zone=one burst=5; }",
                    }
                ],
            }
        ],
        "infoSnippets": [
            {
                "pageId": "https://nginx.org/en/docs/http/ngx_http_limit_req_module.html",
                "breadcrumb": "Modules > ngx_http_limit_req_module",
                "content": "The ngx_http_limit_req_module module limits the request processing rate.",
                "contentTokens": 22,
            }
        ],
    }
}


@dataclass
class FakeState:
    """What the fakes saw and how they should behave."""

    required_key: str | None = None
    delay_s: float = 0.0
    json_enabled: bool = True
    rate_limited: bool = False
    requests: list[dict[str, Any]] = field(default_factory=list)


class _Handler(BaseHTTPRequestHandler):
    state: FakeState
    kind: str

    def log_message(self, *args: Any) -> None:  # keep test output quiet
        pass

    def _send(self, status: int, body: Any, ctype: str = "application/json") -> None:
        data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (a timeout test): nothing to answer

    def do_GET(self) -> None:
        url = urlparse(self.path)
        q = {k: v[0] for k, v in parse_qs(url.query).items()}
        self.state.requests.append({"path": url.path, "query": q, "auth": self.headers.get("Authorization")})
        if self.state.delay_s:
            time.sleep(self.state.delay_s)
        if self.kind == "context7":
            self._context7(url.path, q)
        else:
            self._searxng(url.path, q)

    def _context7(self, path: str, q: dict[str, str]) -> None:
        st = self.state
        auth = self.headers.get("Authorization")
        if st.required_key is not None and auth != f"Bearer {st.required_key}":
            self._send(401, {"error": "unauthorized", "message": "Invalid API key"})
            return
        if st.rate_limited:
            self._send(429, {"error": "rate_limited", "message": "Too many requests"})
            return
        if path == "/api/v2/libs/search":
            if not q.get("libraryName") or not q.get("query"):
                self._send(400, {"error": "bad_request", "message": "query and libraryName are required"})
                return
            name = q["libraryName"].lower()
            results = [lib for lib in LIBRARIES if name in lib["title"].lower() or name in lib["id"]]
            self._send(
                200, {"results": results, "metadata": {"authentication": "personal" if auth else "none"}}
            )
        elif path == "/api/v2/context":
            lib_id = q.get("libraryId", "")
            if not lib_id or not q.get("query"):
                self._send(400, {"error": "bad_request", "message": "query and libraryId are required"})
                return
            if lib_id not in CONTEXT:
                self._send(404, {"error": "not_found", "message": f"Library {lib_id} not found"})
                return
            body = CONTEXT[lib_id]
            if q.get("type", "txt") == "json":
                self._send(200, body)
            else:
                text = "\n\n".join(s["codeTitle"] for s in body["codeSnippets"])
                self._send(200, text, "text/plain; charset=utf-8")
        else:
            self._send(404, {"error": "not_found", "message": "Not found"})

    def _searxng(self, path: str, q: dict[str, str]) -> None:
        if path != "/search":
            self._send(404, "<html>Not Found</html>", "text/html")
            return
        if q.get("format") == "json" and not self.state.json_enabled:
            self._send(403, "<html><body><h1>403 Forbidden</h1></body></html>", "text/html")
            return
        query = q.get("q", "")
        results = [
            {
                "url": "https://www.fail2ban.org/wiki/index.php/Commands",
                "title": "Commands - Fail2ban",
                "content": f"fail2ban-client status <jail> shows the banned IPs ({query}).",
                "engine": "duckduckgo",
                "engines": ["duckduckgo", "brave"],
                "positions": [1, 2],
                "parsed_url": ["https", "www.fail2ban.org", "/wiki/index.php/Commands", "", "", ""],
                "template": "default.html",
                "score": 4.0,
                "category": "general",
                "publishedDate": None,
            },
            {
                "url": "https://wiki.archlinux.org/title/Fail2ban",
                "title": "fail2ban - ArchWiki",
                "content": "fail2ban scans log files and bans IPs that show malicious signs.",
                "engine": "brave",
                "engines": ["brave"],
                "positions": [3],
                "parsed_url": ["https", "wiki.archlinux.org", "/title/Fail2ban", "", "", ""],
                "template": "default.html",
                "score": 1.0,
                "category": "general",
                "publishedDate": None,
            },
        ]
        self._send(
            200,
            {
                "query": query,
                "number_of_results": 0,
                "results": results,
                "answers": [],
                "corrections": [],
                "infoboxes": [],
                "suggestions": ["fail2ban unban ip"],
                "unresponsive_engines": [["google", "timeout"]],
            },
        )


@contextmanager
def serve(kind: str, state: FakeState | None = None) -> Iterator[tuple[str, FakeState]]:
    """Serve the ``context7`` or ``searxng`` fake on a free loopback port; yields (base URL, state)."""
    st = state or FakeState()
    handler = type("Handler", (_Handler,), {"state": st, "kind": kind})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", st
    finally:
        server.shutdown()
        server.server_close()


def free_port() -> int:
    """A port with nothing listening on it (bound then released)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
