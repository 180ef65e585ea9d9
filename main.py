"""FuseCap's one entry point.

    python main.py                  open the desktop app
    python main.py demo --headless  run the simulated studio through the pipeline
                                    and print per-frame results and rates
    python main.py train RUN        train DeepFuse (resumable)
    python main.py evaluate         score models on the held-out benchmark
    python main.py board FILE.pdf   print a calibration board at true size

Every subcommand has --help.
"""

from __future__ import annotations

import argparse
import sys


def _cmd_demo(args: argparse.Namespace) -> int:
    if not args.headless:
        print("The desktop window is not part of this build yet; run `main.py demo --headless`.",
              file=sys.stderr)
        return 2
    from app.cli.demo import run_headless_demo

    return run_headless_demo(args)


def _cmd_train(args: argparse.Namespace) -> int:
    from app.cli.train import run_train

    return run_train(args)


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from app.cli.evaluate import run_evaluate

    return run_evaluate(args)


def _cmd_board(args: argparse.Namespace) -> int:
    from app.cli.board import run_board

    return run_board(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fusecap",
        description="FuseCap: motion capture from multi-view silhouettes and body-worn IMUs.",
    )
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
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        print("The FuseCap desktop window is not part of this build yet.\n"
              "Try the simulated studio without a window:  python main.py demo --headless",
              file=sys.stderr)
        return 2
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
