"""Bundle adjustment of a camera rig: every camera's pose and lens, and every
board pose, against every detected corner.

Parameters: the pose of each camera but the reference one (reference frame
to camera; the reference camera's pose is the identity and fixes the
gauge), the board's pose at each moment (board to reference frame), and
each camera's lens: fx, fy, cx, cy and OpenCV's k1 k2 p1 p2 k3 (k4-k6 of
a rational lens are held). The board's printed size fixes the scale.

Lenses are refined with the rig because a lens calibrated from one camera's
views alone is only as good as where the board went in that camera: with the
board mostly near the image centre the focal length trades against the
board's distance and the principal point against its position. In the rig
every board pose is seen by several cameras at once, from different sides,
so its distance from one camera is its sideways position in another, and
those trades close.

Priors keep what the views cannot tell where a real lens is: the principal
point near the image centre (sigma 10 % of the image diagonal), square pixels
(fy / fx within 0.5 %), distortion coefficients near zero (k: 0.5, p: 0.01).
Each counts as much as one corner with a 1 px error at one sigma: next to
the thousands of corners of a calibration they only matter along directions
the corners leave free. A lens calibrated before from its own close views
comes with OpenCV's standard deviations of its parameters; its prior is
then those values within twice those deviations (MEASURED_SIGMA_SCALE),
weighed against corners of NOISE_PX, so the rig's views move it only as
far as they know better.
`LensFreedom` fixes parameters outright, per camera.

Solved with ``scipy.optimize.least_squares`` (trust region reflective with
an exact trust-region solve, a soft-L1 loss of scale 1 px so a misdetected
corner does not pull the rest). The Jacobian is forward differences, a
group of columns per evaluation: each corner depends on one camera, its
lens and one board pose, so one component of every board pose (or of every
camera, or one lens parameter of every camera) is moved at once, 21
evaluations a Jacobian. With the sparse iterative solver the lenses' flat
directions (the principal point against the camera's turn) converged so
slowly that 100 evaluations stopped short (a principal point 0.5 px from
its optimum, and different from run to run with OpenCV's threads); the
exact solve converges in 4-30.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import least_squares
from scipy.sparse import coo_matrix
from scipy.spatial.transform import Rotation

from core.calibration.board import BoardSpec
from core.camera.model import distort

LENS_PARAMS = ("fx", "fy", "cx", "cy", "k1", "k2", "p1", "p2", "k3")
PP_SIGMA_DIAGONAL = 0.10
ASPECT_SIGMA = 0.005
RADIAL_SIGMA = 0.5
TANGENTIAL_SIGMA = 0.01
# A detected corner's error, px: weighs a lens measured before (by its standard deviations) against the corners.
NOISE_PX = 0.3
# OpenCV's standard deviations of a lens take every corner's error as independent and so come out optimistic
# (on the simulated studio a focal length 3.3 of them off); the prior widens them by this factor. Measured over 10
# draws of the Cameras panel's settings: factors 1, 1.5 and 2 gave mean camera-centre errors of 5.8, 5.5 and 5.6
# mm and worst ones up to 25.1, 16.1 and 13.7 mm.
MEASURED_SIGMA_SCALE = 2.0


@dataclass(frozen=True)
class LensFreedom:
    """Which lens parameters a calibration may move, for one camera.

    refine: False holds the whole lens as given (a lens calibrated
    separately and trusted). fix_principal_point: keep (cx, cy) where the
    lens step put it (the image centre unless the board covered the image).
    fix_aspect_ratio: keep fy / fx. fix_tangential: keep p1 = p2 = 0 (or
    as given). fix_k3: keep k3 (default: a k3 fitted to boards that never
    reached the image corners only fits noise)."""

    refine: bool = True
    fix_principal_point: bool = False
    fix_aspect_ratio: bool = False
    fix_tangential: bool = False
    fix_k3: bool = True

    def free(self) -> np.ndarray:
        """(9,) bool over LENS_PARAMS."""
        m = np.full(len(LENS_PARAMS), self.refine)
        if self.fix_aspect_ratio:
            m[1] = False  # fy follows fx
        if self.fix_principal_point:
            m[2:4] = False
        if self.fix_tangential:
            m[6:8] = False
        if self.fix_k3:
            m[8] = False
        return m

    def to_dict(self) -> dict:
        return {"refine": self.refine, "fix_principal_point": self.fix_principal_point,
                "fix_aspect_ratio": self.fix_aspect_ratio, "fix_tangential": self.fix_tangential,
                "fix_k3": self.fix_k3}


HOLD = LensFreedom(refine=False)


def lens_vector(K: np.ndarray, dist: np.ndarray) -> np.ndarray:
    """(9,) fx fy cx cy k1 k2 p1 p2 k3 of a camera matrix and its distortion."""
    d = np.zeros(5)
    d[: min(5, dist.size)] = np.asarray(dist, float).ravel()[:5]
    return np.r_[K[0, 0], K[1, 1], K[0, 2], K[1, 2], d]


def lens_matrices(v: np.ndarray, dist_in: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """K and a distortion vector of `dist_in`'s length (at least 5) from a lens vector."""
    K = np.array([[v[0], 0.0, v[2]], [0.0, v[1], v[3]], [0.0, 0.0, 1.0]])
    dist = np.zeros(max(5, np.asarray(dist_in).size))
    dist[: np.asarray(dist_in).size] = dist_in
    dist[:5] = v[4:9]
    return K, dist


