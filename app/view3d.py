"""The live 3D view: the performer as a shaded character, with the camera
frusta, the fused hull, the skeleton and the IMU bone directions as
overlays, over the floor, drawn with vispy inside a Qt widget.

The character is the shipped body fitted to the solved skeleton and skinned
by it (:mod:`core.character`), lit by a light over the viewer's shoulder
that turns with the view. The skeleton is drawn over it (not hidden inside
it). Which layers show is the user's choice (:data:`LAYERS`,
:meth:`LiveView3D.set_layer_visible`); the data keep flowing into hidden
layers, so showing one again draws the newest frame at once.

Units and frames: the scene is drawn in world millimetres, right-handed, Z up,
floor at z = 0 -- the same numbers core hands over, so nothing is rescaled on
the way in. Inside ``app`` this is the only module that touches vispy.

Threading: every ``set_*`` runs on the GUI thread and only stores the newest
data and marks a layer dirty. A 40 Hz QTimer owned by the widget rebuilds the
dirty layers and draws the picture when anything changed (new data, the
camera turned by the mouse), so a burst of results or mouse moves between two
ticks costs one rebuild and one draw. Arrays handed in are kept by reference (the volume is
megabytes) and must not be mutated afterwards, as everywhere in FuseCap.
"""

from __future__ import annotations

import math

import numpy as np
import shiboken6
import vispy
from PySide6 import QtCore, QtGui, QtWidgets

vispy.use("pyside6")
from vispy import scene  # noqa: E402  (the backend must be chosen first)
from vispy.gloo import gl  # noqa: E402

from core import skeleton as sk  # noqa: E402
from core.camera.rig import CameraRig, CaptureArea  # noqa: E402
from core.character import CharacterMesh, fit_character  # noqa: E402
from core.view_geometry import FLOOR_COLOUR, floor_segments, frustum_segments, skeleton_geometry, volume_points  # noqa: E402
from core.volume.grid import VoxelGrid  # noqa: E402

# The timer's period: 40 ticks a second, so that a view redrawn on every tick (the
# camera following a moving performer, or a user turning it) keeps above 30
# frames/s although a busy GUI thread serves some ticks late.
TICK_MS = 25
AXIS_MM = 500.0
IMU_ARROW_MM = 250.0
# Follow mode eases the orbit centre toward the Hips with this time constant:
# short enough to keep the performer in frame, long enough not to shake.
FOLLOW_TAU_S = 0.3

BACKGROUND = (0.10, 0.10, 0.12, 1.0)
FRUSTUM_COLOUR = (0.95, 0.80, 0.30, 1.0)
IMU_COLOUR = (1.00, 0.25, 0.95, 1.0)
VOLUME_COLOUR = (0.30, 0.85, 0.80, 0.30)
BODY_COLOUR = (0.62, 0.66, 0.72, 1.0)
# The layers the user shows or hides; the floor and the world axes always show.
LAYERS = ("body", "skeleton", "volume", "cameras")
# The character is fitted again when a bone of the solved skeleton changed by more than this.
REFIT_MM = 2.0


def _draw_and_read(native: QtWidgets.QWidget) -> QtGui.QImage:
    """Draw the scene into the canvas widget's framebuffer and read the
    picture back: what QOpenGLWidget.grabFramebuffer does, with the read-back
    outside Python's global lock. The read-back waits for the GL to finish
    the picture (under a software GL, its rasteriser threads); PySide6's
    grabFramebuffer holds the lock all that time, and vispy's ctypes
    bindings let it go, so the live path's threads run meanwhile (py-spy
    --gil on scripts/bench_live.py: the paint event held the lock in 29 % of
    the samples in which anything held it). The first draw, before the
    widget has its framebuffer, goes through grabFramebuffer."""
    if not native.isValid() or native.defaultFramebufferObject() == 0:
        return native.grabFramebuffer()
    ratio = native.devicePixelRatioF()
    w, h = max(1, round(native.width() * ratio)), max(1, round(native.height() * ratio))
    native.makeCurrent()  # the widget's context, with its framebuffer bound
    try:
        native.paintGL()  # vispy draws the scene
        pixels = gl.glReadPixels(0, 0, w, h, gl.GL_RGBA, gl.GL_UNSIGNED_BYTE)
    finally:
        native.doneCurrent()
    # GL's rows run bottom-up; flipped() copies, so `pixels` may go.
    image = QtGui.QImage(pixels, w, h, 4 * w, QtGui.QImage.Format.Format_RGBX8888).flipped(
        QtCore.Qt.Orientation.Vertical)
    image.setDevicePixelRatio(ratio)
    return image


