"""The studio session: one API that the desktop app and every command use
to run a studio (simulated, or real cameras and IMUs). See
core.session.session for the session and its events, core.session.studios
for what a session captures from, core.session.opening for assembling one."""

from core.session.session import CaptureSession, ImuStatus, LiveFrame, RecordingStopped, SessionEvents, SessionStats
from core.session.studios import DEVICES, SIMULATED, DeviceSetup, DeviceStudio, SimulatedStudioSource, Studio

__all__ = ["CaptureSession", "DEVICES", "DeviceSetup", "DeviceStudio", "ImuStatus", "LiveFrame",
           "RecordingStopped", "SIMULATED", "SessionEvents", "SessionStats", "SimulatedStudioSource", "Studio"]
