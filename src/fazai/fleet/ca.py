"""The fleet's internal certificate authority (``cryptography``), owned by fazaid.

Files under ``<state_dir>/fleet/``: ``ca.key`` and ``server.key`` are 0600, certificates 0644. The CA
signs the gateway's server certificate and node certificates from CSRs (the node's key never leaves
the node). Keys are EC P-256: small, fast to handshake (the gateway holds thousands of connections).

Bootstrap tokens look like ``fzt1.<id>.<secret>.<ca-pin>``: the pin (SHA-256 of the CA certificate)
lets a new agent trust the CA it fetches before it sends the secret anywhere.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from fazai.wire import TOKEN_PREFIX

CA_DAYS = 3650
SERVER_DAYS = 365


class CAError(Exception):
    """The CA refused: the message says why and what to do."""


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def new_key() -> ec.EllipticCurvePrivateKey:
    """A fresh P-256 private key."""
    return ec.generate_private_key(ec.SECP256R1())


def key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def write_private(path: Path, data: bytes) -> None:
    """Write a secret file atomically with mode 0600 from the start (never briefly world-readable)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_public(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)


def cert_pin(cert_pem: bytes) -> str:
    """SHA-256 (hex) of a certificate's DER: what bootstrap tokens carry."""
    der = x509.load_pem_x509_certificate(cert_pem).public_bytes(serialization.Encoding.DER)
    return hashlib.sha256(der).hexdigest()


def make_csr(key: ec.EllipticCurvePrivateKey, name: str) -> bytes:
    """A CSR for ``name`` signed by ``key`` (the agent does this locally)."""
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .sign(key, hashes.SHA256())
    )
    return csr.public_bytes(serialization.Encoding.PEM)


def csr_key_id(csr_pem: str | bytes) -> str:
    """SHA-256 of the CSR's public key (identifies the agent's key across polls)."""
    csr = _load_csr(csr_pem)
    spki = csr.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(spki).hexdigest()


def _load_csr(csr_pem: str | bytes) -> x509.CertificateSigningRequest:
    data = csr_pem.encode() if isinstance(csr_pem, str) else csr_pem
    try:
        csr = x509.load_pem_x509_csr(data)
    except ValueError as e:
        raise CAError(f"the CSR is not a valid PEM certificate request: {e}") from e
    if not csr.is_signature_valid:
        raise CAError("the CSR's signature does not match its key: generate it again")
    if not isinstance(csr.public_key(), ec.EllipticCurvePublicKey | _rsa_type()):
        raise CAError("the CSR's key type is not supported (use EC P-256 or RSA ≥ 2048)")
    return csr


def _rsa_type() -> type:
    from cryptography.hazmat.primitives.asymmetric import rsa

    return rsa.RSAPublicKey


@dataclass(slots=True)
class Issued:
    """A signed certificate and what the registry records about it."""

    pem: str
    serial: str
    not_before: dt.datetime
    not_after: dt.datetime


def cert_serial(cert_pem: str | bytes) -> str:
    """The serial number (hex) of a PEM certificate."""
    data = cert_pem.encode() if isinstance(cert_pem, str) else cert_pem
    return format(x509.load_pem_x509_certificate(data).serial_number, "x")


def cert_not_after(cert_pem: str | bytes) -> dt.datetime:
    data = cert_pem.encode() if isinstance(cert_pem, str) else cert_pem
    return x509.load_pem_x509_certificate(data).not_valid_after_utc


