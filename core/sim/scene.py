"""Colour camera images of the simulated studio, for measuring background models.

The studio's silhouettes are exact 0/1 masks; real cameras give colour images
that a background model must turn into masks. This module renders those
images, with the true masks alongside, so the segmentation can be scored:

- The room: a 13 x 13 m box, 4 m high, around the capture area. The floor is
  tiled (500 mm tiles with grout lines, a colour jitter per tile and value
  noise at two scales); each wall has its own paint, a vertical gradient,
  value noise and a dozen coloured rectangles (doors, posters, cabinets).
  Textures live in world coordinates, so every camera sees the same room.
- The performer: composited through the true mask (each pixel takes the
  colour of the primitive its ray hits first), coloured per body part (top,
  sleeves, trousers, shoes, skin; drawn per subject from common garment
  colours, so black, grey and white clothes occur) and shaded 0.5 + 0.5 x a
  Lambert term towards the key light. With probability
  ``camouflage_probability`` one garment takes the colour of the floor or a
  wall (within 0.03), to be honest about hard cases; ``outfit_note`` says
  what was drawn.
- A soft shadow: the body's silhouette seen from the key light (a point light
  above the area) is blurred and cast onto the floor, darkening it by up to
  ``shadow_strength``; the penumbra is ``shadow_blur_mm`` wide.
- Lighting that changes over time: a global gain 1 + A sin(2 pi t / P)
  (A = ``gain_amplitude``, 15 % by default, P = ``gain_period_s``) times a
  slow linear gradient across each image whose slope swings by
  +-``gradient_amplitude`` from edge to centre; the shadow and the shading
  follow the same lights.
- Optics and sensor: a white balance off by up to 5 % per channel and camera,
  a slight Gaussian blur (``blur_sigma_px``: the pixel's area, 0.29 px for a
  unit box, and a sharp lens) and Gaussian noise of ``noise_sigma`` grey
  levels per channel, drawn afresh per frame from (seed, frame number,
  camera), so every frame is reproducible.

Images are uint8 BGR (H, W, 3) at the studio rig's resolution. Units: mm, s.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from core.camera.model import Camera
from core.sim.body import CAPSULE_NAMES, ELLIPSOID_NAMES, Body, body_primitives
from core.sim.render import pixel_grid, render_silhouettes
from core.sim.studio import SimulatedStudio

FLOOR, WALL, CEILING = 0, 1, 2


@dataclass(frozen=True)
class SceneConfig:
    """How the simulated images look. Colours are BGR in [0, 1] before lighting."""

    room_half_mm: float = 6500.0
    room_height_mm: float = 4000.0
    tile_mm: float = 500.0
    light_mm: tuple[float, float, float] = (1200.0, -900.0, 4200.0)
    shadow_strength: float = 0.4       # fraction of light removed at the shadow's core
    shadow_blur_mm: float = 60.0       # penumbra width (1 sigma) on the floor
    noise_sigma: float = 3.0           # sensor noise, grey levels per channel
    blur_sigma_px: float = 0.45        # pixel area (0.29 px) and lens blur together
    gain_amplitude: float = 0.15       # global lighting drift, fraction
    gain_period_s: float = 16.0
    gradient_amplitude: float = 0.06   # lighting slope across an image, fraction edge to centre
    gradient_period_s: float = 23.0
    camouflage_probability: float = 0.35
    fps: float = 30.0                  # numbers frames for the noise seed


@dataclass(frozen=True, eq=False)
class SceneFrame:
    """One time step: images (uint8 BGR), true masks (uint8 0/1) and the floor
    shadow (float32, fraction of light removed, 0 where unshadowed or behind the
    performer), per camera."""

    t_s: float
    images: list[np.ndarray]
    masks: list[np.ndarray]
    shadows: list[np.ndarray]


def _value_noise(rng: np.random.Generator, x: np.ndarray, y: np.ndarray, cell_mm: float,
                 extent_mm: float) -> np.ndarray:
    """Smooth noise in [-1, 1] at world coordinates (x, y): random values on a
    lattice of `cell_mm`, blended with smoothstep weights."""
    n = int(np.ceil(2 * extent_mm / cell_mm)) + 3
    lattice = rng.uniform(-1.0, 1.0, (n, n)).astype(np.float32)
    gx = np.clip((x + extent_mm) / cell_mm, 0, n - 2.001)
    gy = np.clip((y + extent_mm) / cell_mm, 0, n - 2.001)
    ix, iy = gx.astype(np.int64), gy.astype(np.int64)
    fx, fy = gx - ix, gy - iy
    fx, fy = fx * fx * (3 - 2 * fx), fy * fy * (3 - 2 * fy)
    top = lattice[ix, iy] * (1 - fx) + lattice[ix + 1, iy] * fx
    bottom = lattice[ix, iy + 1] * (1 - fx) + lattice[ix + 1, iy + 1] * fx
    return (top * (1 - fy) + bottom * fy).astype(np.float32)


class _Room:
    """The room's colours (albedo) as functions of world points on its surfaces."""

    def __init__(self, cfg: SceneConfig, rng: np.random.Generator) -> None:
        self.cfg = cfg
        self.floor_colour = rng.uniform(0.3, 0.6, 3) * rng.uniform(0.8, 1.0)
        self.grout_colour = self.floor_colour * rng.uniform(0.55, 0.75)
        self.tile_jitter = rng.uniform(-0.08, 0.08, (64, 64)).astype(np.float32)
        self.wall_colours = rng.uniform(0.25, 0.75, (4, 3))
        self.ceiling_colour = np.full(3, 0.7)
        # Rectangles per wall: centre s, centre z, half width, half height, colour.
        self.patches = []
        for _ in range(4):
            k = 12
            self.patches.append((rng.uniform(-cfg.room_half_mm, cfg.room_half_mm, k),
                                 rng.uniform(300, cfg.room_height_mm - 300, k),
                                 rng.uniform(150, 800, k), rng.uniform(150, 900, k),
                                 rng.uniform(0.1, 0.8, (k, 3))))
        self.noise_seeds = rng.integers(1 << 31, size=3)

    def colour(self, surface: np.ndarray, wall: np.ndarray, p: np.ndarray) -> np.ndarray:
        """(N,) surface kind, wall index (0..3), points (N, 3) -> albedo (N, 3) float32."""
        cfg, out = self.cfg, np.zeros((len(p), 3), np.float32)
        ext = cfg.room_half_mm + cfg.room_height_mm
        f = surface == FLOOR
        x, y = p[f, 0], p[f, 1]
        ix = np.floor(x / cfg.tile_mm).astype(np.int64)
        iy = np.floor(y / cfg.tile_mm).astype(np.int64)
        shade = 1 + self.tile_jitter[ix % 64, iy % 64]
        shade = shade + 0.10 * _value_noise(np.random.default_rng(self.noise_seeds[0]), x, y, 170.0, ext)
        shade = shade + 0.05 * _value_noise(np.random.default_rng(self.noise_seeds[1]), x, y, 37.0, ext)
        fx, fy = x / cfg.tile_mm - ix, y / cfg.tile_mm - iy
        grout = np.minimum(np.minimum(fx, 1 - fx), np.minimum(fy, 1 - fy)) * cfg.tile_mm < 8.0
        col = shade[:, None] * self.floor_colour
        col[grout] = self.grout_colour
        out[f] = col
        w = surface == WALL
        s = np.where(wall[w] < 2, p[w, 1], p[w, 0])  # coordinate along the wall
        z = p[w, 2]
        noise = _value_noise(np.random.default_rng(self.noise_seeds[2]), s + 2 * ext * wall[w], z,
                             400.0, 5 * ext)
        shade = (0.82 + 0.18 * z / cfg.room_height_mm) * (1 + 0.06 * noise)
        col = self.wall_colours[wall[w]] * shade[:, None]
        for k, (sc, zc, hs, hz, pc) in enumerate(self.patches):
            on_wall = wall[w] == k
            for i in range(len(sc)):
                inside = on_wall & (np.abs(s - sc[i]) < hs[i]) & (np.abs(z - zc[i]) < hz[i])
                col[inside] = pc[i] * (1 + 0.04 * noise[inside, None])
        out[w] = col
        out[surface == CEILING] = self.ceiling_colour
        return out


