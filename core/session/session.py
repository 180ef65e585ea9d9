"""A running studio session: capture, the live solve, recording and the live link.

`CaptureSession` is what both `main.py record` and the desktop app run
(DESIGN.md, "A session and its events"); core.session.opening assembles
one for the simulated studio or for real devices.

- a capture thread per camera and one for the IMUs (core.capture.live);
- the live solve in three stages on three threads, so that each frame's
  parts overlap the next one's: the worker takes the newest frame and
  builds its volume (the performer centre, the volume, the bone
  orientations: most of what holds Python's lock), the network thread runs
  the network on it, and the poser does the rest of the frame (IMU
  tracking, the live filter, the skeleton solve, the recorder's joints, the
  live link; with a VMC sender set, the pose after the live filter and the
  one-frame pose fit). One frame at most waits between two stages;
- a recorder that can start and stop while the session runs; it reads each
  camera's ring losslessly from the moment it starts.

What happens is published on `events` (core.events.Event; each callback
runs on the thread named):

- `frame(LiveFrame)`: every live result, with or without a solve (poser);
- `imu_samples(list[ImuSample])`: samples renumbered to IMU bones by the
  pairing, as the solve and the recorder see them (IMU thread);
- `imu_raw(source name, list[ImuSample])`: each source's samples as they
  came, before the pairing (IMU thread; pairing tools);
- `camera(CaptureStatus)`: a camera changed state: lost, back, ended,
  failed (its capture thread);
- `recording_stopped(RecordingStopped)`: a recording ended, because it was
  stopped or because writing failed, and why (the caller's thread, or a
  short-lived thread after a failure);
- `imu_calibrated(ImuCalibration)`: the IMUs were calibrated from the
  routine the performer did at the session's start (poser).

The IMUs are kept calibrated by `imu_tracking` (core.imu.tracking): the
wear offsets and headings (given, or captured from the routine at start),
the IMU-camera time offset (the IMU buffer looks the sensors up on the
cameras' clock) and heading drift correction from every solved frame.

Changes go through methods (`set_pairing`, `set_imu_calibration`,
`set_vmc`, `start_recording`, `capture_background`, ...); what the studio
can do beyond capturing is asked of `studio` (core.session.studios).

Shutdown order: worker, network, poser, capture, recorder, live link.

Without a rig (real cameras not calibrated yet) the session only captures:
every frame is published with an empty result (no performer), so the
cameras can be watched and calibrated; recording needs a rig.

With IMUs alone (`imus_only`, core.session.opening.open_imu_session) there
is no camera and no rig: frames keep time by themselves at `fps`, the IMUs
are calibrated from the routine without a skeleton, the solve poses a
template skeleton from the IMUs (its root moved by the feet), and a take
holds the IMU samples, the calibration and the stature (no camera streams).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

from core.camera.rig import CameraRig
from core.capture.live import LiveCapture, LiveWorker
from core.capture.threads import CaptureStatus
from core.devices import CameraFrame, CountedImuSource, ImuSample
from core.events import Event
from core.filters import FilterConfig, live_filter
from core.frames import FrameBundle
from core.imu.tracking import ImuTracking
from core.pipeline import FrameResult, Pipeline
from core.rates import RateWindow
from core.session.studios import Studio
from core.solve.live import LIVE_CONFIG, LiveSolver, SolvedPose
from core.take.layout import json_safe
from core.take.recorder import Recorder, RecordingStats

log = logging.getLogger(__name__)
LIVE_SOLVE = LIVE_CONFIG  # the live skeleton solve's settings (core.solve.live)


@dataclass(frozen=True, eq=False)
class LiveFrame:
    """One live result: the bundle, the pipeline's result, the joints after
    the live filter (None without a solve) and when the result was ready
    (monotonic s; latency = t_ready_s - bundle.t_s for device-timed sources)."""

    bundle: FrameBundle
    result: FrameResult
    filtered_mm: np.ndarray | None
    t_ready_s: float
    solved: SolvedPose | None = None  # the skeleton solve (core.solve.live): what the view and VMC show


@dataclass(frozen=True)
class RecordingStopped:
    """A recording that ended: its folder, what it holds, and the error in
    words when writing failed (None when it was stopped)."""

    root: Path
    stats: RecordingStats
    error: str | None = None


@dataclass(frozen=True)
class ImuStatus:
    """The session's IMU thread: samples read in all, read errors (newest last)."""

    samples: int
    errors: tuple[str, ...]


