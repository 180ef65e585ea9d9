"""The virtual display the GUI tests stand on: Qt opens a window and vispy
gets a real OpenGL context (Mesa under Xvfb), and renders what it is told."""

import pytest

pytestmark = pytest.mark.gui


def test_vispy_renders_through_qt_under_the_virtual_display(qtbot):
    import vispy
    from PySide6 import QtWidgets  # noqa: F401  (the Qt binding vispy must use)

    vispy.use("pyside6")
    from vispy import scene

    canvas = scene.SceneCanvas(size=(160, 120), bgcolor="black", show=True)
    try:
        view = canvas.central_widget.add_view()
        view.camera = scene.PanZoomCamera(rect=(0, 0, 1, 1))
        scene.visuals.Rectangle(center=(0.25, 0.5), width=0.5, height=1.0, color="red", parent=view.scene)
        qtbot.waitExposed(canvas.native)
        img = canvas.render()
        assert img.shape[2] == 4
        h, w = img.shape[:2]
        left, right = img[:, : w // 2 - 4, :3], img[:, w // 2 + 4 :, :3]
        assert (left[..., 0] > 200).mean() > 0.95 and (left[..., 1] < 50).all()  # red
        assert (right < 30).all()  # black
    finally:
        canvas.close()
