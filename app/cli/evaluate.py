"""`main.py evaluate`: the held-out benchmark for one or more models.

Writes, into --out: results.json (every number), table.md (the summary
table) and, when matplotlib is present, per_joint.png and sequence.png."""

from __future__ import annotations

import argparse
import copy
import json
import os
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np


def add_evaluate_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", action="append", default=None, metavar="[LABEL=]MODEL",
                   help="lite, full, or a weights file; repeat to compare models (default: lite)")
    p.add_argument("--quick", action="store_true", help="a small subset (2 sequences of 2 s per rig kind)")
    p.add_argument("--seconds", type=float, default=None, help="seconds per sequence (default 10)")
    p.add_argument("--fps", type=float, default=None, help="frames sampled per second (default 5)")
    p.add_argument("--sequences", type=int, default=None, help="sequences per rig kind (default 8)")
    p.add_argument("--standard-only", action="store_true", help="only the standard 8-camera studio")
    p.add_argument("--motion", type=Path, default=None, metavar="PATH",
                   help="recorded motion: a BVH clip or a folder of clips, each clip one sequence in the "
                   "standard studio, played once after the IMU calibration routine (at most --seconds)")
    p.add_argument("--benchmark", choices=("procedural", "cmu-heldout"), default="procedural",
                   help="procedural (default): held-out subjects, motions and rigs; cmu-heldout: the clips of "
                   "the held-out CMU subjects in --motion-dir")
    p.add_argument("--motion-dir", type=Path, default=None, metavar="FOLDER",
                   help="the CMU clips (SSS_TT.bvh) for --benchmark cmu-heldout (default: $FUSECAP_MOTION_DIR)")
    p.add_argument("--calibration-fps", type=float, default=None,
                   help="frames a second the IMU calibration routine is solved at (default 10)")
    p.add_argument("--body", choices=("mesh", "capsule"), default="mesh",
                   help="the held-out performers' bodies: skinned Anny meshes (default) or capsules")
    p.add_argument("--out", type=Path, default=None, help="folder for results.json, table.md and plots")
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda when present)")
    p.add_argument("--threads", type=int, default=None, help="CPU threads")
    p.add_argument("--precision", choices=("auto", "fp32", "bf16"), default="auto",
                   help="the network's precision on the CPU (default auto: bf16 where the CPU computes it in "
                   "hardware, as the live solve runs it; else fp32)")
    p.add_argument("--theta", type=float, action="append", default=None, metavar="THETA",
                   help="also score each soft-argmax model with this θ at inference (repeatable): "
                   "the θ sweep without retraining")
    p.add_argument("--hard-readout", action="store_true",
                   help="also score each soft-argmax model reading its heatmaps out with hard-argmax")
    p.add_argument("--solve", action="store_true",
                   help="score the skeleton solve against the raw network joints at 15 frames/s (standard "
                   "studio; default 6 s a sequence): MPJPE, the worst tenth of frames, jitter, the largest "
                   "frame-to-frame turn, foot skate; live, whole-take (feet free and planted) and IMUs only")


def _models(specs: list[str] | None):
    from core.deepfuse.weights import SHIPPED, load_weights, shipped_model_path

    out = []
    for spec in specs or ["lite"]:
        label, _, ref = spec.rpartition("=")
        path = shipped_model_path(ref) if ref in SHIPPED else Path(ref)
        model, info = load_weights(path)
        out.append((label or ref, model, info))
    return out


def _variant(model, **changes):
    """A copy of `model` whose read-out is changed (every stage holds the config)."""
    variant = copy.deepcopy(model)
    for m in variant.modules():
        if hasattr(m, "cfg"):
            m.cfg = replace(m.cfg, **changes)
    return variant


