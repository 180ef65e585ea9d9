"""A take to animation tools: pick its joints, solve the skeleton, write files.

`export_take` is what `main.py export` and the app's Takes panel run. The
joints are the newest offline solve unless another is asked for (a
version, or "live": the live path's joints, put on the take's frames). The
whole-take skeleton solve (core.solve.take: bone lengths, the calibrated
IMUs' swing and twist, joint limits, an acceleration prior, planted feet)
makes the animation; a smoothing filter (docs/FILTERING.md) is applied to
the joints before it only when one is asked for, since the solve's motion
prior already smooths. Then BVH, glTF (the skinned character) and the
three CSVs (docs/EXPORT.md); the raw CSV keeps the network's own joints.
The files are written for a target tool (core.export.targets: Blender by
default), which picks the joint names and the BVH's units; `units`
overrides the target's.

An offline solve that `main.py process` stored with its skeleton
(core.take.solved_skeleton) is exported from that skeleton when the export
asks for what it was solved with (no smoothing, the same IMU and planted-feet
settings, the same solve settings and FuseCap version): the files are then
those of solving again, without the wait. A stored skeleton that cannot be
used (damaged, changed) is solved again, and a note says why.

`progress(done, total)` is called through the work; a callback that raises
stops it, and since every file is written atomically, a stopped export
leaves no half-written file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from core.export.bvh import UNITS, write_bvh
from core.export.csv import write_joints_csv, write_raw_csv, write_rotations_csv
from core.export.gltf import write_glb
from core.export.targets import DEFAULT_TARGET, get_target
from core.filters import FilterConfig, apply_filter
from core.posefit import FitReport
from core.solve.take import solve_take
from core.take.layout import Joints, TakeError
from core.take.solved_skeleton import imu_bones, read_skeleton, skeleton_settings
from core.take.take import Take

Progress = Callable[[int, int], None]


def csv_paths(path: str | Path) -> tuple[Path, Path, Path]:
    """The joints CSV and the rotations and raw CSVs beside it."""
    path = Path(path)
    stem = path.with_suffix("") if path.suffix.lower() == ".csv" else path
    return (path if path.suffix else path.with_suffix(".csv"),
            stem.parent / f"{stem.name}_rotations.csv", stem.parent / f"{stem.name}_raw.csv")


def pick_joints(take: Take, solve: str | int | None = None) -> tuple[Joints, str]:
    """(joints with one row per take frame, which) for None (the newest
    offline solve, else live), an offline solve version, or "live". A take
    recorded with IMUs alone has no network joints: its joints are the
    IMU-only solve's (which: "IMUs only")."""
    if take.imus_only and solve is None:
        from core.solve.take import fit_imus_only

        times = take.frame_times()
        bones = imu_bones(take, times)
        if bones is None:
            raise TakeError(f"{take.root}: an IMU-only take without an IMU calibration or samples")
        try:
            fit = fit_imus_only(times, bones, take.stature_mm)
        except ValueError as exc:
            raise TakeError(f"{take.root}: cannot pose a skeleton from the IMUs: {exc}") from None
        conf = np.where(fit.valid[:, None], 1.0, 0.0) * np.ones(fit.positions_mm.shape[:2])
        return Joints(times, np.arange(len(times)), fit.positions_mm, conf), "IMUs only"
    joints, which, _ = _pick(take, solve)
    return joints, which


def _pick(take: Take, solve: str | int | None) -> tuple[Joints, str, int | None]:
    """pick_joints, and the offline solve's version (None: the live joints)."""
    version = None
    if solve is None:
        versions = take.solve_versions()
        if versions:
            version = versions[-1]
            joints, which = take.solved_joints(version), f"offline solve {version:03d}"
        else:
            joints, which = take.best_joints()
    elif solve == "live":
        joints, which = take.live_joints(), "live solve"
        if joints is None or len(joints) == 0:
            raise TakeError(f"{take.root}: no live-solved joints")
    else:
        try:
            version = int(solve)
        except ValueError:
            raise TakeError(f"a solve is a version number or live, not {solve!r}") from None
        joints, which = take.solved_joints(version), f"offline solve {version:03d}"
    if which == "live solve":  # the live path skipped frames: put its rows on the take's frames
        joints = joints.on_frames(take.frame_times(), 0.5 / take.fps)
    return joints, which, version


