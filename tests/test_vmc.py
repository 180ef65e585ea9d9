"""The VMC live link: the change to Unity's frame, the messages, and frames
through a real OSC server (python-osc) on 127.0.0.1.

The receiver side here is written independently of core.stream.vmc: it
reads Unity quaternions (x, y, z, w) and positions (m) and maps them back to
FuseCap with the component formulas of docs/VMC.md, not with the module's
matrices."""

import socket
import threading
import time

import numpy as np
import pytest
from pythonosc.dispatcher import Dispatcher
from pythonosc.osc_bundle import OscBundle
from pythonosc.osc_server import BlockingOSCUDPServer
from scipy.spatial.transform import Rotation

from core import skeleton as sk
from core.rotations import angle_deg, to_wxyz
from core.sim.motion import Performer, ProceduralMotion
from core.sim.subject import Subject
from core.stream import vmc

UNITY_BONES = {"Hips", "Spine", "Chest", "Neck", "Head"} | {
    f"{side}{b}" for side in ("Left", "Right") for b in (
        "Shoulder", "UpperArm", "LowerArm", "Hand", "UpperLeg", "LowerLeg", "Foot", "Toes")}


def _seed(rng: np.random.Generator) -> int:
    return int(rng.integers(1_000_000, 2_000_000))


def _performer(seed: int) -> Performer:
    return Performer(Subject.from_seed(seed), ProceduralMotion(seed))


def _local_rotations(global_mats: np.ndarray) -> Rotation:
    """(J, 3, 3) global rotations of one frame -> J local rotations (parent^-1 * global)."""
    local = np.empty_like(global_mats)
    for j, p in enumerate(sk.PARENTS):
        local[j] = global_mats[j] if p < 0 else global_mats[p].T @ global_mats[j]
    return Rotation.from_matrix(local)


# The receiver's side, by components (Unity -> FuseCap): positions
# (x, y, z) -> 1000 * (-x, -z, y); quaternions (x, y, z, w) -> (x, z, -y, w).
def _unity_pos_to_world(p_m) -> np.ndarray:
    x, y, z = p_m
    return 1000.0 * np.array([-x, -z, y])


def _unity_quat_to_world(q_xyzw) -> Rotation:
    x, y, z, w = q_xyzw
    return Rotation.from_quat([x, z, -y, w])


def _by_bone(messages) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    return {args[0]: (np.array(args[1:4]), np.array(args[4:8]))
            for address, args in messages if address == vmc.ADDRESS_BONE}


# --------------------------------------------------------------------------- frames


def test_the_avatar_faces_and_turns_the_unity_way():
    # The performer's rest frame: forward -Y, left +X, up +Z. A Unity humanoid
    # faces +Z with its left hand at -X, Y up; lengths in metres.
    assert np.allclose(vmc.world_to_unity_position([0.0, -1000.0, 0.0]), [0, 0, 1])
    assert np.allclose(vmc.world_to_unity_position([1000.0, 0.0, 0.0]), [-1, 0, 0])
    assert np.allclose(vmc.world_to_unity_position([0.0, 0.0, 1000.0]), [0, 1, 0])
    assert np.linalg.det(vmc.UNITY_FROM_WORLD) == pytest.approx(-1.0)   # handedness flips
    # Turning 90 degrees to the performer's left (about +Z, counter-clockwise
    # from above) is, in Unity's left-handed frame, -90 degrees about +Y, and
    # turns the avatar's forward (+Z) towards its old left (-X).
    left_turn = Rotation.from_euler("z", 90, degrees=True)
    unity = vmc.world_to_unity_rotation(left_turn)
    assert np.allclose(unity.apply([0, 0, 1]), [-1, 0, 0])
    assert angle_deg(unity, Rotation.from_euler("y", -90, degrees=True)) < 1e-9
    # Raising the left arm: the hand goes up in both frames.
    raise_left = Rotation.from_euler("y", -60, degrees=True)        # +X towards +Z
    hand = raise_left.apply([500.0, 0, 0])
    assert hand[2] > 400
    assert vmc.world_to_unity_position(hand)[1] > 0.4
    assert np.allclose(vmc.world_to_unity_rotation(raise_left).apply(
        vmc.world_to_unity_position([500.0, 0, 0])), vmc.world_to_unity_position(hand))


def test_quaternion_components_map_as_documented(rng):
    rot = Rotation.random(200, random_state=rng)
    f = rot.as_quat()
    u = vmc.world_to_unity_rotation(rot).as_quat()
    expected = np.stack([f[:, 0], -f[:, 2], f[:, 1], f[:, 3]], axis=1)
    assert np.allclose(np.abs(np.sum(u * expected, axis=1)), 1.0, atol=1e-12)
    assert np.all(angle_deg(vmc.unity_to_world_rotation(vmc.world_to_unity_rotation(rot)), rot) < 1e-6)