# Garment colours (BGR, linear 0..1): what performers commonly wear.
TOPS = {"red": (0.15, 0.15, 0.75), "green": (0.2, 0.55, 0.2), "blue": (0.7, 0.35, 0.15),
        "yellow": (0.15, 0.75, 0.85), "white": (0.85, 0.85, 0.85), "black": (0.08, 0.08, 0.08),
        "grey": (0.5, 0.5, 0.5), "orange": (0.1, 0.45, 0.85), "purple": (0.55, 0.2, 0.45),
        "teal": (0.55, 0.5, 0.1), "pink": (0.7, 0.55, 0.9)}
TROUSERS = {"denim": (0.45, 0.25, 0.12), "black": (0.07, 0.07, 0.08), "navy": (0.3, 0.12, 0.08),
            "khaki": (0.45, 0.6, 0.68), "grey": (0.4, 0.4, 0.4), "olive": (0.15, 0.35, 0.3),
            "brown": (0.15, 0.25, 0.4)}


def _outfit(rng: np.random.Generator, room: _Room) -> tuple[np.ndarray, str]:
    """Colour (P + E, 3) per body primitive and a note naming the outfit (and any
    garment that takes the colour of the floor or a wall)."""
    skin = np.array([0.55, 0.62, 0.78]) * rng.uniform(0.45, 1.1)  # BGR
    top_name, bottoms_name = rng.choice(list(TOPS)), rng.choice(list(TROUSERS))
    top = np.array(TOPS[top_name]) * rng.uniform(0.9, 1.1, 3)
    bottoms = np.array(TROUSERS[bottoms_name]) * rng.uniform(0.9, 1.1, 3)
    shoes = np.full(3, rng.choice([0.1, 0.8]))
    sleeves = top if rng.uniform() < 0.5 else skin
    note = f"{top_name} top, {bottoms_name} trousers"
    if rng.uniform() < room.cfg.camouflage_probability:
        k = int(rng.integers(5))
        bg, where = (room.floor_colour, "floor") if k == 4 else (room.wall_colours[k], f"wall {k}")
        colour = np.clip(bg + rng.uniform(-0.03, 0.03, 3), 0, 1)
        if rng.uniform() < 0.5:
            top, note = colour, f"top the colour of the {where}, {bottoms_name} trousers"
        else:
            bottoms, note = colour, f"{top_name} top, trousers the colour of the {where}"
    part = {"Chest": top, "Abdomen": top, "Pelvis": bottoms, "Head": skin, "Neck": skin,
            "LeftHand": skin, "RightHand": skin}
    for side in ("Left", "Right"):
        part.update({side + "UpperArm": top, side + "Clavicle": top, side + "ForeArm": sleeves,
                     side + "Thigh": bottoms, side + "Shank": bottoms, side + "Foot": shoes})
    return np.array([part[n] for n in CAPSULE_NAMES + ELLIPSOID_NAMES], np.float32), note