@dataclass
class ExportReport:
    which: str  # which joints were exported
    frames: int
    solved_frames: int
    fit: FitReport
    to_raw_mm: float  # mean distance from the fitted joints to the unsmoothed solve
    files: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    bone_lengths_mm: np.ndarray | None = None  # (J,) the performer's skeleton the solve used
    planted_pct: float = 0.0  # share of frames with a foot held planted
    skeleton: str = "solved for this export"  # or "stored by process with offline solve NNN"
    target: str = DEFAULT_TARGET  # the tool the BVH was written for (core.export.targets)
    units: str = ""  # the BVH's length unit


def export_take(take: Take, bvh: str | Path | None = None, csv: str | Path | None = None,
                units: str | None = None, solve: str | int | None = None,
                smoothing: FilterConfig | None = None, use_imu: bool = True,
                progress: Progress | None = None, plant_feet: bool = True,
                target: str = DEFAULT_TARGET, glb: str | Path | None = None) -> ExportReport:
    """Write the take's BVH, glTF (.glb, the skinned character and its
    animation, core.export.gltf) and/or CSVs. target: the tool the files are
    for ("blender", "maya", "motionbuilder", "unity", "unreal": the BVH's
    units and both files' joint names); units: "m", "cm" or "mm" (the BVH's;
    default: the target's; glTF is always metres). Raises TakeError for a
    take it cannot export (no solve, no performer), ValueError for bad
    settings (before any work), OSError when a file cannot be written."""
    if bvh is None and csv is None and glb is None:
        raise ValueError("nothing to write: give a BVH, a glTF and/or a CSV file")
    units = get_target(target).units if units is None else units
    if units not in UNITS:
        raise ValueError(f"unknown BVH units {units!r}; use one of {sorted(UNITS)}")
    for out in (bvh, csv, glb):
        if out is not None and not Path(out).parent.is_dir():
            raise ValueError(f"the folder {Path(out).parent} does not exist")
    if take.imus_only:
        return _export_imus_only(take, bvh, csv, (target, units), solve, smoothing, use_imu, progress, glb)
    joints, which, version = _pick(take, solve)
    notes = list(take.problems)
    if not np.isfinite(joints.joints_mm).any():
        raise TakeError(f"{take.root}: no frame of the take has a solved performer; nothing to export")
    smoothed = joints.joints_mm
    if smoothing is not None and smoothing.kind != "off":
        try:
            smoothed = apply_filter(smoothing, joints.times_s, joints.joints_mm)
        except ValueError as exc:
            notes.append(f"no smoothing ({exc})")
    stored, source = None, "solved for this export"
    if version is not None and smoothed is joints.joints_mm:
        try:
            stored = read_skeleton(take, version, joints, skeleton_settings(take, use_imu, plant_feet))
        except TakeError as exc:
            notes.append(f"{exc}; solved the skeleton again")
        if stored is not None:
            source = f"stored by process with offline solve {version:03d}"
    part = _parts(progress)
    fit = stored
    if fit is None:
        try:
            fit = solve_take(joints.times_s, smoothed, imu_bones(take, joints.times_s, use_imu), joints.confidence,
                             progress=part(0, 80), plant_feet=plant_feet)
        except ValueError as exc:
            raise TakeError(f"cannot fit a skeleton to this take: {exc}") from None
    d = np.linalg.norm(fit.positions_mm - joints.joints_mm, axis=-1)[fit.valid]
    d = d[np.isfinite(d)]
    report = ExportReport(which, fit.num_frames, int(fit.valid.sum()), fit.report(),
                          float(d.mean()) if d.size else float("nan"), notes=notes,
                          bone_lengths_mm=fit.bone_lengths_mm,
                          planted_pct=100.0 * float(fit.contacts.any(axis=1).mean()) if fit.contacts is not None
                          and len(fit.contacts) else 0.0, skeleton=source)
    _write(take, fit, bvh, csv, (target, units), report, part, joints, glb)
    if progress is not None:
        progress(_STEPS, _STEPS)
    return report


