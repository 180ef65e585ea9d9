"""One switch between the simulated performer's two bodies.

- ``"capsule"``: capsules and ellipsoids (:mod:`core.sim.body`), proportions
  from :meth:`core.sim.subject.Subject.from_seed`, exact ray-cast silhouettes
  (:mod:`core.sim.render`). The default today: the shipped network was
  trained on it.
- ``"mesh"``: a skinned Anny mesh (:mod:`core.sim.anny_body`,
  :mod:`core.sim.mesh_body`), some in loose clothing, joints where the
  mesh's anatomy puts them, silhouettes by :mod:`core.sim.render_mesh`.

Both take the same seeds (core.sim.splits: test seeds 0..7, training seeds
from 1_000_000), so held-out subjects stay held out whichever body is used,
and both are posed from the same :class:`core.kinematics.Poses`: for one
Subject and one motion the joints are the same; only the surface differs.
A mesh subject can also be drawn as capsules (:func:`as_capsules`), with
girths measured on its mesh.

Training data::

    sb = make_subject(seed, body="mesh")           # SimBody: .subject for Performer/FK
    posed = pose_body(sb, positions_mm, rotations)  # one frame, world mm
    masks = render_body_silhouettes(posed, rig)     # as render_silhouettes
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from core.camera.model import Camera
from core.camera.rig import CameraRig
from core.sim.body import Body, BodyShape
from core.sim.subject import Subject

BODY_KINDS: tuple[str, ...] = ("capsule", "mesh")
DEFAULT_BODY = "capsule"


@dataclass(frozen=True, eq=False)
class SimBody:
    """A performer's body of either kind: subject (joints, lengths) and the
    shape that is posed (BodyShape or core.sim.mesh_body.MeshShape)."""

    kind: str
    subject: Subject
    shape: object
    mesh: object | None = None  # the MeshSubject, for mesh bodies

    @property
    def clothing(self) -> tuple[str, ...]:
        return getattr(self.mesh, "clothing", ())


def check_kind(body: str) -> str:
    if body not in BODY_KINDS:
        raise ValueError(f"body must be one of {BODY_KINDS}, got {body!r}")
    return body


def make_subject(seed: int, body: str = DEFAULT_BODY, cache: Path | None = None,
                 use_cache: bool = True) -> SimBody:
    """The performer of `seed` with a body of kind `body`. Mesh bodies come
    from the disk cache (built with Anny the first time a seed is asked for;
    use_cache=False builds without writing, for one-off training seeds)."""
    check_kind(body)
    if body == "capsule":
        subject = Subject.from_seed(seed)
        return SimBody("capsule", subject, BodyShape.from_subject(subject))
    from core.sim.anny_body import load_mesh_subject
    from core.sim.mesh_body import MeshShape

    ms = load_mesh_subject(seed, cache, use_cache=use_cache)
    return SimBody("mesh", ms.subject, MeshShape(ms), ms)


def as_capsules(sb: SimBody) -> SimBody:
    """The same subject (same joints) drawn as capsules and ellipsoids."""
    return SimBody("capsule", sb.subject, BodyShape.from_subject(sb.subject))


def pose_body(sb: SimBody, positions_mm: np.ndarray, rotations: np.ndarray):
    """One frame: positions_mm (J, 3) world, rotations (J, 3, 3) global bone
    -> world. Returns a core.sim.body.Body or a core.sim.mesh_body.MeshBody."""
    return sb.shape.pose(positions_mm, rotations)




def render_body_silhouettes(posed, rig: CameraRig | Sequence[Camera],
                            cameras_off: Iterable[int] = ()) -> list[np.ndarray | None]:
    """Silhouettes of a posed body of either kind: one uint8 0/1 mask per
    camera, None for cameras in `cameras_off`."""
    if isinstance(posed, Body):
        from core.sim.render import render_silhouettes

        return render_silhouettes(posed, rig, cameras_off=cameras_off)
    from core.sim.render_mesh import render_mesh_silhouettes

    return render_mesh_silhouettes(posed.vertices, posed.faces, rig, cameras_off=cameras_off,
                                   two_sided=posed.two_sided)
