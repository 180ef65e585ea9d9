"""The live path as the desktop app runs it: the real main window (under a
virtual display where there is no screen) on the simulated studio, with the
live solve and the 3D view drawing, measured from the outside.

What it prints, over `--seconds` after a warm-up:

- solve rate: frames with network joints delivered to the GUI thread per
  second, and skeleton poses per second;
- latency: a frame's capture time (the cameras' timestamp) to its arrival
  on the GUI thread (median, p95), beside the status bar's figure (to the
  solve worker's hand-over);
- draw rate: the 3D view's on-screen draws per second (`frame_count`) in
  two states. "follow": the app as it starts (every layer shown, the
  camera following the performer): the view redraws on its timer's ticks
  whenever a new result arrived or the follow camera is still easing,
  which with a moving performer is every tick. "orbit": the same while the
  user drags the view round without pause (mouse events posted to the
  view, a move of 2 px, one degree, every 16 ms): the view redraws on
  every tick, as fast as the GUI thread can. The figure asked of the view is its draw rate while it
  solves; both states are measured while solving.
- where the latency goes (medians): capture to the solve's start (the
  simulated cameras' rendering, the bundle, the wait for a busy worker),
  the solve (the volume on the worker, then the network on its own thread,
  with the wait between them), the skeleton solve with its hand-overs, the
  queued signal to the GUI thread;
- per-stage times of the solved frames (medians: centre, volume, network,
  skeleton solve; the simulated cameras' rendering);
- CPU time per thread (share of one core, by thread name), read from
  /proc: the simulated studio's capture threads render the performer on
  this CPU, which real cameras do not.

    xvfb-run -a -s "-screen 0 1280x1024x24" .venv/bin/python scripts/bench_live.py
    ... scripts/bench_live.py --seconds 30 --fps 15 --cameras 8 --warmup 25

A benchmark, not a test: nothing is asserted.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchlib import machine_line  # noqa: E402

CLK_TCK = os.sysconf("SC_CLK_TCK")


def thread_cpu_s() -> dict[int, tuple[str, float]]:
    """{native thread id: (OS name, CPU seconds)} of this process's threads."""
    out = {}
    for task in Path("/proc/self/task").iterdir():
        try:
            stat = (task / "stat").read_text()
        except OSError:
            continue
        name = stat[stat.index("(") + 1:stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2:].split()
        out[int(task.name)] = (name, (int(fields[11]) + int(fields[12])) / CLK_TCK)
    return out


def machine_busy_s() -> float:
    """CPU seconds the whole machine has been busy (all cores, all processes)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(fields[:8]) - fields[3] - fields[4]) / CLK_TCK


def thread_group(tid: int, os_name: str, py_names: dict[int, str]) -> str:
    """A readable group for a thread: the Python thread's name with numbers
    and camera names folded (capture sim:cam3 -> capture), else the OS name."""
    name = py_names.get(tid)
    if name is None:
        if tid == os.getpid():
            return "GUI (main thread)"
        base = os_name.rstrip("0123456789:-_ ")
        return f"other: {base or os_name}"
    if name.startswith("capture"):
        return "camera capture (sim render)"
    return name


def cpu_shares(before: dict, after: dict, seconds: float) -> list[tuple[str, float, int]]:
    py_names = {t.native_id: t.name for t in threading.enumerate() if t.native_id is not None}
    groups: dict[str, list] = defaultdict(lambda: [0.0, 0])
    for tid, (os_name, cpu) in after.items():
        used = cpu - before.get(tid, (os_name, 0.0))[1]
        g = groups[thread_group(tid, os_name, py_names)]
        g[0] += used
        g[1] += 1
    rows = [(name, used / seconds, n) for name, (used, n) in groups.items()]
    return sorted(rows, key=lambda r: -r[1])


class Timed:
    """Wraps a callable and keeps its call times (ms), thread-safe enough for
    one writer per wrapper."""

    def __init__(self, fn) -> None:
        self.fn = fn
        self.ms: list[float] = []
        self.on = False

    def __call__(self, *a, **kw):
        t0 = time.perf_counter()
        try:
            return self.fn(*a, **kw)
        finally:
            if self.on:
                self.ms.append((time.perf_counter() - t0) * 1e3)


def med(values) -> float:
    return float(np.median(values)) if len(values) else float("nan")


def reference_ms(model: str, calls: int = 30) -> float:
    """The machine's speed now: the live network's optimised forward alone on
    one thread, the median of `calls` calls on the standard studio (ms). This
    machine's speed drifts over the day; runs are compared by it."""
    import torch

    from core.deepfuse.engine import InferenceEngine
    from core.sim.studio import SimulatedStudio, StudioConfig

    before = torch.get_num_threads()
    studio = SimulatedStudio(StudioConfig(seed=0))
    engine = InferenceEngine.shipped(model, studio.rig, threads=1)
    engine.prepare()
    masks, bones = studio.silhouettes(1.0), studio.truth(1.0).bone_wxyz
    times = []
    for i in range(calls + 3):
        t0 = time.perf_counter()
        engine.solve(masks, bones)
        if i >= 3:
            times.append(time.perf_counter() - t0)
    torch.set_num_threads(before)
    return float(np.median(times)) * 1e3


