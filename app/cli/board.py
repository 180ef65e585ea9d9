"""`main.py board FILE`: print a calibration board at true size (PNG or PDF).

The board's definition is written next to it (FILE + .json), so the same
board can be given to a calibration and can never be mismatched."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def add_board_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("out", type=Path, help="the file to write: .pdf or .png")
    p.add_argument("--kind", choices=("charuco", "chessboard"), default="charuco")
    p.add_argument("--squares", default="7x5", metavar="XxY", help="squares across and down (default 7x5)")
    p.add_argument("--square-mm", type=float, default=40.0, help="side of a square, mm (default 40)")
    p.add_argument("--marker-mm", type=float, default=None, help="ArUco marker side, mm (default 3/4 of a square)")
    p.add_argument("--dictionary", default="DICT_5X5_100", help="ArUco dictionary (default DICT_5X5_100)")
    p.add_argument("--dpi", type=int, default=300, help="resolution of the file (default 300)")
    p.add_argument("--margin-mm", type=float, default=10.0, help="white margin around the board (default 10)")


def run_board(args: argparse.Namespace) -> int:
    from core.calibration.board import BoardError, BoardSpec

    try:
        nx, ny = (int(v) for v in args.squares.lower().split("x"))
    except ValueError:
        print(f"--squares takes two numbers like 7x5, not {args.squares!r}", file=sys.stderr)
        return 2
    try:
        board = BoardSpec(kind=args.kind, squares_x=nx, squares_y=ny, square_mm=args.square_mm,
                          marker_mm=args.marker_mm if args.marker_mm is not None else 0.75 * args.square_mm,
                          dictionary=args.dictionary)
        path = board.save_printable(args.out, dpi=args.dpi, margin_mm=args.margin_mm)
    except (BoardError, OSError) as exc:
        print(f"board: {exc}", file=sys.stderr)
        return 2
    spec = path.with_name(path.name + ".json")
    spec.write_text(json.dumps(board.to_dict(), indent=1))
    w, h = board.size_mm
    print(f"wrote {path} ({w + 2 * args.margin_mm:g} x {h + 2 * args.margin_mm:g} mm) and {spec.name}; "
          f"print at 100 % and check that a square measures {board.square_mm:g} mm")
    return 0
