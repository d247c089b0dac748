"""Short-lived access tokens: JWT, HS256 only, signed with a key from the state directory."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass

import jwt

ALGORITHM = "HS256"
ISSUER = "fazaid"
ACCESS_TTL_S = 900  # 15 minutes; the refresh token (opaque, stored hashed) renews it


class TokenError(Exception):
    """An access token is missing, expired, forged or of the wrong kind."""


@dataclass(frozen=True, slots=True)
class AccessClaims:
    user_id: int
    name: str
    version: int
    jti: str
    expires: int


def issue_access(key: bytes, user_id: int, name: str, version: int, ttl_s: int = ACCESS_TTL_S) -> str:
    """A signed access token for the user (``ver`` ties it to the user's current password)."""
    now = int(time.time())
    claims = {
        "iss": ISSUER,
        "sub": str(user_id),
        "name": name,
        "ver": version,
        "typ": "access",
        "iat": now,
        "exp": now + ttl_s,
        "jti": secrets.token_hex(8),
    }
    return jwt.encode(claims, key, algorithm=ALGORITHM)


def decode_access(key: bytes, token: str) -> AccessClaims:
    """Verify signature, algorithm (HS256 only: ``alg=none`` and others are refused), expiry, kind."""
    try:
        c = jwt.decode(
            token,
            key,
            algorithms=[ALGORITHM],
            issuer=ISSUER,
            options={"require": ["exp", "iat", "sub", "iss", "jti"]},
        )
    except jwt.ExpiredSignatureError as e:
        raise TokenError("the access token has expired: sign in again or use the refresh token") from e
    except jwt.InvalidTokenError as e:
        raise TokenError(f"the access token is not valid ({e})") from e
    if c.get("typ") != "access" or not str(c.get("sub", "")).isdigit():
        raise TokenError("the token is not an access token")
    return AccessClaims(int(c["sub"]), str(c.get("name", "")), int(c.get("ver", 0)), c["jti"], int(c["exp"]))


def looks_like_jwt(token: str) -> bool:
    """Three dot-separated parts."""
    return token.count(".") == 2
