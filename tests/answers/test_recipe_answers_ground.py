"""A recipe's own answer must pass the grounding gate on the output it was read from.

When it does not, the run falls back to the model with a right answer thrown away (seen in the ops
bench: the top-memory and journal recipes answered right, the gate refused them, the 0.5B then ran out
of time). Each case is a real tool's output, the question an operator asks, and the extractor.
"""

from __future__ import annotations

import pytest

from fazai.answers.evidence import Evidence
from fazai.answers.extract import EXTRACTORS
from fazai.answers.grounding import ground

PS_RSS = """     87 281412 fazai
      3 218796 memhog
     45  34356 smallproc
    191   4492 ps
"""
NFT = """table inet filter {
\tchain input {
\t\ttype filter hook input priority filter; policy drop;
\t\tct state established,related accept
\t\tiif "lo" accept
\t\ttcp dport 22 accept
\t\ttcp dport { 80, 443 } accept
\t\tip saddr 198.51.100.0/24 drop
\t}
}
"""
JOURNAL = """\
Nov 23 09:00:01 ops-01 postfix/smtp[811]: error: connect to relay.example.net[192.0.2.10]:587: timed out
Nov 23 09:05:01 ops-01 postfix/smtp[812]: error: connect to relay.example.net[192.0.2.10]:587: timed out
Nov 23 09:10:01 ops-01 postfix/smtp[813]: error: connect to relay.example.net[192.0.2.10]:587: timed out
Nov 23 09:12:44 ops-01 nginx[640]: [emerg] bind() to 0.0.0.0:80 failed (98: Address already in use)
Nov 23 09:15:01 ops-01 postfix/smtp[814]: error: connect to relay.example.net[192.0.2.10]:587: timed out
"""
IPTABLES = """-P INPUT ACCEPT
-A INPUT -s 203.0.113.7/32 -j DROP
-A INPUT -s 198.51.100.23/32 -j DROP
-A INPUT -p tcp -m tcp --dport 22 -j ACCEPT
-A INPUT -s 192.0.2.45/32 -j REJECT --reject-with icmp-port-unreachable
-A INPUT -s 10.9.9.9/32 -j DROP
"""
DF = """Filesystem     Type  1024-blocks     Used Available Capacity Mounted on
/dev/vda       ext4    264212084 29446532  76944380      28% /
tmpfs          tmpfs       65536        0     65536       0% /tmp
tmpfs          tmpfs       65536    59392      6144      91% /mnt
"""
APT = """Listing... Done
bash/stable-security 5.2.15-2+b8 amd64 [upgradable from: 5.2.15-2+b7]
openssl/stable-security 3.0.16-1~deb12u1 amd64 [upgradable from: 3.0.15-1~deb12u1]
tzdata/stable-updates 2025b-0+deb12u1 all [upgradable from: 2024b-0+deb12u1]
"""
SS = """LISTEN 0      5          127.0.0.1:9090      0.0.0.0:*    users:(("python3",pid=4242,fd=3))
LISTEN 0      128          0.0.0.0:22        0.0.0.0:*    users:(("sshd",pid=611,fd=3))
"""
DOCKER_PS = """\
CONTAINER ID   IMAGE          COMMAND                  CREATED        STATUS                    PORTS                  NAMES
3f1c2a9b7d10   nginx:1.25     "/docker-entrypoint.…"   3 days ago     Up 3 days                 0.0.0.0:8080->80/tcp   web
9a8b7c6d5e4f   redis:7.2      "docker-entrypoint.s…"   3 days ago     Up 3 days                 6379/tcp               redis
1b2c3d4e5f60   myapp:0.9      "python worker.py"       5 days ago     Exited (137) 2 days ago                          worker-old
"""
UNITS = """cron.service loaded active running Regular background program processing daemon
ssh.service  loaded active running OpenBSD Secure Shell server
"""
AUTH = """Nov 23 08:01:02 ops-01 sshd[901]: Accepted publickey for alice from 203.0.113.5 port 50122 ssh2
Nov 23 08:03:10 ops-01 sshd[905]: Invalid user admin from 198.51.100.23 port 40022
Nov 23 08:03:12 ops-01 sshd[905]: Failed password for invalid user admin from 198.51.100.23 port 40022 ssh2
"""
APT_ONE = "openssl/stable-security 3.0.16-1~deb12u1 amd64 [upgradable from: 3.0.15-1~deb12u1]\n"
NGINX_JOURNAL = """\
Nov 23 09:00:01 ops-01 postfix/smtp[811]: error: connect to relay.example.net[192.0.2.10]:587: Connection timed out
Nov 23 09:12:44 ops-01 nginx[640]: [emerg] bind() to 0.0.0.0:80 failed (98: Address already in use)
Nov 23 09:12:44 ops-01 systemd[1]: nginx.service: Failed with result 'exit-code'.
"""
F2B_JAILS = """Status for the jail: sshd
|- Filter
`- Actions
   |- Currently banned:\t3
   `- Banned IP list:\t203.0.113.7 198.51.100.23 192.0.2.45
Status for the jail: asterisk
`- Actions
   |- Currently banned:\t1
   `- Banned IP list:\t203.0.113.99
"""
MEMINFO = "MemTotal:       24683664 kB\nMemFree:        20983068 kB\nMemAvailable:   23181936 kB\n"


