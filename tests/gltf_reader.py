"""A .glb read by an independent reader (gltflib, not the pygltflib FuseCap
writes with), its accessors decoded, its animation sampled and its node tree
walked by the glTF rules (node matrix = T R S, parent times child)."""

import numpy as np
from gltflib import GLTF
from scipy.spatial.transform import Rotation

_COMPONENTS = {5126: np.float32, 5123: np.uint16, 5125: np.uint32, 5121: np.uint8}
_WIDTH = {"SCALAR": 1, "VEC3": 3, "VEC4": 4, "MAT4": 16}


class Glb:
    """A .glb read by gltflib; accessors decoded by the glTF rules."""

    def __init__(self, path):
        self.doc = GLTF.load_glb(str(path))
        self.model = self.doc.model
        self.data = self.doc.get_glb_resource().data

    def accessor(self, i):
        a = self.model.accessors[i]
        v = self.model.bufferViews[a.bufferView]
        width = _WIDTH[a.type]
        dtype = np.dtype(_COMPONENTS[a.componentType])
        start = (v.byteOffset or 0) + (a.byteOffset or 0)
        flat = np.frombuffer(self.data, dtype, a.count * width, start)
        return flat.reshape(a.count, width) if width > 1 else flat

    def node_index(self, name):
        return next(i for i, n in enumerate(self.model.nodes) if n.name == name)

    def world_matrices(self, frame):
        """Every node's world matrix (N, 4, 4) at key `frame` of the first animation."""
        nodes = self.model.nodes
        trs = [[np.array(n.translation or [0, 0, 0], float), np.array(n.rotation or [0, 0, 0, 1], float),
                np.array(n.scale or [1, 1, 1], float)] for n in nodes]
        anim = self.model.animations[0]
        for ch in anim.channels:
            s = anim.samplers[ch.sampler]
            value = self.accessor(s.output)[frame].astype(float)
            trs[ch.target.node][{"translation": 0, "rotation": 1, "scale": 2}[ch.target.path]] = value
        local = []
        for t, r, sc in trs:
            m = np.eye(4)
            m[:3, :3] = Rotation.from_quat(r).as_matrix() * sc
            m[:3, 3] = t
            local.append(m)
        world = [None] * len(nodes)

        def walk(i, parent):
            world[i] = parent @ local[i]
            for c in nodes[i].children or []:
                walk(c, world[i])

        for root in self.model.scenes[self.model.scene or 0].nodes:
            walk(root, np.eye(4))
        return np.array(world)
