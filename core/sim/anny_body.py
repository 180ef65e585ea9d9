"""Simulated performers from the Anny body model, built once per seed and cached.

Anny (PyPI ``anny``: Apache-2.0 code, MakeHuman's CC0 assets, all data inside
the wheel) turns phenotype parameters into a rigged human mesh. FuseCap uses
it only to *make* a performer; posing and rendering are FuseCap's own
(:mod:`core.sim.mesh_body`, :mod:`core.sim.render_mesh`), so Anny is imported
once per new seed and never while a studio runs from the cache.

What a seed gives (:func:`build_mesh_subject`):

1. Phenotype, from a seeded RNG: gender (0 male .. 1 female), age 13-85
   years (mapped onto Anny's age axis with the piecewise-linear table of its
   shape calibration), muscle, weight, proportions, and a stature drawn
   uniformly in 1.46-2.04 m that Anny's height parameter is solved for
   (bisection; when the body cannot reach it the draw is limited to what it
   reaches).
2. The rest mesh in Anny's frame, which is FuseCap's (Z up, facing -Y, left
   +X) in metres, with the ``notoes_collapse10pc`` topology: 1229 vertices,
   2454 triangles, closed. At 480x270 its silhouettes overlap the full
   13718-vertex mesh's with IoU 0.978 (8 studio cameras) and render 7x faster.
3. FuseCap's 22 joints at anatomical points of Anny's skeleton
   (:data:`JOINT_ANCHORS`), and Anny's 104 bones' skinning weights summed
   onto the joint whose segment each bone lies in (:data:`BONE_JOINTS`).
4. The T-pose: Anny stands in an A-pose (arms ~45 degrees down, elbows bent
   forward, legs a little apart). FuseCap's rest pose has the arms along +-X
   and the legs straight down, so the mesh is posed with FuseCap's own linear
   blend skinning: upper arm, forearm and hand each turned onto +-X (each
   after its parent, so no twist is added), thigh and shank onto -Z, each
   foot turned about Z only (the sole stays flat) to point along -Y. Then
   mm, feet on the floor (z = 0).
5. A :class:`core.sim.subject.Subject` from those joints (offsets, stature,
   and capsule radii measured on the mesh, so the capsule body of the same
   subject has about the same girth), and clothing shells for some seeds
   (:mod:`core.sim.mesh_body`).

The result is cached as one small ``.npz`` per seed under
:func:`cache_dir` (``$FUSECAP_CACHE/bodies``, default
``~/.cache/fusecap/bodies``), keyed by Anny's version, the seed and
:data:`FORMAT_VERSION`; a second start loads it in milliseconds without
importing Anny. Anny's own model data (MakeHuman's targets, parsed once per
machine, about a minute) goes to ``$FUSECAP_CACHE/anny`` unless
``ANNY_CACHE_DIR`` is set; only the compact data FuseCap's topology needs is
kept there (6.5 MB; Anny's intermediate files, 800 MB, are removed). That
compact data ships in resources/anny and is copied into the cache before
Anny first runs, so no machine spends the minute building it.

Units: mm in everything FuseCap sees; Anny works in metres.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from core import skeleton as sk
from core.sim.subject import Subject

log = logging.getLogger(__name__)

J = sk.JOINT_INDEX

ANNY_VERSION = "0.6.2"
# Bump when what is stored for a seed changes (joints, weights, clothing).
FORMAT_VERSION = 1
TOPOLOGY = "notoes_collapse10pc"

# Stature drawn for a subject, mm (the requirement says 1.45-2.05 m; the T-pose
# straightens the legs by a few mm, so the target keeps 10 mm inside).
STATURE_RANGE_MM = (1460.0, 2040.0)
AGE_RANGE_YEARS = (13.0, 85.0)

# Anny's age axis against age in years (its shape calibration's morphological
# age table, data/shape_calibration/*.pth in the anny wheel).
_AGE_YEARS = np.array([0.0, 1.0, 4.0, 11.0, 16.0, 18.0, 64.0, 110.0])
_AGE_ANNY = np.array([0.0, 0.05, 0.215, 0.415, 0.67, 0.77, 0.83, 1.0])


def anny_age(years: float) -> float:
    """Age in years -> Anny's ``age`` parameter (piecewise linear)."""
    return float(np.interp(years, _AGE_YEARS, _AGE_ANNY))


