"""The skeleton solve: what the animator receives.

The network places the body in the room and tells the bone lengths; the
IMUs measure bone orientations whatever the pose. The solve fits one
constant-length skeleton per performer to both, with joint limits and a
motion prior, plants the feet during contacts, and carries on from the IMUs
alone when no camera sees the performer.
"""