def test_unity_forward_kinematics_of_the_sent_pose_gives_back_the_world_joints(rng):
    # What a receiver does: rest offsets and received local rotations,
    # composed down the chain in Unity's frame. Mapped back, the joints must
    # be the performer's own, to float32 precision.
    seed = _seed(rng)
    perf = _performer(seed)
    poses = perf.poses_at(np.array([3.7, 11.2, 25.05]))
    offsets = perf.subject.offsets_mm
    for k in range(len(poses)):
        local = _local_rotations(poses.rotations[k])
        msgs = vmc.frame_messages(0.0, poses.positions_mm[k, sk.ROOT], local, offsets)
        bones = _by_bone(msgs)
        assert set(bones) == UNITY_BONES
        name = {j: n for j, n in vmc.SENT_JOINTS}
        rot_u = {}
        pos_u = np.zeros((sk.NUM_JOINTS, 3))
        for j, p in enumerate(sk.PARENTS):
            if j in name:
                p_local, q = bones[name[j]]
                r_local = Rotation.from_quat(q)
            else:   # HeadTop: no humanoid bone; an end site at its rest offset
                x, y, z = offsets[j]
                p_local, r_local = np.array([-x, z, -y]) / 1000.0, Rotation.identity()
            if p < 0:
                rot_u[j], pos_u[j] = r_local, p_local
            else:
                rot_u[j] = rot_u[p] * r_local
                pos_u[j] = pos_u[p] + rot_u[p].apply(p_local)
        back = np.array([_unity_pos_to_world(q) for q in pos_u])
        err = np.abs(back - poses.positions_mm[k]).max()
        assert err < 0.1, (seed, k, err)
        for j in name:
            g = _unity_quat_to_world(rot_u[j].as_quat())
            assert angle_deg(g, Rotation.from_matrix(poses.rotations[k, j])) < 0.01, (seed, k, j)


def test_frame_messages_and_bundle(rng):
    local = Rotation.random(sk.NUM_JOINTS, random_state=rng.integers(1 << 31))
    root = rng.uniform(-1500, 1500, 3)
    msgs = vmc.frame_messages(1.25, root, local)
    assert [m[0] for m in msgs[:3]] == [vmc.ADDRESS_OK, vmc.ADDRESS_TIME, vmc.ADDRESS_ROOT]
    assert msgs[0][1] == [1] and msgs[1][1] == [1.25]
    assert msgs[2][1] == ["root", 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0]
    bones = _by_bone(msgs)
    assert len(msgs) == 3 + 21 and set(bones) == UNITY_BONES
    assert np.allclose(_unity_pos_to_world(bones["Hips"][0]), root)
    assert np.allclose(bones["LeftUpperArm"][0], 0.0)            # no skeleton given
    # The same pose as scalar-first quaternions gives the same messages.
    again = _by_bone(vmc.frame_messages(1.25, root, to_wxyz(local)))
    for name, (p_m, q) in bones.items():
        assert np.allclose(again[name][0], p_m, atol=1e-12) and np.allclose(again[name][1], q, atol=1e-12)
    dgram = vmc.frame_bundle(msgs).dgram
    assert OscBundle.dgram_is_bundle(dgram)
    assert len(dgram) == 1752                                      # fits one UDP datagram easily
    with pytest.raises(ValueError, match="22 local rotations"):
        vmc.frame_messages(0.0, root, local[:5])
    with pytest.raises(ValueError, match="offsets"):
        vmc.frame_messages(0.0, root, local, np.zeros((21, 3)))


# --------------------------------------------------------------------------- a real receiver


class _Receiver:
    """A python-osc server on 127.0.0.1 (ephemeral port) that keeps every datagram's messages."""

    def __init__(self) -> None:
        self.packets: list[dict] = []
        self._current: list | None = None
        outer = self

        class Recording(Dispatcher):
            def call_handlers_for_packet(self, data, client_address):
                outer._current = []
                out = super().call_handlers_for_packet(data, client_address)
                outer.packets.append({"bundle": OscBundle.dgram_is_bundle(data),
                                      "messages": outer._current})
                return out

        disp = Recording()
        for address in (vmc.ADDRESS_OK, vmc.ADDRESS_TIME, vmc.ADDRESS_ROOT, vmc.ADDRESS_BONE):
            disp.map(address, self._on_message)
        self.server = BlockingOSCUDPServer(("127.0.0.1", 0), disp)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                                       daemon=True)
        self.thread.start()

    def _on_message(self, address, *args):
        self._current.append((address, list(args)))

    def wait_for(self, n: int, timeout_s: float = 5.0) -> None:
        end = time.monotonic() + timeout_s
        while len(self.packets) < n and time.monotonic() < end:
            time.sleep(0.01)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=2.0)


