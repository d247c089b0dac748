#!/usr/bin/env bash
# Runs every benchmark under bench/ (each is `python bench/<name>.py`), in order.
set -euo pipefail
cd "$(dirname "$0")/.."
for b in bench/bench_*.py; do
  [ -e "$b" ] || continue
  echo "==> $b"
  .venv/bin/python "$b" "$@"
done
