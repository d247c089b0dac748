"""More ops-benchmark questions, of the kinds operators ask: services, logs, network, security,
packages, users, certificates, containers, and multi-part questions like the demo's.

Same shape as ``cases.py`` (a setup inside the sandbox, a question, a checker); its fakes and
overlays are merged into those of ``cases.py`` (the docker CLI is a fake: no daemon in a sandbox).
"""

from __future__ import annotations

from cases import (
    _APP_FILES,
    _APP_LOG,
    _AUTH_LOG,
    _CERTS,
    _CONFIGS,
    _NGINX_LOG,
    Case,
    Checker,
    contains,
    number,
    numbers_in,
    set_match,
    uptime_unit,
    yes_no,
)


def both(*checks: Checker) -> Checker:
    """A multi-part question: every part's checker passes; the setup's expected value holds the
    parts' expected values separated by ``|`` (empty where a part needs none)."""

    def check(answer: str, r: dict, dyn: str | None) -> tuple[bool, str]:
        parts = (dyn or "").split("|") if dyn is not None else [None] * len(checks)
        results = [c(answer, r, (p if p else None)) for c, p in zip(checks, parts, strict=False)]
        return all(ok for ok, _ in results), "; ".join(why for _, why in results)

    return check


def not_named(*names: str, inner: Checker) -> Checker:
    """``inner`` passes and none of ``names`` appears (a list must not include the wrong items)."""

    def check(answer: str, r: dict, dyn: str | None) -> tuple[bool, str]:
        ok, why = inner(answer, r, dyn)
        bad = [n for n in names if n.lower() in answer.lower()]
        return ok and not bad, why + (f"; must not name {bad}" if bad else "")

    return check


def percent_of_root() -> Checker:
    """The answer states the root filesystem's use% (the setup's value), give or take 1."""

    def check(answer: str, _r: dict, dyn: str | None) -> tuple[bool, str]:
        want = float(dyn or "nan")
        return any(abs(n - want) <= 1 for n in numbers_in(answer)), f"expected {want:g} % used"

    return check


DOCKER = r"""#!/bin/bash
all=0; for a in "$@"; do [[ "$a" == "-a" || "$a" == "--all" ]] && all=1; done
case "$1" in
  ps)
    echo 'CONTAINER ID   IMAGE          COMMAND                  CREATED        STATUS                    PORTS                  NAMES'
    echo '3f1c2a9b7d10   nginx:1.25     "/docker-entrypoint.…"   3 days ago     Up 3 days                 0.0.0.0:8080->80/tcp   web'
    echo '9a8b7c6d5e4f   redis:7.2      "docker-entrypoint.s…"   3 days ago     Up 3 days                 6379/tcp               redis'
    [[ $all == 1 ]] && echo '1b2c3d4e5f60   myapp:0.9      "python worker.py"       5 days ago     Exited (137) 2 days ago                          worker-old'
    ;;
  images)
    echo 'REPOSITORY   TAG     IMAGE ID       CREATED        SIZE'
    echo 'nginx        1.25    a8758716bb6a   4 weeks ago    187MB'
    echo 'redis        7.2     7fc37b47acde   6 weeks ago    117MB'
    echo 'myapp        0.9     0d1e2f3a4b5c   2 months ago   412MB'
    ;;
  inspect)
    case "$*" in *web*) echo '[{"Name": "/web", "Config": {"Image": "nginx:1.25"}, "State": {"Status": "running", "RestartCount": 0}}]';;
                 *redis*) echo '[{"Name": "/redis", "Config": {"Image": "redis:7.2"}, "State": {"Status": "running", "RestartCount": 4}}]';;
                 *worker-old*) echo '[{"Name": "/worker-old", "Config": {"Image": "myapp:0.9"}, "State": {"Status": "exited", "ExitCode": 137, "OOMKilled": true}}]';;
                 *) echo "Error: No such object: ${@: -1}" >&2; exit 1;; esac
    ;;
  logs)
    case "$*" in *worker-old*) printf 'starting worker\nprocessing batch 41\nKilled\n';;
                 *web*) printf '192.0.2.1 - - "GET / HTTP/1.1" 200 615\n';;
                 *) echo "Error: No such container" >&2; exit 1;; esac
    ;;
  *) echo "docker: '$1' is not a docker command." >&2; exit 1;;
esac
"""

