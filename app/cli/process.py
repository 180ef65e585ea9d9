"""`main.py process TAKE [TAKE ...]`: re-solve takes offline, batched, with progress bars.

Two phases a take: the network over every frame, then the whole-take
skeleton solve on those joints (docs/SOLVE.md). Both are stored as a new
solve version; an export with the default settings then writes the stored
skeleton.

Under torchrun (core.deepfuse.distributed) the takes are shared among the
ranks: rank r solves takes r, r + W, r + 2W, ... of the list (W ranks), each
on its own GPU where there are GPUs, so every take is written by exactly one
process, with the same crash-safety as alone (a solve version appears whole
or not at all). Each rank prints its takes' lines; rank 0 alone shows
progress bars and, at the end, one line per take of the whole list. A take
that fails (damaged, missing, recorded with IMUs alone) is reported and the
others go on; the exit status is 1 when any failed.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from dataclasses import dataclass
from pathlib import Path


def add_process_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("takes", type=Path, nargs="+", metavar="TAKE",
                   help="take folders (under torchrun, shared among the ranks)")
    p.add_argument("--model", default="full",
                   help="full (default; the lite model when this build ships no full one), lite, or a weights file")
    p.add_argument("--batch", type=int, default=16, help="frames per network batch (default 16)")
    p.add_argument("--device", default=None,
                   help="cpu or cuda (default: cuda when present; under torchrun each rank its LOCAL_RANK's GPU)")
    p.add_argument("--threads", type=int, default=None,
                   help="CPU threads for the network (default: torch's choice; under torchrun the cores "
                   "shared among the machine's ranks)")
    p.add_argument("--no-imu", action="store_true", help="solve from the cameras alone")


@dataclass(frozen=True)
class TakeResult:
    index: int
    take: str
    rank: int
    ok: bool
    line: str


def _unique(paths: list[Path]) -> list[Path]:
    """The takes in order, each once (two ranks must never write one take)."""
    seen: set[Path] = set()
    out = []
    for p in paths:
        key = p.resolve()
        if key not in seen:
            seen.add(key)
            out.append(p)
    return out


def _device_and_threads(args: argparse.Namespace, ranks) -> tuple[str | None, int | None]:
    """This rank's device and CPU threads: alone, what was asked; under
    torchrun, the GPU of its local rank, and the cores shared out."""
    from core.deepfuse.distributed import local_world

    device, threads = args.device, args.threads
    if not ranks.active:
        return device, threads
    import torch

    if device in (None, "cuda") and torch.cuda.is_available():
        device = f"cuda:{ranks.local % torch.cuda.device_count()}"
    if threads is None:
        threads = max(1, (os.cpu_count() or 1) // local_world())
    return device, threads


def _solve_one(path: Path, model, info: dict, args: argparse.Namespace, device, threads, bars: bool) -> str:
    """Solve one take and store it; the line that says so (TakeError, OSError on failure)."""
    from app.cli.progress import progress_bar
    from core.deepfuse.engine import InferenceEngine
    from core.take.process import process_take
    from core.take.take import Take, TakeError

    def bar(description):
        return progress_bar(description) if bars else contextlib.nullcontext(lambda done, total: None)

    take = Take(path)
    if bars:
        print(take.summary())
    if take.imus_only:
        raise TakeError(f"{take.root} was recorded with IMUs alone: there is nothing for the network to "
                        f"solve; `main.py export {take.root}` poses the skeleton from the IMUs")
    if len(take) == 0:
        raise TakeError(f"{take.root} holds no camera frames; nothing to solve")
    engine = InferenceEngine(model, take.rig, device=device, threads=threads)
    with bar("preparing camera lookup tables") as report:
        engine.prepare(report)
    with bar(f"solving {len(take)} frames ({info['name']} model, {engine.device})") as network, \
            bar("solving the skeleton") as skeleton:
        version, joints, meta = process_take(take, engine, info, args.batch, not args.no_imu, network,
                                             skeleton_progress=skeleton)
    line = (f"solve {version:03d} stored in {take.layout.solve_dir(version)}: {meta['frames_found']}/{len(joints)} "
            f"frames with a performer, {meta['seconds']:.1f} s ({len(joints) / max(meta['seconds'], 1e-9):.1f} "
            f"frames/s on {meta['device']})")
    skel = meta.get("skeleton")
    if skel is not None:
        line += (f"; skeleton solved over {skel['solved_frames']}/{skel['frames']} frames in {skel['seconds']:.1f} s "
                 f"({'with' if skel['settings']['imu'] else 'without'} IMUs) and stored beside the joints "
                 "(`main.py export` writes it)")
    else:
        line += f"; note: {meta.get('skeleton_note', 'no skeleton stored')}"
    return line


def run_process(args: argparse.Namespace) -> int:
    from core.deepfuse.distributed import gather, join, leave, share
    from core.take.layout import TakeError
    from core.take.process import load_model

    if args.batch < 1:
        print("--batch must be at least 1", file=sys.stderr)
        return 2
    takes = _unique(list(args.takes))
    ranks = join("cpu", backend="gloo")  # the ranks only exchange their takes' results
    tag = f"rank {ranks.rank} of {ranks.world}: " if ranks.active else ""
    try:
        device, threads = _device_and_threads(args, ranks)
        try:
            model, info, note = load_model(args.model)
        except ValueError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        if note and ranks.main:
            print(note)
        results = []
        for i, path in share(takes, ranks):
            name = str(path)
            try:
                if len(takes) > 1 or ranks.active:
                    print(f"{tag}{name} ({i + 1} of {len(takes)})", flush=True)
                line = _solve_one(path, model, info, args, device, threads, bars=ranks.main)
                results.append(TakeResult(i, name, ranks.rank, True, line))
                print(f"{tag}{line}", flush=True)
            except (TakeError, OSError) as exc:
                results.append(TakeResult(i, name, ranks.rank, False, str(exc)))
                print(f"{tag}error: {exc}", file=sys.stderr, flush=True)
        everyone = sorted((r for part in gather(ranks, results) for r in part), key=lambda r: r.index)
    finally:
        leave(ranks)
    failed = [r for r in everyone if not r.ok]
    if ranks.main and (len(takes) > 1 or ranks.active):
        print(f"{len(everyone) - len(failed)} of {len(takes)} takes solved"
              + (f" by {ranks.world} ranks" if ranks.active else "") + ":")
        for r in everyone:
            print(f"  {r.take}: {'solved' if r.ok else 'FAILED'} (rank {r.rank})" if ranks.active
                  else f"  {r.take}: {'solved' if r.ok else 'FAILED'}")
    return 1 if failed else 0