class _Picture(QtWidgets.QWidget):
    """The view as it appears in the window: a plain (raster) widget showing
    the pictures the canvas draws off screen, passing the mouse on to it.

    Why not the canvas's own widget in the window: a QOpenGLWidget makes Qt
    compose the whole window with OpenGL on every repaint of any widget in
    it; under a software GL (Mesa's llvmpipe, a machine without a GPU or a
    virtual display) that costs about 8 ms of CPU a frame even for an empty
    scene. Drawing into the canvas's framebuffer and reading the picture back
    leaves the window raster-only (`scripts/bench_live.py`, docs/BENCHMARKS.md).
    """

    def __init__(self, canvas: scene.SceneCanvas, parent: QtWidgets.QWidget) -> None:
        super().__init__(parent)
        self._canvas = canvas
        self._image: QtGui.QImage | None = None
        self._move: QtGui.QMouseEvent | None = None  # the newest mouse move not handed on yet
        self._stale = True
        self.setAttribute(QtCore.Qt.WidgetAttribute.WA_OpaquePaintEvent)
        self.setFocusPolicy(QtCore.Qt.FocusPolicy.ClickFocus)
        self.setMinimumSize(64, 64)

    def request(self) -> None:
        """A new picture is wanted (vispy's canvas.update lands here): drawn on
        the view's next tick (`show_if_stale`), so a user turning the view with
        the mouse draws at the tick rate, not at every mouse move."""
        self._stale = True

    def show_if_stale(self) -> None:
        if self._stale:
            self.update()

    def paintEvent(self, event) -> None:  # noqa: N802 (Qt override)
        if self._stale or self._image is None:
            self._stale = False
            self._image = _draw_and_read(self._canvas.native)
        painter = QtGui.QPainter(self)
        painter.drawImage(0, 0, self._image)
        painter.end()

    def resizeEvent(self, event) -> None:  # noqa: N802
        self._canvas.native.resize(event.size())
        self._stale = True
        super().resizeEvent(event)

    def _forward(self, event) -> None:
        # Same size and origin as the canvas's widget: positions carry over as they are.
        self.forward_move()  # a move still held goes first, in order
        QtWidgets.QApplication.sendEvent(self._canvas.native, event)

    mousePressEvent = mouseReleaseEvent = mouseDoubleClickEvent = wheelEvent = _forward

    def mouseMoveEvent(self, event) -> None:  # noqa: N802 (Qt override)
        """Held until the view's next tick (`forward_move`): a mouse may report
        moves faster than the view draws (its timer ticks 40 times a second),
        and vispy turns the camera at each one it gets, which the picture only
        shows once a tick. A drag turns the view by where the pointer is
        against where the button went down, so the newest move is enough."""
        self._move = event.clone()

    def forward_move(self) -> None:
        """Hand the newest held mouse move to the canvas."""
        move, self._move = self._move, None
        if move is not None:
            native = self._canvas.native
            # vispy's backend drops a move that comes within 10 ms of the last one it took
            # (`_last_time`); moves come from here at most once a tick, and dropping this one
            # would leave the view short of the pointer.
            if hasattr(native, "_last_time"):
                native._last_time = 0.0
            QtWidgets.QApplication.sendEvent(native, move)


