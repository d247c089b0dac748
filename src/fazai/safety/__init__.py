"""Safety policy for commands run as root: classify by parsing, then allow / ask / deny.

>>> classify("df -h").risk
<Risk.READ_ONLY: 'read_only'>
>>> classify("rm -rf /").risk
<Risk.FORBIDDEN: 'forbidden'>
"""

from .classifier import classify
from .model import Risk, Verdict
from .policy import Decision, SafetyPolicy

__all__ = ["Decision", "Risk", "SafetyPolicy", "Verdict", "classify"]
