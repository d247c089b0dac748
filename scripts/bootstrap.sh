#!/usr/bin/env bash
# Installs what FazAI needs into ./.venv (idempotent). Needs only python3 (>= 3.11) and, for the
# system packages used by tests, apt. Uses uv (installed from PyPI into ~/.local if missing).
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v uv >/dev/null 2>&1; then
  if [ -x "$HOME/.local/bin/uv" ]; then
    export PATH="$HOME/.local/bin:$PATH"
  else
    echo "==> installing uv (from PyPI)"
    python3 -m pip install --quiet --user uv 2>/dev/null || python3 -m pip install --quiet uv
    export PATH="$HOME/.local/bin:$PATH"
  fi
fi

echo "==> syncing the virtual environment (.venv)"
uv sync --frozen --quiet ${UV_SYNC_ARGS:-}
