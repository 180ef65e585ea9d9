#!/usr/bin/env bash
# Launches FuseCap on the simulated studio, setting itself up on first use.
# With a display it opens the desktop window, live at once; without one
# (a server, a CI machine) it runs the headless pipeline demo instead, which
# prints per-frame results and rates. Arguments go to main.py.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
if [ -n "${DISPLAY:-}" ] || [ -n "${WAYLAND_DISPLAY:-}" ]; then
  exec .venv/bin/python main.py "$@"
fi
echo "[fusecap] no display: running the headless demo (main.py demo --headless); under a virtual"
echo "[fusecap] display the window runs too: xvfb-run -a ./scripts/run_fusecap.sh"
exec .venv/bin/python main.py demo --headless "$@"