def _evidence(question: str, command: str, out: str) -> Evidence:
    ev = Evidence()
    ev.feed("context", {"goal": question})
    ev.feed("action", {"id": 1, "kind": "shell", "action": {"action": "shell", "command": command}})
    ev.feed("exec_log", {"action": 1, "cmd": 0, "stream": "stdout", "text": out})
    ev.feed("exec_end", {"action": 1, "cmd": 0, "command": command, "exit_code": 0})
    return ev


@pytest.mark.parametrize(
    ("question", "extract", "command", "out", "slots", "want"),
    [
        ("Which process is using the most memory?", "top_process",
         "ps -eo pid,rss,comm --sort=-rss --no-headers | head -n 5", PS_RSS, {}, "memhog"),
        ("What is the default policy of the nftables input chain?", "nft_input", "nft list ruleset", NFT,
         {}, "drop"),
        ("Which TCP ports does the nftables input chain accept?", "nft_input", "nft list ruleset", NFT, {},
         "443"),
        ("Which service logged the most errors in the journal?", "journal_top_unit",
         "journalctl -p err -b --no-pager -o short", JOURNAL, {}, "postfix"),
        ("How many source IPs are dropped by iptables INPUT rules?", "iptables_drops", "iptables -S INPUT",
         IPTABLES, {}, "4"),
        ("Is any filesystem above 90% usage? Which one?", "df_over",
         "df -P -T -k -x devtmpfs -x squashfs -x overlay", DF, {"limit": "90"}, "/mnt"),
        ("How many packages can be upgraded?", "apt_upgradable", "apt list --upgradable 2>/dev/null", APT,
         {}, "3"),
        ("Which process is listening on TCP port 9090?", "port_process", "ss -H -tlnp", SS, {"port": "9090"},
         "python3"),
        ("Which DNS nameservers are configured?", "nameservers", "grep nameserver /etc/resolv.conf",
         "nameserver 10.20.0.2\nnameserver 1.1.1.1\n", {}, "1.1.1.1"),
        ("What IP address does db.internal resolve to in /etc/hosts?", "hosts_address", "awk … /etc/hosts",
         "10.20.0.15\n", {"host": "db.internal"}, "10.20.0.15"),
        ("What is the subject common name of /srv/certs/mail.pem?", "cert_subject",
         "openssl x509 -noout -subject -in /srv/certs/mail.pem",
         "subject=C = US, O = Example, CN = mail.example.com\n", {}, "mail.example.com"),
        ("Which docker containers are running?", "docker_running", "docker ps", DOCKER_PS, {}, "`redis`"),
        ("Which docker container has exited?", "docker_exited", "docker ps -a", DOCKER_PS, {}, "worker-old"),
        ("Which image does the web container run?", "docker_image", "docker inspect web",
         '[{"Name": "/web", "Config": {"Image": "nginx:1.25"}}]', {"container": "web"}, "nginx:1.25"),
        ("Which services are running right now?", "running_services",
         "systemctl list-units --type=service --state=running --no-legend --plain --no-pager", UNITS, {},
         "ssh.service"),
        ("Which user logged in successfully over SSH according to /var/log/auth.log?", "ssh_logins",
         "grep -h -E 'Accepted |[Ii]nvalid user ' /var/log/auth.log", AUTH, {}, "alice"),
        ("Which invalid username was tried in the failed SSH logins in /var/log/auth.log?", "ssh_logins",
         "grep -h -E 'Accepted |[Ii]nvalid user ' /var/log/auth.log", AUTH, {}, "admin"),
        ("To which version can the openssl package be upgraded?", "apt_candidate",
         "apt list --upgradable 2>/dev/null | grep -E ^openssl/", APT_ONE, {"package": "openssl"},
         "3.0.16-1~deb12u1"),
        ("What is the most common HTTP status code in /var/log/nginx/access.log?", "count_by_first",
         "awk '{print $9}' /var/log/nginx/access.log | sort | uniq -c | sort -rn | head -n 5",
         "     45 404\n     30 200\n      5 500\n", {}, "404"),
        ("Which users are members of the adm group?", "group_members", "getent group adm", "adm:x:4:alice\n",
         {"group": "adm"}, "alice"),
        ("Which groups is the user deploy a member of?", "id_groups", "id -nG deploy", "deploy docker\n",
         {"user": "deploy"}, "docker"),
        ("How many systemd units are in a failed state?", "failed_units",
         "systemctl list-units --state=failed --no-legend --plain --no-pager",
         "nginx.service loaded failed failed A high performance web server\npostfix.service loaded failed failed Postfix\n",
         {}, "2 units"),
        ("How many TCP ports are listening on this machine?", "listening_ports", "ss -H -tlnp", SS, {}, "2 ports"),
        ("How many ERROR lines are in /var/log/app/app.log?", "count", "grep -c -w -- ERROR /var/log/app/app.log",
         "13\n", {"word": "ERROR", "path": "/var/log/app/app.log"}, "13"),
        ("Why did nginx fail?", "service_failure", "journalctl -u nginx -b -n 50 --no-pager -o short",
         NGINX_JOURNAL, {"service": "nginx"}, "Address already in use"),
        ("Is password authentication enabled for SSH?", "sshd_setting",
         "grep -hiE '^[[:space:]]*'PasswordAuthentication'[[:space:]]' /etc/ssh/sshd_config",
         "PasswordAuthentication no\n", {"setting": "PasswordAuthentication"}, "No"),
        ("What is MaxAuthTries set to in the SSH server config?", "sshd_setting",
         "grep -hiE '^[[:space:]]*'MaxAuthTries'[[:space:]]' /etc/ssh/sshd_config", "MaxAuthTries 3\n",
         {"setting": "MaxAuthTries"}, "3"),
        ("Is 192.0.2.45 banned by fail2ban?", "fail2ban_ip", "for j in sshd asterisk; do fail2ban-client status $j; done",
         F2B_JAILS, {"ip": "192.0.2.45"}, "Yes"),
        ("Is 10.1.1.1 banned by fail2ban?", "fail2ban_ip", "for j in sshd asterisk; do fail2ban-client status $j; done",
         F2B_JAILS, {"ip": "10.1.1.1"}, "No"),
        ("Which source network does the nftables input chain drop?", "nft_input", "nft list ruleset", NFT, {},
         "198.51.100.0/24"),
        ("How many of the upgradable packages come from the security repository?", "apt_upgradable",
         "apt list --upgradable 2>/dev/null", APT, {}, "2 upgradable"),
        ("In how many days does the certificate /srv/certs/www.pem expire?", "cert_days",
         "openssl x509 -enddate -noout -in /srv/certs/www.pem", "notAfter=Mar  3 12:00:00 2037 GMT\n",
         {"path": "/srv/certs/www.pem"}, "days"),
        ("How much RAM does this machine have?", "meminfo", "cat /proc/meminfo", MEMINFO, {}, "in use"),
        ("At what time does the backup cron job run?", "cron_time", "grep -rhi backup /etc/cron.d",
         "30 2 * * * root /usr/local/sbin/backup.sh >/dev/null 2>&1\n", {"job": "backup"}, "02:30"),
        ("When does the cleanup cron job run?", "cron_time", "grep -rhi cleanup /etc/cron.d",
         "*/15 * * * * www-data /usr/bin/php /var/www/cleanup.php\n", {"job": "cleanup"}, "15 minutes"),
        ("When does the report cron job run?", "cron_time", "grep -rhi report /etc/cron.d",
         "@daily root /usr/local/bin/report\n", {"job": "report"}, "midnight"),
    ],
)  # fmt: skip
def test_a_recipe_answer_passes_the_gate_on_its_own_output(
    question: str, extract: str, command: str, out: str, slots: dict, want: str
) -> None:
    answer = EXTRACTORS[extract](out, slots, question)
    assert want in answer, answer
    verdict = ground(answer, _evidence(question, command, out))
    assert verdict.ok, (answer, verdict.problems)


def test_the_top_process_is_not_fazai_itself() -> None:
    # The pilot's own process is on every machine it reads: the operator asks about their workload.
    answer = EXTRACTORS["top_process"](PS_RSS, {}, "Which process is using the most memory?")
    assert answer.startswith("`memhog`"), answer
    assert "fazai" in answer  # said, not hidden
