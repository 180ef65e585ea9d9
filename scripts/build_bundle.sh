#!/usr/bin/env bash
# Builds FuseCap's one-folder desktop bundle (dist/fusecap/, executable
# dist/fusecap/fusecap) with PyInstaller from installer.spec, then checks it:
# the bundled app opens its window on the simulated studio and solves a few
# frames live (`fusecap --self-test`), under a virtual X display when there is
# no DISPLAY. Exits non-zero when the build or the check fails. See docs/INSTALLER.md.
#
#   ./scripts/build_bundle.sh              set up, build, check
#   ./scripts/build_bundle.sh --check-only check the bundle already in dist/fusecap
#
# The build takes several minutes on two cores and runs under `nice`; its full
# log is build/pyinstaller.log.
set -euo pipefail
cd "$(dirname "$0")/.."

CHECK_ONLY=0
for arg in "$@"; do
  case "$arg" in
    --check-only) CHECK_ONLY=1 ;;
    -h|--help) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "build_bundle.sh: unknown argument $arg (try --help)" >&2; exit 2 ;;
  esac
done

BUNDLE=dist/fusecap
EXE="$BUNDLE/fusecap"
LOG=build/pyinstaller.log

if [ "$CHECK_ONLY" -eq 0 ]; then
  bash scripts/bootstrap.sh
  # The `bundle` extra (PyInstaller, pinned) goes into the same .venv, reinstalled
  # when pyproject.toml changes, as bootstrap.sh does for the rest. Reinstalling
  # FuseCap itself also refreshes its entry-point metadata, which the bundle carries.
  stamp=.venv/.fusecap-bundle-installed
  if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
    echo "[fusecap] installing the bundle tools (.[bundle])"
    .venv/bin/python -m pip install -q -e ".[bundle]"
    touch "$stamp"
  fi

  echo "[fusecap] building $BUNDLE with PyInstaller $(.venv/bin/python -m PyInstaller --version) (several minutes; log: $LOG)"
  mkdir -p build
  start=$(date +%s)
  if ! nice -n 10 .venv/bin/python -m PyInstaller --noconfirm --clean installer.spec >"$LOG" 2>&1; then
    tail -n 40 "$LOG" >&2
    echo "[fusecap] bundle build FAILED (full log: $LOG)" >&2
    exit 1
  fi
  echo "[fusecap] built in $(( $(date +%s) - start )) s"
fi

if [ ! -x "$EXE" ]; then
  echo "[fusecap] no bundle at $EXE: build it first (without --check-only)" >&2
  exit 1
fi
echo "[fusecap] bundle size: $(du -sh "$BUNDLE" | cut -f1) ($(find "$BUNDLE" -type f | wc -l) files) in $BUNDLE"

echo "[fusecap] running the bundled self-test"
run=(timeout -k 10 300 "$EXE" --self-test)
if [ -z "${DISPLAY:-}" ]; then
  # vispy needs a real GL context (Mesa on the virtual display), not Qt's offscreen platform.
  run=(xvfb-run -a -s "-screen 0 1280x800x24" "${run[@]}")
fi
out=build/self-test.log
set +e
"${run[@]}" >"$out" 2>&1
rc=$?
set -e
line=$(grep -E "^self-test (passed|FAILED)" "$out" | tail -n 1 || true)
if [ "$rc" -ne 0 ] || [[ "$line" != "self-test passed"* ]]; then
  tail -n 40 "$out" >&2
  echo "[fusecap] bundled self-test FAILED (exit $rc): ${line:-no self-test line}" >&2
  exit 1
fi
echo "[fusecap] $line"