@dataclass
class SessionStats:
    capture_fps: float = 0.0  # camera frames per second arriving (mean over cameras)
    solve_fps: float = 0.0  # live results per second
    latency_ms: float = float("nan")  # frame time to result, median of the last second
    dropped: int = 0  # frames the cameras dropped (the machine fell behind)
    skipped: int = 0  # frames the live path passed over (normal)
    solved: int = 0
    recording: bool = False
    recording_error: str | None = None
    camera_states: list[str] = field(default_factory=list)
    bone_lengths_mm: np.ndarray | None = None  # (J,) the performer's skeleton so far (None: not measured yet)
    skeleton_frozen: bool = False  # the bone lengths are stable and no longer change


class SessionEvents:
    """The session's events (see the module's docstring)."""

    def __init__(self, capture: LiveCapture) -> None:
        self.frame = Event("live frame")
        self.imu_samples = capture.imu.samples_event
        self.imu_raw = capture.imu.raw_event
        self.camera = Event("camera state")
        self.recording_stopped = Event("recording stopped")
        self.imu_calibrated = Event("IMUs calibrated")


class CaptureSession:
    def __init__(self, studio: Studio, rig: CameraRig | None, fps: float, engine=None, imu_calibration=None,
                 pairing=None, filter_config: FilterConfig | None = None, model_info: dict | None = None,
                 label: str = "", calibrate_imus_at_start: bool = False, imus_only: bool = False,
                 stature_mm: float = 1750.0, pose: str = "T") -> None:
        """studio: the sources (core.session.studios); rig: the calibration the
        solve uses (None: capture only); label: the live model's name, or why
        there is no live solve; calibrate_imus_at_start: the performer does the
        IMU calibration routine as the session starts, and the session
        calibrates the IMUs from it (the simulated studio does this).

        imus_only: no camera at all (an inertial capture): the frames keep
        time themselves, the IMUs are calibrated from the routine the
        performer does as the session starts (`pose`, then the moves of
        core.imu.routine; no skeleton needed) unless `imu_calibration` is
        given, and the solve poses a template skeleton of `stature_mm` from
        the IMUs, moved by its feet (core.solve.inertial). Recording needs
        the calibration first."""
        self.studio = studio
        self.rig = rig
        self.fps = float(fps)
        self.engine = engine
        self.model_info = model_info
        self.label = label
        self.calibrate_imus_at_start = calibrate_imus_at_start
        self.imus_only = imus_only
        self.stature_mm = float(stature_mm)
        # Calibration, time offset and drift correction (core.imu.tracking):
        # from a given calibration, or captured from the routine at start.
        self.imu_tracking: ImuTracking | None = None
        if imu_calibration is not None:
            self.imu_tracking = ImuTracking(calibration=imu_calibration, cameras=not imus_only)
        elif imus_only:
            self.imu_tracking = ImuTracking(pose=pose, background=True, cameras=False)
        elif calibrate_imus_at_start and engine is not None:
            self.imu_tracking = ImuTracking(background=True)
        self._imu_announced = False
        self._pairing = pairing
        self.filter_config = filter_config or FilterConfig(kind="one-euro")
        self._filter = live_filter(self.filter_config)
        self.solver = LiveSolver.imus_only(stature_mm, LIVE_SOLVE) if imus_only else LiveSolver(LIVE_SOLVE)
        self.pipeline = None if rig is None else Pipeline(rig, engine, self._bone_orientations)
        self.capture = LiveCapture(studio.cameras, studio.imus, fps)
        # Samples are renumbered to IMU bones by the pairing (read per batch, so
        # a new pairing takes effect at once); unpaired sensors are dropped.
        self.capture.imu.route = self._route
        self.events = SessionEvents(self.capture)
        self.events.imu_samples.connect(self._track_samples)
        for thread in self.capture.group.threads:
            thread.on_state = self.events.camera.emit
        # Three stages on three threads: the worker builds the volume (Python's lock
        # changes hands at every step of it), the network thread runs the network (which
        # leaves the lock to others), the poser runs the rest of a frame (IMU tracking,
        # the live filter, the skeleton solve, publishing). Each goes on with the next
        # frame while the one after it works; one frame at most waits between two, so
        # no stage is more than a frame ahead. With the volume off the network's thread
        # the network is free again sooner than a camera frame comes, and a new frame
        # seldom waits for it (scripts/bench_live.py, docs/BENCHMARKS.md).
        self.worker = LiveWorker(self.capture, self._handle)
        self._to_network: queue.Queue = queue.Queue(maxsize=1)
        self._network: threading.Thread | None = None
        self._stopping = threading.Event()
        self._handoff: queue.Queue = queue.Queue(maxsize=1)
        self._poser: threading.Thread | None = None
        self._blas_limits = None  # threadpoolctl's limits while live (start, stop)
        self._recorder: Recorder | None = None
        self.vmc = None  # a core.stream.vmc.VmcSender, or None
        self._lock = threading.Lock()
        self._solve_times = RateWindow(2.0)
        self._latencies = RateWindow(1.0)
        self.solved = 0  # frames the network solved
        self.posed = 0   # frames the skeleton solve posed
        self.started = False

    # -- what the session runs on ----------------------------------------------------
    @property
    def source(self) -> str:
        return self.studio.description

    @property
    def camera_names(self) -> list[str]:
        return [t.name for t in self.capture.group.threads]

    @property
    def imu_source_names(self) -> list[str]:
        return [s.name for s in self.capture.imu.sources]

    def camera_status(self) -> list[CaptureStatus]:
        return self.capture.group.status()

    def newest_frames(self) -> list[CameraFrame | None]:
        """Each camera's newest frame, whatever the live path took (any thread; previews)."""
        return self.capture.newest_frames()

    def imu_status(self) -> ImuStatus:
        imu = self.capture.imu
        return ImuStatus(imu.samples, tuple(imu.errors))

    def imu_counters(self) -> list:
        """Each IMU source's packet counters (None for a source that keeps none)."""
        return [s.counters() if isinstance(s, CountedImuSource) else None for s in self.capture.imu.sources]

    # -- the IMUs' pairing and calibration ----------------------------------------------
    @property
    def pairing(self):
        """The IMU pairing (core.imu.pairing.Pairing): which sensor sits on which bone."""
        return self._pairing

    def set_pairing(self, pairing) -> None:
        """Route the sensors by `pairing` from the next samples on."""
        self._pairing = pairing

    @property
    def imu_calibration(self):
        """The wear offsets and headings (core.imu.calibration.ImuCalibration)
        the solve uses now (headings as drift correction keeps them), or None."""
        tracking = self.imu_tracking
        return None if tracking is None else tracking.calibration

    def set_imu_calibration(self, calibration) -> None:
        """Solve with `calibration` from the next frame on (None: vision only);
        drift correction and the time offset carry on from it."""
        old = self.imu_tracking
        offset = 0.0 if old is None else old.offset_s
        self.imu_tracking = None if calibration is None else ImuTracking(calibration=calibration, offset_s=offset,
                                                                         cameras=not self.imus_only)

    def _track_samples(self, samples: list[ImuSample]) -> None:
        tracking = self.imu_tracking
        if tracking is not None:
            tracking.add_samples(samples)

    def _bone_orientations(self, bundle: FrameBundle):
        tracking = self.imu_tracking  # read per frame: a new calibration takes effect at once
        return None if tracking is None else tracking.bone_wxyz(bundle.imu_wxyz)

    def _track_frame(self, bundle: FrameBundle, result: FrameResult) -> None:
        tracking = self.imu_tracking
        if tracking is None:
            return
        solve = result.solve
        tracking.add_frame(bundle.t_s, bundle.imu_wxyz, None if solve is None else solve.joints_mm,
                           None if solve is None else solve.confidence)
        # The IMU buffer looks the sensors up on the cameras' clock from the next frame on.
        self.capture.buffer.offset_s = tracking.offset_s
        if tracking.captured and not self._imu_announced:
            self._imu_announced = True
            self.events.imu_calibrated.emit(tracking.calibration)

    def _route(self, source_index: int, samples: list[ImuSample]) -> list[ImuSample]:
        pairing = self._pairing
        if pairing is None or not samples:
            return samples
        return pairing.route(self.capture.imu.sources[source_index].name, samples)

    # -- what only some studios do ---------------------------------------------------------
    def capture_background(self, frames: int | None = None) -> None:
        """Real cameras: the next frames of every camera become its empty
        stage; ValueError for a studio whose cameras give silhouettes."""
        self.studio.capture_background(frames)

    def background_states(self):
        return self.studio.background_states()

    def start_calibration_routine(self) -> bool:
        return self.studio.start_calibration_routine()

    # -- life cycle ----------------------------------------------------------------
    def prepare(self, progress=None) -> None:
        """Per-rig tables and the engine's optimised forward (slow once)."""
        if self.pipeline is not None:
            self.pipeline.prepare(progress)

    def start(self, blas_threads: int | None = None) -> None:
        """Start capturing and solving. blas_threads: numpy's and SciPy's BLAS
        threads while live (process-wide; stop() gives them back), None to leave
        them. The desktop app asks for one: its matrices are small, the cores are
        shared with the 3D view, and OpenBLAS's idle workers spun 0.7 of a core
        of the two (scripts/bench_live.py). Without a window the simulated
        cameras' rendering gains from two: a 4.5 s headless session at 10
        frames/s, three runs each, had 12-22 of 46 bundles lacking cameras that
        rendered late with one BLAS thread, 0-2 with the threads left alone."""
        if blas_threads is not None and self._blas_limits is None:
            self._blas_limits = threadpool_limits(limits=blas_threads, user_api="blas")
        self.capture.start()
        self._stopping.clear()
        self._poser = threading.Thread(target=self._pose_loop, name="live-pose", daemon=True)
        self._poser.start()
        self._network = threading.Thread(target=self._network_loop, name="live-network", daemon=True)
        self._network.start()
        self.worker.start()
        self.started = True
        if self.calibrate_imus_at_start and self.imu_tracking is not None and self.imu_tracking.calibration is None:
            self.studio.start_calibration_routine()

    def stop(self) -> RecordingStats | None:
        """Stop everything in order; the recording's stats if one was running."""
        self._stopping.set()
        self.worker.stop()
        self._stop_network()
        self._stop_poser()
        if self.started:
            self.capture.stop()
        self.started = False
        if self._blas_limits is not None:
            self._blas_limits.restore_original_limits()
            self._blas_limits = None
        stats = self.stop_recording()
        if self.vmc is not None:
            self.vmc.close()
            self.vmc = None
        return stats

    # -- recording ------------------------------------------------------------------
    @property
    def recording(self) -> Path | None:
        """The folder of the take being recorded, or None."""
        rec = self._recorder
        return None if rec is None else rec.root

    def take_meta(self, t0_s: float) -> dict:
        cams = self.rig is not None
        meta = {"source": self.source, "t0_s": t0_s, "frame_rate": self.fps, "cameras": self.rig.names if cams else [],
                "rig": self.rig.to_dict() if cams else None, "model": self.model_info,
                "live_filter": self.filter_config.to_dict(),
                "imu_pairing": None if self._pairing is None else self._pairing.to_dict(),
                "imu_calibration": None if self.imu_calibration is None else self.imu_calibration.to_dict(),
                "imu_time_offset_s": 0.0 if self.imu_tracking is None else self.imu_tracking.offset_s}
        if self.imus_only:
            # No room to measure in: the world is the performer's at the calibration pose, the
            # skeleton a template of this stature (core.solve.live.LiveSolver.imus_only).
            meta["imus_only"] = {"stature_mm": self.stature_mm}
        return json_safe(meta)

    def start_recording(self, root: str | Path, video: bool = False, flush_s: float = 0.5,
                        t0_s: float | None = None) -> Recorder:
        """Record from now on into a new take folder (TakeError when it cannot
        start, ValueError without a calibration). A write that fails later
        stops the recording and publishes `recording_stopped` with why."""
        if self.imus_only and self.imu_calibration is None:
            raise ValueError("the IMUs are not calibrated yet: hold the pose, then do the routine's moves, "
                             "before recording")
        if self.rig is None and not self.imus_only:
            raise ValueError("the cameras are not calibrated yet: calibrate them (Cameras panel) before recording")
        with self._lock:
            if self._recorder is not None:
                raise RuntimeError("already recording")
            readers = self.capture.recorder_readers()
            t0 = time.monotonic() if t0_s is None else t0_s
            rec = Recorder(root, self.take_meta(t0), len(readers), readers, video=video, flush_s=flush_s,
                           on_error=self._recording_failed)
            self.events.imu_samples.connect(rec.put_imu)
            rec.start()
            self._recorder = rec
            return rec

    def _detach(self, rec: Recorder | None = None) -> Recorder | None:
        """Take the recorder (or `rec`, if it is still the one) off the session."""
        with self._lock:
            if self._recorder is None or (rec is not None and self._recorder is not rec):
                return None
            rec, self._recorder = self._recorder, None
        self.events.imu_samples.disconnect(rec.put_imu)
        return rec

    def stop_recording(self) -> RecordingStats | None:
        rec = self._detach()
        if rec is None:
            return None
        stats = rec.stop()
        self.events.recording_stopped.emit(RecordingStopped(rec.root, stats, rec.error))
        return stats

    def _recording_failed(self, rec: Recorder) -> None:
        """On the recorder's thread, after a failed write: finish on another
        thread (stopping joins the recorder's own)."""
        if self._detach(rec) is None:
            return

        def finish() -> None:
            stats = rec.stop()
            self.events.recording_stopped.emit(RecordingStopped(rec.root, stats, rec.error))

        threading.Thread(target=finish, name="recording-stopped", daemon=True).start()

    # -- the live link -----------------------------------------------------------------
    def set_vmc(self, sender) -> None:
        """Stream the live pose to `sender` (a VmcSender), or stop with None."""
        old, self.vmc = self.vmc, sender
        if old is not None and old is not sender:
            old.close()

    # -- the worker and the poser ---------------------------------------------------------
    def _handle(self, bundle: FrameBundle) -> None:
        """The worker's stage (its thread): the bone orientations and the
        volume, handed to the network thread (waiting while it is busy)."""
        if self.imus_only:
            self._to_poser(bundle, FrameResult(bundle.index, bundle.t_s, None, None, None,
                                               bone_wxyz=self._bone_orientations(bundle)))
            return
        if self.pipeline is None:
            self._to_poser(bundle, FrameResult(bundle.index, bundle.t_s, None, None, None))
            return
        staged = self.pipeline.stage(bundle)
        network = self._network
        if network is None or not network.is_alive():
            self._to_poser(bundle, self.pipeline.solve(staged))  # no network thread (a session driven without start)
            return
        while not self._stopping.is_set():
            try:
                self._to_network.put(staged, timeout=0.1)
                return
            except queue.Full:
                continue

    def _network_loop(self) -> None:
        """The network thread: solve the staged frames the worker hands over."""
        self._stage_loop(self._to_network, lambda staged: self._to_poser(staged.bundle, self.pipeline.solve(staged)),
                         "live solve failed")

    def _stop_network(self) -> None:
        network, self._network = self._network, None
        self._stop_stage(network, self._to_network)

    def _to_poser(self, bundle: FrameBundle, result: FrameResult) -> None:
        poser = self._poser
        if poser is None or not poser.is_alive():
            self._finish(bundle, result)  # no poser (a session driven without start): finish here
            return
        self._handoff.put((bundle, result))

    def _pose_loop(self) -> None:
        """The poser's thread: finish the frames the network hands over."""
        self._stage_loop(self._handoff, lambda item: self._finish(*item), "live frame failed")

    def _stop_poser(self) -> None:
        poser, self._poser = self._poser, None
        self._stop_stage(poser, self._handoff)

    def _stage_loop(self, inbox: queue.Queue, work, failed: str) -> None:
        """A stage's thread: do `work` on what is handed over, in order, until
        None. A frame that fails is logged and kept as the worker's error, and
        the stage goes on: a defect must not take the recording down."""
        while True:
            item = inbox.get()
            if item is None:
                return
            try:
                work(item)
            except Exception as exc:  # noqa: BLE001 - see the docstring
                log.exception(failed)
                if self.worker.error is None:
                    self.worker.error = f"{type(exc).__name__}: {exc}"

    @staticmethod
    def _stop_stage(thread: threading.Thread | None, inbox: queue.Queue) -> None:
        """End a stage's thread after the frame it may still hold (the stages before it have stopped)."""
        if thread is not None and thread.is_alive():
            inbox.put(None)
            thread.join(10.0)

    def _finish(self, bundle: FrameBundle, result: FrameResult) -> None:
        """The rest of a frame: IMU tracking, the live filter, the skeleton
        solve, the recorder's joints, the live link; then publish it."""
        self._track_frame(bundle, result)
        filtered = None
        solved = None
        if result.solve is not None:
            filtered = self._filter.filter(bundle.t_s, result.solve.joints_mm)
            rec = self._recorder
            if rec is not None:
                rec.put_joints(bundle.t_s, bundle.index, result.solve.joints_mm, result.solve.confidence)
        if result.solve is not None or result.bone_wxyz is not None:
            sol = result.solve
            try:
                solved = self.solver.update(bundle.t_s, None if sol is None else sol.joints_mm,
                                            None if sol is None else sol.confidence, result.bone_wxyz)
            except Exception as exc:  # noqa: BLE001 - one bad frame must not stop the live path
                log.warning("skeleton solve failed at %.3f s (the raw joints are shown): %s", bundle.t_s, exc)
        if solved is not None and self.vmc is not None:
            self.vmc.send_pose(bundle.t_s, solved.root_mm, solved.local)
        now = time.monotonic()
        self.solved += result.solve is not None
        self.posed += solved is not None
        self._solve_times.add(now)
        self._latencies.add(now, now - bundle.t_s)
        self.events.frame.emit(LiveFrame(bundle, result, filtered, now, solved))

    # -- status ----------------------------------------------------------------------------
    def stats(self) -> SessionStats:
        now = time.monotonic()
        status = self.capture.group.status()
        rec = self._recorder
        lengths = self.solver.lengths.lengths()  # a median over the frames so far: once
        return SessionStats(
            capture_fps=float(np.mean([s.fps for s in status])) if status else 0.0,
            solve_fps=self._solve_times.rate_hz(now),
            latency_ms=self._latencies.median(now) * 1e3,
            dropped=int(sum(s.dropped for s in status)),
            skipped=self.capture.skipped,
            solved=self.solved,
            recording=rec is not None and rec.error is None,
            recording_error=None if rec is None else rec.error,
            camera_states=[s.state for s in status],
            bone_lengths_mm=lengths,
            skeleton_frozen=self.solver.lengths.frozen,
        )
