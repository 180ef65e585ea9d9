"""Calibration boards: their definition, detection in images, and a printable
file at true size.

A board is saved with every calibration made with it (`BoardSpec.to_dict`), and
the app prints it from the same definition, so the board on the wall and the
board in the file always match.

Board frame (OpenCV's): origin at the board's top-left outer corner as printed,
x to the right along the squares, y down the page, z into the board; mm.
ChArUco corners are the inner chessboard corners, numbered row by row; a
chessboard's corners are numbered the same way.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np

KINDS = ("charuco", "chessboard")

# Dictionaries offered (a subset of OpenCV's predefined ones: enough markers for
# boards up to 14 x 10 squares, robust Hamming distances).
DICTIONARIES = {
    "DICT_4X4_50": cv2.aruco.DICT_4X4_50,
    "DICT_4X4_100": cv2.aruco.DICT_4X4_100,
    "DICT_5X5_100": cv2.aruco.DICT_5X5_100,
    "DICT_5X5_250": cv2.aruco.DICT_5X5_250,
    "DICT_6X6_250": cv2.aruco.DICT_6X6_250,
    "DICT_ARUCO_ORIGINAL": cv2.aruco.DICT_ARUCO_ORIGINAL,
}

MM_PER_INCH = 25.4


class BoardError(ValueError):
    """A board definition that cannot be used; the message says what is wrong."""


@dataclass(frozen=True)
class BoardSpec:
    """squares_x, squares_y: squares along x and y; square_mm: their side;
    marker_mm: the ArUco markers' side (ChArUco only); dictionary: a name from
    DICTIONARIES (ChArUco only); legacy: OpenCV's pre-4.6 ChArUco layout (for
    boards printed by older tools, with an even number of rows)."""

    kind: str = "charuco"
    squares_x: int = 7
    squares_y: int = 5
    square_mm: float = 40.0
    marker_mm: float = 30.0
    dictionary: str = "DICT_5X5_100"
    legacy: bool = False

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise BoardError(f"board kind must be one of {KINDS}, got {self.kind!r}")
        if int(self.squares_x) < 3 or int(self.squares_y) < 3:
            raise BoardError(f"a board needs at least 3 x 3 squares, got {self.squares_x} x {self.squares_y}")
        if not self.square_mm > 0:
            raise BoardError(f"square size must be positive, got {self.square_mm} mm")
        if self.kind == "charuco":
            if not 0 < self.marker_mm < self.square_mm:
                raise BoardError(f"markers ({self.marker_mm} mm) must be smaller than the squares "
                                 f"({self.square_mm} mm)")
            if self.dictionary not in DICTIONARIES:
                raise BoardError(f"unknown ArUco dictionary {self.dictionary!r}; one of {sorted(DICTIONARIES)}")
            markers = (self.squares_x * self.squares_y) // 2
            size = cv2.aruco.getPredefinedDictionary(DICTIONARIES[self.dictionary]).bytesList.shape[0]
            if markers > size:
                raise BoardError(f"a {self.squares_x} x {self.squares_y} board needs {markers} markers; "
                                 f"{self.dictionary} has {size}")

    # -- geometry ----------------------------------------------------------
    @property
    def size_mm(self) -> tuple[float, float]:
        return self.squares_x * self.square_mm, self.squares_y * self.square_mm

    @property
    def corner_count(self) -> int:
        return (self.squares_x - 1) * (self.squares_y - 1)

    @property
    def corners_mm(self) -> np.ndarray:
        """(N, 3) inner corners in the board frame, row by row (z = 0)."""
        nx, ny = self.squares_x - 1, self.squares_y - 1
        gx, gy = np.meshgrid(np.arange(1, nx + 1), np.arange(1, ny + 1))
        xy = np.stack([gx.ravel(), gy.ravel()], 1) * self.square_mm
        return np.concatenate([xy, np.zeros((len(xy), 1))], 1)

    def cv_board(self) -> cv2.aruco.CharucoBoard:
        if self.kind != "charuco":
            raise BoardError("only a ChArUco board has an OpenCV board object")
        d = cv2.aruco.getPredefinedDictionary(DICTIONARIES[self.dictionary])
        board = cv2.aruco.CharucoBoard((int(self.squares_x), int(self.squares_y)), float(self.square_mm),
                                       float(self.marker_mm), d)
        board.setLegacyPattern(bool(self.legacy))
        return board

    # -- files ---------------------------------------------------------------
    def to_dict(self) -> dict:
        return {"format": "fusecap-board", "version": 1, **asdict(self)}

    @classmethod
    def from_dict(cls, d: dict) -> "BoardSpec":
        if not isinstance(d, dict) or d.get("format") != "fusecap-board":
            raise BoardError("not a FuseCap board definition (missing format: fusecap-board)")
        if d.get("version") != 1:
            raise BoardError(f"unsupported board definition version {d.get('version')!r}")
        try:
            return cls(kind=str(d["kind"]), squares_x=int(d["squares_x"]), squares_y=int(d["squares_y"]),
                       square_mm=float(d["square_mm"]), marker_mm=float(d.get("marker_mm", 0.0)),
                       dictionary=str(d.get("dictionary", "DICT_5X5_100")), legacy=bool(d.get("legacy", False)))
        except (KeyError, TypeError, ValueError, OverflowError) as exc:
            if isinstance(exc, BoardError):
                raise
            raise BoardError(f"malformed board definition: {exc}") from exc

    # -- printing ------------------------------------------------------------
    def image_scale(self, px_per_mm: float) -> float:
        """The pixels per millimetre `image` really uses for a wish of
        `px_per_mm`: the nearest that makes a square a whole number of pixels."""
        return max(1, round(self.square_mm * px_per_mm)) / self.square_mm

    def image(self, px_per_mm: float, margin_mm: float = 0.0) -> np.ndarray:
        """The board as a uint8 grey image at `image_scale(px_per_mm)` pixels
        per millimetre (s), with a white margin of m = round(margin_mm * s)
        pixels. Board mm (x, y) sits at pixel (x * s + m - 0.5, y * s + m - 0.5)."""
        px_per_mm = self.image_scale(px_per_mm)
        sq = int(round(self.square_mm * px_per_mm))
        w, h = sq * self.squares_x, sq * self.squares_y
        if self.kind == "charuco":
            img = self.cv_board().generateImage((w, h), marginSize=0, borderBits=1)
        else:
            sq = np.add.outer(np.arange(h) // (h / self.squares_y), np.arange(w) // (w / self.squares_x))
            img = np.where(sq.astype(int) % 2 == 0, 0, 255).astype(np.uint8)
        m = int(round(margin_mm * px_per_mm))
        return cv2.copyMakeBorder(img, m, m, m, m, cv2.BORDER_CONSTANT, value=255) if m else img

    def save_printable(self, path: str | Path, dpi: int = 300, margin_mm: float = 10.0) -> Path:
        """Write the board at true size: a PNG carrying its DPI (print at 100 %)
        or a PDF whose page is exactly the board plus its margin. The square
        size and the board definition are written on the margin."""
        path = Path(path)
        suffix = path.suffix.lower()
        if suffix not in (".png", ".pdf"):
            raise BoardError(f"a printable board is a .png or .pdf file, not {path.name!r}")
        px_per_mm = self.image_scale(dpi / MM_PER_INCH)
        dpi = px_per_mm * MM_PER_INCH  # whole-pixel squares: the true size wins over a round DPI
        img = self.image(px_per_mm, margin_mm)
        label = (f"FuseCap {self.kind} {self.squares_x}x{self.squares_y}, square {self.square_mm:g} mm"
                 + (f", marker {self.marker_mm:g} mm, {self.dictionary}" if self.kind == "charuco" else "")
                 + " - print at 100 %, check the square size with a ruler")
        font_px = max(8, int(margin_mm * px_per_mm * 0.35))
        if margin_mm >= 4:
            cv2.putText(img, label, (int(margin_mm * px_per_mm), img.shape[0] - int(margin_mm * px_per_mm * 0.3)),
                        cv2.FONT_HERSHEY_SIMPLEX, font_px / 30.0, 0, max(1, font_px // 15), cv2.LINE_AA)
        path.parent.mkdir(parents=True, exist_ok=True)
        if suffix == ".png":
            _write_png_with_dpi(path, img, dpi)
        else:
            _write_pdf(path, img, dpi)
        return path


def _write_png_with_dpi(path: Path, img: np.ndarray, dpi: float) -> None:
    from PIL import Image

    # The pHYs chunk carries the resolution, so printing at 100 % keeps the size.
    Image.fromarray(img).save(path, format="PNG", dpi=(dpi, dpi))


def _write_pdf(path: Path, img: np.ndarray, dpi: float) -> None:
    from PIL import Image

    # One page exactly the image's size at `dpi`: the board plus its margin.
    Image.fromarray(img).save(path, format="PDF", resolution=float(dpi))


# -- detection -------------------------------------------------------------------

@dataclass(frozen=True, eq=False)
class Detection:
    """Board corners found in one image: ids (N,) index into BoardSpec.corners_mm,
    pixels (N, 2) sub-pixel positions (pixel-centre convention), image size
    (width, height)."""

    ids: np.ndarray
    pixels: np.ndarray
    size: tuple[int, int]

    def __len__(self) -> int:
        return len(self.ids)

    def object_points(self, board: BoardSpec) -> np.ndarray:
        return board.corners_mm[self.ids]


def marker_parameters() -> cv2.aruco.DetectorParameters:
    """ArUco marker detection tuned for boards seen small, turned and a
    little blurred, as a studio's cameras see a board walked around the area
    from 2-5 m. Measured on rendered views of a 7 x 5 board of 80 mm squares
    from four 1280x720 cameras (164 views, 83 with 6 or more corners in
    view): OpenCV's defaults found 44 views (828 corners); finer threshold
    windows, smaller markers allowed and a looser outline fit 49; reading the
    bits at 8 pixels a cell and correcting as many bits as the dictionary's
    distance allows 60 (1,287 corners), at the same corner accuracy (median
    0.17 px, largest 2.1 px against the true corners) and 17 ms an image.
    A wrong marker cannot place a corner: ChArUco interpolates corners from
    markers consistent with the board, and a board pose that reprojects
    badly is dropped by the calibration."""
    p = cv2.aruco.DetectorParameters()
    p.adaptiveThreshWinSizeStep = 4
    p.minMarkerPerimeterRate = 0.01
    p.polygonalApproxAccuracyRate = 0.05
    p.perspectiveRemovePixelPerCell = 8
    p.errorCorrectionRate = 1.0
    return p


class BoardDetector:
    """Finds a board's corners in grey or BGR images. A view with fewer than
    `min_corners` corners (or, for ChArUco, corners that all lie on one line)
    gives None: it cannot constrain a calibration."""

    def __init__(self, board: BoardSpec, min_corners: int = 6) -> None:
        self.board = board
        self.min_corners = max(4, int(min_corners))
        if board.kind == "charuco":
            self._cv_board = board.cv_board()
            params = cv2.aruco.CharucoParameters()
            params.minMarkers = 2
            self._detector = cv2.aruco.CharucoDetector(self._cv_board, params, marker_parameters())

    def detect(self, image: np.ndarray) -> Detection | None:
        if image is None or image.size == 0:
            raise ValueError("empty image")
        gray = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
        if gray.dtype != np.uint8:
            raise ValueError(f"board detection needs 8-bit images, got {gray.dtype}")
        size = (gray.shape[1], gray.shape[0])
        if self.board.kind == "charuco":
            corners, ids, _, _ = self._detector.detectBoard(gray)
            if ids is None or len(ids) < self.min_corners:
                return None
            if self._cv_board.checkCharucoCornersCollinear(ids):
                return None
            ids = ids.ravel().astype(np.int64)
            pixels = corners.reshape(-1, 2).astype(np.float64)
        else:
            pattern = (self.board.squares_x - 1, self.board.squares_y - 1)
            found, corners = cv2.findChessboardCornersSB(gray, pattern, flags=cv2.CALIB_CB_NORMALIZE_IMAGE)
            if not found:
                return None
            pixels = corners.reshape(-1, 2).astype(np.float64)
            ids = np.arange(len(pixels), dtype=np.int64)
            pixels = _orient_chessboard(pixels, pattern)
        order = np.argsort(ids)
        return Detection(ids[order], pixels[order], size)


def _orient_chessboard(pixels: np.ndarray, pattern: tuple[int, int]) -> np.ndarray:
    """A chessboard is symmetric under a half turn, so OpenCV may return its
    corners in either order; pick the one whose first corner is nearer the
    image's top-left, so a board seen upright numbers its corners like the spec."""
    first, last = pixels[0], pixels[-1]
    if first.sum() > last.sum():
        return pixels[::-1].copy()
    return pixels
