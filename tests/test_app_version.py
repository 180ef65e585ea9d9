"""FuseCap's version comes from its installed package metadata (pyproject.toml's
version), and every take records it."""

import importlib.metadata
import json
import tomllib
from pathlib import Path

from core.camera.rig import CameraRig, standard_studio
from core.take import layout
from core.take.take import Take
from tests.takes import record_lockstep

ROOT = Path(__file__).resolve().parents[1]


def test_a_take_records_the_installed_version(tmp_path):
    installed = importlib.metadata.version("fusecap")
    with open(ROOT / "pyproject.toml", "rb") as f:
        assert installed == tomllib.load(f)["project"]["version"]
    root = tmp_path / "take"
    record_lockstep(root, seconds=0.2, fps=10.0, rig=CameraRig(standard_studio().cameras[:1]))
    assert json.loads((root / "take.json").read_text())["app_version"] == installed
    assert Take(root).meta["app_version"] == installed


def test_the_version_is_read_from_the_metadata_not_written_in_the_code(monkeypatch):
    monkeypatch.setattr(layout.metadata, "version", lambda name: {"fusecap": "7.8.9"}[name])
    assert layout._app_version() == "7.8.9"


def test_without_package_metadata_the_version_says_so(monkeypatch):
    def missing(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(layout.metadata, "version", missing)
    assert layout._app_version() == "unknown (FuseCap is not installed)"