def _side(names: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(n + s for n in names for s in (".L", ".R"))


# Which of FuseCap's joints moves each of Anny's bones (its vertices follow
# that joint's rotation): a bone belongs to the joint whose segment (joint to
# child joint) it lies in. ".L" bones go to Left* joints, ".R" to Right*.
# Finger, metacarpal and toe bones are matched by prefix (see _joint_of_bone).
BONE_JOINTS: dict[str, str] = {
    "root": "Hips", "spine05": "Hips", "spine04": "Hips", "pelvis.L": "Hips", "pelvis.R": "Hips",
    "spine03": "Spine", "spine02": "Spine",
    "spine01": "Chest",
    "neck01": "Neck", "neck02": "Neck", "neck03": "Neck",
    "head": "Head", "eye.L": "Head", "eye.R": "Head", "jaw": "Head",
    "clavicle": "Shoulder", "shoulder01": "Shoulder",
    "upperarm01": "Arm", "upperarm02": "Arm",
    "lowerarm01": "ForeArm", "lowerarm02": "ForeArm",
    "wrist": "Hand", "finger": "Hand", "metacarpal": "Hand",
    "upperleg01": "UpLeg", "upperleg02": "UpLeg",
    "lowerleg01": "Leg", "lowerleg02": "Leg",
    "foot": "Foot", "toe": "Foot",
}

# Where each of FuseCap's joints sits, in terms of Anny's bone heads (a bone's
# head is its proximal joint). "<name>" for a bilateral bone means name.L for
# Left* joints and name.R for Right* ones.
JOINT_ANCHORS: dict[str, str] = {
    "Hips": "head of root (the pelvis centre)",
    "Spine": "head of spine03 (lumbar spine)",
    "Chest": "midway between the heads of spine02 and spine01 (mid-thoracic spine, sternum level)",
    "Neck": "head of neck01 (base of the neck)",
    "Head": "head of head (top of the neck, base of the skull)",
    "HeadTop": "the Head joint raised to the highest vertex of the mesh",
    "LeftShoulder": "head of clavicle (sterno-clavicular joint)",
    "LeftArm": "head of upperarm01 (gleno-humeral joint)",
    "LeftForeArm": "head of lowerarm01 (elbow)",
    "LeftHand": "head of wrist (wrist)",
    "LeftUpLeg": "head of upperleg01 (hip joint)",
    "LeftLeg": "head of lowerleg01 (knee)",
    "LeftFoot": "head of foot (ankle)",
    "LeftToeBase": "mean head of toe1-1 .. toe5-1 (ball of the foot)",
}
_ANCHOR_BONES: dict[str, str] = {
    "Hips": "root", "Spine": "spine03", "Neck": "neck01", "Head": "head",
    "Shoulder": "clavicle", "Arm": "upperarm01", "ForeArm": "lowerarm01", "Hand": "wrist",
    "UpLeg": "upperleg01", "Leg": "lowerleg01", "Foot": "foot",
}


def _joint_of_bone(label: str) -> int:
    side = ""
    base = label
    if label.endswith((".L", ".R")):
        side = "Left" if label.endswith(".L") else "Right"
        base = label[:-2]
    if label in BONE_JOINTS:  # midline bones and the eyes/pelvis halves
        name = BONE_JOINTS[label]
        return J[name]
    for prefix, part in BONE_JOINTS.items():
        if base == prefix or (prefix in ("finger", "metacarpal", "toe") and base.startswith(prefix)):
            return J[side + part] if side else J[part]
    raise KeyError(f"no FuseCap joint for Anny bone {label!r}")


def cache_root() -> Path:
    """FuseCap's cache folder: $FUSECAP_CACHE, or ~/.cache/fusecap."""
    env = os.environ.get("FUSECAP_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "fusecap"


def cache_dir() -> Path:
    return cache_root() / "bodies"


def cache_path(seed: int, directory: Path | None = None) -> Path:
    d = directory if directory is not None else cache_dir()
    return d / f"anny-{ANNY_VERSION}-f{FORMAT_VERSION}" / f"seed-{int(seed)}.npz"


@dataclass(frozen=True, eq=False)
class MeshSubject:
    """A performer's skinned mesh in FuseCap's T-pose (the rest pose), with its Subject.

    vertices: (V, 3) float32 rest positions, world mm, feet on the floor.
    faces: (F, 3) int32 (body first, then clothing shells).
    weights: (V, 22) float32 skinning weights onto FuseCap's joints (rows sum to 1).
    two_sided: (F,) bool, faces of open shells (clothing), drawn from both sides.
    part: (F,) int8, the joint whose segment a face belongs to (0..21), or
    22 + k for clothing k of :data:`core.sim.mesh_body.CLOTHING` (for colours).
    body_faces: how many of the faces are the body's own.
    """

    subject: Subject
    vertices: np.ndarray
    faces: np.ndarray
    weights: np.ndarray
    two_sided: np.ndarray
    part: np.ndarray
    body_faces: int
    phenotype: dict[str, float] = field(default_factory=dict)
    clothing: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for name in ("vertices", "faces", "weights", "two_sided", "part"):
            getattr(self, name).setflags(write=False)


# -- building (needs anny) -------------------------------------------------------
_MODEL_LOCK = threading.Lock()
_MODEL: list = []
# How many times Anny was imported and run in this process (tests read it).
BUILD_COUNT = [0]


def _anny_model():
    """The one Anny model of the process (first call: imports anny; the first
    ever on a machine also parses MakeHuman's data, about a minute)."""
    with _MODEL_LOCK:
        if _MODEL:
            return _MODEL[0]
        import anny  # noqa: PLC0415  heavy: only when a seed is not cached
        import anny.paths

        own_cache = "ANNY_CACHE_DIR" not in os.environ
        if own_cache:
            anny.paths.set_anny_cache_path(cache_root() / "anny")
            _seed_anny_cache(cache_root() / "anny")
        model = anny.Anny(topology=TOPOLOGY, skinning_method="lbs")
        model = model.to(dtype=__import__("torch").float64)
        if own_cache:
            _prune_anny_cache(anny.paths.get_anny_cache_path())
        _MODEL.append(model)
        return model


def _seed_anny_cache(root: Path) -> None:
    """Copy the compact model data FuseCap ships (resources/anny: what Anny
    builds from MakeHuman's data for this topology, about a minute and 800 MB
    of intermediate files on a new machine) into Anny's cache, so that no
    machine builds it again. A different Anny version looks for other files
    and builds its own."""
    from core.resources import resource_path

    shipped = resource_path("anny")
    for f in shipped.glob("v*/*.safetensors"):
        target = root / f.relative_to(shipped)
        if not target.exists():
            try:
                target.parent.mkdir(parents=True, exist_ok=True)
                tmp = target.with_name(target.name + ".tmp")
                shutil.copyfile(f, tmp)
                os.replace(tmp, target)
            except OSError as exc:  # a read-only or full cache: Anny builds it itself
                log.warning("could not copy %s into Anny's cache: %s", f.name, exc)


def _prune_anny_cache(root: Path) -> None:
    """Drop Anny's intermediate data (raw targets, full-topology model): the
    compact model data FuseCap loads is cached on its own."""
    for f in root.glob("v*/*.safetensors"):
        if f.name.startswith(("load_data_", "build_model_data_")):
            try:
                f.unlink()
            except OSError:
                pass


def draw_phenotype(seed: int) -> tuple[dict[str, float], float]:
    """Anny phenotype parameters (without height) and a target stature (mm) for a seed."""
    rng = np.random.default_rng([int(seed), 0xA77E])
    years = float(rng.uniform(*AGE_RANGE_YEARS))
    ph = {
        "gender": float(rng.uniform(0.0, 1.0)),
        "age": anny_age(years),
        "muscle": float(rng.uniform(0.0, 1.0)),
        "weight": float(rng.uniform(0.05, 0.95)),
        "proportions": float(rng.uniform(0.0, 1.0)),
        "age_years": years,
    }
    return ph, float(rng.uniform(*STATURE_RANGE_MM))


def _rest(model, ph: dict[str, float], height: float) -> tuple[np.ndarray, np.ndarray]:
    import torch

    kw = {k: torch.tensor([v], dtype=torch.float64) for k, v in ph.items() if k in model.phenotype_labels}
    kw["height"] = torch.tensor([height], dtype=torch.float64)
    with torch.no_grad():
        out = model(phenotype_kwargs=kw)
    return out["rest_vertices"][0].numpy() * 1000.0, out["rest_bone_heads"][0].numpy() * 1000.0


def _solve_height(model, ph: dict[str, float], target_mm: float) -> tuple[float, float]:
    """Anny's height parameter whose rest mesh is target_mm tall (clamped to
    what this body reaches); returns (parameter, the stature it gives)."""
    def stature(h: float) -> float:
        v, _ = _rest(model, ph, h)
        return float(v[:, 2].max() - v[:, 2].min())

    lo, hi = 0.0, 1.0
    s_lo, s_hi = stature(lo), stature(hi)
    target = float(np.clip(target_mm, max(s_lo, STATURE_RANGE_MM[0]), min(s_hi, STATURE_RANGE_MM[1])))
    for _ in range(20):
        mid = 0.5 * (lo + hi)
        if stature(mid) < target:
            lo = mid
        else:
            hi = mid
        if hi - lo < 2e-4:
            break
    h = 0.5 * (lo + hi)
    return h, stature(h)


def _align(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The smallest rotation taking direction a to direction b (3x3)."""
    a = a / np.linalg.norm(a)
    b = b / np.linalg.norm(b)
    v = np.cross(a, b)
    c = float(a @ b)
    if c < -1 + 1e-9:
        raise ValueError("opposite directions")
    vx = np.array([[0, -v[2], v[1]], [v[2], 0, -v[0]], [-v[1], v[0], 0]])
    return np.eye(3) + vx + vx @ vx / (1 + c)


def skin(vertices: np.ndarray, weights: np.ndarray, rest_joints: np.ndarray,
         positions: np.ndarray, rotations: np.ndarray) -> np.ndarray:
    """Linear blend skinning: rest vertices (V, 3), weights (V, J), rest joint
    positions (J, 3), posed joint positions (J, 3) and global rotations
    (J, 3, 3, bone frame -> world, identity at rest) -> posed vertices (V, 3)."""
    t = positions - np.einsum("jab,jb->ja", rotations, rest_joints)
    M = np.concatenate([rotations, t[:, :, None]], 2).reshape(len(t), 12)   # (J, 12)
    B = (weights @ M).reshape(-1, 3, 4)
    return np.einsum("vab,vb->va", B[:, :, :3], vertices) + B[:, :, 3]


def _tpose(P: np.ndarray, knuckle: dict[str, np.ndarray], ball: dict[str, np.ndarray]) -> np.ndarray:
    """Global rotations (22, 3, 3) taking the A-pose joints P to FuseCap's T-pose."""
    R = np.tile(np.eye(3), (sk.NUM_JOINTS, 1, 1))
    for side, sx in (("Left", 1.0), ("Right", -1.0)):
        out = np.array([sx, 0.0, 0.0])
        arm, fore, hand = J[side + "Arm"], J[side + "ForeArm"], J[side + "Hand"]
        R[arm] = _align(P[fore] - P[arm], out)
        R[fore] = _align(R[arm] @ (P[hand] - P[fore]), out) @ R[arm]
        R[hand] = _align(R[fore] @ (knuckle[side] - P[hand]), out) @ R[fore]
        up, leg, foot, toe = J[side + "UpLeg"], J[side + "Leg"], J[side + "Foot"], J[side + "ToeBase"]
        down = np.array([0.0, 0.0, -1.0])
        R[up] = _align(P[leg] - P[up], down)
        R[leg] = _align(R[up] @ (P[foot] - P[leg]), down) @ R[up]
        d = ball[side] - P[foot]
        yaw = np.arctan2(-d[0], -d[1])  # angle that turns the foot onto -Y about Z
        c, s = np.cos(yaw), np.sin(yaw)
        R[foot] = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
        R[toe] = R[foot]
    return R


def _fk(P: np.ndarray, R: np.ndarray) -> np.ndarray:
    out = np.empty_like(P)
    for j, p in enumerate(sk.PARENTS):
        out[j] = P[j] if p < 0 else out[p] + R[p] @ (P[j] - P[p])
    return out


def _radii(V: np.ndarray, W: np.ndarray, pos: np.ndarray) -> dict[str, float]:
    """Capsule-body girths measured on the T-posed mesh (see core.sim.body)."""
    dom = W.argmax(1)

    def seg_dist(j: int, a: np.ndarray, b: np.ndarray, q: float) -> float:
        pts = V[dom == j]
        u = b - a
        t = np.clip((pts - a) @ u / (u @ u), 0.0, 1.0)
        return float(np.percentile(np.linalg.norm(pts - a - t[:, None] * u, axis=1), q))

    def both(name: str, child: str, q: float = 70.0) -> float:
        return 0.5 * sum(seg_dist(J[s + name], pos[J[s + name]], pos[J[s + child]], q) for s in ("Left", "Right"))

    def half_extent(joints: tuple[str, ...], axis: int, q: float = 97.0) -> float:
        pts = V[np.isin(dom, [J[n] for n in joints])][:, axis]
        return float(np.percentile(pts, q) - np.percentile(pts, 100 - q)) / 2

    head = V[dom == J["Head"]]
    hand = np.linalg.norm(V[dom == J["LeftHand"]] - pos[J["LeftHand"]], axis=1).max()
    foot = V[dom == J["LeftFoot"]]
    return {
        "thigh": both("UpLeg", "Leg"), "shank": both("Leg", "Foot"),
        "upper_arm": both("Arm", "ForeArm"), "forearm": both("ForeArm", "Hand"),
        "neck": seg_dist(J["Neck"], pos[J["Neck"]], pos[J["Head"]], 60.0),
        "foot": float(foot[:, 2].max() - foot[:, 2].min()) / 2.6,
        "hand": float(hand) / 5.7,
        "torso_x": half_extent(("Chest", "Spine"), 0), "torso_y": half_extent(("Chest", "Spine"), 1),
        "pelvis_x": half_extent(("Hips",), 0), "pelvis_y": half_extent(("Hips",), 1),
        "head_x": float(np.ptp(head[:, 0])) / 2, "head_y": float(np.ptp(head[:, 1])) / 2,
        "head_z": float(np.ptp(head[:, 2])) / 2 * 0.85,
    }


def build_mesh_subject(seed: int) -> MeshSubject:
    """Make the performer of `seed` with Anny (slow: use :func:`load_mesh_subject`)."""
    from core.sim.mesh_body import add_clothing, draw_clothing

    ph, target = draw_phenotype(seed)
    body = build_body(ph, target, seed)
    clothes = draw_clothing(seed)
    return add_clothing(body, clothes, seed) if clothes else body


def build_body(phenotype: dict[str, float], stature_mm: float, seed: int = 0) -> MeshSubject:
    """Anny's body of `phenotype` (gender, age, muscle, weight, proportions:
    Anny's 0-1 axes) at `stature_mm` (clamped to what the body reaches), in
    FuseCap's T-pose, unclothed. Slow (Anny runs): see :func:`load_mesh_subject`."""
    model = _anny_model()
    BUILD_COUNT[0] += 1
    ph = dict(phenotype)
    height, _ = _solve_height(model, ph, stature_mm)
    ph["height"] = height
    V, H = _rest(model, ph, height)
    labels = list(model.bone_labels)
    heads = {lab: H[i] for i, lab in enumerate(labels)}
    # Skinning weights collapsed onto FuseCap's joints.
    bone_joint = np.array([_joint_of_bone(lab) for lab in labels])
    bw = model.vertex_bone_weights.numpy()
    bi = model.vertex_bone_indices.numpy()
    W = np.zeros((len(V), sk.NUM_JOINTS))
    np.add.at(W, (np.repeat(np.arange(len(V)), bi.shape[1]), bone_joint[bi.ravel()]), bw.ravel())
    W /= W.sum(1, keepdims=True)
    # Joints in Anny's A-pose.
    P = np.zeros((sk.NUM_JOINTS, 3))
    for name in sk.JOINTS:
        side, base = ("Left", name[4:]) if name.startswith("Left") else (
            ("Right", name[5:]) if name.startswith("Right") else ("", name))
        suffix = {"Left": ".L", "Right": ".R", "": ""}[side]
        if base in _ANCHOR_BONES:
            P[J[name]] = heads[_ANCHOR_BONES[base] + suffix]
        elif base == "Chest":
            P[J[name]] = 0.5 * (heads["spine02"] + heads["spine01"])
        elif base == "ToeBase":
            P[J[name]] = np.mean([heads[f"toe{i}-1{suffix}"] for i in range(1, 6)], axis=0)
    knuckle = {s: heads[f"finger3-1{x}"] for s, x in (("Left", ".L"), ("Right", ".R"))}
    ball = {s: P[J[s + "ToeBase"]] for s in ("Left", "Right")}
    P[J["HeadTop"]] = [P[J["Head"], 0], P[J["Head"], 1], V[:, 2].max()]
    # Into the T-pose, mm, feet on the floor.
    R = _tpose(P, knuckle, ball)
    P_t = _fk(P, R)
    V_t = skin(V, W, P, P_t, R)
    floor = V_t[:, 2].min()
    V_t[:, 2] -= floor
    P_t[:, 2] -= floor
    P_t[J["HeadTop"], 2] = V_t[:, 2].max()
    offsets = P_t.copy()
    for j, p in enumerate(sk.PARENTS):
        if p >= 0:
            offsets[j] = P_t[j] - P_t[p]
    radii = _radii(V_t, W, P_t)
    subject = Subject(int(seed), float(P_t[J["HeadTop"], 2]), offsets, radii)
    faces = model.faces.numpy().astype(np.int32)
    # A face's part: the joint most of its vertices follow.
    fw = W[faces].sum(1)
    part = fw.argmax(1).astype(np.int8)
    return MeshSubject(subject, V_t.astype(np.float32), faces, W.astype(np.float32),
                       np.zeros(len(faces), bool), part, len(faces),
                       {k: float(v) for k, v in ph.items()}, ())


# -- the cache ---------------------------------------------------------------------
def save_mesh_subject(ms: MeshSubject, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".{os.getpid()}.{threading.get_ident()}.tmp.npz")
    s = ms.subject
    np.savez(tmp, seed=s.seed, height_mm=s.height_mm, offsets_mm=s.offsets_mm,
             radii=json.dumps(s.radii_mm), vertices=ms.vertices, faces=ms.faces, weights=ms.weights,
             two_sided=ms.two_sided, part=ms.part, body_faces=ms.body_faces,
             phenotype=json.dumps(ms.phenotype), clothing=json.dumps(list(ms.clothing)),
             format=FORMAT_VERSION, anny=ANNY_VERSION)
    os.replace(tmp, path)  # atomic: a reader never sees half a file


def read_mesh_subject(path: Path) -> MeshSubject:
    """A cached performer; ValueError for a file that is damaged or not one
    (the caller builds the performer again)."""
    try:
        with np.load(path, allow_pickle=False) as d:
            subject = Subject(int(d["seed"]), float(d["height_mm"]), np.array(d["offsets_mm"], np.float64),
                              {str(k): float(v) for k, v in json.loads(str(d["radii"])).items()})
            ms = MeshSubject(subject, np.array(d["vertices"], np.float32), np.array(d["faces"], np.int32),
                             np.array(d["weights"], np.float32), np.array(d["two_sided"], bool),
                             np.array(d["part"], np.int8), int(d["body_faces"]),
                             {str(k): float(v) for k, v in json.loads(str(d["phenotype"])).items()},
                             tuple(str(c) for c in json.loads(str(d["clothing"]))))
    except Exception as exc:  # zip, zlib, EOF, key, value, type and overflow errors of a damaged file
        raise ValueError(f"{path}: not a readable body file ({type(exc).__name__}: {exc})") from None
    _check_mesh_subject(ms, path)
    return ms


def _check_mesh_subject(ms: MeshSubject, path: Path) -> None:
    V, F = len(ms.vertices), len(ms.faces)
    problems = []
    if ms.subject.offsets_mm.shape != (sk.NUM_JOINTS, 3) or not np.isfinite(ms.subject.offsets_mm).all():
        problems.append("joint offsets")
    if ms.vertices.ndim != 2 or ms.vertices.shape[1:] != (3,) or V == 0 or not np.isfinite(ms.vertices).all():
        problems.append("vertices")
    if ms.faces.ndim != 2 or ms.faces.shape[1:] != (3,) or F == 0 or ms.faces.min() < 0 or ms.faces.max() >= V:
        problems.append("faces")
    if ms.weights.shape != (V, sk.NUM_JOINTS) or not np.allclose(ms.weights.sum(1), 1.0, atol=1e-3):
        problems.append("skinning weights")
    if ms.two_sided.shape != (F,) or ms.part.shape != (F,) or not 0 < ms.body_faces <= F:
        problems.append("face labels")
    if not np.isfinite(ms.subject.height_mm) or not 1000 < ms.subject.height_mm < 2500:
        problems.append("stature")
    if problems:
        raise ValueError(f"{path}: damaged body file ({', '.join(problems)})")


_MEMO: dict[tuple[str, int], MeshSubject] = {}
_MEMO_LOCK = threading.Lock()
# Seconds the last load_mesh_subject call took, and whether it built (tests, benchmarks).
LAST_LOAD: dict[str, float | bool] = {"seconds": 0.0, "built": False}


def load_mesh_subject(seed: int, cache: Path | None = None, use_cache: bool = True) -> MeshSubject:
    """The performer of `seed`: from this process's memory, else the disk
    cache, else built with Anny and written to the cache (use_cache=False:
    built and kept in memory only, for throw-away training seeds)."""
    t0 = time.perf_counter()
    path = cache_path(seed, cache)
    key = (str(path), int(seed))
    with _MEMO_LOCK:
        hit = _MEMO.get(key)
    built = False
    if hit is None:
        if use_cache and path.exists():
            try:
                hit = read_mesh_subject(path)
            except (OSError, ValueError, KeyError):
                hit = None  # a damaged file: build again
        if hit is None:
            hit = build_mesh_subject(seed)
            built = True
            if use_cache:
                save_mesh_subject(hit, path)
        with _MEMO_LOCK:
            _MEMO[key] = hit
            while len(_MEMO) > 256:
                del _MEMO[next(iter(_MEMO))]
    LAST_LOAD.update(seconds=time.perf_counter() - t0, built=built)
    return hit


def clear_memory_cache() -> None:
    with _MEMO_LOCK:
        _MEMO.clear()
