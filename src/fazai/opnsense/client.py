"""Async REST client for OPNsense: basic auth, TLS (CA bundle, optional mTLS), timeouts,
retries with backoff and jitter for reads only, and error shapes mapped to typed errors."""

from __future__ import annotations

import asyncio
import random
import ssl
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from fazai.opnsense import errors as E
from fazai.opnsense.version import Capabilities, FirmwareVersion

# Transient HTTP statuses worth retrying for a read. 500 is OPNsense's UserException shape: not transient.
_RETRY_STATUS = {502, 503, 504}


@dataclass
class ClientOptions:
    """Connection options of one firewall."""

    verify_tls: bool = True
    ca_file: Path | None = None
    client_cert: Path | None = None
    client_key: Path | None = None
    timeout_s: float = 30.0
    read_retries: int = 3
    backoff_s: float = 0.5
    backoff_max_s: float = 8.0


@dataclass
class FirmwareInfo:
    """What ``core/firmware/info`` told us on connect."""

    version: FirmwareVersion | None
    product: dict[str, Any] = field(default_factory=dict)


class OPNsenseClient:
    """One firewall's API. Use ``async with OPNsenseClient(...) as c`` or call :meth:`aclose`."""

    def __init__(
        self,
        url: str,
        key: str,
        secret: str,
        options: ClientOptions | None = None,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self.options = options or ClientOptions()
        self.info: FirmwareInfo | None = None
        self._caps: Capabilities | None = None
        self._auth = httpx.BasicAuth(key, secret)
        self._verify: ssl.SSLContext | bool = self._ssl_context() if self.url.startswith("https") else True
        self._transport = transport
        self._http = httpx.AsyncClient(
            base_url=self.url + "/api/",
            auth=self._auth,
            verify=self._verify,
            timeout=httpx.Timeout(self.options.timeout_s),
            transport=transport,
            headers={"Accept": "application/json"},
        )

    def _ssl_context(self) -> ssl.SSLContext | bool:
        o = self.options
        if not o.verify_tls:
            return False
        ctx = ssl.create_default_context(cafile=str(o.ca_file) if o.ca_file else None)
        if o.client_cert:
            ctx.load_cert_chain(str(o.client_cert), str(o.client_key) if o.client_key else None)
        return ctx

    async def __aenter__(self) -> OPNsenseClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the HTTP connection pool."""
        await self._http.aclose()

    # ---------------------------------------------------------------- version
    async def connect(self) -> FirmwareInfo:
        """Read the firmware version (``core/firmware/info``, falling back to ``core/firmware/status``)."""
        try:
            data = await self.get("core/firmware/info")
        except (E.PermissionDenied, E.EndpointNotFound):
            data = await self.get("core/firmware/status")
        data = data if isinstance(data, dict) else {}
        product: dict[str, Any] = data.get("product") or {}
        text = str(data.get("product_version") or product.get("product_version") or "")
        try:
            version: FirmwareVersion | None = FirmwareVersion.parse(text)
        except ValueError:
            version = None
        self.info = FirmwareInfo(version=version, product=product)
        self._caps = Capabilities(version)
        return self.info

    async def capabilities(self) -> Capabilities:
        """Capabilities of this firewall (connects on first use)."""
        if self._caps is None:
            await self.connect()
        assert self._caps is not None
        return self._caps

    # ---------------------------------------------------------------- requests
    async def get(self, path: str, params: dict[str, Any] | None = None) -> Any:
        """GET a read endpoint (retried on transient failures)."""
        return await self._request("GET", path, params=params, retry=True)

    async def search(self, path: str, body: dict[str, Any] | None = None) -> Any:
        """POST a search/read endpoint (POST only because the API wants the body); retried."""
        return await self._request("POST", path, json=body or {}, retry=True)

    async def post(self, path: str, body: dict[str, Any] | None = None) -> Any:
        """POST a mutating endpoint. Never retried: a retry could apply a change twice."""
        # An empty body with a JSON content type is rejected (HTTP 400), so always send an object.
        return await self._request("POST", path, json=body if body is not None else {}, retry=False)

    async def probe_new_connection(
        self, path: str = "core/system/status", timeout_s: float | None = None
    ) -> bool:
        """GET ``path`` over a NEW TCP (and TLS) connection, never the pooled keep-alive one.

        pf keeps the states of established connections across a filter reload, so the pooled
        connection can go on working while the new rules drop every new connection. Only a fresh
        connection shows whether the operator (or FazAI's next run) can still get in. True when
        the firewall answers with a status below 400; False on no answer, refusal or an error."""
        limits = httpx.Limits(max_connections=1, max_keepalive_connections=0)
        fresh = httpx.AsyncClient(
            base_url=self.url + "/api/",
            auth=self._auth,
            verify=self._verify,
            timeout=httpx.Timeout(timeout_s if timeout_s is not None else self.options.timeout_s),
            limits=limits,
            # An injected transport (tests) cannot be re-opened: a fresh one is built otherwise.
            transport=self._transport,
            headers={"Accept": "application/json", "Connection": "close"},
        )
        try:
            resp = await fresh.get(path.lstrip("/"))
            return resp.status_code < 400
        except httpx.HTTPError:
            return False
        finally:
            await fresh.aclose()

    async def get_raw(self, path: str) -> bytes:
        """GET a non-JSON endpoint (config.xml download); retried."""
        resp = await self._send("GET", path, retry=True)
        self._raise_for_status(path, resp)
        return resp.content

    async def _request(self, method: str, path: str, *, retry: bool, **kw: Any) -> Any:
        resp = await self._send(method, path, retry=retry, **kw)
        self._raise_for_status(path, resp)
        if not resp.content:
            return None
        try:
            body = resp.json()
        except ValueError as e:
            raise E.ServerError(f"{path}: the firewall answered with non-JSON ({resp.text[:120]!r})") from e
        # UserWarningException: HTTP 200 with the error shape (e.g. moveRuleBefore).
        if isinstance(body, dict) and "errorMessage" in body and body.get("errorLevel") == "warning":
            raise E.OperationFailed(f"{path}: {body.get('errorTitle', 'warning')}: {body['errorMessage']}")
        return body

    async def _send(self, method: str, path: str, *, retry: bool, **kw: Any) -> httpx.Response:
        attempts = 1 + (self.options.read_retries if retry else 0)
        last: Exception | None = None
        for attempt in range(attempts):
            if attempt:
                delay = min(self.options.backoff_max_s, self.options.backoff_s * 2 ** (attempt - 1))
                await asyncio.sleep(delay * (0.5 + random.random()))  # jitter: 50–150 %
            try:
                resp = await self._http.request(method, path.lstrip("/"), **kw)
            except httpx.TimeoutException as e:
                last = E.TransportError(
                    f"{self.url}: no answer within {self.options.timeout_s:g}s ({method} {path}). "
                    "Check that the firewall is up and the URL/port is right, or raise the timeout."
                )
                last.__cause__ = e
                continue
            except httpx.ConnectError as e:
                hint = (
                    "the TLS certificate was not accepted: pass the firewall's CA with --ca-file"
                    if "CERTIFICATE" in str(e).upper() or "SSL" in str(e).upper()
                    else "check the URL, the port and that the web GUI/API listens there"
                )
                last = E.TransportError(f"{self.url}: cannot connect ({e}); {hint}.")
                last.__cause__ = e
                continue
            except httpx.HTTPError as e:
                last = E.TransportError(f"{self.url}: {method} {path} failed: {e}")
                last.__cause__ = e
                continue
            if retry and resp.status_code in _RETRY_STATUS and attempt + 1 < attempts:
                continue
            return resp
        assert last is not None
        raise last

    def _raise_for_status(self, path: str, resp: httpx.Response) -> None:
        code = resp.status_code
        if code < 400:
            return
        try:
            body: Any = resp.json() if resp.content else None
        except ValueError:
            body = resp.text
        msg = body.get("errorMessage") or body.get("message") if isinstance(body, dict) else None
        if code == 401:
            raise E.AuthenticationFailed(
                f"{self.url}: authentication failed (HTTP 401). The API key/secret is wrong, or its user is "
                "disabled or expired. Create a new key under System → Access → Users → API keys and run "
                "`fazai opnsense add` again.",
                status=code,
                body=body,
            )
        if code == 403:
            raise E.PermissionDenied(
                f"{self.url}: the API user lacks the privilege for /api/{path} (HTTP 403). Grant it under "
                "System → Access → Users/Groups → Effective Privileges (see docs/opnsense.md).",
                status=code,
                body=body,
            )
        if code == 404:
            raise E.EndpointNotFound(
                f"{self.url}: /api/{path} does not exist on this OPNsense version (HTTP 404). "
                "Update the firewall, or use an operation this version supports (`fazai opnsense status`).",
                status=code,
                body=body,
            )
        if code == 400:
            raise E.ServerError(f"/api/{path}: bad request (HTTP 400): {msg or body}", status=code, body=body)
        text = str(msg or body or f"HTTP {code}")
        title = body.get("errorTitle", "") if isinstance(body, dict) else ""
        if "in use" in title.lower() or "currently in use" in text.lower():
            raise E.InUse(
                f"/api/{path}: {text} Remove the references first (or delete the items using it).",
                status=code,
                body=body,
            )
        if "denied for write access" in text:
            raise E.PermissionDenied(
                f"/api/{path}: {text}. Give the API user write access (drop 'user-config-readonly', "
                "or grant page-all for sensitive components).",
                status=code,
                body=body,
            )
        raise E.ServerError(
            f"/api/{path}: the firewall failed (HTTP {code}): {text}. "
            "See System → Log Files → Backend/Web GUI.",
            status=code,
            body=body,
        )


def check_saved(endpoint: str, reply: Any) -> str | None:
    """Check an add/set reply; return the new uuid (add) or None. Raise typed errors on failure."""
    if isinstance(reply, dict) and reply.get("result") == "saved":
        return reply.get("uuid")
    if isinstance(reply, dict) and reply.get("validations"):
        raise E.validation_error(endpoint, reply["validations"])
    raise E.OperationFailed(
        f"{endpoint}: the firewall did not save ({reply!r}). The item wrapper key or the method may be wrong."
    )
