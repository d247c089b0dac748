#!/usr/bin/env bash
# FazAI's main job on the embedded defaults.
set -euo pipefail
cd "$(dirname "$0")/.."
.venv/bin/fazai version
