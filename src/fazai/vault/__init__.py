"""Encrypted secrets (AES-GCM under a master key) and ``vault:NAME`` references in the configuration."""

from fazai.vault.keys import MasterKey, VaultError
from fazai.vault.refs import resolve_ref, resolver
from fazai.vault.vault import SecretInfo, Vault, is_ref, recover_rotation

__all__ = [
    "MasterKey",
    "SecretInfo",
    "Vault",
    "VaultError",
    "is_ref",
    "recover_rotation",
    "resolve_ref",
    "resolver",
]