def p95(values) -> float:
    return float(np.percentile(values, 95)) if len(values) else float("nan")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=30.0, help="measured seconds per state (default 30)")
    ap.add_argument("--warmup", type=float, default=25.0,
                    help="seconds live before measuring (default 25: the IMU calibration routine "
                         "at the start takes about 16 s)")
    ap.add_argument("--fps", type=float, default=15.0, help="camera frame rate (default 15)")
    ap.add_argument("--cameras", type=int, default=8, help="cameras of the standard studio (1-8, default 8)")
    ap.add_argument("--model", default="lite", help="live model: lite, full (default lite)")
    ap.add_argument("--states", default="follow,orbit", help="comma-separated: follow, orbit")
    ap.add_argument("--seed", type=int, default=0, help="the simulated performer's seed")
    ap.add_argument("--torch-threads", type=int, default=None,
                    help="the live network's torch threads (default: the app's own choice)")
    ap.add_argument("--switch-interval-ms", type=float, default=None,
                    help="Python's GIL switch interval (default: the app's own, 5 ms in Python's default)")
    args = ap.parse_args()

    ref_before = reference_ms(args.model)
    import vispy

    vispy.use("pyside6")
    from PySide6.QtCore import QCoreApplication, QEvent, QEventLoop, QPointF, QSettings, Qt, QTimer
    from PySide6.QtGui import QMouseEvent

    from app.gui import _application

    app = _application()
    from app.main_window import MainWindow
    from core.camera.rig import CameraRig, standard_studio
    from core.session.opening import open_simulated_session
    from core.sim.studio import StudioConfig

    if args.switch_interval_ms is not None:
        sys.setswitchinterval(args.switch_interval_ms / 1000.0)
    import app.bridge as bridge

    if args.torch_threads is not None:
        bridge.APP_NETWORK_THREADS = args.torch_threads
    tmp = tempfile.TemporaryDirectory()
    settings = QSettings(f"{tmp.name}/settings.ini", QSettings.IniFormat)
    settings.setValue("takes/folder", f"{tmp.name}/takes")
    w = MainWindow(settings)
    w.resize(1280, 800)
    w.show()
    panel = w.studio_panel
    panel.fps.setValue(args.fps)
    panel.seed.setValue(args.seed)
    panel.model.setCurrentIndex(panel.model.findData(args.model))
    if args.cameras != 8:
        # The Studio panel's simulated studio has the standard 8 cameras; a subset of them here.
        keep = np.round(np.linspace(0, 8, args.cameras, endpoint=False)).astype(int) % 8
        rig = CameraRig(tuple(standard_studio().cameras[k] for k in keep))

        def open_session(_rig, _say):
            config = StudioConfig(seed=args.seed, camera_fps=args.fps, calibration_hold_s=4.0,
                                  body=panel.body.currentData(), rig=rig)
            return open_simulated_session(config, args.model)

        panel.open_session = open_session

    # What is timed from outside: the GUI's slot for a live frame, the view's
    # rebuild of dirty layers, the skeleton solve, the simulated cameras' rendering.
    on_frame = w._on_frame = Timed(w._on_frame)
    flush = w.view.flush = Timed(w.view.flush)
    assert w.start_studio(), w.messages
    session = w.bridge.session
    solver_update = session.solver.update = Timed(session.solver.update)
    import core.sim.studio as sim_studio

    # The simulated cameras: all K views rendered together by the first camera thread that asks.
    render = sim_studio.render_body_silhouettes = Timed(sim_studio.render_body_silhouettes)
    # When the worker began each frame and the network ended it (monotonic s, by bundle index): the
    # latency's parts.
    began_at: dict[int, float] = {}
    worked: dict[int, tuple[float, float]] = {}
    stage_fn, solve_fn = session.pipeline.stage, session.pipeline.solve

    def timed_stage(bundle):
        began_at[bundle.index] = time.monotonic()
        return stage_fn(bundle)

    def timed_solve(staged):
        try:
            return solve_fn(staged)
        finally:
            index = staged.bundle.index
            worked[index] = (began_at.pop(index, np.nan), time.monotonic())

    session.pipeline.stage, session.pipeline.solve = timed_stage, timed_solve

    arrivals: list[tuple[float, float, bool, object]] = []  # (t arrived, latency s, solved, frame)
    recording = {"on": False}

    def got(frame) -> None:
        if recording["on"]:
            now = time.monotonic()
            arrivals.append((now, now - frame.bundle.t_s, frame.result.solve is not None, frame))

    w.bridge.frame.connect(got)

    def wait(seconds: float) -> None:
        # Qt's own event loop, as the app runs it (it sleeps until an event comes).
        loop = QEventLoop()
        QTimer.singleShot(int(seconds * 1000), loop.quit)
        loop.exec()

    t_start = time.monotonic()
    while w.bridge.state != "live":
        wait(0.1)
        if w.bridge.state.startswith("failed") or time.monotonic() - t_start > 300:
            print("the studio did not go live:", w.bridge.state)
            return 1
    print(f"live after {time.monotonic() - t_start:.1f} s (preparing); warming up {args.warmup:.0f} s")
    wait(args.warmup)

    # Orbit: the user dragging the view round, as mouse events on the view: 2 px (1 degree) every
    # 16 ms, the button let go and pressed again at the start every 300 moves to stay on the view.
    picture = w.view._picture
    drag = {"x": 0, "moves": 0}

    def mouse(kind, x: int) -> None:
        pos = QPointF(x, picture.height() / 2)
        held = Qt.MouseButton.NoButton if kind == QEvent.Type.MouseButtonRelease else Qt.MouseButton.LeftButton
        button = Qt.MouseButton.NoButton if kind == QEvent.Type.MouseMove else Qt.MouseButton.LeftButton
        QCoreApplication.postEvent(picture, QMouseEvent(kind, pos, picture.mapToGlobal(pos), button, held,
                                                        Qt.KeyboardModifier.NoModifier))

    def orbit_step() -> None:
        if drag["moves"] % 300 == 0:
            if drag["moves"]:
                mouse(QEvent.Type.MouseButtonRelease, drag["x"])
            drag["x"] = 60
            mouse(QEvent.Type.MouseButtonPress, drag["x"])
        drag["x"] += 2
        drag["moves"] += 1
        mouse(QEvent.Type.MouseMove, drag["x"])

    orbit = QTimer()
    orbit.setInterval(16)
    orbit.timeout.connect(orbit_step)
    results = []
    for state in [s.strip() for s in args.states.split(",") if s.strip()]:
        if state == "orbit":
            orbit.start()
        arrivals.clear()
        for t in (on_frame, flush, solver_update, render):
            t.ms.clear()
            t.on = True
        skipped0, dropped0 = session.capture.skipped, session.stats().dropped
        draws0 = w.view.frame_count
        cpu0 = thread_cpu_s()
        busy0 = machine_busy_s()
        t0 = time.monotonic()
        recording["on"] = True
        wait(args.seconds)
        recording["on"] = False
        elapsed = time.monotonic() - t0
        cpu1 = thread_cpu_s()
        busy = (machine_busy_s() - busy0) / elapsed
        draws = w.view.frame_count - draws0
        orbit.stop()
        for t in (on_frame, flush, solver_update, render):
            t.on = False
        stats = session.stats()
        solved = [a for a in arrivals if a[2]]
        lat_ms = np.array([a[1] for a in solved]) * 1e3
        stage = defaultdict(list)
        for a in solved:
            for k, v in a[3].result.timings_ms.items():
                stage[k].append(v)
        cams = [sum(m is not None for m in a[3].bundle.silhouettes) for a in solved]
        parts = []  # (capture to the worker, the worker, skeleton solve and hand-over, to the GUI thread) ms
        for arrived, _, _, f in solved:
            began, ended = worked.get(f.bundle.index, (np.nan, np.nan))
            parts.append(np.array([began - f.bundle.t_s, ended - began, f.t_ready_s - ended,
                                   arrived - f.t_ready_s]) * 1e3)
        results.append(dict(
            state=state, elapsed=elapsed, solve_hz=len(solved) / elapsed,
            posed_hz=sum(a[3].solved is not None for a in arrivals) / elapsed,
            lat_med=med(lat_ms), lat_p95=p95(lat_ms), status_lat=stats.latency_ms,
            draw_fps=draws / elapsed, skipped=session.capture.skipped - skipped0,
            dropped=stats.dropped - dropped0, cams=float(np.mean(cams)) if cams else float("nan"),
            stage={k: med(v) for k, v in stage.items()}, skeleton=med(solver_update.ms),
            render=med(render.ms), gui_frame=med(on_frame.ms), gui_flush=med(flush.ms),
            gui_flush_p95=p95(flush.ms), cpu=cpu_shares(cpu0, cpu1, elapsed), busy=busy,
            parts=np.nanmedian(parts, axis=0) if parts else np.full(4, np.nan)))

    view_px = f"{w.view.width()}x{w.view.height()}"
    w.close()
    app.processEvents()
    tmp.cleanup()
    ref_after = reference_ms(args.model)
    print(machine_line())
    import torch

    engine = session.engine
    print(f"torch {torch.__version__}, live network threads {getattr(engine, 'threads', None)}, "
          f"{getattr(engine, 'precision_name', '')}, "
          f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', '(default)')}, "
          f"GIL switch interval {sys.getswitchinterval() * 1e3:g} ms; "
          f"{args.cameras} simulated cameras at {args.fps:g} fps, model {args.model}, "
          f"{args.seconds:g} s a state after {args.warmup:g} s; view {view_px} px")
    print()
    print("| state | solve Hz | poses Hz | latency ms (median, p95) | status-bar latency ms | draw fps | "
          "cameras a bundle | camera frames skipped | dropped |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in results:
        print(f"| {r['state']} | {r['solve_hz']:.1f} | {r['posed_hz']:.1f} | {r['lat_med']:.0f}, {r['lat_p95']:.0f} | "
              f"{r['status_lat']:.0f} | {r['draw_fps']:.1f} | {r['cams']:.1f} | {r['skipped']} | {r['dropped']} |")
    print()
    print("| state | sim render | centre | volume | network | skeleton solve | GUI: frame slot | "
          "GUI: view rebuild (median, p95) |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for r in results:
        s = r["stage"]
        print(f"| {r['state']} | {r['render']:.1f} | {s.get('centre', float('nan')):.1f} | "
              f"{s.get('volume', float('nan')):.1f} | {s.get('network', float('nan')):.1f} | "
              f"{r['skeleton']:.1f} | {r['gui_frame']:.2f} | {r['gui_flush']:.1f}, {r['gui_flush_p95']:.1f} |")
    print("(medians, ms; sim render: the simulated studio drawing all K silhouettes of one instant)")
    print()
    print("| state | latency: capture to the solve's start | the solve (centre, volume, network) | "
          "skeleton solve, hand-overs | to the GUI thread |")
    print("|---|---:|---:|---:|---:|")
    for r in results:
        print(f"| {r['state']} | " + " | ".join(f"{v:.0f}" for v in r["parts"]) + " |")
    print("(medians, ms, of the solved frames; capture to the solve's start: the simulated cameras' "
          "rendering, the bundle, and the wait for the worker)")
    for r in results:
        print()
        print(f"CPU per thread group, state {r['state']} (1.00 = one core busy):")
        print("| thread | CPU | threads |")
        print("|---|---:|---:|")
        for name, share, n in r["cpu"]:
            if share >= 0.005:
                print(f"| {name} | {share:.2f} | {n} |")
        print(f"| all of this process | {sum(x[1] for x in r['cpu']):.2f} | |")
        print(f"| the whole machine (this process, the X server, anything else) | {r['busy']:.2f} | |")
    print()
    print(f"reference (the machine's speed): the live network alone, one thread, {ref_before:.1f} ms a frame "
          f"before the window opened, {ref_after:.1f} ms after it closed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
