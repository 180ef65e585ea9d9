"""Built-in camera drivers (entry point `cameras`) over OpenCV.

Registered camera sources:

- "opencv": ``create_opencv(source, width=None, height=None, fps=None, name=None,
  index=0, backend=None, **options)``: one
  :class:`plugins.cameras.opencv_source.OpenCVCamera` (a device index, a
  stream URL or a video file);
- "video-files": ``create_video_files(source, timestamps=None, realtime=True, speed=1.0, live_clock=False)``:
  a :class:`plugins.cameras.video_files.VideoFiles`, recorded footage of K
  views; its ``cameras`` list holds the K sources.

The drivers are imported when a source is created, so registering costs nothing.
See docs/CAMERAS.md.
"""

from __future__ import annotations


def create_opencv(source, width=None, height=None, fps=None, name=None, index=0, backend=None, **options):
    from plugins.cameras.opencv_source import OpenCVCamera

    return OpenCVCamera(source, width=width, height=height, fps=fps, name=name, index=index,
                        backend=backend, **options)


def create_video_files(source, timestamps=None, realtime: bool = True, speed: float = 1.0, live_clock: bool = False):
    from plugins.cameras.video_files import VideoFiles

    return VideoFiles(source, timestamps=timestamps, realtime=realtime, speed=speed, live_clock=live_clock)


def register(registry) -> None:
    registry.add_camera_source("opencv", create_opencv)
    registry.add_camera_source("video-files", create_video_files)
