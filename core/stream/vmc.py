"""The VMC protocol: the performer, live, to VMC receivers over OSC/UDP.

VMC ("Virtual Motion Capture protocol", protocol.vmc.info) is the live link
that VSeeFace, Blender (VMC4B), Unity (EVMC4U) and Unreal (VMC4UE) receive.
A sender (the protocol calls it the "Performer") streams to a receiver
(the "Marionette"), which listens on UDP port 39539 by default. Each frame
here is one OSC bundle (immediate time tag) holding, in order::

    /VMC/Ext/OK       (int) 1                      the avatar is loaded and sent
    /VMC/Ext/T        (float) t                    seconds since the first frame sent
    /VMC/Ext/Root/Pos (string) "root" p.x p.y p.z q.x q.y q.z q.w
    /VMC/Ext/Bone/Pos (string) name  p.x p.y p.z q.x q.y q.z q.w   x 21 bones

Bone names are Unity's HumanBodyBones (:data:`HUMANOID_BONES`); HeadTop has
no humanoid bone and is not sent. Quaternions are scalar-last (x, y, z, w)
on this wire, as Unity writes them; FuseCap's own scalar-first order stops
at this module's edge.

Frames. VMC speaks Unity: left-handed, Y up, metres, and a humanoid whose
bones all have the identity rotation in its T-pose (a normalised avatar),
facing +Z with its left hand towards -X. FuseCap's rest pose is the same
kind of T-pose (identity rest rotations, each local rotation applied in the
parent's frame), so the two differ only by a fixed change of basis
(:data:`UNITY_FROM_WORLD`): FuseCap's Y-up axes (:mod:`core.axes`) with X
mirrored. The performer's forward (-Y) becomes +Z, up (+Z) becomes +Y, left
(+X) becomes -X, and millimetres become metres. A rotation R becomes
M R M^T; for the quaternion that is (x, y, z, w) -> (x, -z, y, w). See
docs/VMC.md for the derivation.

Positions. The root object stays at the receiver's origin (identity
rotation); the Hips bone carries the performer's root position and global
root rotation. Every other bone's position is its rest offset from its
parent, from the skeleton given to :class:`VmcSender` (the subject's
offsets), or zero when none is given: receivers that apply only rotations
and the Hips position do not need it.
"""

from __future__ import annotations

import math
import socket

import numpy as np
from pythonosc.osc_bundle import OscBundle
from pythonosc.osc_bundle_builder import IMMEDIATELY, OscBundleBuilder
from pythonosc.osc_message_builder import OscMessageBuilder
from pythonosc.udp_client import UDPClient
from scipy.spatial.transform import Rotation

from core import axes
from core import skeleton as sk
from core.rotations import from_wxyz

VMC_PORT = 39539
ADDRESS_OK = "/VMC/Ext/OK"
ADDRESS_TIME = "/VMC/Ext/T"
ADDRESS_ROOT = "/VMC/Ext/Root/Pos"
ADDRESS_BONE = "/VMC/Ext/Bone/Pos"

# FuseCap joint -> Unity HumanBodyBones name. Unity's optional UpperChest is
# not sent: a receiving avatar that has one keeps it at rest, which
# composes to the same chain.
HUMANOID_BONES: dict[str, str] = {
    "Hips": "Hips",
    "Spine": "Spine",
    "Chest": "Chest",
    "Neck": "Neck",
    "Head": "Head",
    **{f"{side}{ours}": f"{side}{unity}" for side in ("Left", "Right") for ours, unity in (
        ("Shoulder", "Shoulder"),
        ("Arm", "UpperArm"),
        ("ForeArm", "LowerArm"),
        ("Hand", "Hand"),
        ("UpLeg", "UpperLeg"),
        ("Leg", "LowerLeg"),
        ("Foot", "Foot"),
        ("ToeBase", "Toes"),
    )},
}
# (joint index, humanoid name) of every joint sent, in skeleton order.
SENT_JOINTS: tuple[tuple[int, str], ...] = tuple(
    (j, HUMANOID_BONES[name]) for j, name in enumerate(sk.JOINTS) if name in HUMANOID_BONES
)