_STEPS = 100


def _parts(progress: Progress | None) -> Callable[[int, int], Progress | None]:
    """part(lo, hi): a progress callback for the work between lo and hi of
    _STEPS (the fit is most of the work; writing is the rest)."""
    def part(lo: int, hi: int) -> Progress | None:
        if progress is None:
            return None
        return lambda d, n: progress(lo + (hi - lo) * d // max(n, 1), _STEPS)
    return part


def _write(take: Take, fit, bvh, csv, target_units: tuple[str, str], report: ExportReport, part,
           joints: Joints | None, glb=None) -> None:
    """The BVH (for (target, units)), the glTF and the CSVs of `fit`; the raw
    CSV of the network's `joints` (None: none)."""
    report.target, report.units = target_units
    if bvh is not None:
        write_bvh(bvh, fit, take.fps, target=report.target, units=report.units, progress=part(80, 85))
        report.files.append(Path(bvh))
    if glb is not None:
        write_glb(glb, fit, take.fps, target=report.target, progress=part(85, 90))
        report.files.append(Path(glb))
    if csv is not None:
        paths = csv_paths(csv)
        write_joints_csv(paths[0], fit, progress=part(90, 94))
        write_rotations_csv(paths[1], fit, progress=part(94, 97))
        report.files.extend(paths[:2])
        if joints is not None:
            write_raw_csv(paths[2], joints.times_s, joints.joints_mm, joints.confidence, progress=part(97, 100))
            report.files.append(paths[2])
        else:
            report.notes.append(f"no {paths[2].name}: the take has no network joints (IMUs only)")


def _export_imus_only(take: Take, bvh, csv, target_units: tuple[str, str], solve, smoothing: FilterConfig | None,
                      use_imu: bool, progress: Progress | None, glb=None) -> ExportReport:
    """A take recorded with IMUs alone: the IMU-only solve (core.solve.take.fit_imus_only)
    on the take's frames, through the calibration it was recorded with."""
    from core.solve.take import fit_imus_only

    if not use_imu:
        raise TakeError(f"{take.root} was recorded with IMUs alone: without them there is nothing to export")
    if solve is not None:
        raise TakeError(f"{take.root} was recorded with IMUs alone: it has no network solves to pick from")
    notes = list(take.problems)
    if smoothing is not None and smoothing.kind != "off":
        notes.append("no smoothing: an IMU-only take is solved from its sensors (the solve's motion prior smooths)")
    times = take.frame_times()
    bones = imu_bones(take, times)
    if bones is None:
        raise TakeError(f"{take.root}: an IMU-only take without an IMU calibration or samples; nothing to export")
    part = _parts(progress)
    try:
        fit = fit_imus_only(times, bones, take.stature_mm, progress=part(0, 80))
    except ValueError as exc:
        raise TakeError(f"{take.root}: cannot pose a skeleton from the IMUs: {exc}") from None
    report = ExportReport("IMUs only", fit.num_frames, int(fit.valid.sum()), fit.report(), float("nan"),
                          notes=notes, bone_lengths_mm=fit.bone_lengths_mm,
                          planted_pct=100.0 * float(fit.contacts.any(axis=1).mean()) if len(fit.contacts) else 0.0,
                          skeleton=f"posed by the IMUs (template of {take.stature_mm:.0f} mm)")
    _write(take, fit, bvh, csv, target_units, report, part, None, glb)
    if progress is not None:
        progress(_STEPS, _STEPS)
    return report
