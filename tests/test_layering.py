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
    return subprocess.run([str(LINT), "pyproject.toml", "--no-cache"], cwd=cwd, env=env,
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


def _private_names_used(path: Path) -> list[str]:
    """`_name`s a module takes from other FuseCap modules: imported by name, or
    read as an attribute of an imported FuseCap module."""
    import ast

    tree = ast.parse(path.read_text())
    modules: set[str] = set()
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in ("core", "plugins", "app"):
            for alias in node.names:
                if alias.name.startswith("_"):
                    found.append(f"{node.module}.{alias.name}")
                else:
                    modules.add(alias.asname or alias.name)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] in ("core", "plugins", "app"):
                    modules.add(alias.asname or alias.name.split(".")[0])
    for node in ast.walk(tree):
        if (isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__")
                and isinstance(node.value, ast.Name) and node.value.id in modules):
            found.append(f"{node.value.id}.{node.attr}")
    return found


def test_pose_fit_reads_public_names_and_not_the_simulator(tmp_path):
    for name in ("posefit.py", "posefit_refine.py"):
        assert _private_names_used(ROOT / "core" / name) == [], name
    # The contract that keeps the simulator out of the fit is real.
    for name in ("core", "plugins", "app"):
        shutil.copytree(ROOT / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    fit = tmp_path / "core" / "posefit_refine.py"
    fit.write_text(fit.read_text() + "\n\ndef _f():\n    from core.sim.subject import held_out_subjects\n")
    bad = _lint(tmp_path)
    assert bad.returncode != 0
    assert "core.posefit_refine -> core.sim.subject" in bad.stdout


def test_no_gui_module_imports_the_batch_commands():
    """The contract lists every app module but app.cli, so a new GUI module
    cannot slip past it; and it breaks when a panel imports app.cli."""
    import tomllib

    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    contract = next(c for c in config["tool"]["importlinter"]["contracts"] if c["forbidden_modules"] == ["app.cli"])
    present = {f"app.{p.stem}" for p in (ROOT / "app").iterdir()
               if p.name != "__init__.py" and p.name != "__pycache__" and (p.suffix == ".py" or p.is_dir())}
    assert set(contract["source_modules"]) == present - {"app.cli"}


def test_contract_breaks_when_a_panel_imports_the_cli(tmp_path):
    for name in ("core", "plugins", "app"):
        shutil.copytree(ROOT / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    (tmp_path / "app" / "panels" / "sneaky.py").write_text("def f():\n    from app.cli.record import run_record\n")
    bad = _lint(tmp_path)
    assert bad.returncode != 0
    assert "app.panels.sneaky -> app.cli.record" in bad.stdout