# Unity coordinates of a FuseCap world direction: u = M f, the Y-up axes of
# core.axes with X mirrored. Rows: Unity's +X (the avatar's right) is
# FuseCap -X, +Y (up) is +Z, +Z (forward) is -Y. det M = -1: the handedness flips.
_MIRROR_X = np.array([-1.0, 1.0, 1.0])
UNITY_FROM_WORLD = _MIRROR_X[:, None] * axes.Y_UP_FROM_WORLD
MM_PER_M = 1000.0


def world_to_unity_position(p_mm: np.ndarray) -> np.ndarray:
    """FuseCap world mm (..., 3) -> Unity metres (..., 3)."""
    return axes.world_to_y_up(p_mm) * _MIRROR_X / MM_PER_M


def unity_to_world_position(p_m: np.ndarray) -> np.ndarray:
    """Unity metres (..., 3) -> FuseCap world mm (..., 3)."""
    return axes.y_up_to_world(np.asarray(p_m, np.float64) * _MIRROR_X) * MM_PER_M


def world_to_unity_rotation(rot: Rotation) -> Rotation:
    """The same physical rotation written in Unity's axes: M R M^T."""
    return _mirror_x(axes.world_to_y_up_rotation(rot))


def unity_to_world_rotation(rot: Rotation) -> Rotation:
    return axes.y_up_to_world_rotation(_mirror_x(rot))


def _mirror_x(rot: Rotation) -> Rotation:
    """F R F with F the mirror x -> -x: a rotation's axis (x, y, z) becomes
    (x, -y, -z) (an axial vector), its angle stays."""
    return Rotation.from_quat(rot.as_quat() * np.array([1.0, -1.0, -1.0, 1.0]))


def _local_rotations(local: Rotation | np.ndarray) -> Rotation:
    rot = local if isinstance(local, Rotation) else from_wxyz(np.asarray(local, np.float64))
    if rot.single or len(rot) != sk.NUM_JOINTS:
        n = 1 if rot.single else len(rot)
        raise ValueError(f"expected {sk.NUM_JOINTS} local rotations (one per joint), got {n}")
    return rot


def frame_messages(time_s: float, root_mm: np.ndarray, local: Rotation | np.ndarray,
                   offsets_mm: np.ndarray | None = None) -> list[tuple[str, list]]:
    """One frame's VMC messages as (address, arguments), in sending order.

    time_s: the value of /VMC/Ext/T. root_mm: (3,) Hips position, world mm.
    local: the J local joint rotations (a Rotation, or (J, 4) w, x, y, z).
    offsets_mm: (J, 3) rest offsets for the bones' positions (zero without).
    """
    root = np.asarray(root_mm, np.float64).reshape(3)
    q_unity = world_to_unity_rotation(_local_rotations(local)).as_quat(canonical=True)  # x, y, z, w
    pos = np.zeros((sk.NUM_JOINTS, 3))
    if offsets_mm is not None:
        offsets = np.asarray(offsets_mm, np.float64)
        if offsets.shape != (sk.NUM_JOINTS, 3):
            raise ValueError(f"offsets must be ({sk.NUM_JOINTS}, 3), got {offsets.shape}")
        pos = world_to_unity_position(offsets)
    pos[sk.ROOT] = world_to_unity_position(root)
    messages: list[tuple[str, list]] = [
        (ADDRESS_OK, [1]),
        (ADDRESS_TIME, [float(time_s)]),
        (ADDRESS_ROOT, ["root", 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0]),
    ]
    for j, name in SENT_JOINTS:
        messages.append((ADDRESS_BONE, [name, *map(float, pos[j]), *map(float, q_unity[j])]))
    return messages


