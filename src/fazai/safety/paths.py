"""What a path argument points at: the root, a system directory, a block device, an auth file."""

from __future__ import annotations

import fnmatch
import posixpath
import re

# Deleting, chmod-ing or chown-ing any of these recursively breaks the machine.
SYSTEM_DIRS = frozenset(
    [
        "/",
        "/bin",
        "/boot",
        "/dev",
        "/etc",
        "/home",
        "/lib",
        "/lib32",
        "/lib64",
        "/libx32",
        "/opt",
        "/proc",
        "/root",
        "/run",
        "/sbin",
        "/srv",
        "/sys",
        "/usr",
        "/var",
        "/usr/bin",
        "/usr/sbin",
        "/usr/lib",
        "/usr/lib64",
        "/usr/local",
        "/usr/share",
        "/usr/include",
        "/var/lib",
        "/var/log",
        "/var/spool",
        "/var/cache",
        "/etc/ssh",
        "/etc/systemd",
        "/boot/efi",
        "/boot/grub",
        "/snap",
        "/mnt",
        "/media",
    ]
)
HOME_SPELLINGS = frozenset({"~", "~/", "~root", "$HOME", "${HOME}", "~/*", "$HOME/*", "${HOME}/*"})

# Files whose truncation locks everyone out.
AUTH_FILES = frozenset(
    {"/etc/passwd", "/etc/shadow", "/etc/group", "/etc/gshadow", "/etc/sudoers", "/etc/pam.d", "/etc/fstab"}
)

# Files that grant access or run code in every process: any write to them is security-critical.
_SECURITY_FILE = re.compile(
    r"(^|/)authorized_keys2?$|^/etc/ssh/authorized_keys/|^/etc/sudoers(\.d/.*)?$|^/etc/ld\.so\.preload$"
    r"|^/etc/pam\.d/|^/etc/security/|^/etc/(passwd|shadow|group|gshadow)-?$"
)
# Files whose content runs later as shell code (cron tables, login scripts): their content is judged.
CRON_FILE = re.compile(r"^/etc/crontab$|^/etc/cron\.d/|^/var/spool/cron/")
LOGIN_SCRIPT = re.compile(
    r"^/etc/(profile|bash\.bashrc|bashrc|zshrc|environment|rc\.local)$|^/etc/profile\.d/"
    r"|(^|/)\.(bashrc|bash_profile|bash_login|profile|zshrc|zprofile|bash_logout)$"
)
# Network pseudo-devices of bash: a redirection there opens a socket.
NET_DEVICE = re.compile(r"^/dev/(tcp|udp)/")

_BLOCK_DEV = re.compile(
    r"^/dev/(sd[a-z]|hd[a-z]|vd[a-z]|xvd[a-z]|nvme\d|mmcblk\d|md\d|dm-\d|mapper/|disk/|loop\d|sr\d|"
    r"mem$|kmem$|port$|nbd\d|rbd\d|zd\d|bcache|drbd|cciss|root$|[a-z]+/by-)"
)
_HARMLESS_DEV = frozenset(
    {
        "/dev/null",
        "/dev/zero",
        "/dev/stdout",
        "/dev/stderr",
        "/dev/stdin",
        "/dev/tty",
        "/dev/full",
        "/dev/random",
    }
)
_GLOB = re.compile(r"[*?\[]")


def norm(path: str, cwd: str | None = None) -> str:
    """Normalise a literal path: collapse ``//``, ``.``, ``..``; join a relative path to a known cwd."""
    p = path
    if cwd and not p.startswith(("/", "~", "$")):
        p = posixpath.join(cwd, p)
    if p.startswith("/"):
        p = posixpath.normpath(p)
        if p.startswith("//"):  # normpath keeps a leading // (POSIX); it is still the root
            p = "/" + p.lstrip("/")
    elif p and not p.startswith(("~", "$")):
        p = posixpath.normpath(p)
    return p


def is_block_device(path: str) -> bool:
    """A disk, partition, raw memory or device-mapper node: writing there destroys data."""
    p = norm(path)
    return p not in _HARMLESS_DEV and bool(_BLOCK_DEV.match(p))


def is_harmless_sink(path: str) -> bool:
    """/dev/null and friends, /dev/fd/N: writing there changes nothing."""
    p = norm(path)
    return p in _HARMLESS_DEV or p.startswith("/dev/fd/") or p.startswith("/dev/pts/")


def is_auth_file(path: str) -> bool:
    return norm(path) in AUTH_FILES


def is_security_file(path: str) -> bool:
    """authorized_keys, sudoers(.d), account files, ld.so.preload, PAM: who may log in, as whom."""
    p = norm(path)
    if p.startswith("~"):
        p = "/root" + p[1:]
    return bool(_SECURITY_FILE.search(p))


def is_catastrophic_tree(path: str, cwd: str | None = None) -> bool:
    """The root, a top-level system directory, the home of root, or a glob that matches one of them
    (``/*``, ``/e*``, ``/etc/*``): recursively destroying it breaks the machine."""
    if path in HOME_SPELLINGS or path.rstrip("/") in {"~", "$HOME", "${HOME}", "~root"}:
        return True
    if not path.startswith("/") and not cwd:
        return False
    p = norm(path, cwd)
    if p in SYSTEM_DIRS:
        return True
    if _GLOB.search(p):
        # /etc/* empties /etc; /e* may hit /etc.
        parent, last = posixpath.split(p)
        if not _GLOB.search(parent) and parent in SYSTEM_DIRS and last in {"*", ".*", "*.*"}:
            return True
        return any(fnmatch.fnmatchcase(d, p) for d in SYSTEM_DIRS)
    return False


def expand_braces(word: str, limit: int = 64) -> list[str]:
    """Expand ``{a,b}`` brace lists (``/{etc,usr}`` → ``/etc``, ``/usr``); best effort, bounded."""
    m = re.search(r"\{([^{}]*,[^{}]*)\}", word)
    if not m:
        return [word]
    out: list[str] = []
    for alt in m.group(1).split(","):
        out.extend(expand_braces(word[: m.start()] + alt + word[m.end() :], limit))
        if len(out) >= limit:
            break
    return out[:limit]
