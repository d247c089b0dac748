"""Users, roles, access/refresh/API tokens and the one policy function (:func:`authorize`)."""

from fazai.auth.policy import (
    ACTIONS,
    DEFAULT_SITE,
    GLOBAL,
    Decision,
    Grant,
    Principal,
    Role,
    Scope,
    approval_role,
    authorize,
)
from fazai.auth.service import BOOTSTRAP, AuthService, CredentialError, TokenPair
from fazai.auth.users import AuthError

__all__ = [
    "ACTIONS",
    "BOOTSTRAP",
    "DEFAULT_SITE",
    "GLOBAL",
    "AuthError",
    "AuthService",
    "CredentialError",
    "Decision",
    "Grant",
    "Principal",
    "Role",
    "Scope",
    "TokenPair",
    "approval_role",
    "authorize",
]