@pytest.fixture
def receiver():
    r = _Receiver()
    yield r
    r.close()


def test_frames_arrive_at_a_real_osc_server(receiver, rng):
    seed = _seed(rng)
    perf = _performer(seed)
    times = 5.0 + np.arange(12) / 30.0
    poses = perf.poses_at(times)
    offsets = perf.subject.offsets_mm
    sent = []
    with vmc.VmcSender("127.0.0.1", receiver.port, offsets_mm=offsets) as sender:
        for k, t in enumerate(times):
            local = _local_rotations(poses.rotations[k])
            # Alternate the two accepted forms of the rotations.
            arg = local if k % 2 else to_wxyz(local)
            assert sender.send_pose(t, poses.positions_mm[k, sk.ROOT], arg)
            sent.append(local)
            time.sleep(0.002)   # a live rate, not a burst that could overflow the receive buffer
        receiver.wait_for(len(times))
        assert (sender.frames_sent, sender.send_errors, sender.frames_skipped) == (12, 0, 0)
    assert len(receiver.packets) == len(times), seed
    assert all(p["bundle"] for p in receiver.packets)
    joint_of = {n: j for j, n in vmc.SENT_JOINTS}
    worst_deg, worst_mm = 0.0, 0.0
    seen = set()
    for packet in receiver.packets:
        msgs = packet["messages"]
        by_address = {}
        for address, args in msgs:
            by_address.setdefault(address, []).append(args)
        assert by_address[vmc.ADDRESS_OK] == [[1]]
        # UDP may reorder: the frame is the one whose time the bundle carries.
        t_rel = by_address[vmc.ADDRESS_TIME][0][0]
        k = int(round(t_rel * 30.0))
        assert t_rel == pytest.approx(times[k] - times[0], abs=1e-6)
        seen.add(k)
        assert by_address[vmc.ADDRESS_ROOT] == [["root", 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0]]
        bones = _by_bone(msgs)
        assert set(bones) == UNITY_BONES
        for name, (p_m, q) in bones.items():
            j = joint_of[name]
            worst_deg = max(worst_deg, float(angle_deg(_unity_quat_to_world(q), sent[k][j])))
            expected = poses.positions_mm[k, sk.ROOT] if j == sk.ROOT else offsets[j]
            worst_mm = max(worst_mm, float(np.abs(_unity_pos_to_world(p_m) - expected).max()))
    assert seen == set(range(len(times)))
    # float32 on the wire: measured 5e-6 degrees and 6e-5 mm at worst over 300 frames.
    assert worst_deg < 0.1, seed
    assert worst_mm < 0.1, seed


def test_no_listener_and_failed_sends_do_not_raise():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:      # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    local = Rotation.identity(sk.NUM_JOINTS)
    with vmc.VmcSender("127.0.0.1", port) as sender:
        for k in range(5):
            sender.send_pose(k / 30.0, [0.0, 0.0, 950.0], local)
            time.sleep(0.005)
        assert sender.frames_sent + sender.send_errors == 5
    # A send the system refuses (broadcast without permission) is counted, not raised.
    with vmc.VmcSender("255.255.255.255", 39539) as sender:
        for k in range(3):
            assert sender.send_pose(k / 30.0, [0.0, 0.0, 950.0], local) is False
        assert sender.send_errors == 3 and sender.frames_sent == 0
        assert sender.last_error
    # A frame with no solve is skipped; a closed sender sends nothing.
    sender = vmc.VmcSender("127.0.0.1", port)
    assert sender.send_pose(0.0, [np.nan, 0.0, 0.0], local) is False
    q = to_wxyz(local)
    q[3] = np.nan
    assert sender.send_pose(0.1, [0.0, 0.0, 950.0], q) is False
    assert sender.frames_skipped == 2 and sender.frames_sent == 0
    sender.close()
    assert sender.send_pose(0.2, [0.0, 0.0, 950.0], local) is False


def test_bad_host_or_port_is_a_clear_error():
    for port in (0, 70000, -1, "39539", True, 3.5):
        with pytest.raises(ValueError, match="port must be an integer from 1 to 65535"):
            vmc.VmcSender("127.0.0.1", port)
    for host in ("", "  ", None):
        with pytest.raises(ValueError, match="host"):
            vmc.VmcSender(host)
    with pytest.raises(OSError, match="cannot resolve the VMC receiver host 'no-such-host.invalid'"):
        vmc.VmcSender("no-such-host.invalid")
    with pytest.raises(ValueError, match="offsets"):
        vmc.VmcSender(offsets_mm=np.zeros((3, 3)))
    with vmc.VmcSender() as sender:
        assert sender.port == vmc.VMC_PORT == 39539
        with pytest.raises(ValueError, match="root"):
            sender.send_pose(0.0, np.zeros(4), Rotation.identity(sk.NUM_JOINTS))