@dataclass
class Observations:
    """Every corner of every used view, flattened: board point X (mm, board
    frame), its pixel, camera index and moment slot; `view` numbers the
    (moment, camera) views in the order of `views`."""

    X: np.ndarray
    uv: np.ndarray
    cam: np.ndarray
    moment: np.ndarray
    view: np.ndarray
    views: list[tuple[int, int]]

    @classmethod
    def build(cls, rows, board: BoardSpec, views: list[tuple[int, int]], moment_slot: dict[int, int]) -> "Observations":
        X, uv, cam, mom, view = [], [], [], [], []
        for n, (m, k) in enumerate(views):
            det = rows[m][k]
            X.append(det.object_points(board))
            uv.append(det.pixels)
            cam.append(np.full(len(det), k))
            mom.append(np.full(len(det), moment_slot[m]))
            view.append(np.full(len(det), n))
        return cls(np.concatenate(X).astype(float), np.concatenate(uv).astype(float), np.concatenate(cam),
                   np.concatenate(mom), np.concatenate(view), list(views))


class BundleProblem:
    """Residuals (px) of all corners, then the lens priors; the parameter
    vector is [free camera poses (6 each), board poses (6 each), free lens
    parameters], poses as rotation vector then translation (mm)."""

    def __init__(self, obs: Observations, n_cams: int, ref: int, n_moments: int, lenses: np.ndarray,
                 dists: list[np.ndarray], sizes: list[tuple[int, int]], freedom: list[LensFreedom],
                 lens_sigma: list[np.ndarray | None] | None = None, noise_px: float = NOISE_PX,
                 measured_lens: np.ndarray | None = None) -> None:
        self.obs = obs
        self.n_cams, self.ref, self.n_moments = n_cams, ref, n_moments
        self.free_cams = [k for k in range(n_cams) if k != ref]
        self.cam_slot = np.full(n_cams, -1)
        self.cam_slot[self.free_cams] = np.arange(len(self.free_cams))
        self.lens0 = np.asarray(lenses, float).copy()  # (n_cams, 9)
        self.aspect0 = self.lens0[:, 1] / self.lens0[:, 0]
        self.tied_fy = np.array([f.refine and f.fix_aspect_ratio for f in freedom])
        self.free = np.stack([f.free() for f in freedom])  # (n_cams, 9)
        # The higher distortion terms of rational lenses (k4-k6), held.
        d8 = np.zeros((n_cams, 3))
        for k, d in enumerate(dists):
            d = np.asarray(d, float).ravel()
            if d.size > 5:
                d8[k] = d[5:8]
        self.high = d8
        self.n_pose = 6 * (len(self.free_cams) + n_moments)
        self.n_params = self.n_pose + int(self.free.sum())
        w = np.array([s[0] for s in sizes], float)
        h = np.array([s[1] for s in sizes], float)
        self.centre = np.stack([(w - 1) / 2, (h - 1) / 2], 1)
        self.pp_sigma = PP_SIGMA_DIAGONAL * np.hypot(w, h)
        self.obs_cam_slot = self.cam_slot[obs.cam]
        # A lens measured before (its values and standard deviations): its prior replaces the generic one.
        self.measured = [None if s is None else np.asarray(s, float) for s in (lens_sigma or [None] * n_cams)]
        self.measured_at = self.lens0.copy() if measured_lens is None else np.asarray(measured_lens, float)
        self.noise_px = float(noise_px)

    # -- the parameter vector ------------------------------------------------------------
    def pack(self, cam_poses: np.ndarray, board_poses: np.ndarray, lenses: np.ndarray) -> np.ndarray:
        """cam_poses (n_cams, 6) (the reference's ignored), board_poses (n_moments, 6), lenses (n_cams, 9)."""
        return np.concatenate([cam_poses[self.free_cams].ravel(), board_poses.ravel(), lenses[self.free]])

    def unpack(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        cams = np.zeros((self.n_cams, 6))
        nf = len(self.free_cams)
        cams[self.free_cams] = x[: 6 * nf].reshape(nf, 6)
        boards = x[6 * nf: self.n_pose].reshape(self.n_moments, 6)
        lenses = self.lens0.copy()
        lenses[self.free] = x[self.n_pose:]
        lenses[self.tied_fy, 1] = lenses[self.tied_fy, 0] * self.aspect0[self.tied_fy]
        return cams, boards, lenses

    # -- residuals -----------------------------------------------------------------------
    def reprojection(self, x: np.ndarray) -> np.ndarray:
        """(N, 2) projected minus detected pixels."""
        cams, boards, lenses = self.unpack(x)
        o = self.obs
        Rb = Rotation.from_rotvec(boards[:, :3]).as_matrix()[o.moment]
        p = np.einsum("nij,nj->ni", Rb, o.X) + boards[o.moment, 3:]
        Rc = Rotation.from_rotvec(cams[:, :3]).as_matrix()[o.cam]
        p = np.einsum("nij,nj->ni", Rc, p) + cams[o.cam, 3:]  # the reference camera's pose is the identity
        z = np.maximum(p[:, 2], 1e-6)
        L = lenses[o.cam]
        hi = self.high[o.cam]
        xd, yd, _ = distort(p[:, 0] / z, p[:, 1] / z, (L[:, 4], L[:, 5], L[:, 6], L[:, 7], L[:, 8],
                                                       hi[:, 0], hi[:, 1], hi[:, 2]))
        return np.stack([L[:, 0] * xd + L[:, 2] - o.uv[:, 0], L[:, 1] * yd + L[:, 3] - o.uv[:, 1]], 1)

    def prior_count(self, k: int) -> int:
        f = self.free[k]
        if self.measured[k] is not None:
            return int(f.sum())
        return (2 if f[2] else 0) + (1 if f[1] else 0) + int(f[[4, 5, 8, 6, 7]].sum())

    def priors(self, lenses: np.ndarray) -> np.ndarray:
        out = []
        for k in range(self.n_cams):
            f = self.free[k]
            L = lenses[k]
            if self.measured[k] is not None:
                # Weighted as the corners are: a corner's error is about noise_px.
                sigma = np.maximum(MEASURED_SIGMA_SCALE * self.measured[k], 1e-9)
                out += list(self.noise_px * (L[f] - self.measured_at[k, f]) / sigma[f])
                continue
            if f[2]:
                out += [(L[2] - self.centre[k, 0]) / self.pp_sigma[k], (L[3] - self.centre[k, 1]) / self.pp_sigma[k]]
            if f[1]:
                out.append((L[1] / L[0] - 1.0) / ASPECT_SIGMA)
            for i, sigma in ((4, RADIAL_SIGMA), (5, RADIAL_SIGMA), (8, RADIAL_SIGMA),
                             (6, TANGENTIAL_SIGMA), (7, TANGENTIAL_SIGMA)):
                if f[i]:
                    out.append(L[i] / sigma)
        return np.asarray(out, float)

    def residuals(self, x: np.ndarray) -> np.ndarray:
        return np.concatenate([self.reprojection(x).ravel(), self.priors(self.unpack(x)[2])])

    def sparsity(self) -> coo_matrix:
        o = self.obs
        n = len(o.X)
        nf = len(self.free_cams)
        lens_col = np.full((self.n_cams, len(LENS_PARAMS)), -1)
        lens_col[self.free] = self.n_pose + np.arange(int(self.free.sum()))
        rows, cols = [], []
        corner = np.arange(n)
        for c in range(6):
            rows.append(corner)
            cols.append(6 * nf + 6 * o.moment + c)
            has = self.obs_cam_slot >= 0
            rows.append(corner[has])
            cols.append(6 * self.obs_cam_slot[has] + c)
        for i in range(len(LENS_PARAMS)):
            col = lens_col[o.cam, i]
            if i == 0:  # fx also moves fy where the aspect ratio is held
                col = np.where(self.tied_fy[o.cam], lens_col[o.cam, 0], col)
            has = col >= 0
            rows.append(corner[has])
            cols.append(col[has])
        r = np.concatenate(rows)
        c = np.concatenate(cols)
        # Each corner gives two residual rows (u, v), both touching the same parameters.
        r2 = np.concatenate([2 * r, 2 * r + 1])
        c2 = np.concatenate([c, c])
        # Prior rows: each touches its camera's lens parameters.
        pr, pc = [], []
        row = 2 * n
        for k in range(self.n_cams):
            cols_k = lens_col[k][lens_col[k] >= 0]
            n_rows = self.prior_count(k)
            for j in range(n_rows):
                pr += [row + j] * len(cols_k)
                pc += list(cols_k)
            row += n_rows
        r2 = np.concatenate([r2, np.asarray(pr, int)])
        c2 = np.concatenate([c2, np.asarray(pc, int)])
        return coo_matrix((np.ones(len(r2), np.int8), (r2, c2)), shape=(row, self.n_params))

    def groups(self) -> list[np.ndarray]:
        """Columns that share no residual row, to difference together: one
        pose component of every board, one of every free camera, one lens
        parameter of every camera."""
        nf = len(self.free_cams)
        out = [6 * np.arange(self.n_moments) + 6 * nf + c for c in range(6)]
        if nf:
            out += [6 * np.arange(nf) + c for c in range(6)]
        lens_col = np.full((self.n_cams, len(LENS_PARAMS)), -1)
        lens_col[self.free] = self.n_pose + np.arange(int(self.free.sum()))
        out += [lens_col[:, i][lens_col[:, i] >= 0] for i in range(len(LENS_PARAMS))]
        return [g for g in out if len(g)]

    def jacobian(self, x: np.ndarray) -> np.ndarray:
        """Dense forward-difference Jacobian, a group of columns per evaluation."""
        if not hasattr(self, "_pattern"):
            self._pattern = self.sparsity().tocsc()
            self._groups = self.groups()
        f0 = self.residuals(x)
        J = np.zeros((len(f0), len(x)))
        pattern = self._pattern
        for g in self._groups:
            h = 1.5e-8 * np.maximum(1.0, np.abs(x[g]))
            x1 = x.copy()
            x1[g] += h
            df = self.residuals(x1) - f0
            for j, hj in zip(g, h):
                rows = pattern.indices[pattern.indptr[j]: pattern.indptr[j + 1]]
                J[rows, j] = df[rows] / hj
        return J

    def solve(self, x0: np.ndarray, max_nfev: int = 100):
        return least_squares(self.residuals, x0, jac=self.jacobian, method="trf", tr_solver="exact",
                             loss="soft_l1", f_scale=1.0, x_scale="jac", max_nfev=max_nfev)

    def view_rms(self, x: np.ndarray) -> np.ndarray:
        """RMS reprojection error (px) of each view in `obs.views`."""
        e2 = (self.reprojection(x) ** 2).sum(1)
        sums = np.bincount(self.obs.view, e2, minlength=len(self.obs.views))
        counts = np.bincount(self.obs.view, minlength=len(self.obs.views))
        return np.sqrt(sums / np.maximum(counts, 1))

    def camera_rms(self, x: np.ndarray) -> np.ndarray:
        e2 = (self.reprojection(x) ** 2).sum(1)
        sums = np.bincount(self.obs.cam, e2, minlength=self.n_cams)
        counts = np.bincount(self.obs.cam, minlength=self.n_cams)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(counts > 0, np.sqrt(sums / np.maximum(counts, 1)), np.nan)

    def rms(self, x: np.ndarray) -> float:
        return float(np.sqrt((self.reprojection(x) ** 2).sum(1).mean()))
