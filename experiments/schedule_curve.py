"""AP against iteration for the baseline student and both full methods on one pair (the README's
schedule curve): does distillation speed convergence, or raise the ceiling?

    CONFIGS="shapes/conditional_detr_nano.py detrdistill/shapes_conditional_nano.py \\
      d3etr/shapes_conditional_nano.py" ITERS=3000 EVAL_PERIOD=250 ROOT=output/curve \\
      bash experiments/shapes_table.sh 0 1
    python experiments/schedule_curve.py --pair conditional --root output/curve \\
      --json experiments/results/schedule_curve_conditional.json \\
      --plot docs/images/schedule_curve_conditional.png

Reads every evaluation in ``<root>/<config>/seed<k>/metrics.json`` (finished runs only), averages
each iteration over the seeds, prints a markdown table (one row per evaluation) and writes the
numbers (``--json``) and the picture (``--plot``, the shipped teacher's AP as a dashed line).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys

from detectron2.config import LazyConfig

from detrdistill.checkpoint.shipped import SHIPPED
from detrdistill.demo import read_eval_history

# (curve label, config name without .py); the first is the baseline
CURVES = {
    "conditional": (
        ("baseline", "shapes/conditional_detr_nano"),
        ("DETRDistill", "detrdistill/shapes_conditional_nano"),
        ("D3ETR", "d3etr/shapes_conditional_nano"),
    ),
    "nano": (
        ("baseline", "shapes/deformable_detr_nano"),
        ("DETRDistill", "detrdistill/shapes_deformable_nano"),
        ("D3ETR", "d3etr/shapes_deformable_nano"),
    ),
}
TEACHERS = {
    "conditional": "shapes_conditional_detr_tiny_teacher.pth",
    "nano": "shapes_deformable_detr_tiny_teacher.pth",
}


def read_curves(root: str, curves) -> dict[str, dict]:
    """Per curve: ``{"config", "seeds", "iterations", "AP" (mean per iteration), "AP_per_seed"}``.

    Raises:
        ValueError: when the seeds of one config were evaluated at different iterations.
    """
    result = {}
    for label, config in curves:
        folder = os.path.join(root, config)
        runs = {}
        if os.path.isdir(folder):
            for name in sorted(os.listdir(folder)):
                run = os.path.join(folder, name)
                if name.startswith("seed") and os.path.isfile(os.path.join(run, "model_final.pth")):
                    max_iter = int(LazyConfig.load(os.path.join(run, "config.yaml")).train.max_iter)
                    runs[int(name[4:])] = read_eval_history(run, max_iter)
        if not runs:
            continue
        iterations = {s: [e["iteration"] for e in evals] for s, evals in runs.items()}
        first = next(iter(iterations.values()))
        if any(its != first for its in iterations.values()):
            raise ValueError(f"{folder}: the seeds were evaluated at different iterations")
        per_seed = {s: [e["AP"] for e in evals] for s, evals in sorted(runs.items())}
        result[label] = {
            "config": config + ".py",
            "seeds": sorted(runs),
            "iterations": first,
            "AP": [statistics.fmean(values) for values in zip(*per_seed.values())],
            "AP_per_seed": per_seed,
        }
    return result


def format_table(curves: dict[str, dict]) -> str:
    labels = list(curves)
    iterations = sorted({i for c in curves.values() for i in c["iterations"]})
    lines = [
        "| iteration | " + " | ".join(labels) + " |",
        "|---" * (len(labels) + 1) + "|",
    ]
    for it in iterations:
        cells = []
        for label in labels:
            c = curves[label]
            known = it in c["iterations"]
            cells.append(f"{c['AP'][c['iterations'].index(it)]:.1f}" if known else "")
        lines.append(f"| {it} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot(curves: dict[str, dict], teacher_ap: float, path: str) -> str:
    from detrdistill.tools.drawing import grid_figure, save_figure

    fig, axes = grid_figure(1, 1, panel_inches=5.0)
    ax = axes[0, 0]
    for label, c in curves.items():
        seeds = len(c["seeds"])
        name = f"{label} ({seeds} seed{'s' * (seeds > 1)})"
        ax.plot(c["iterations"], c["AP"], marker="o", label=name)
    ax.axhline(teacher_ap, color="black", linestyle="--", label=f"teacher ({teacher_ap:.1f})")
    ax.set_xlabel("student iteration")
    ax.set_ylabel("box AP (shapes_val)")
    ax.set_title("Schedule curve: students on the same schedule")
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    fig.subplots_adjust(left=0.14, right=0.97, top=0.92, bottom=0.1)
    return save_figure(fig, path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default="output/curve")
    parser.add_argument("--pair", choices=sorted(CURVES), default="conditional")
    parser.add_argument("--json", default=None, help="also write the numbers here")
    parser.add_argument("--plot", default=None, help="also draw the curves here (.png)")
    args = parser.parse_args(argv)
    if not os.path.isdir(args.root):
        parser.error(f"{args.root} does not exist: run experiments/shapes_table.sh first")
    curves = read_curves(args.root, CURVES[args.pair])
    if not curves:
        parser.error(f"no finished run of the {args.pair} curves under {args.root}")
    print(format_table(curves))
    teacher = SHIPPED[TEACHERS[args.pair]]
    if args.json:
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json, "w") as f:
            record = {"root": args.root, "pair": args.pair, "teacher": TEACHERS[args.pair]}
            json.dump({**record, "teacher_AP": teacher.ap, "curves": curves}, f, indent=2)
            f.write("\n")
    if args.plot:
        print(plot(curves, teacher.ap, args.plot))
    return 0


if __name__ == "__main__":
    sys.exit(main())
