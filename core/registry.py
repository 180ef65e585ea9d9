"""The plugin registry: how core finds device sources without importing them.

Plugins (the built-in ones in plugins/ and third-party packages alike)
declare an entry point in the group ``fusecap.plugins`` that names a
``register(registry)`` function; it adds named factories here.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any, Callable

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "fusecap.plugins"


@dataclass
class Registry:
    studios: dict[str, Callable[..., Any]] = field(default_factory=dict)
    camera_sources: dict[str, Callable[..., Any]] = field(default_factory=dict)
    imu_sources: dict[str, Callable[..., Any]] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)

    def add_studio(self, name: str, factory: Callable[..., Any]) -> None:
        self.studios[name] = factory

    def add_camera_source(self, name: str, factory: Callable[..., Any]) -> None:
        self.camera_sources[name] = factory

    def add_imu_source(self, name: str, factory: Callable[..., Any]) -> None:
        self.imu_sources[name] = factory


_registry: Registry | None = None


def registry() -> Registry:
    """The process-wide registry, filled from the entry points on first use.

    A plugin that fails to load is recorded in ``errors`` (shown to the user)
    instead of stopping the others."""
    global _registry
    if _registry is None:
        reg = Registry()
        for ep in entry_points(group=ENTRY_POINT_GROUP):
            try:
                ep.load()(reg)
            except Exception as exc:  # a broken third-party plugin must not stop FuseCap
                log.warning("plugin %s failed to load: %s", ep.name, exc)
                reg.errors[ep.name] = f"{type(exc).__name__}: {exc}"
        _registry = reg
    return _registry
