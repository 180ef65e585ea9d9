"""Board views: the one shape of board detections that every calibration step
takes.

A `BoardViews` is a table of moments by cameras: ``rows[m][k]`` is camera k's
detection of the board at moment m, or None where that camera did not find
it. The cameras are named, and every camera has one image size. A lens step
reads a camera's column; the rig step reads whole rows, where several
cameras saw the board at once; the bundle adjustment reads both. Views that
were not taken together (a board held in front of one camera at a time for
its lens) are rows with one detection (`from_columns`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Sequence

from core.calibration.board import Detection


class ViewsError(ValueError):
    """Views that do not fit together; the message says which camera and moment."""


@dataclass
class BoardViews:
    """names: the cameras; sizes: each camera's image size (width, height);
    rows: rows[m][k] camera k's detection at moment m (None: not seen);
    labels: a name per moment for messages (a frame's file name, "floor")."""

    names: tuple[str, ...]
    sizes: tuple[tuple[int, int], ...]
    rows: list[list[Detection | None]] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.names = tuple(str(n) for n in self.names)
        self.sizes = tuple((int(w), int(h)) for w, h in self.sizes)
        if len(self.names) != len(self.sizes):
            raise ViewsError(f"{len(self.names)} camera names for {len(self.sizes)} image sizes")
        if len(set(self.names)) != len(self.names):
            raise ViewsError(f"camera names must differ: {list(self.names)}")
        rows, labels = self.rows, self.labels
        self.rows, self.labels = [], []
        for m, row in enumerate(rows):
            self.add(row, labels[m] if m < len(labels) else None)

    @classmethod
    def from_columns(cls, names: Sequence[str], sizes: Sequence[tuple[int, int]],
                     columns: Sequence[Sequence[Detection | None]]) -> "BoardViews":
        """Views taken one camera at a time (columns[k]: camera k's views):
        each becomes a moment of its own, seen by that camera only."""
        if len(columns) != len(names):
            raise ViewsError(f"{len(columns)} columns of views for {len(names)} cameras")
        views = cls(tuple(names), tuple(sizes))
        for k, column in enumerate(columns):
            for i, det in enumerate(column):
                if det is not None:
                    row: list[Detection | None] = [None] * len(names)
                    row[k] = det
                    views.add(row, f"{views.names[k]} view {i + 1}")
        return views

    def add(self, row: Sequence[Detection | None], label: str | None = None) -> None:
        """Append a moment; its detections must be at their cameras' sizes."""
        row = list(row)
        m = len(self.rows)
        label = label if label is not None else f"moment {m + 1}"
        if len(row) != len(self.names):
            raise ViewsError(f"{label}: {len(row)} views for {len(self.names)} cameras")
        for k, det in enumerate(row):
            if det is not None and tuple(det.size) != self.sizes[k]:
                raise ViewsError(f"{label}: camera {self.names[k]}'s view is {det.size[0]}x{det.size[1]}, "
                                 f"its other views {self.sizes[k][0]}x{self.sizes[k][1]}")
        self.rows.append(row)
        self.labels.append(label)

    def extend(self, other: "BoardViews") -> None:
        """Append another set of views of the same cameras, in the same order."""
        if other.names != self.names:
            raise ViewsError(f"views of cameras {list(other.names)} cannot join views of {list(self.names)}")
        for row, label in zip(other.rows, other.labels):
            self.add(row, label)

    def __len__(self) -> int:
        return len(self.rows)

    def index(self, name: str) -> int:
        try:
            return self.names.index(name)
        except ValueError:
            raise ViewsError(f"no camera named {name!r}; the cameras are {', '.join(self.names)}") from None

    def column(self, k: int) -> list[Detection | None]:
        """Camera k's view at every moment."""
        return [row[k] for row in self.rows]

    def counts(self, min_corners: int = 1) -> list[int]:
        """Per camera, the moments where it found at least `min_corners` corners."""
        return [sum(1 for row in self.rows if row[k] is not None and len(row[k]) >= min_corners)
                for k in range(len(self.names))]

    def shared(self) -> int:
        """Moments where at least two cameras found the board."""
        return sum(1 for row in self.rows if sum(d is not None for d in row) >= 2)

    def select(self, moments: Iterable[int]) -> "BoardViews":
        moments = list(moments)
        return BoardViews(self.names, self.sizes, [self.rows[m] for m in moments], [self.labels[m] for m in moments])