MORE_FAKES: dict[str, str] = {"docker": DOCKER}
MORE_OVERLAYS: dict[str, str] = {
    "/etc/hosts": "127.0.0.1\tlocalhost\n127.0.1.1\tops-bench-01\n10.20.0.15\tdb.internal db\n"
    "10.20.0.16\tcache.internal\n",
    "/etc/resolv.conf": "search example.internal\nnameserver 10.20.0.2\nnameserver 1.1.1.1\n",
}

_SETUID = r"""
mkdir -p /opt/tools
cp /bin/true /opt/tools/backup-helper && chmod 4755 /opt/tools/backup-helper
cp /bin/true /opt/tools/report && chmod 755 /opt/tools/report
"""
_WORLD = _APP_FILES + "echo tmp > /srv/app/upload.tmp && chmod 666 /srv/app/upload.tmp\n"
_ROOT_PCT = 'df -P / | awk \'NR==2{gsub("%","",$5); print $5}\''
_UPTIME = "uptime -p | sed 's/^up //; s/,.*//'"

MORE_CASES: list[Case] = [
    # --- services ---
    Case("svc-cron", "Is the cron service active?", yes_no(True), tags=("services",)),
    Case(
        "svc-nginx-why",
        "Why did nginx fail to start?",
        contains("already in use", "bind", any_of=True),
        tags=("services",),
    ),
    Case(
        "svc-running",
        "Which services are running right now?",
        not_named("nginx", "postfix", inner=set_match("cron", "ssh")),
        tags=("services",),
    ),
    Case("svc-failed-count", "How many systemd units are in a failed state?", number(2), tags=("services",)),
    # --- logs ---
    Case(
        "log-warn",
        "How many WARN lines are in /var/log/app/app.log?",
        number(4),
        setup=_APP_LOG,
        tags=("logs",),
    ),
    Case(
        "log-accepted",
        "Which user logged in successfully over SSH according to /var/log/auth.log?",
        contains("alice"),
        setup=_AUTH_LOG,
        tags=("logs",),
    ),
    Case(
        "log-invalid-user",
        "Which invalid username was tried in the failed SSH logins in /var/log/auth.log?",
        contains("admin"),
        setup=_AUTH_LOG,
        tags=("logs",),
    ),
    Case(
        "nginx-500",
        "How many requests returned HTTP status 500 in /var/log/nginx/access.log?",
        number(5),
        setup=_NGINX_LOG,
        tags=("logs",),
    ),
    Case(
        "kernel-disk-error",
        "Which disk device reported an EXT4 error in the journal?",
        contains("sdb1"),
        tags=("logs",),
    ),
    # --- network ---
    Case(
        "net-listen-count",
        "How many TCP ports are listening on this machine?",
        number(2),
        setup="(cd /tmp && python3 -m http.server 8081 --bind 127.0.0.1 >/dev/null 2>&1 &);"
        " (cd /tmp && python3 -m http.server 8082 --bind 127.0.0.1 >/dev/null 2>&1 &); sleep 1",
        tags=("network",),
    ),
    Case(
        "net-port-process",
        "Which process is listening on TCP port 9090?",
        contains("python"),
        setup="(cd /tmp && python3 -m http.server 9090 --bind 127.0.0.1 >/dev/null 2>&1 &) ; sleep 1",
        tags=("network",),
    ),
    Case(
        "net-hosts",
        "What IP address does db.internal resolve to in /etc/hosts?",
        contains("10.20.0.15"),
        tags=("network",),
    ),
    Case(
        "net-dns",
        "Which DNS nameservers are configured?",
        set_match("10.20.0.2", "1.1.1.1"),
        tags=("network",),
    ),
    Case(
        "postfix-networks",
        "Which networks may relay mail according to mynetworks in /srv/etc/postfix/main.cf?",
        set_match("127.0.0.0/8", "10.20.0.0/16"),
        setup=_CONFIGS,
        tags=("network",),
    ),
    Case(
        "nginx-listen",
        "Which port does the nginx site in /srv/etc/nginx/site.conf listen on?",
        number(8443),
        setup=_CONFIGS,
        tags=("network",),
    ),
    # --- security ---
    Case("ssh-password", "Is password authentication enabled for SSH?", yes_no(False), tags=("security",)),
    Case(
        "ssh-maxauth", "What is MaxAuthTries set to in the SSH server config?", number(3), tags=("security",)
    ),
    Case(
        "world-writable",
        "Which file under /srv/app is world-writable?",
        not_named("config.yml", "secret.key", inner=contains("upload.tmp")),
        setup=_WORLD,
        tags=("security",),
    ),
    Case(
        "setuid",
        "Which files under /opt/tools have the setuid bit set?",
        not_named("report", inner=contains("backup-helper")),
        setup=_SETUID,
        tags=("security",),
    ),
    Case("ip-banned", "Is 192.0.2.45 banned by fail2ban?", yes_no(True), tags=("security",)),
    Case(
        "nft-dropped-net",
        "Which source network does the nftables input chain drop?",
        contains("198.51.100.0/24"),
        tags=("security",),
    ),
    # --- packages ---
    Case(
        "pkg-security",
        "How many of the upgradable packages come from the security repository?",
        number(5),
        tags=("packages",),
    ),
    Case(
        "pkg-openssl",
        "To which version can the openssl package be upgraded?",
        contains("3.0.16-1~deb12u1"),
        tags=("packages",),
    ),
    Case(
        "pkg-coreutils",
        "Which version of coreutils is installed?",
        contains("{expected}"),
        setup="dpkg-query -W -f='${Version}' coreutils > /bench/expected",
        tags=("packages",),
    ),
    # --- users ---
    Case("user-shell", "What login shell does the user carol have?", contains("/bin/zsh"), tags=("users",)),
    Case("user-adm", "Which users are members of the adm group?", contains("alice"), tags=("users",)),
    Case(
        "user-humans",
        "How many user accounts have a UID of 1000 or more, not counting nobody?",
        number(4),
        tags=("users",),
    ),
    # --- certificates ---
    Case(
        "cert-days",
        "In how many days does the certificate /srv/certs/www.pem expire?",
        number(89, tol=1),
        setup=_CERTS,
        tags=("certs",),
    ),
    Case(
        "cert-cn",
        "What is the subject common name of /srv/certs/mail.pem?",
        contains("mail.example.com"),
        setup=_CERTS,
        tags=("certs",),
    ),
    # --- containers (fake docker CLI) ---
    Case(
        "docker-running",
        "Which docker containers are running?",
        not_named("worker-old", inner=set_match("web", "redis")),
        tags=("containers",),
    ),
    Case("docker-exited", "Which docker container has exited?", contains("worker-old"), tags=("containers",)),
    Case(
        "docker-image",
        "Which image does the web container run?",
        contains("nginx:1.25"),
        tags=("containers",),
    ),
    # --- multi-part, like the demo's ---
    Case(
        "multi-uptime-root",
        "How long has this machine been up, and how full is its root filesystem?",
        both(uptime_unit(), percent_of_root()),
        setup=f'echo "$({_UPTIME})|$({_ROOT_PCT})" > /bench/expected',
        tags=("multi",),
    ),
    Case(
        "multi-cores-mem",
        "How many CPU cores and how much total RAM in GiB does this machine have?",
        both(number(), number(tol=1.0)),
        setup='echo "$(nproc)|$(awk \'/MemTotal/{printf "%.1f", $2/1048576}\' /proc/meminfo)" > /bench/expected',
        tags=("multi",),
    ),
    Case(
        "multi-failed-why",
        "Which systemd units failed, and why did nginx fail?",
        contains("nginx", "postfix", "in use"),
        tags=("multi",),
    ),
]