class CertificateAuthority:
    """The CA key and certificate in ``folder``; created on first use."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self.key_path = self.folder / "ca.key"
        self.cert_path = self.folder / "ca.crt"
        self.server_key_path = self.folder / "server.key"
        self.server_cert_path = self.folder / "server.crt"
        self._key: ec.EllipticCurvePrivateKey | None = None
        self._cert: x509.Certificate | None = None

    @classmethod
    def load_or_create(cls, folder: Path, name: str = "FazAI fleet CA") -> CertificateAuthority:
        """Open the CA in ``folder``, creating key and certificate if missing."""
        ca = cls(folder)
        if not ca.key_path.exists():
            if ca.cert_path.exists():
                raise CAError(
                    f"{ca.cert_path} exists but {ca.key_path} is missing: restore the key from backup "
                    "(re-creating the CA would cut off every enrolled node)"
                )
            key = new_key()
            now = _now()
            subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
            cert = (
                x509.CertificateBuilder()
                .subject_name(subject)
                .issuer_name(subject)
                .public_key(key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(now - dt.timedelta(minutes=5))
                .not_valid_after(now + dt.timedelta(days=CA_DAYS))
                .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
                .add_extension(
                    x509.KeyUsage(
                        digital_signature=True,
                        key_cert_sign=True,
                        crl_sign=True,
                        content_commitment=False,
                        key_encipherment=False,
                        data_encipherment=False,
                        key_agreement=False,
                        encipher_only=False,
                        decipher_only=False,
                    ),
                    critical=True,
                )
                .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
                .sign(key, hashes.SHA256())
            )
            write_private(ca.key_path, key_pem(key))
            write_public(ca.cert_path, cert.public_bytes(serialization.Encoding.PEM))
        mode = ca.key_path.stat().st_mode & 0o777
        if mode & 0o077:
            raise CAError(f"{ca.key_path} is readable by others (mode {mode:o}): chmod 600 it")
        return ca

    @property
    def key(self) -> ec.EllipticCurvePrivateKey:
        if self._key is None:
            k = serialization.load_pem_private_key(self.key_path.read_bytes(), None)
            assert isinstance(k, ec.EllipticCurvePrivateKey)
            self._key = k
        return self._key

    @property
    def cert(self) -> x509.Certificate:
        if self._cert is None:
            self._cert = x509.load_pem_x509_certificate(self.cert_path.read_bytes())
        return self._cert

    @property
    def cert_pem(self) -> str:
        return self.cert_path.read_text()

    @property
    def pin(self) -> str:
        return cert_pin(self.cert_path.read_bytes())

    def _builder(self, subject: x509.Name, public_key: object, days: float) -> x509.CertificateBuilder:
        now = _now()
        ski = self.cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
        return (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(self.cert.subject)
            .public_key(public_key)  # type: ignore[arg-type]
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False
            )
        )

    def ensure_server_cert(self, names: list[str]) -> tuple[Path, Path]:
        """The listeners' certificate for ``names`` (DNS names or IPs), re-issued when missing, for
        other names, or within 30 days of expiry. Returns ``(cert_path, key_path)``."""
        wanted = sorted(set(names) | {"localhost", "127.0.0.1"})
        if self.server_cert_path.exists() and self.server_key_path.exists():
            cur = x509.load_pem_x509_certificate(self.server_cert_path.read_bytes())
            try:
                san = cur.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
                have = sorted(
                    [str(n) for n in san.get_values_for_type(x509.DNSName)]
                    + [str(ip) for ip in san.get_values_for_type(x509.IPAddress)]
                )
            except x509.ExtensionNotFound:
                have = []
            fresh = cur.not_valid_after_utc - _now() > dt.timedelta(days=30)
            if have == wanted and fresh and cur.issuer == self.cert.subject:
                return self.server_cert_path, self.server_key_path
        key = new_key()
        alt: list[x509.GeneralName] = []
        for n in wanted:
            try:
                alt.append(x509.IPAddress(ipaddress.ip_address(n)))
            except ValueError:
                alt.append(x509.DNSName(n))
        cert = (
            self._builder(
                x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, wanted[0])]), key.public_key(), SERVER_DAYS
            )
            .add_extension(x509.SubjectAlternativeName(alt), critical=False)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .sign(self.key, hashes.SHA256())
        )
        write_private(self.server_key_path, key_pem(key))
        write_public(self.server_cert_path, cert.public_bytes(serialization.Encoding.PEM))
        return self.server_cert_path, self.server_key_path

    def sign_node(self, csr_pem: str | bytes, node: str, site: str, days: float) -> Issued:
        """A client certificate for ``node`` from its CSR (the subject is ours, not the CSR's)."""
        csr = _load_csr(csr_pem)
        attrs = [x509.NameAttribute(NameOID.COMMON_NAME, node)]
        if site:
            attrs.append(x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, site))
        cert = (
            self._builder(x509.Name(attrs), csr.public_key(), days)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
            .sign(self.key, hashes.SHA256())
        )
        return Issued(
            pem=cert.public_bytes(serialization.Encoding.PEM).decode(),
            serial=format(cert.serial_number, "x"),
            not_before=cert.not_valid_before_utc,
            not_after=cert.not_valid_after_utc,
        )


def new_token_secret() -> tuple[str, str, str]:
    """``(token id, secret, sha256 of the secret)``: the registry stores only the hash."""
    tid = secrets.token_hex(6)
    secret = secrets.token_urlsafe(24)
    return tid, secret, hash_secret(secret)


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def format_token(tid: str, secret: str, pin: str) -> str:
    return f"{TOKEN_PREFIX}.{tid}.{secret}.{pin}"
