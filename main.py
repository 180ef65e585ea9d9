"""FuseCap's one entry point.

    python main.py                  open the desktop app (on the simulated studio)
    python main.py --self-test      open the app, solve a few frames live, exit 0
    python main.py demo --headless  run the simulated studio through the pipeline, no window
                                    and print per-frame results and rates
    python main.py train RUN        train DeepFuse (resumable)
    python main.py evaluate         score models on the held-out benchmark
    python main.py board FILE.pdf   print a calibration board at true size
    python main.py calibrate FOLDER --board FILE.pdf.json
                                    calibrate cameras from recorded board images or videos
    python main.py record --demo --seconds N --out TAKE
                                    record a take from the simulated studio
    python main.py process TAKE...  re-solve takes offline with the full model, and their skeletons
    python main.py export TAKE --bvh FILE --csv FILE
                                    export a take for animation tools

Every subcommand has --help.
"""

from __future__ import annotations

import argparse
import sys


def _cmd_demo(args: argparse.Namespace) -> int:
    if not args.headless:
        from app.gui import run_gui

        return run_gui(start_studio=True)
    from app.cli.demo import run_headless_demo

    return run_headless_demo(args)


def _lazy(module: str, function: str):
    """A subcommand handler that imports its module only when it runs."""

    def run(args: argparse.Namespace) -> int:
        import importlib

        return getattr(importlib.import_module(module), function)(args)

    return run


_cmd_train = _lazy("app.cli.train", "run_train")
_cmd_evaluate = _lazy("app.cli.evaluate", "run_evaluate")
_cmd_board = _lazy("app.cli.board", "run_board")
_cmd_calibrate = _lazy("app.cli.calibrate", "run_calibrate")
_cmd_record = _lazy("app.cli.record", "run_record")
_cmd_process = _lazy("app.cli.process", "run_process")
_cmd_export = _lazy("app.cli.export", "run_export")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fusecap",
        description="FuseCap: motion capture from multi-view silhouettes and body-worn IMUs.",
    )
    parser.add_argument("--self-test", action="store_true",
                        help="open the window on the simulated studio, solve a few frames, exit 0 if all is well")
    parser.add_argument("--no-studio", action="store_true", help="open the window without starting the studio")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    demo = sub.add_parser("demo", help="run the simulated studio through the pipeline",
                          description="Run the simulated studio (a virtual performer, camera rig "
                          "and IMUs) through the capture pipeline.")
    demo.add_argument("--headless", action="store_true",
                      help="no window: print per-frame results and rates")
    from app.cli.demo import add_demo_arguments

    add_demo_arguments(demo)
    demo.set_defaults(func=_cmd_demo)

    from app.cli.train import add_train_arguments

    train = sub.add_parser("train", help="train the DeepFuse network on the simulated studio",
                           description="Train DeepFuse on frames from the simulated studio. A run "
                           "folder is resumable: run the same command again to continue.")
    add_train_arguments(train)
    train.set_defaults(func=_cmd_train)

    from app.cli.evaluate import add_evaluate_arguments

    evaluate = sub.add_parser("evaluate", help="score models on the held-out benchmark",
                              description="Score DeepFuse models on the held-out benchmark: unseen "
                              "subjects, motions and rigs, with full and partial frames.")
    add_evaluate_arguments(evaluate)
    evaluate.set_defaults(func=_cmd_evaluate)

    from app.cli.board import add_board_arguments

    board = sub.add_parser("board", help="print a calibration board at true size",
                           description="Write a ChArUco (or chessboard) calibration board as a PDF or "
                           "PNG at true size, with its definition beside it.")
    add_board_arguments(board)
    board.set_defaults(func=_cmd_board)

    from app.cli.calibrate import add_calibrate_arguments

    calibrate = sub.add_parser("calibrate", help="calibrate cameras from recorded board images or videos",
                               description="Calibrate every camera's lens and pose from a folder of board "
                               "images per camera, or one video per camera (the anipose / FreeMoCap layout), "
                               "and write a FuseCap calibration (JSON) and an anipose camera group (TOML). "
                               "docs/CALIBRATION.md.")
    add_calibrate_arguments(calibrate)
    calibrate.set_defaults(func=_cmd_calibrate)

    from app.cli.record import add_record_arguments

    record = sub.add_parser("record",
                            help="record a take without a window (the simulated studio, or real cameras and IMUs)",
                            description="Record a take: every camera silhouette, IMU sample and live-solved "
                            "frame, written at least once a second so a crash loses at most the last second.")
    add_record_arguments(record)
    record.set_defaults(func=_cmd_record)

    from app.cli.process import add_process_arguments

    process = sub.add_parser("process", help="re-solve takes offline",
                             description="Re-solve every frame of each take with the full model (batched, on "
                             "the GPU when present), then solve the skeleton over the whole take (bone "
                             "lengths, the IMUs, joint limits, the motion prior: docs/SOLVE.md), and store "
                             "both in the take as a new solve version: the network's raw joints and the "
                             "solved skeleton, which `export` then writes without solving again. The "
                             "recorded data is not touched. Under torchrun the takes are shared among the "
                             "ranks, each take solved by exactly one (docs/TRAINING.md).")
    add_process_arguments(process)
    process.set_defaults(func=_cmd_process)

    from app.cli.export import add_export_arguments

    export = sub.add_parser("export", help="export a take to BVH and CSV",
                            description="Fit a skeleton with constant bone lengths to a take's solved joints "
                            "and write BVH and CSV files for animation tools.")
    add_export_arguments(export)
    export.set_defaults(func=_cmd_export)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        from app.gui import run_gui, self_test

        return self_test() if args.self_test else run_gui(start_studio=not args.no_studio)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
