"""Test footage shared by the camera and capture tests: frames that carry
their own index and camera in flat grey blocks (they survive JPEG), video
files written with cv2.VideoWriter, and a live MJPEG-over-HTTP camera."""

import http.server
import socketserver
import threading
from pathlib import Path

import cv2
import numpy as np

W, H = 64, 48


def frame_image(i: int, cam: int = 0) -> np.ndarray:
    """Frame i of camera `cam`: the left half's two blocks hold i in base 16
    as grey levels, the right half the camera. Flat blocks survive JPEG
    compression to within a few levels."""
    img = np.empty((H, W, 3), np.uint8)
    img[: H // 2, : W // 2] = 20 + 13 * (i % 16)
    img[H // 2:, : W // 2] = 20 + 13 * (i // 16 % 16)
    img[:, W // 2:] = 30 + 50 * cam
    return img


def frame_identity(img: np.ndarray) -> int:
    """Which frame `img` shows (modulo 256)."""
    low = round((img[4: H // 2 - 4, 4: W // 2 - 4].mean() - 20) / 13)
    high = round((img[H // 2 + 4: -4, 4: W // 2 - 4].mean() - 20) / 13)
    return int(high * 16 + low)


def write_video(path: Path, n: int, fps: float = 25.0, cam: int = 0) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (W, H))
    assert writer.isOpened()
    for i in range(n):
        writer.write(frame_image(i, cam))
    writer.release()
    return path


def camera_identity(img: np.ndarray) -> int:
    return round((img[8:-8, W // 2 + 4:-4].mean() - 30) / 50)


class MjpegServer:
    """An MJPEG-over-HTTP camera on 127.0.0.1 (multipart/x-mixed-replace),
    the way IP cameras and phone camera apps serve video."""

    def __init__(self, port: int = 0, fps: float = 40.0, cam: int = 0) -> None:
        self.fps, self.cam, self.sent = fps, cam, 0
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                self.send_response(200)
                self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
                self.end_headers()
                try:
                    while not outer.stopping.is_set():
                        if outer.silent.is_set():  # connected, but no more frames
                            outer.stopping.wait(0.05)
                            continue
                        jpg = cv2.imencode(".jpg", frame_image(outer.sent, outer.cam))[1].tobytes()
                        self.wfile.write(b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n"
                                         % len(jpg) + jpg + b"\r\n")
                        outer.sent += 1
                        outer.stopping.wait(1 / outer.fps)
                except OSError:
                    pass

        class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
            allow_reuse_address = True
            daemon_threads = False
            block_on_close = True

        self.stopping = threading.Event()
        self.silent = threading.Event()
        self.server = Server(("127.0.0.1", port), Handler)
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/stream.mjpg"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=False)
        self.thread.start()

    def stop(self) -> None:
        """Gone: closes the listening socket and every open stream."""
        self.stopping.set()
        self.server.shutdown()
        self.server.server_close()  # joins the handler threads (block_on_close)
        self.thread.join(5)


def servers_fixture():
    made = []

    def make(**kw):
        made.append(MjpegServer(**kw))
        return made[-1]

    yield make
    for s in made:
        if not s.stopping.is_set():
            s.stop()
