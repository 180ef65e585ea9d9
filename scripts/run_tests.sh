#!/usr/bin/env bash
# The whole test suite on a fresh machine: sets itself up, checks the import
# layering and lints the code (ruff), then runs pytest (GUI tests under a virtual X display started by
# pytest-xvfb). Extra arguments go to pytest, e.g. `-m slow` for long checks.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
export PYTHONHASHSEED=0
echo "[fusecap] checking import layering (import-linter)"
.venv/bin/lint-imports pyproject.toml
echo "[fusecap] checking the code (ruff)"
.venv/bin/ruff check --no-cache .
echo "[fusecap] running tests"
exec .venv/bin/python -m pytest "$@"
