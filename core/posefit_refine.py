"""Least-squares refinement of an analytic pose, one chunk of frames at a time.

:func:`core.posefit.fit_pose` poses each chunk analytically, then hands it
to :class:`RefineProblem`, which moves the root and every joint's global
rotation (scipy.optimize.least_squares with an analytic sparse Jacobian) to
bring the fitted joints closest to the raw ones, with a light twist
regulariser and damping on every rotation update.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import least_squares
from scipy.sparse import csr_matrix
from scipy.spatial.transform import Rotation

from core import skeleton as sk

J = sk.NUM_JOINTS
TWIST_WEIGHT_MM = 20.0               # regulariser: mm of residual per radian of twist
DAMPING_MM = 0.5                     # mm per radian on every rotation update
_ACTIVE = tuple(j for j in range(J) if sk.CHILDREN[j])          # joints whose rotation moves a joint


class RefineProblem:
    """One least-squares problem over n frames: the root and an update of
    every active joint's global rotation, G = exp(omega) G0 (omega a world
    rotation vector; descendants keep their own global rotations, so an
    update moves the joint's bones and carries the subtrees along without
    turning them: a well-conditioned, chain-triangular Jacobian). Residuals:
    weighted fitted-minus-raw joints, the twist of each single-child joint's
    update about its bone, and a light damping of every update."""

    def __init__(self, targets: np.ndarray, weights: np.ndarray, glob0: np.ndarray,
                 root0: np.ndarray, offsets: np.ndarray) -> None:
        self.targets, self.w, self.offsets = targets, weights, offsets
        self.glob0 = glob0[:, _ACTIVE]
        self.n = n = targets.shape[0]
        na = len(_ACTIVE)
        self.ncol = 3 + 3 * na
        self.twist_a = np.array([a for a, j in enumerate(_ACTIVE) if len(sk.CHILDREN[j]) == 1])
        axes = np.stack([offsets[sk.CHILDREN[_ACTIVE[a]][0]] for a in self.twist_a])
        axes /= np.linalg.norm(axes, axis=1, keepdims=True)
        self.twist_axis = np.einsum("ntij,tj->nti", self.glob0[:, self.twist_a], axes)  # world bone axes
        nt = len(self.twist_a)
        self.nrow = 3 * J + nt + 3 * na
        self.x0 = np.zeros((n, self.ncol))
        self.x0[:, :3] = root0
        # Bone (j -> c) moved by active rotation a, and every joint k of c's subtree.
        triples = [(a, c, k) for a, j in enumerate(_ACTIVE) for c in sk.CHILDREN[j]
                   for k in range(J) if k == c or _is_below(k, c)]
        self.ta, self.tc, self.tk = (np.array(v) for v in zip(*triples))
        self.tj = np.array(sk.PARENTS)[self.tc]
        r, c = [], []
        for k in range(J):                               # root
            r += [3 * k + i for i in range(3)]
            c += [0, 1, 2]
        for a, _, k in triples:                          # rotations -> joints they move
            r += [3 * k + i for i in range(3) for _ in range(3)]
            c += [3 + 3 * a + m for _ in range(3) for m in range(3)]
        for t, a in enumerate(self.twist_a):             # twist regulariser
            r += [3 * J + t] * 3
            c += [3 + 3 * a + m for m in range(3)]
        for a in range(na):                              # damping
            r += [3 * J + nt + 3 * a + m for m in range(3)]
            c += [3 + 3 * a + m for m in range(3)]
        f = np.arange(n)[:, None]
        self.rows = (np.array(r)[None] + f * self.nrow).ravel()
        self.cols = (np.array(c)[None] + f * self.ncol).ravel()
        self._key: bytes | None = None

    def _state(self, xflat: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        key = xflat.tobytes()
        if key != self._key:
            x = xflat.reshape(self.n, self.ncol)
            omega = x[:, 3:].reshape(self.n, -1, 3)
            glob = Rotation.from_rotvec(omega.reshape(-1, 3)).as_matrix().reshape(omega.shape + (3,))
            glob = glob @ self.glob0
            full = np.empty((self.n, J, 3, 3))
            full[:, _ACTIVE] = glob
            pos = np.empty((self.n, J, 3))
            pos[:, sk.ROOT] = x[:, :3]
            for j, p in enumerate(sk.PARENTS):
                if p >= 0:
                    pos[:, j] = pos[:, p] + full[:, p] @ self.offsets[j]
            self._key, self._cache = key, (omega, full, pos, _left_jacobian(omega))
        return self._cache

    def fun(self, xflat: np.ndarray) -> np.ndarray:
        omega, _, pos, _ = self._state(xflat)
        res = np.empty((self.n, self.nrow))
        res[:, :3 * J] = (self.w[:, :, None] * (pos - self.targets)).reshape(self.n, -1)
        nt = len(self.twist_a)
        res[:, 3 * J:3 * J + nt] = TWIST_WEIGHT_MM * np.einsum("nti,nti->nt", omega[:, self.twist_a],
                                                               self.twist_axis)
        res[:, 3 * J + nt:] = DAMPING_MM * omega.reshape(self.n, -1)
        return res.ravel()

    def jac(self, xflat: np.ndarray) -> csr_matrix:
        _, glob, pos, jl = self._state(xflat)
        n = self.n
        root = np.repeat(self.w, 3, axis=1)                                    # (n, 3J)
        # d pos_k / d omega_a = -[bone]x Jl(omega_a), bone = pos_c - pos_j
        bone = pos[:, self.tc] - pos[:, self.tj]
        cols = np.swapaxes(jl[:, self.ta], 2, 3)                               # columns as rows
        block = np.swapaxes(np.cross(cols, bone[:, :, None, :]), 2, 3)
        block *= self.w[:, self.tk, None, None]
        twist = TWIST_WEIGHT_MM * self.twist_axis
        damp = np.full((n, 3 * len(_ACTIVE)), DAMPING_MM)
        data = np.concatenate([root, block.reshape(n, -1), twist.reshape(n, -1), damp], axis=1)
        return csr_matrix((data.ravel(), (self.rows, self.cols)),
                          shape=(n * self.nrow, n * self.ncol))

    def solve(self) -> np.ndarray:
        """Refined joint positions (n, J, 3)."""
        out = least_squares(self.fun, self.x0.ravel(), jac=self.jac, method="trf",
                            tr_solver="lsmr", x_scale="jac", ftol=1e-4, xtol=1e-8, max_nfev=30)
        return self._state(out.x)[2]


def _is_below(k: int, j: int) -> bool:
    """Whether joint k is a strict descendant of joint j."""
    while sk.PARENTS[k] >= 0:
        k = sk.PARENTS[k]
        if k == j:
            return True
    return False


def _left_jacobian(omega: np.ndarray) -> np.ndarray:
    """(..., 3, 3) left Jacobian of the exponential map at rotation vectors omega:
    exp(omega + e) = exp(Jl e) exp(omega) to first order in e."""
    theta = np.linalg.norm(omega, axis=-1)[..., None, None]
    k = np.zeros(omega.shape + (3,))
    k[..., 0, 1], k[..., 0, 2], k[..., 1, 2] = -omega[..., 2], omega[..., 1], -omega[..., 0]
    k -= np.swapaxes(k, -1, -2)
    small = theta < 1e-4
    t = np.where(small, 1.0, theta)
    c1 = np.where(small, 0.5 - theta ** 2 / 24, (1 - np.cos(t)) / t ** 2)
    c2 = np.where(small, 1 / 6 - theta ** 2 / 120, (t - np.sin(t)) / t ** 3)
    return np.eye(3) + c1 * k + c2 * (k @ k)