class LiveView3D(QtWidgets.QWidget):
    """Qt widget holding a vispy SceneCanvas (composition, not subclassing).

    The canvas draws off screen (its widget is never part of the window);
    a raster child, `_Picture`, shows what it draws and passes the mouse to it.
    ``frame_count`` counts the canvas's draws that reach the screen. ``canvas``
    is the SceneCanvas; ``render()`` returns an RGBA image of the current view.
    """

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.frame_count = 0
        self._closed = False
        # No swap of our own: the picture is read from the canvas's framebuffer.
        self.canvas = scene.SceneCanvas(keys=None, bgcolor=BACKGROUND, show=False, autoswap=False)
        native = self.canvas.native
        # A window of its own, parentless: a GL widget anywhere under this window, even a
        # window of its own, turns on Qt's GL composition of it (6 ms of CPU a draw more,
        # measured). Shown (so that it gets its size, GL context and resize events) but never
        # on screen. Deleted by shutdown(), on the GUI thread: left to Python's collector, it
        # could be deleted on whichever thread the collector runs, which Qt aborts on.
        native.setAttribute(QtCore.Qt.WidgetAttribute.WA_DontShowOnScreen)
        native.show()
        self.destroyed.connect(native.deleteLater)  # a view deleted without shutdown(): Qt's event loop deletes it
        self._picture = _Picture(self.canvas, self)
        # vispy asks its widget to repaint on every change; the picture repaints instead.
        native._vispy_update = self._picture.request
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self._picture)
        self.canvas.events.draw.connect(self._on_draw)

        self._view = self.canvas.central_widget.add_view()
        self._view.camera = scene.cameras.TurntableCamera(
            fov=45.0, elevation=20.0, azimuth=-25.0, up="+z",
            center=(0.0, 0.0, 1000.0), scale_factor=9000.0)
        root = self._view.scene

        self._floor = scene.visuals.Line(connect="segments", color=FLOOR_COLOUR, width=1,
                                         method="gl", parent=root)
        axes = np.array([[0, 0, 0], [AXIS_MM, 0, 0], [0, 0, 0], [0, AXIS_MM, 0],
                         [0, 0, 0], [0, 0, AXIS_MM]], np.float32)
        axis_colours = np.repeat(np.eye(3, 4, dtype=np.float32) + [0, 0, 0, 1], 2, axis=0)
        self._axes = scene.visuals.Line(pos=axes, color=axis_colours, connect="segments",
                                        width=3, method="gl", parent=root)
        self._frusta = scene.visuals.Line(connect="segments", color=FRUSTUM_COLOUR, width=2,
                                          method="gl", parent=root)
        self._labels = scene.visuals.Text(color=FRUSTUM_COLOUR, font_size=9, anchor_y="bottom",
                                          parent=root)
        self._bones = scene.visuals.Line(connect="segments", width=4, method="gl", parent=root)
        self._joints = scene.visuals.Markers(parent=root)
        self._imu_lines = scene.visuals.Line(connect="segments", color=IMU_COLOUR, width=3,
                                             method="gl", parent=root)
        self._imu_tips = scene.visuals.Markers(parent=root)
        # The hull is a faint cloud drawn after everything else, so voxels in
        # front of the skeleton only tint it. Not depth_mask=False: GL state
        # leaks between visuals, and a depth buffer left unwritable is not
        # cleared for the next frame. No antialiasing: the cloud is dense and
        # faint, and under a software GL that halves the cost of its sprites.
        self._volume = scene.visuals.Markers(scaling="scene", antialias=0, parent=root)
        self._volume.set_gl_state("translucent", depth_test=True)
        self._volume.order = 10
        self._body = scene.visuals.Mesh(vertices=np.zeros((3, 3), np.float32), faces=np.array([[0, 1, 2]]),
                                        color=BODY_COLOUR, shading="smooth", parent=root)
        self._body.set_gl_state("opaque", depth_test=True, cull_face=False)
        sf = self._body.shading_filter
        sf.ambient_light = (1, 1, 1, 0.30)
        sf.diffuse_light = (1, 1, 1, 0.60)
        sf.specular_light = (1, 1, 1, 0.06)
        sf.shininess = 8
        # The skeleton and the IMU bones are overlays: drawn after the body, through it.
        for v in (self._bones, self._joints, self._imu_lines, self._imu_tips):
            v.set_gl_state("translucent", depth_test=False)
            v.order = 5
        for v in (self._frusta, self._labels, self._bones, self._joints,
                  self._imu_lines, self._imu_tips, self._volume, self._body):
            v.visible = False
        self._shown = dict.fromkeys(LAYERS, True)
        self._character: CharacterMesh | None = None
        self._body_pose: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
        self._light_dir: np.ndarray | None = None  # the body's light as last set (unit, world)
        self._body_faces: np.ndarray | None = None  # the faces the mesh visual holds (a refit keeps them)
        self.body_vertices: np.ndarray | None = None  # the posed body last drawn, world mm

        # Newest data, applied on the next tick.
        self._area = CaptureArea()
        self._rig: CameraRig | None = None
        self._grid: VoxelGrid | None = None
        self._volume_data: np.ndarray | None = None
        self._channel: int | None = None
        self._stage2: np.ndarray | None = None
        self._stage1: np.ndarray | None = None
        self._confidence: np.ndarray | None = None
        self._stage = 2
        self._imu_origins: np.ndarray | None = None
        self._imu_dirs: np.ndarray | None = None
        self._follow = False
        self._dirty: set[str] = {"floor", "frame"}
        self.volume_point_count = 0

        self._timer = QtCore.QTimer(self)
        self._timer.setInterval(TICK_MS)
        self._timer.timeout.connect(self._on_tick)
        self.flush()

    # -- data in (GUI thread; store and mark dirty only) ---------------------
    def set_rig(self, rig: CameraRig | None) -> None:
        """Cameras as frusta with their names; the floor grid over rig.area."""
        self._rig = rig
        self._area = rig.area if rig is not None else CaptureArea()
        self._dirty |= {"rig", "floor", "frame"}

    def set_volume(self, grid: VoxelGrid | None, volume: np.ndarray | None) -> None:
        """volume (K, G, G, G) 0/1 on `grid`, one channel per camera; None hides it."""
        self._grid, self._volume_data = grid, volume
        self._dirty.add("volume")

    def set_volume_channel(self, k: int | None) -> None:
        """None: show the hull (every present camera agrees); k: camera k's channel only."""
        self._channel = None if k is None else int(k)
        self._dirty.add("volume")

    def set_skeleton(self, stage2_mm: np.ndarray | None, stage1_mm: np.ndarray | None = None,
                     confidence: np.ndarray | None = None) -> None:
        """Joints (J, 3) world mm of the fused (stage 2) and vision-only (stage 1)
        solves; confidence (J,) in [0, 1] fades stage-2 joints. NaN rows are hidden."""
        def copy(a):
            return None if a is None else np.array(a, np.float64)
        self._stage2, self._stage1, self._confidence = copy(stage2_mm), copy(stage1_mm), copy(confidence)
        self._dirty.add("skeleton")

    def set_body(self, offsets_mm: np.ndarray | None, positions_mm: np.ndarray | None = None,
                 rotations: np.ndarray | None = None) -> None:
        """The solved skeleton's pose: rest offsets (22, 3) mm, joint positions
        (22, 3) world mm and global rotations (22, 3, 3) (bone frame to world,
        identity in the T-pose); None hides the character."""
        if offsets_mm is None or positions_mm is None or rotations is None:
            self._body_pose = None
        else:
            self._body_pose = (np.array(offsets_mm, np.float64), np.array(positions_mm, np.float64),
                               np.array(rotations, np.float64))
        self._dirty.add("body")

    def set_layer_visible(self, layer: str, visible: bool) -> None:
        """Show or hide one of :data:`LAYERS`."""
        if layer not in LAYERS:
            raise ValueError(f"unknown layer {layer!r}; the layers are {', '.join(LAYERS)}")
        self._shown[layer] = bool(visible)
        self._dirty |= {"body", "skeleton", "imu", "volume", "rig"}

    def layer_visible(self, layer: str) -> bool:
        return self._shown[layer]

    @property
    def character(self) -> CharacterMesh | None:
        """The body as last fitted to the solved skeleton (None before a pose)."""
        return self._character

    def set_stage(self, stage: int) -> None:
        """Show stage 1 (vision only) or stage 2 (fused with the IMUs)."""
        if stage not in (1, 2):
            raise ValueError(f"stage must be 1 or 2, got {stage!r}")
        self._stage = stage
        self._dirty.add("skeleton")

    @property
    def stage(self) -> int:
        return self._stage

    def set_imu_bones(self, origins_mm: np.ndarray | None, directions: np.ndarray | None) -> None:
        """(13, 3) start-joint positions, world mm, and (13, 3) unit bone directions
        from the IMUs; a NaN row in either hides that bone."""
        if origins_mm is None or directions is None:
            self._imu_origins = self._imu_dirs = None
        else:
            self._imu_origins = np.array(origins_mm, np.float64).reshape(sk.NUM_IMUS, 3)
            self._imu_dirs = np.array(directions, np.float64).reshape(sk.NUM_IMUS, 3)
        self._dirty.add("imu")

    def set_follow(self, follow: bool) -> None:
        """While on, the orbit centre eases toward the shown skeleton's Hips."""
        self._follow = bool(follow)
        self._dirty.add("follow")

    @property
    def follow(self) -> bool:
        return self._follow

    def clear(self) -> None:
        """Forget the per-frame data (volume, skeleton, IMU bones); the rig and
        floor, which come from calibration, stay."""
        self._grid = self._volume_data = None
        self._stage2 = self._stage1 = self._confidence = None
        self._imu_origins = self._imu_dirs = None
        self._body_pose = None
        self._dirty |= {"volume", "skeleton", "imu", "body"}

    # -- view ----------------------------------------------------------------
    @property
    def camera(self) -> scene.cameras.TurntableCamera:
        return self._view.camera

    @property
    def camera_centre_mm(self) -> np.ndarray:
        """The point the view orbits, world mm."""
        return np.asarray(self._view.camera.center, np.float64)

    def world_to_canvas_px(self, points_mm: np.ndarray) -> np.ndarray:
        """World mm (N, 3) -> canvas pixels (N, 2), x right, y down, as the view
        draws them now (logical pixels: multiply by canvas.pixel_scale for an image)."""
        tr = self._view.scene.node_transform(self.canvas.scene)
        p = tr.map(np.asarray(points_mm, np.float64).reshape(-1, 3))
        return p[:, :2] / p[:, 3:4]

    def render(self) -> np.ndarray:
        """Apply pending data and render the view offscreen: (h, w, 4) uint8 RGBA."""
        self.flush()
        return self.canvas.render()

    # -- ticking ---------------------------------------------------------------
    def flush(self) -> None:
        """Rebuild the dirty layers from the newest data now (the timer does this
        every tick); advances follow mode by one tick."""
        if self._closed:
            return
        dirty, self._dirty = self._dirty, set()
        if "floor" in dirty:
            self._floor.set_data(pos=floor_segments(self._area))
        if "rig" in dirty:
            self._update_rig()
        if "frame" in dirty and not self._follow:
            self._frame_area()
        if "volume" in dirty:
            self._update_volume()
        if "skeleton" in dirty:
            self._update_skeleton()
        if "imu" in dirty:
            self._update_imu()
        if "body" in dirty:
            self._update_body()
        self._aim_light()
        moving = self._follow and self._follow_step()
        if moving:
            self._dirty.add("follow")  # keep easing on the next ticks
        if dirty or moving:
            self.canvas.update()

    def _on_tick(self) -> None:
        self._picture.forward_move()  # turns the camera: marks the picture stale
        if self._dirty:
            self.flush()
        self._picture.show_if_stale()

    def _on_draw(self, event) -> None:
        self.frame_count += 1

    def _update_rig(self) -> None:
        rig = self._rig
        if rig is None or not self._shown["cameras"]:
            self._frusta.visible = self._labels.visible = False
            return
        self._frusta.set_data(pos=np.concatenate([frustum_segments(c) for c in rig]))
        self._labels.text = [c.name for c in rig]
        self._labels.pos = np.array([c.centre + (0.0, 0.0, 150.0) for c in rig], np.float32)
        self._frusta.visible = self._labels.visible = True

    def _frame_area(self) -> None:
        """Aim at the middle of the area at waist height, wide enough to see the rig."""
        a = self._area
        reach = 0.5 * max(a.x_max - a.x_min, a.y_max - a.y_min)
        if self._rig is not None:
            d = np.array([c.centre[:2] - a.centre[:2] for c in self._rig])
            reach = max(reach, float(np.linalg.norm(d, axis=1).max()))
        self._view.camera.center = tuple(a.centre + (0.0, 0.0, 1000.0))
        self._view.camera.scale_factor = 1.6 * reach

    def _update_volume(self) -> None:
        if self._grid is None or self._volume_data is None or not self._shown["volume"]:
            self._volume.visible = False
            self.volume_point_count = 0
            return
        pos, stride = volume_points(self._grid, self._volume_data, self._channel)
        self.volume_point_count = len(pos)
        if not len(pos):
            self._volume.visible = False
            return
        # Thinned clouds draw each point bigger so the hull keeps its body.
        size = 1.3 * self._grid.voxel_mm * stride ** (1 / 3)
        self._volume.set_data(pos, size=size, edge_width=0, face_color=VOLUME_COLOUR,
                              edge_color=VOLUME_COLOUR)
        self._volume.visible = True

    def _shown_joints(self) -> np.ndarray | None:
        return self._stage2 if self._stage == 2 else self._stage1

    def _update_skeleton(self) -> None:
        joints = self._shown_joints()
        if joints is None or not self._shown["skeleton"]:
            self._joints.visible = self._bones.visible = False
            return
        conf = self._confidence if self._stage == 2 else None
        pos, colours, segs, seg_colours = skeleton_geometry(joints, conf)
        if len(pos):
            self._joints.set_data(pos, size=9, edge_width=0, face_color=colours)
        if len(segs):
            self._bones.set_data(pos=segs, color=seg_colours)
        self._joints.visible, self._bones.visible = bool(len(pos)), bool(len(segs))

    def _update_imu(self) -> None:
        o, d = self._imu_origins, self._imu_dirs
        if o is None or not self._shown["skeleton"]:
            self._imu_lines.visible = self._imu_tips.visible = False
            return
        n = np.linalg.norm(d, axis=1, keepdims=True)
        ok = (np.isfinite(o).all(axis=1) & np.isfinite(d).all(axis=1) & (n[:, 0] > 1e-6))
        if not ok.any():
            self._imu_lines.visible = self._imu_tips.visible = False
            return
        tips = o[ok] + IMU_ARROW_MM * d[ok] / n[ok]
        segs = np.stack([o[ok], tips], axis=1).reshape(-1, 3).astype(np.float32)
        self._imu_lines.set_data(pos=segs)
        self._imu_tips.set_data(tips.astype(np.float32), size=7, edge_width=0,
                                face_color=IMU_COLOUR, symbol="triangle_up")
        self._imu_lines.visible = self._imu_tips.visible = True

    def _update_body(self) -> None:
        pose = self._body_pose
        if pose is None or not self._shown["body"]:
            self._body.visible = False
            return
        offsets, positions, rotations = pose
        ok = np.isfinite(positions).all() and np.isfinite(rotations).all() and np.isfinite(offsets).all()
        if not ok:
            self._body.visible = False
            return
        c = self._character
        if c is None or np.abs(c.offsets_mm[1:] - offsets[1:]).max() > REFIT_MM:
            try:
                c = self._character = fit_character(offsets)
            except ValueError:  # a skeleton still forming (a bone of 0 mm): nothing to draw yet
                self._body.visible = False
                return
        self.body_vertices = c.pose(positions, rotations)
        self._upload_body(c, self.body_vertices.astype(np.float32))
        self._body.visible = True

    def _upload_body(self, character: CharacterMesh, vertices: np.ndarray) -> None:
        """Hand the posed body to the GPU. vispy's Mesh.set_data rebuilds and
        recompiles the mesh's shaders on every call (it assigns new shader
        functions), which under a software GL cost more than the draw itself; so
        the mesh is set once (a refitted character keeps the template's faces)
        and afterwards only its vertex and normal buffers are refilled."""
        body = self._body
        md = body.mesh_data
        buffer = getattr(body, "_vertices", None)  # vispy's vertex buffer (MeshVisual internals)
        faces = self._body_faces
        same = (buffer is not None and md is not None and md.n_vertices == len(vertices) and faces is not None
                and (faces is character.faces or np.array_equal(faces, character.faces)))
        if not same:
            body.set_data(vertices=vertices, faces=character.faces)
            self._body_faces = character.faces
            return
        md.set_vertices(vertices)  # also forgets the normals, recomputed from these
        buffer.set_data(md.get_vertices(indexed="faces"), convert=True)
        body.shading_filter.on_mesh_data_updated(None)  # the normals, from the new vertices
        body.update()

    def _aim_light(self) -> None:
        """The light comes from over the viewer's shoulder, whichever way the view turns."""
        if not self._body.visible:
            return
        d = self._view.camera.transform.map([0.4, 0.6, -1.0, 0.0])[:3]  # view space: right, up, behind
        n = np.linalg.norm(d)
        if n > 0 and (self._light_dir is None or not np.allclose(d / n, self._light_dir, atol=1e-6)):
            # Set only when the view turned (following the performer moves it, not turns it):
            # each setting re-sends every lighting uniform of the shading filter.
            self._light_dir = d / n
            self._body.shading_filter.light_dir = tuple(self._light_dir)

    def _follow_step(self) -> bool:
        """Ease the orbit centre one tick toward the Hips; True while still moving."""
        joints = self._shown_joints()
        if joints is None or not np.isfinite(joints[sk.ROOT]).all():
            return False
        centre = self.camera_centre_mm
        gap = joints[sk.ROOT] - centre
        if np.linalg.norm(gap) < 1.0:
            return False
        alpha = 1.0 - math.exp(-TICK_MS / 1000.0 / FOLLOW_TAU_S)
        self._view.camera.center = tuple(centre + alpha * gap)
        return True

    # -- lifetime --------------------------------------------------------------
    def showEvent(self, event) -> None:  # noqa: N802 (Qt override)
        super().showEvent(event)
        if not self._closed:
            self._timer.start()

    def hideEvent(self, event) -> None:  # noqa: N802
        self._timer.stop()  # nothing to draw for while hidden
        super().hideEvent(event)

    def closeEvent(self, event) -> None:  # noqa: N802
        self.shutdown()
        super().closeEvent(event)

    def shutdown(self) -> None:
        """Stop the timer and close the canvas; safe to call twice. Later set_*
        calls are accepted and ignored."""
        if self._closed:
            return
        self._closed = True
        self._timer.stop()
        self.canvas.events.draw.disconnect(self._on_draw)
        self.canvas.close()
        shiboken6.delete(self.canvas.native)