def _ray_hits(body: Body, o: np.ndarray, d: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rays o + s d (d (N, 3) unit) against every primitive: the nearest hit's
    primitive index (N,) (-1 for no hit), point (N, 3) and surface normal (N, 3)."""
    a, b, r = body.capsule_a, body.capsule_b, body.capsule_r
    L = np.linalg.norm(b - a, axis=1)
    e = (b - a) / np.maximum(L, 1e-9)[:, None]
    w = o - a                                                     # (P, 3)
    de, we = d @ e.T, (w * e).sum(1)                              # (N, P), (P,)
    A = 1 - de**2
    B = d @ w.T - de * we
    C = (w * w).sum(1) - we**2 - r**2
    disc = B**2 - A * C
    with np.errstate(invalid="ignore", divide="ignore"):
        s_cyl = (-B - np.sqrt(disc)) / A
    h = we + s_cyl * de
    s_cyl = np.where((disc >= 0) & (A > 1e-12) & (h >= 0) & (h <= L), s_cyl, np.inf)
    depth = [s_cyl]
    for c in (a, b):  # the end spheres
        oc = c - o
        bb = d @ oc.T
        disc = bb**2 - ((oc * oc).sum(1) - r**2)
        with np.errstate(invalid="ignore"):
            depth.append(np.where(disc >= 0, bb - np.sqrt(disc), np.inf))
    s_cap = np.minimum.reduce(depth)
    M = np.swapaxes(body.ellipsoid_rotation, 1, 2) / body.ellipsoid_axes[:, :, None]  # world -> unit
    o2 = np.einsum("eij,ej->ei", M, o - body.ellipsoid_centre)      # (E, 3)
    d2 = np.einsum("eij,nj->nei", M, d)                             # (N, E, 3)
    qa = (d2 * d2).sum(-1)
    qb = (d2 * o2).sum(-1)
    disc = qb**2 - qa * ((o2 * o2).sum(-1) - 1)
    with np.errstate(invalid="ignore"):
        s_ell = np.where(disc >= 0, (-qb - np.sqrt(disc)) / qa, np.inf)
    s_all = np.concatenate([s_cap, s_ell], 1)
    s_all[s_all <= 0] = np.inf
    idx = s_all.argmin(1)
    s = s_all[np.arange(len(d)), idx]
    hit = np.isfinite(s)
    p = o + np.where(hit, s, 0)[:, None] * d
    P = len(r)
    normal = np.zeros_like(p)
    ci = np.flatnonzero(hit & (idx < P))
    q = idx[ci]
    t = np.clip(((p[ci] - a[q]) * e[q]).sum(1), 0, L[q])
    normal[ci] = p[ci] - (a[q] + t[:, None] * e[q])
    ei = np.flatnonzero(hit & (idx >= P))
    q = idx[ei] - P
    rot, ax = body.ellipsoid_rotation[q], body.ellipsoid_axes[q]
    local = np.einsum("nji,nj->ni", rot, p[ei] - body.ellipsoid_centre[q]) / ax**2
    normal[ei] = np.einsum("nij,nj->ni", rot, local)
    normal /= np.maximum(np.linalg.norm(normal, axis=1, keepdims=True), 1e-9)
    return np.where(hit, idx, -1), p, normal


class SceneRenderer:
    """BGR images of a :class:`SimulatedStudio`'s cameras, deterministic from `seed`."""

    def __init__(self, studio: SimulatedStudio, seed: int = 0, config: SceneConfig | None = None) -> None:
        self.studio, self.seed = studio, int(seed)
        self.config = cfg = config or SceneConfig()
        rng = np.random.default_rng([self.seed, 0x5CE7E])
        self.room = _Room(cfg, rng)
        self.part_colours, self.outfit_note = _outfit(np.random.default_rng([self.seed, studio.subject.seed]),
                                                      self.room)
        self.cameras: list[Camera] = list(studio.rig)
        self._gradient_angle = rng.uniform(0, 2 * np.pi, len(self.cameras))
        self._white_balance = rng.uniform(0.95, 1.05, (len(self.cameras), 3)).astype(np.float32)
        L = np.asarray(cfg.light_mm, float)
        size = 256
        self.light = L
        self.light_camera = Camera.look_at(L, [L[0], L[1], 0.0], size / 2 * L[2] / 5500.0, (size, size),
                                           name="key light")
        self._views = [self._view(k, cam) for k, cam in enumerate(self.cameras)]

    def _view(self, k: int, cam: Camera) -> dict:
        """What never changes for camera k: rays, the lit-room albedo and the
        lookup of floor pixels into the shadow map."""
        w, h = cam.size
        uv = np.stack(np.meshgrid(np.arange(w, dtype=float), np.arange(h, dtype=float)), -1).reshape(-1, 2)
        # The silhouette renderer's cached rays, so the true masks and these images agree.
        xy = pixel_grid(cam).astype(np.float64)
        d = np.concatenate([xy.T, np.ones((w * h, 1))], 1) @ cam.R
        d /= np.linalg.norm(d, axis=1, keepdims=True)
        c, cfg = cam.centre, self.config
        with np.errstate(divide="ignore", invalid="ignore"):
            sx = (np.sign(d[:, 0]) * cfg.room_half_mm - c[0]) / d[:, 0]
            sy = (np.sign(d[:, 1]) * cfg.room_half_mm - c[1]) / d[:, 1]
            sz = np.where(d[:, 2] < 0, -c[2] / d[:, 2], (cfg.room_height_mm - c[2]) / d[:, 2])
        s_all = np.nan_to_num(np.stack([sx, sy, sz], 1), nan=np.inf, posinf=np.inf)
        which = s_all.argmin(1)
        p = c + s_all.min(1)[:, None] * d
        surface = np.where(which == 2, np.where(d[:, 2] < 0, FLOOR, CEILING), WALL)
        wall = np.where(which == 0, (d[:, 0] > 0).astype(int), 2 + (d[:, 1] > 0))
        albedo = self.room.colour(surface, wall, p).reshape(h, w, 3)
        floor = surface == FLOOR
        luv, valid = self.light_camera.project(p)
        map_xy = np.where((floor & valid)[:, None], luv, -100.0).astype(np.float32).reshape(h, w, 2)
        angle = self._gradient_angle[k]
        u0 = (uv[:, 0] - w / 2) * np.cos(angle) + (uv[:, 1] - h / 2) * np.sin(angle)
        return {"rays": d.astype(np.float32), "albedo": albedo * self._white_balance[k],
                "map_x": np.ascontiguousarray(map_xy[..., 0]), "map_y": np.ascontiguousarray(map_xy[..., 1]),
                "slope": (u0 / (w / 2)).reshape(h, w).astype(np.float32)}

    # -- lighting -------------------------------------------------------------
    def gain(self, t_s: float) -> float:
        """The global lighting gain at t_s (1 = the lighting at t = 0)."""
        cfg = self.config
        return 1.0 + cfg.gain_amplitude * float(np.sin(2 * np.pi * t_s / cfg.gain_period_s))

    def _lighting(self, k: int, t_s: float) -> np.ndarray:
        cfg = self.config
        g = cfg.gradient_amplitude * np.sin(2 * np.pi * t_s / cfg.gradient_period_s + k)
        return (self.gain(t_s) * (1 + g * self._views[k]["slope"]))[..., None]

    def _finish(self, k: int, t_s: float, linear: np.ndarray, tag: int) -> np.ndarray:
        """Linear colour in [0, 1] -> lit, blurred, noisy uint8 BGR."""
        img = linear * (255.0 * self._lighting(k, t_s))
        if self.config.blur_sigma_px > 0:
            img = cv2.GaussianBlur(img, (0, 0), self.config.blur_sigma_px)
        frame_index = int(round(t_s * self.config.fps))
        rng = np.random.default_rng([self.seed, frame_index + (1 << 20), k, tag])
        img += rng.standard_normal(img.shape, dtype=np.float32) * np.float32(self.config.noise_sigma)
        return np.clip(img + 0.5, 0, 255).astype(np.uint8)

    # -- frames ---------------------------------------------------------------
    def empty_frame(self, t_s: float) -> list[np.ndarray]:
        """The room alone (no performer, no shadow) at t_s, with noise and lighting."""
        return [self._finish(k, t_s, v["albedo"], 1) for k, v in enumerate(self._views)]

    def render(self, t_s: float) -> SceneFrame:
        """Images, true masks (the studio's, so exact unless the studio adds mask
        noise) and floor shadows at t_s; None for a camera that is off."""
        masks = self.studio.silhouettes(t_s)
        p = self.studio.poses(np.array([t_s]))
        body = body_primitives(self.studio.subject, p.positions_mm[0], p.rotations[0])
        shadow_map = render_silhouettes(body, [self.light_camera])[0].astype(np.float32)
        lc = self.light_camera
        blur_px = self.config.shadow_blur_mm * lc.K[0, 0] / self.light[2]
        shadow_map = cv2.GaussianBlur(shadow_map, (0, 0), blur_px) * np.float32(self.config.shadow_strength)
        images, shadows = [], []
        for k, (v, mask) in enumerate(zip(self._views, masks)):
            if mask is None:  # a camera that is off
                images.append(None)
                shadows.append(None)
                continue
            shadow = cv2.remap(shadow_map, v["map_x"], v["map_y"], cv2.INTER_LINEAR,
                               borderMode=cv2.BORDER_CONSTANT, borderValue=0)
            linear = v["albedo"] * (1 - shadow)[..., None]
            idx = np.flatnonzero(mask)
            if idx.size:
                part, pts, normal = _ray_hits(body, self.cameras[k].centre, v["rays"][idx].astype(np.float64))
                to_light = self.light - pts
                to_light /= np.linalg.norm(to_light, axis=1, keepdims=True)
                lambert = np.clip((normal * to_light).sum(1), 0, 1)
                shade = np.where(part >= 0, 0.5 + 0.5 * lambert, 0.6).astype(np.float32)
                colour = self.part_colours[np.where(part >= 0, part, ELLIPSOID_NAMES.index("Chest")
                                                    + len(CAPSULE_NAMES))]
                linear.reshape(-1, 3)[idx] = colour * shade[:, None]
            images.append(self._finish(k, t_s, linear, 2))
            shadows.append(np.where(mask > 0, 0, shadow).astype(np.float32))
        return SceneFrame(float(t_s), images, [None if m is None else m.copy() for m in masks], shadows)

    def frame(self, t_s: float) -> list[np.ndarray]:
        """Every camera's BGR image at t_s, performer and shadow included."""
        return self.render(t_s).images
