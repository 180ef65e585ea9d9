"""The built-in simulated studio plugin (entry point `simulated`)."""

from __future__ import annotations


def create(config=None, realtime: bool = True):
    """A SimulatedDevices for `config` (a core.sim.studio.StudioConfig)."""
    from core.sim.studio import SimulatedStudio
    from plugins.simulated.sources import SimulatedDevices

    return SimulatedDevices(SimulatedStudio(config), realtime=realtime)


def register(registry) -> None:
    registry.add_studio("simulated", create)
