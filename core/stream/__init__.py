"""Live links that stream the solved performer to other applications.

- :mod:`core.stream.vmc`: the VMC protocol over OSC/UDP (VSeeFace, Blender
  through VMC4B, Unity through EVMC4U, Unreal through VMC4UE).
"""
