#!/usr/bin/env bash
# Sets up the peer calibration library (aniposelib, the calibration behind
# anipose and FreeMoCap) in its own virtual environment, .venv-peer, so the
# calibration benchmark can run it beside FuseCap's own calibration. It is never
# a FuseCap dependency: FuseCap's .venv is not touched, and scripts/peerlib.py
# only runs the peer's python in a subprocess.
#
# The versions are pinned in scripts/requirements-peer.txt. Safe to run again:
# when the environment was completed from the same pins it exits at once (a copy
# of the pins inside the environment is the stamp, written only after pip and an
# import check succeeded, so an interrupted install is redone).
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=.venv-peer
REQ=scripts/requirements-peer.txt
STAMP="$VENV/.peer-requirements.txt"

if [ -x "$VENV/bin/python" ] && [ -f "$STAMP" ] && cmp -s "$REQ" "$STAMP"; then
  exit 0
fi

PY="${PYTHON:-python3.11}"
command -v "$PY" >/dev/null || PY=python3
if [ ! -x "$VENV/bin/python" ]; then
  echo "[peer] creating virtual environment $VENV with $("$PY" --version 2>&1)"
  "$PY" -m venv "$VENV"
fi
rm -f "$STAMP"
echo "[peer] installing aniposelib and its pinned dependencies (first run: about a minute)"
"$VENV/bin/python" -m pip install -q --disable-pip-version-check -r "$REQ"
"$VENV/bin/python" -c "import aniposelib, cv2, jax, numba; from aniposelib.boards import CharucoBoard; \
from aniposelib.cameras import CameraGroup; cv2.aruco.CharucoDetector" >/dev/null
cp "$REQ" "$STAMP"
echo "[peer] ready: $VENV/bin/python (aniposelib $("$VENV/bin/python" -c 'import aniposelib; print(aniposelib.__version__)'))"
