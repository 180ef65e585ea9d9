"""The import-linter contract is real: it passes on the tree and fails when
core imports Qt."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LINT = Path(sys.executable).with_name("lint-imports")


def _lint(cwd: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(cwd))
    return subprocess.run([str(LINT), "--config", "pyproject.toml", "--no-cache"], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)


def test_contract_kept_and_breaks_on_qt_in_core(tmp_path):
    for name in ("core", "plugins", "app"):
        shutil.copytree(ROOT / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    ok = _lint(tmp_path)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    (tmp_path / "core" / "sneaky.py").write_text("def f():\n    from PySide6 import QtCore\n")
    bad = _lint(tmp_path)
    assert bad.returncode != 0
    assert "core.sneaky -> PySide6" in bad.stdout