def frame_bundle(messages: list[tuple[str, list]]) -> OscBundle:
    """One OSC bundle (immediate time tag) holding the messages; floats go as float32."""
    bundle = OscBundleBuilder(IMMEDIATELY)
    for address, args in messages:
        msg = OscMessageBuilder(address=address)
        for a in args:
            msg.add_arg(a)
        bundle.add_content(msg.build())
    return bundle.build()


class VmcSender:
    """Streams poses to one VMC receiver over UDP.

    host, port: the receiver (39539 is the usual VMC receiver port).
    offsets_mm: (J, 3) rest offsets of the performer's skeleton, sent as the
    bones' positions (optional; see the module notes).

    A bad port raises ValueError and a host that cannot be resolved raises
    OSError, both here. Sending never raises on the network: a failed send
    (no route, a full buffer, a refused packet) is counted in `send_errors`
    with the reason in `last_error`, and the live path goes on. Frames with
    no solve (non-finite root or rotations) are not sent and are counted in
    `frames_skipped`. Nothing listening on the port is not an error for UDP:
    the frames simply go unheard.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = VMC_PORT,
                 offsets_mm: np.ndarray | None = None) -> None:
        if not isinstance(host, str) or not host.strip():
            raise ValueError(f"VMC receiver host must be a host name or IP address, got {host!r}")
        if isinstance(port, bool) or not isinstance(port, (int, np.integer)) or not 1 <= port <= 65535:
            raise ValueError(f"VMC receiver port must be an integer from 1 to 65535, got {port!r}")
        if offsets_mm is not None:
            offsets_mm = np.array(offsets_mm, np.float64)
            if offsets_mm.shape != (sk.NUM_JOINTS, 3) or not np.isfinite(offsets_mm).all():
                raise ValueError(f"offsets must be finite ({sk.NUM_JOINTS}, 3) mm, got {offsets_mm.shape}")
        try:
            self._client = UDPClient(host, int(port))
        except socket.gaierror as e:
            raise OSError(f"cannot resolve the VMC receiver host {host!r}: {e.strerror or e}") from e
        self.host, self.port = host, int(port)
        self.offsets_mm = offsets_mm
        self.frames_sent = 0
        self.frames_skipped = 0
        self.send_errors = 0
        self.last_error: str | None = None
        self._t0: float | None = None
        self._closed = False

    def send_pose(self, t_s: float, root_mm: np.ndarray, local: Rotation | np.ndarray) -> bool:
        """Send one frame. t_s: the frame's time (s); root_mm: (3,) Hips, world mm;
        local: J local rotations (Rotation or (J, 4) w, x, y, z).

        Returns True when the bundle left the socket. Shapes that do not fit
        the skeleton raise ValueError; network trouble never raises.
        """
        if self._closed:
            return False
        root = np.asarray(root_mm, np.float64).reshape(-1)
        if root.shape != (3,):
            raise ValueError(f"root must be (3,) mm, got shape {np.shape(root_mm)}")
        rot = local if isinstance(local, Rotation) else np.asarray(local, np.float64)
        finite = np.isfinite(root).all() and np.isfinite(
            rot.as_quat() if isinstance(rot, Rotation) else rot).all()
        if not finite or not math.isfinite(t_s):
            self.frames_skipped += 1
            return False
        if self._t0 is None:
            self._t0 = float(t_s)
        dgram = frame_bundle(frame_messages(t_s - self._t0, root, rot, self.offsets_mm))
        try:
            self._client.send(dgram)
        except OSError as e:
            self.send_errors += 1
            self.last_error = f"{type(e).__name__}: {e}"
            return False
        self.frames_sent += 1
        return True

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._client.close()

    def __enter__(self) -> "VmcSender":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def parse_host_port(text: str) -> tuple[str, int]:
    """"127.0.0.1:39539" -> ("127.0.0.1", 39539); ValueError for anything else."""
    host, sep, port = text.rpartition(":")
    try:
        value = int(port)
    except ValueError:
        value = -1
    if not sep or not host or not 0 < value < 65536:
        raise ValueError(f"expected HOST:PORT (e.g. 127.0.0.1:39539), got {text!r}")
    return host, value
