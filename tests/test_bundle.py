"""The one-folder desktop bundle (installer.spec), built by scripts/build_bundle.sh
and checked by running the bundled executable.

Slow (PyInstaller takes several minutes on two cores): `./scripts/run_tests.sh -m slow`.
See docs/INSTALLER.md.
"""

from __future__ import annotations

import os
import re
import subprocess
import tomllib
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
BUNDLE = ROOT / "dist" / "fusecap"
EXE = BUNDLE / "fusecap"
INTERNAL = BUNDLE / "_internal"
SELF_TEST_LINE = re.compile(r"^self-test passed: (\d+) frames solved live .*\((\w+) model\)$", re.M)
# torch's CPU libraries are most of the bundle (about 0.9 GiB in all); a CUDA build
# or torch's C++ test binaries slipping in would add gigabytes.
MAX_BUNDLE_BYTES = int(1.5 * 2**30)


def _tail(text: str, lines: int = 40) -> str:
    return "\n".join(text.splitlines()[-lines:])


def _gui_command(args: list[str]) -> list[str]:
    """The bundled app under the display pytest-xvfb started, or a virtual one of its own."""
    if os.environ.get("DISPLAY"):
        return [str(EXE), *args]
    return ["xvfb-run", "-a", "-s", "-screen 0 1280x800x24", str(EXE), *args]


@pytest.fixture(scope="module")
def build() -> subprocess.CompletedProcess:
    """Set up, build and self-check the bundle once for this module (the script's own run)."""
    proc = subprocess.run(["bash", "scripts/build_bundle.sh"], cwd=ROOT, capture_output=True, text=True,
                          timeout=3600)
    assert proc.returncode == 0, f"build_bundle.sh failed ({proc.returncode}):\n{_tail(proc.stdout + proc.stderr)}"
    return proc


def test_build_script_reports_size_and_a_passed_self_test(build):
    out = build.stdout
    assert re.search(r"^\[fusecap\] built in \d+ s$", out, re.M), _tail(out)
    assert re.search(r"^\[fusecap\] bundle size: \S+ \(\d+ files\) in dist/fusecap$", out, re.M), _tail(out)
    assert "[fusecap] self-test passed: " in out, _tail(out)


def test_bundled_self_test_solves_frames_with_the_shipped_model(build):
    proc = subprocess.run(_gui_command(["--self-test"]), cwd=ROOT, capture_output=True, text=True, timeout=300)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, _tail(output)
    match = SELF_TEST_LINE.search(proc.stdout)
    assert match, _tail(output)
    assert int(match.group(1)) >= 3
    # The lite weights come from the bundle's resources/ folder (core/resources.py).
    assert match.group(2) == "lite"


def test_bundled_export_help_runs_without_a_display(build):
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    proc = subprocess.run([str(EXE), "export", "--help"], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, _tail(proc.stdout + proc.stderr)
    assert proc.stdout.startswith("usage: fusecap export")
    for option in ("--bvh", "--csv", "--units"):
        assert option in proc.stdout


def _declared_plugins() -> dict[str, str]:
    with open(ROOT / "pyproject.toml", "rb") as f:
        return dict(tomllib.load(f)["project"]["entry-points"]["fusecap.plugins"])


def _bundled_entry_points() -> dict[str, str]:
    # copy_metadata takes whichever form the build's import path finds first: the
    # installed dist-info, or the egg-info that `pip install -e` leaves in the checkout.
    (metadata,) = [*INTERNAL.glob("fusecap-*.dist-info"), *INTERNAL.glob("fusecap.egg-info")]
    found, group = {}, None
    for line in (metadata / "entry_points.txt").read_text().splitlines():
        line = line.strip()
        if line.startswith("["):
            group = line.strip("[]")
        elif "=" in line and group == "fusecap.plugins":
            name, target = (part.strip() for part in line.split("=", 1))
            found[name] = target
    return found


def _bundled_modules() -> set[str]:
    from PyInstaller.archive.readers import CArchiveReader

    return set(CArchiveReader(str(EXE)).open_embedded_archive("PYZ.pyz").toc)


def test_bundle_carries_every_builtin_plugin(build):
    declared = _declared_plugins()
    assert {"simulated", "imu", "cameras"} <= set(declared)
    # core/registry.py finds plugins only through these entry points.
    assert _bundled_entry_points() == declared
    modules = _bundled_modules()
    for target in declared.values():
        assert target.split(":")[0] in modules
    # Drivers each plugin imports only when a source is created.
    for module in ("plugins.cameras.opencv_source", "plugins.cameras.video_files", "plugins.imu.serial_source",
                   "plugins.imu.slimevr", "plugins.imu.sim_hub", "plugins.simulated.sources"):
        assert module in modules


def test_bundled_plugins_load_through_the_registry(build):
    """The simulated studio and the serial IMU plugin, found through the bundled
    entry points: the IMUs are read back through a pseudo-terminal serial port."""
    proc = subprocess.run([str(EXE), "demo", "--headless", "--imu-serial", "--seconds", "2", "--model", "none",
                           "--quiet"], cwd=ROOT, capture_output=True, text=True, timeout=180)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, _tail(output)
    assert "FuseCap protocol over the serial port" in output
    match = re.search(r"^(\d+) frames in [\d.]+ s", proc.stdout, re.M)
    assert match and int(match.group(1)) > 0, _tail(output)


def test_bundle_holds_the_data_it_needs_and_not_the_heavy_extras(build):
    assert (INTERNAL / "resources" / "models" / "deepfuse-lite.pt").is_file()
    assert (INTERNAL / "resources" / "bvh_name_map.json").is_file()
    assert (INTERNAL / "resources" / "firmware" / "fusecap_hub" / "fusecap_hub.ino").is_file()
    assert len(list((INTERNAL / "vispy" / "glsl").rglob("*.glsl"))) > 50
    assert (INTERNAL / "PySide6" / "Qt" / "plugins" / "platforms" / "libqxcb.so").is_file()
    assert (INTERNAL / "torch" / "bin" / "torch_shm_manager").is_file()
    assert not (INTERNAL / "torch" / "test").exists()
    assert not (INTERNAL / "torch" / "include").exists()
    assert not list(INTERNAL.rglob("libQt6WebEngine*"))
    assert not (INTERNAL / "tkinter").exists() and not list(INTERNAL.rglob("_tkinter*"))
    size = sum(p.stat().st_size for p in BUNDLE.rglob("*") if p.is_file() and not p.is_symlink())
    assert size < MAX_BUNDLE_BYTES, f"bundle is {size / 2**20:.0f} MiB"