def sequence_table(summaries: dict[str, dict]) -> str:
    """A row per sequence (a clip of recorded motion) and their mean, per model."""
    rows = ["| model | sequence | frames | stage 1 | stage 2 | stage 1 full | stage 2 full | stage 1 partial | "
            "stage 2 partial |", "|---|---|---|---|---|---|---|---|---|"]
    keys = ("mpjpe1", "mpjpe2", "full1", "full2", "partial1", "partial2")
    for label, s in summaries.items():
        seqs = s.get("sequences", {})
        for name, r in seqs.items():
            rows.append(f"| {label} | {name} | {r['frames']} | " + " | ".join(
                f"{r[k]:.1f}" if k in r else "-" for k in keys) + " |")
        if seqs:
            mean = [np.nanmean([r.get(k, np.nan) for r in seqs.values()]) for k in keys]
            rows.append(f"| {label} | **mean of {len(seqs)}** | {sum(r['frames'] for r in seqs.values())} | "
                        + " | ".join(f"{v:.1f}" for v in mean) + " |")
    return "\n".join(rows) + "\n\nMPJPE in mm per sequence; full / partial: frames without / with cut views.\n"


def calibration_table(summaries: dict[str, dict]) -> str:
    """The IMU calibration each model's routine solves gave, against the truth."""
    from core import skeleton as sk

    labels = [lab for lab, s in summaries.items() if s.get("calibration", {}).get("bone_deg")]
    if not labels:
        return ""
    rows = ["| IMU bone | " + " | ".join(labels) + " |", "|---|" + "---|" * len(labels)]
    for b in sk.IMU_BONES:
        rows.append(f"| {b.name} | " + " | ".join(
            f"{summaries[lab]['calibration']['bone_deg'][b.name]:.1f}" for lab in labels) + " |")
    rows.append("| **mean** | " + " | ".join(f"{summaries[lab]['calibration']['mean_deg']:.1f}"
                                             for lab in labels) + " |")
    notes = ["", "Estimated IMU calibration: per bone, degrees between the bone orientation the solve was given "
             "and the true one (median over each sequence's frames, mean over sequences)."]
    for lab in labels:
        c = summaries[lab]["calibration"]
        off = (f"{c['offset_ms_median']:.0f} ms (simulated {c['true_offset_ms']:.0f} ms) in {c['offset_found']} of "
               f"{c['sequences']} sequences" if c.get("offset_found") else "not found (too little motion)")
        notes.append(f"{lab}: IMU time offset {off}; calibration failed in {len(c['failed'])}.")
    return "\n".join(rows + notes) + "\n"


def table_markdown(summaries: dict[str, dict]) -> str:
    rows = ["| model | rigs | frames | stage 1 MPJPE | stage 2 MPJPE | stage 2 PA-MPJPE | full | partial |",
            "|---|---|---|---|---|---|---|---|"]
    for label, s in summaries.items():
        g = s["groups"]
        for kind in ("standard", "random", "all"):
            if f"{kind}/all" not in g:
                continue
            a = g[f"{kind}/all"]
            full = g.get(f"{kind}/full", {}).get("mpjpe2", float("nan"))
            part = g.get(f"{kind}/partial", {}).get("mpjpe2", float("nan"))
            rows.append(f"| {label} | {kind} | {a['frames']} | {a['mpjpe1']:.1f} | {a['mpjpe2']:.1f} | "
                        f"{a['pa2']:.1f} | {full:.1f} | {part:.1f} |")
    notes = ["", "Errors in mm; full / partial: stage 2 MPJPE on full and partial frames."]
    precisions = sorted({s["precision"] for s in summaries.values() if s.get("precision")})
    if precisions:
        notes.append(f"The network ran in {' and '.join(precisions)}.")
    for label, s in summaries.items():
        if s["missed"]:
            groups = ", ".join(f"{n} {g}" for g, n in s["missed_by_group"].items())
            notes.append(f"{label}: {s['missed']} frames unsolved, no performer found ({groups}).")
    return "\n".join(rows + notes) + "\n"


def _run_solve(args: argparse.Namespace, models, bench) -> int:
    """evaluate --solve: the skeleton solve against the raw joints (core.solve.bench)."""
    from app.cli.progress import progress_bar
    from core.solve.bench import record_sequences, score_sequences, solve_table

    bench = replace(bench, fps=args.fps or 15.0, seconds=args.seconds or 6.0, random_rigs=False)
    name = args.benchmark if args.motion is None else "recorded motion"
    results = {}
    for label, model, _ in models:
        with progress_bar(f"solving {label}'s joints") as report:
            recs = record_sequences(model, bench, threads=args.threads, progress=report)
        with progress_bar("scoring the skeleton solve") as report:
            results[f"{name}, {label}"] = score_sequences(recs, report)
    table = solve_table(results)
    print(table)
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "solve.md").write_text(table + "\n")
    return 0


