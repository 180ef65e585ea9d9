"""The export dialog: one dialog for every format a take is exported to.

Where (a folder and a file name without extension), which files (BVH, glTF
with the character, the CSVs) and for which tool (the target: units and
joint names, core.export.targets). The files share the name: NAME.bvh,
NAME.glb, NAME.csv with NAME_rotations.csv and NAME_raw.csv beside it. The
choices are remembered between runs; OK stays disabled, with the reason
shown, until at least one format is ticked, the folder exists and the
name is a plain file name.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
)

from core.export.targets import DEFAULT_TARGET, TARGETS

FORMATS = (("bvh", "BVH skeleton animation (.bvh)"), ("glb", "glTF with the character (.glb)"),
           ("csv", "CSV: joints, rotations, raw network joints (.csv)"))


@dataclass(frozen=True)
class ExportChoice:
    """The files to write (None: not wanted) and the target tool."""

    bvh: Path | None
    glb: Path | None
    csv: Path | None
    target: str

    @property
    def files(self) -> tuple[Path, ...]:
        return tuple(p for p in (self.bvh, self.glb, self.csv) if p is not None)


class ExportDialog(QDialog):
    def __init__(self, take: Path, settings, parent=None) -> None:
        super().__init__(parent)
        self.setWindowTitle(f"Export {take.name}")
        self.settings = settings
        folder = Path(str(settings.value("export/folder", str(take.parent))))
        self.folder = QLineEdit(str(folder if folder.is_dir() else take.parent))
        self.name = QLineEdit(take.name)
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse)
        where = QHBoxLayout()
        where.addWidget(self.folder, 1)
        where.addWidget(browse)
        ticked = str(settings.value("export/formats", "bvh,glb,csv")).split(",")
        self.formats: dict[str, QCheckBox] = {}
        boxes = QVBoxLayout()
        for key, label in FORMATS:
            box = QCheckBox(label)
            box.setChecked(key in ticked)
            box.toggled.connect(self._check)
            self.formats[key] = box
            boxes.addWidget(box)
        self.target = QComboBox()
        for t in TARGETS.values():
            self.target.addItem(f"{t.tool} ({t.naming} names, {_UNIT_WORDS[t.units]})", t.name)
        self.target.setCurrentIndex(max(0, self.target.findData(str(settings.value("export/target",
                                                                                     DEFAULT_TARGET)))))
        self.reason = QLabel("")
        self.reason.setWordWrap(True)
        self.buttons = QDialogButtonBox(QDialogButtonBox.Ok | QDialogButtonBox.Cancel)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        for edit in (self.folder, self.name):
            edit.textChanged.connect(self._check)
        form = QFormLayout()
        form.addRow("Folder", where)
        form.addRow("File name", self.name)
        form.addRow("Files", boxes)
        form.addRow("For", self.target)
        lay = QVBoxLayout(self)
        lay.addLayout(form)
        lay.addWidget(self.reason)
        lay.addWidget(self.buttons)
        self._check()

    def choice(self) -> ExportChoice:
        base = Path(self.folder.text().strip()) / self.name.text().strip()

        def want(key: str, suffix: str) -> Path | None:
            return base.with_name(base.name + suffix) if self.formats[key].isChecked() else None

        return ExportChoice(want("bvh", ".bvh"), want("glb", ".glb"), want("csv", ".csv"),
                            str(self.target.currentData()))

    def problem(self) -> str:
        """Why OK is disabled ("" when it is not)."""
        name = self.name.text().strip()
        if not any(b.isChecked() for b in self.formats.values()):
            return "tick at least one kind of file"
        if not Path(self.folder.text().strip()).is_dir():
            return f"the folder {self.folder.text().strip() or '(none)'} does not exist"
        if not name or Path(name).name != name or name in (".", ".."):
            return "the file name must be a plain name, without a folder"
        return ""

    def accept(self) -> None:
        if self.problem():
            return
        c = self.choice()
        self.settings.setValue("export/folder", self.folder.text().strip())
        self.settings.setValue("export/formats", ",".join(k for k, b in self.formats.items() if b.isChecked()))
        self.settings.setValue("export/target", c.target)
        super().accept()

    def _check(self) -> None:
        why = self.problem()
        self.reason.setText(why)
        self.buttons.button(QDialogButtonBox.Ok).setEnabled(not why)

    def _browse(self) -> None:
        base = Path(self.folder.text().strip()) / self.name.text().strip()
        chosen, _ = QFileDialog.getSaveFileName(self, "Export to", str(base),
                                                "Any of the formats (*.bvh *.glb *.csv)")
        if chosen:
            p = Path(chosen)
            self.folder.setText(str(p.parent))
            self.name.setText(p.stem if p.suffix.lower() in (".bvh", ".glb", ".csv") else p.name)


_UNIT_WORDS = {"m": "metres", "cm": "centimetres", "mm": "millimetres"}
