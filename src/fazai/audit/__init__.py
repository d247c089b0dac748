"""The tamper-evident audit trail (hash-chained records in the store)."""

from fazai.audit.log import AuditLog, AuditRecord, VerifyResult

__all__ = ["AuditLog", "AuditRecord", "VerifyResult"]