def run_evaluate(args: argparse.Namespace) -> int:
    from app.cli.progress import progress_bar
    from core import skeleton as sk
    from core.deepfuse.evaluate import QUICK, Benchmark, clip_files, cmu_heldout, evaluate_model, summarise
    from core.deepfuse.weights import ModelFileError

    try:
        models = _models(args.model)
    except (ModelFileError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    bench = QUICK if args.quick else Benchmark()
    changes = {k: v for k, v in (("seconds", args.seconds), ("fps", args.fps), ("sequences_per_kind", args.sequences),
                                 ("calibration_fps", args.calibration_fps)) if v is not None}
    if args.standard_only:
        changes["random_rigs"] = False
    try:
        if args.benchmark == "cmu-heldout":
            folder = args.motion_dir or os.environ.get("FUSECAP_MOTION_DIR")
            if not folder:
                print("error: --benchmark cmu-heldout needs the CMU clips: --motion-dir FOLDER or "
                      "FUSECAP_MOTION_DIR", file=sys.stderr)
                return 2
            bench = cmu_heldout(folder)
        elif args.motion is not None:
            changes["motion_clips"] = clip_files(args.motion)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    bench = replace(bench, body=args.body, **changes)
    if args.solve:
        return _run_solve(args, models, bench)
    if args.theta or args.hard_readout:
        swept = []
        for label, model, extra in models:
            swept.append((label, model, extra))
            if model.cfg.head != "soft":
                continue
            if args.hard_readout:
                variant = _variant(model, head="hard")
                swept.append((f"{label} hard-argmax read-out", variant, extra))
            for theta in args.theta or []:
                if not theta > 0:
                    print(f"error: θ must be positive, got {theta}", file=sys.stderr)
                    return 2
                variant = _variant(model, theta=float(theta))
                swept.append((f"{label} θ={theta:g}", variant, extra))
        models = swept
    summaries, arrays = {}, {}
    for label, model, _ in models:
        with progress_bar(f"evaluating {label}") as report:
            try:
                errs = evaluate_model(model, bench, device=args.device, threads=args.threads, progress=report,
                                      cpu_precision=args.precision)
            except ValueError as exc:  # e.g. a BVH clip that does not retarget
                print(f"error: {exc}", file=sys.stderr)
                return 2
        summaries[label] = summarise(errs)
        arrays[label] = errs.arrays()
    table = table_markdown(summaries)
    if bench.motion_clips:
        table += "\n" + sequence_table(summaries)
    calib = calibration_table(summaries)
    if calib:
        table += "\n" + calib
    print(table)
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "results.json").write_text(json.dumps(
            {"benchmark": {k: v for k, v in vars(bench).items()}, "models": summaries}, indent=1))
        (args.out / "table.md").write_text(table)
        try:
            from core.deepfuse.plots import plot_per_joint, plot_sequence
        except ImportError:
            print("matplotlib missing: no plots", file=sys.stderr)
            return 0
        per_joint = {}
        for label, s in summaries.items():
            if "per_joint_mm" in s:
                per_joint[f"{label} stage 1"] = np.array(list(s["per_joint_mm"]["stage1"].values()))
                per_joint[f"{label} stage 2"] = np.array(list(s["per_joint_mm"]["stage2"].values()))
        if per_joint:
            plot_per_joint(list(sk.JOINTS), per_joint, args.out / "per_joint.png", "mean error per joint")
        label, a = next(iter(arrays.items()))
        if len(a["sequence"]):
            first = a["sequence"] == a["sequence"][0]
            plot_sequence(a["t_s"][first], {"stage 1 (vision)": a["e1"][first].mean(1),
                                            "stage 2 (fused)": a["e2"][first].mean(1)},
                          args.out / "sequence.png", f"{label}: MPJPE along {a['sequence'][0]}")
        print(f"results: {args.out}")
    return 0
