"""Takes panel: the takes in the takes folder; rename, delete, re-solve, export.

Re-solving and exporting run off the GUI thread with a progress dialog that
can be cancelled (app.workers); a cancelled export leaves no file behind
(every file is written atomically) and a cancelled solve leaves no version.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from PySide6.QtCore import QSettings, Qt, Signal
from PySide6.QtWidgets import (
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QListWidget,
    QMessageBox,
    QPushButton,
    QSlider,
    QVBoxLayout,
    QWidget,
)

from app.workers import Cancelled, run_with_progress
from core.take.layout import TakeError, TakeLayout
from core.take.take import Take


def list_takes(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if (p / TakeLayout.META).is_file())


class TakesPanel(QWidget):
    message = Signal(str, str)  # (level, text): "info" or "error"

    def __init__(self, folder: Path, player=None, parent=None, settings=None) -> None:
        super().__init__(parent)
        self.folder = Path(folder)
        # Where the export dialog remembers its choices (None: the app's own settings).
        self.settings = settings if settings is not None else QSettings("FuseCap", "FuseCap")
        self.player = player  # app.playback.TakePlayer, or None for no playback
        self.folder_label = QLabel()
        self.list = QListWidget()
        self.list.currentRowChanged.connect(self._show_selected)
        self.info = QLabel("")
        self.info.setWordWrap(True)
        self.buttons = {}
        row = QHBoxLayout()
        for key, label in (("rename", "Rename…"), ("delete", "Delete…"), ("solve", "Re-solve"),
                           ("export", "Export…")):
            b = QPushButton(label)
            self.buttons[key] = b
            row.addWidget(b)
        self.buttons["rename"].clicked.connect(self._ask_rename)
        self.buttons["delete"].clicked.connect(self._ask_delete)
        self.buttons["solve"].clicked.connect(lambda: self.resolve_selected())
        self.buttons["export"].clicked.connect(self._ask_export)
        lay = QVBoxLayout(self)
        lay.addWidget(self.folder_label)
        lay.addWidget(self.list, 1)
        lay.addWidget(self.info)
        lay.addLayout(row)
        # Playback: load into the 3D view, play/pause (Space), and a timeline scrubber.
        self.load_button = QPushButton("Show in 3D view")
        self.play_button = QPushButton("▶ Play")
        self.close_button = QPushButton("Back to live")
        self.timeline = QSlider(Qt.Horizontal)
        self.time_label = QLabel("")
        playback = QHBoxLayout()
        for w in (self.load_button, self.play_button, self.close_button):
            playback.addWidget(w)
        lay.addLayout(playback)
        lay.addWidget(self.timeline)
        lay.addWidget(self.time_label)
        self.load_button.clicked.connect(lambda: self.load_selected())
        self.play_button.clicked.connect(self.toggle_play)
        self.close_button.clicked.connect(self.unload)
        self.timeline.valueChanged.connect(self._scrub)
        if player is not None:
            player.frame_changed.connect(self._on_player_frame)
            player.playing_changed.connect(lambda on: self.play_button.setText("⏸ Pause" if on else "▶ Play"))
        self.task = None
        self.refresh()
        self._update_playback()

    # -- the list --------------------------------------------------------------------
    def refresh(self) -> None:
        self.folder_label.setText(f"Takes in {self.folder}")
        current = self.selected()
        self.list.clear()
        for p in list_takes(self.folder):
            self.list.addItem(p.name)
        if current is not None:
            self.select(current.name)
        self._show_selected()

    def select(self, name: str) -> None:
        for i in range(self.list.count()):
            if self.list.item(i).text() == name:
                self.list.setCurrentRow(i)
                return

    def selected(self) -> Path | None:
        item = self.list.currentItem()
        return None if item is None else self.folder / item.text()

    def _show_selected(self, *_):
        path = self.selected()
        for b in self.buttons.values():
            b.setEnabled(path is not None and self.task is None)
        if hasattr(self, "load_button"):
            self.load_button.setEnabled(path is not None and self.player is not None)
        if path is None:
            self.info.setText("")
            return
        try:
            self.info.setText(Take(path).summary())
        except TakeError as exc:
            self.info.setText(f"cannot open this take: {exc}")

    # -- playback ---------------------------------------------------------------------------
    def load_selected(self) -> bool:
        path = self.selected()
        if path is None or self.player is None:
            return False
        try:
            self.player.load(path)
        except TakeError as exc:
            self.message.emit("error", f"cannot play {path.name}: {exc}")
            return False
        self.timeline.blockSignals(True)
        self.timeline.setRange(0, max(self.player.frames - 1, 0))
        self.timeline.setValue(0)
        self.timeline.blockSignals(False)
        self.message.emit("info", f"showing {path.name} ({self.player.which}, {self.player.frames} frames)")
        self._update_playback()
        self._on_player_frame(0)
        return True

    def unload(self) -> None:
        if self.player is not None:
            self.player.unload()
        self._update_playback()

    def toggle_play(self) -> None:
        if self.player is not None and self.player.take is not None:
            self.player.toggle()

    def _scrub(self, value: int) -> None:
        if self.player is not None and self.player.take is not None and value != self.player.index:
            self.player.seek(value)

    def _on_player_frame(self, i: int) -> None:
        if self.timeline.value() != i:
            self.timeline.blockSignals(True)
            self.timeline.setValue(i)
            self.timeline.blockSignals(False)
        p = self.player
        if p.take is not None and p.frames:
            self.time_label.setText(f"{p.take.root.name}: frame {i + 1}/{p.frames}, {p.times_s[i]:.2f} s")

    def _update_playback(self) -> None:
        loaded = self.player is not None and self.player.take is not None
        self.play_button.setEnabled(loaded)
        self.close_button.setEnabled(loaded)
        self.timeline.setEnabled(loaded)
        if not loaded:
            self.time_label.setText("")

    # -- rename and delete -------------------------------------------------------------
    def _ask_rename(self) -> None:
        path = self.selected()
        if path is None:
            return
        name, ok = QInputDialog.getText(self, "Rename take", "New name:", text=path.name)
        if ok:
            self.rename(path, name)

    def rename(self, path: Path, name: str) -> bool:
        name = name.strip()
        if not name or "/" in name or "\\" in name or name in (".", ".."):
            self.message.emit("error", f"{name!r} is not a usable take name")
            return False
        target = path.parent / name
        if self.player is not None and self.player.take is not None and self.player.take.root == path:
            self.unload()
        if target.exists():
            self.message.emit("error", f"a take or file named {name!r} already exists")
            return False
        try:
            path.rename(target)
        except OSError as exc:
            self.message.emit("error", f"cannot rename {path.name}: {exc.strerror or exc}")
            return False
        self.refresh()
        self.select(name)
        return True

    def _ask_delete(self) -> None:
        path = self.selected()
        if path is None:
            return
        answer = QMessageBox.question(self, "Delete take",
                                      f"Delete the take {path.name} and everything in it? This cannot be undone.")
        if answer == QMessageBox.Yes:
            self.delete(path)

    def delete(self, path: Path) -> bool:
        if not (path / TakeLayout.META).is_file():
            self.message.emit("error", f"{path} is not a take; not deleted")
            return False
        if self.player is not None and self.player.take is not None and self.player.take.root == path:
            self.unload()
        try:
            shutil.rmtree(path)
        except OSError as exc:
            self.message.emit("error", f"cannot delete {path.name}: {exc.strerror or exc}")
            return False
        self.refresh()
        return True

    # -- re-solve and export ---------------------------------------------------------------
    def _busy(self, task) -> None:
        self.task = task
        self._show_selected()

    def resolve_selected(self, model: str = "full"):
        path = self.selected()
        if path is None:
            return None

        def work(progress):
            from core.deepfuse.engine import InferenceEngine
            from core.take.process import load_model, process_take

            take = Take(path)
            net, info, note = load_model(model)
            engine = InferenceEngine(net, take.rig)
            engine.prepare()
            version, joints, meta = process_take(take, engine, info, progress=progress)
            return version, note, meta

        def done(result, error):
            self._busy(None)
            if isinstance(error, Cancelled):
                self.message.emit("info", "re-solve cancelled; the take is unchanged")
            elif error is not None:
                self.message.emit("error", f"re-solve failed: {error}")
            else:
                version, note, meta = result
                self.message.emit("info", (note + "; " if note else "") +
                                  f"solve {version:03d} stored: {meta['frames_found']} frames with a performer")
            self.refresh()

        task = run_with_progress(self, f"Solving {path.name}…", work, done)
        self._busy(task)
        return task

    def _ask_export(self) -> None:
        """The export dialog (every format, one dialog); exports what it chose."""
        dialog = self.export_dialog()
        if dialog is not None and dialog.exec():
            c = dialog.choice()
            self.export_selected(c.bvh, c.csv, target=c.target, glb=c.glb)

    def export_dialog(self):
        """The export dialog for the selected take (None: nothing selected)."""
        path = self.selected()
        if path is None:
            return None
        from app.panels.export_dialog import ExportDialog

        return ExportDialog(path, self.settings, self)

    def export_selected(self, bvh: Path | None, csv: Path | None, units: str | None = None,
                        target: str = "blender", glb: Path | None = None):
        path = self.selected()
        if path is None:
            return None

        def work(progress):
            from core.export.take_export import export_take

            return export_take(Take(path), bvh, csv, units=units, progress=progress, target=target, glb=glb)

        def done(report, error):
            self._busy(None)
            if isinstance(error, Cancelled):
                self.message.emit("info", "export cancelled; no file was written")
            elif error is not None:
                self.message.emit("error", f"export failed: {error}")
            else:
                self.message.emit("info", f"exported {report.frames} frames ({report.which}); pose fit mean "
                                  f"{report.fit.mean_mm:.1f} mm: " + ", ".join(p.name for p in report.files))

        task = run_with_progress(self, f"Exporting {path.name}…", work, done)
        self._busy(task)
        return task
