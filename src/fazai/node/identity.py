"""The agent's identity: its private key (made here, never sent), its certificate, and enrollment.

Enrollment: fetch the CA certificate from the enrollment listener without trusting anything, check its
SHA-256 against the pin in the bootstrap token, then — over TLS verified against that CA — send the
token and a CSR. Only then is the token's secret on the wire, so a man in the middle learns nothing.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import os
import ssl
from pathlib import Path
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from websockets.asyncio.client import connect

from fazai import wire


class IdentityError(Exception):
    """Enrollment or the certificate files failed: the message says what to do."""


class Identity:
    """Files under the agent's state dir: ``node.key`` (0600), ``node.crt``, ``ca.crt``."""

    def __init__(self, state_dir: Path):
        self.dir = Path(state_dir)
        self.key_path = self.dir / "node.key"
        self.cert_path = self.dir / "node.crt"
        self.ca_path = self.dir / "ca.crt"

    def key(self) -> ec.EllipticCurvePrivateKey:
        """The node key, created (0600) on first use."""
        if not self.key_path.exists():
            key = ec.generate_private_key(ec.SECP256R1())
            _write(
                self.key_path,
                key.private_bytes(
                    serialization.Encoding.PEM,
                    serialization.PrivateFormat.PKCS8,
                    serialization.NoEncryption(),
                ),
                0o600,
            )
        k = serialization.load_pem_private_key(self.key_path.read_bytes(), None)
        assert isinstance(k, ec.EllipticCurvePrivateKey)
        return k

    def csr(self, name: str) -> str:
        req = (
            x509.CertificateSigningRequestBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
            .sign(self.key(), hashes.SHA256())
        )
        return req.public_bytes(serialization.Encoding.PEM).decode()

    @property
    def enrolled(self) -> bool:
        return self.cert_path.exists() and self.key_path.exists() and self.ca_path.exists()

    def cert(self) -> x509.Certificate:
        return x509.load_pem_x509_certificate(self.cert_path.read_bytes())

    def save_cert(self, pem: str) -> None:
        _write(self.cert_path, pem.encode(), 0o644)

    def needs_renewal(self, fraction: float, now: dt.datetime | None = None) -> bool:
        """True once less than ``fraction`` of the certificate's lifetime is left."""
        c = self.cert()
        now = now or dt.datetime.now(dt.UTC)
        life = c.not_valid_after_utc - c.not_valid_before_utc
        return c.not_valid_after_utc - now < life * fraction

    def client_context(self) -> ssl.SSLContext:
        """mTLS client context: our certificate, the fleet CA as the only trust anchor."""
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_verify_locations(cafile=str(self.ca_path))
        ctx.load_cert_chain(self.cert_path, self.key_path)
        return ctx


def _write(path: Path, data: bytes, mode: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


async def fetch_ca(host: str, port: int, pin: str) -> str:
    """The CA certificate from the enrollment listener, accepted only if its SHA-256 equals ``pin``."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    # Nothing is trusted yet on purpose: what we read is checked against the pin below, and no secret
    # is sent on this connection.
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port, ssl=ctx), 10)
    except (OSError, TimeoutError) as e:
        raise IdentityError(f"cannot reach the enrollment listener {host}:{port}: {e}") from e
    try:
        writer.write(f"GET /ca.crt HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        raw = await asyncio.wait_for(reader.read(65536 * 2), 10)
    finally:
        writer.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 200"):
        raise IdentityError(f"{host}:{port} did not serve /ca.crt: {head.splitlines()[:1]}")
    try:
        der = x509.load_pem_x509_certificate(body).public_bytes(serialization.Encoding.DER)
    except ValueError as e:
        raise IdentityError(f"{host}:{port} served something that is not a certificate: {e}") from e
    got = hashlib.sha256(der).hexdigest()
    if got != pin:
        raise IdentityError(
            f"the CA at {host}:{port} does not match the token's pin (got {got[:16]}…, want {pin[:16]}…): "
            "wrong server, or someone in between — do not enroll"
        )
    return body.decode()


async def enroll(
    ident: Identity,
    server: str,
    token: str,
    name: str,
    *,
    hostname: str = "",
    wait_s: float = 3600,
    poll_s: float = 5.0,
) -> wire.EnrollResult:
    """Enroll with ``token`` at ``server`` (``wss://host:port``); waits for approval up to ``wait_s``."""
    try:
        _tid, _secret, pin = wire.parse_token(token)
    except wire.WireError as e:
        raise IdentityError(str(e)) from e
    u = urlsplit(server)
    if u.scheme != "wss" or not u.hostname or not u.port:
        raise IdentityError(f"bad server URL {server!r}: use wss://HOST:PORT of the enrollment listener")
    ca_pem = await fetch_ca(u.hostname, u.port, pin)
    _write(ident.ca_path, ca_pem.encode(), 0o644)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(cafile=str(ident.ca_path))
    csr = ident.csr(name)
    first = wire.frame("enroll", wire.Enroll(token=token, csr=csr, hostname=hostname))
    res = await _ask(server, ctx, first)
    deadline = asyncio.get_running_loop().time() + wait_s
    while res.status == "pending":
        if asyncio.get_running_loop().time() > deadline:
            raise IdentityError(
                f"enrollment {res.enrollment} still pending after {wait_s:.0f} s: ask an "
                "operator to run `fazai nodes approve`, then start this again"
            )
        await asyncio.sleep(poll_s)
        res = await _ask(
            server, ctx, wire.frame("enroll.poll", wire.EnrollPoll(enrollment=res.enrollment, csr=csr))
        )
    if res.status == "rejected":
        raise IdentityError(f"enrollment {res.enrollment} was rejected: {res.message}")
    assert res.cert
    ident.save_cert(res.cert)
    return res


async def _ask(server: str, ctx: ssl.SSLContext, text: str) -> wire.EnrollResult:
    try:
        async with connect(server.rstrip("/") + "/enroll", ssl=ctx, compression=None, open_timeout=10) as ws:
            await ws.send(text)
            raw = await asyncio.wait_for(ws.recv(), 30)
    except (OSError, TimeoutError) as e:
        raise IdentityError(f"enrollment at {server} failed: {e}") from e
    env, spec = wire.parse(raw)
    if env.kind == "error":
        raise IdentityError(f"enrollment refused: {spec.message}")
    if env.kind != "enroll.result":
        raise IdentityError(f"unexpected answer {env.kind} from the enrollment listener")
    return spec
