#!/usr/bin/env bash
# Launches FuseCap on the simulated studio, setting itself up on first use.
# Until the desktop window lands this runs the headless pipeline demo, which
# prints per-frame results and rates; arguments go to `main.py demo`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
exec .venv/bin/python main.py demo --headless "$@"
