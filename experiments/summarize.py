"""Summarise the runs of experiments/shapes_table.sh: mean and spread over seeds, as a table.

    python experiments/summarize.py [--root output/table] [--pair tiny|nano|conditional]
        [--json FILE]

For every config folder ``<root>/<config>/seed<k>/`` with a finished run (``model_final.pth``),
reads the COCO box AP of the last evaluation (and of the one half-way) from ``metrics.json``
and prints a markdown table: mean +- sample standard deviation over the seeds, the difference
to the baseline's mean, and the per-seed values. ``--json`` also writes every number.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys

# (row label, config name without .py) in table order
ROWS = (
    ("baseline student", "shapes/deformable_detr_tiny"),
    ("DETRDistill (a) logits", "detrdistill/shapes_deformable_tiny_logits"),
    ("DETRDistill (b) feature", "detrdistill/shapes_deformable_tiny_feature"),
    ("DETRDistill (c) query prior", "detrdistill/shapes_deformable_tiny_query_prior"),
    ("DETRDistill (a)+(b)+(c)", "detrdistill/shapes_deformable_tiny"),
    ("D3ETR adaptive only", "d3etr/shapes_deformable_tiny_adaptive"),
    ("D3ETR fixed only", "d3etr/shapes_deformable_tiny_fixed"),
    ("D3ETR adaptive+fixed", "d3etr/shapes_deformable_tiny"),
    ("D3ETR adaptive+fixed, no attention", "d3etr/shapes_deformable_tiny_no_attention"),
    (
        "D3ETR adaptive+fixed, attention x100/x1000",
        "d3etr/shapes_deformable_tiny_strong_attention",
    ),
)
# the compression pair: the shipped tiny teacher -> the nano student
NANO_ROWS = (
    ("baseline student (nano)", "shapes/deformable_detr_nano"),
    ("DETRDistill (a) logits", "detrdistill/shapes_deformable_nano_logits"),
    ("DETRDistill (b) feature", "detrdistill/shapes_deformable_nano_feature"),
    ("DETRDistill (c) query prior", "detrdistill/shapes_deformable_nano_query_prior"),
    ("DETRDistill (a)+(b)+(c)", "detrdistill/shapes_deformable_nano"),
    ("D3ETR adaptive only", "d3etr/shapes_deformable_nano_adaptive"),
    ("D3ETR fixed only", "d3etr/shapes_deformable_nano_fixed"),
    ("D3ETR adaptive+fixed", "d3etr/shapes_deformable_nano"),
    ("D3ETR adaptive+fixed, no attention", "d3etr/shapes_deformable_nano_no_attention"),
    ("KD-DETR specific+general points", "kd_detr/shapes_deformable_nano"),
)
# the Conditional DETR pair: the shipped tiny Conditional DETR teacher -> the nano student
CONDITIONAL_ROWS = (
    ("baseline student (Conditional nano)", "shapes/conditional_detr_nano"),
    ("DETRDistill (a) logits", "detrdistill/shapes_conditional_nano_logits"),
    ("DETRDistill (b) feature", "detrdistill/shapes_conditional_nano_feature"),
    ("DETRDistill (c) query prior", "detrdistill/shapes_conditional_nano_query_prior"),
    ("DETRDistill (a)+(b)+(c)", "detrdistill/shapes_conditional_nano"),
    ("D3ETR adaptive only", "d3etr/shapes_conditional_nano_adaptive"),
    ("D3ETR fixed only", "d3etr/shapes_conditional_nano_fixed"),
    ("D3ETR adaptive+fixed", "d3etr/shapes_conditional_nano"),
    ("D3ETR adaptive+fixed, no attention", "d3etr/shapes_conditional_nano_no_attention"),
)
PAIRS = {"tiny": ROWS, "nano": NANO_ROWS, "conditional": CONDITIONAL_ROWS}
METRICS = ("AP", "AP50", "AP75")


def read_run(folder: str) -> dict | None:
    """Evaluations of one finished run: ``{"final": {...}, "first": {...}, "iterations": n}``."""
    if not os.path.isfile(os.path.join(folder, "model_final.pth")):
        return None
    evals = []
    with open(os.path.join(folder, "metrics.json")) as f:
        for line in f:
            row = json.loads(line)
            if "bbox/AP" in row:
                evals.append(
                    {"iteration": row["iteration"], **{m: row[f"bbox/{m}"] for m in METRICS}}
                )
    if not evals:
        raise ValueError(f"{folder}/metrics.json has no bbox evaluation")
    return {"final": evals[-1], "first": evals[0], "evaluations": evals}


def spread(values: list[float]) -> dict:
    """``{"mean", "std" (sample; 0 for one value), "values"}``."""
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return {"mean": statistics.fmean(values), "std": std, "values": values}


def summarize(root: str, rows=ROWS) -> list[dict]:
    """One entry per config of ``rows`` with runs: label, config, seeds, per-seed and mean/std
    metrics (the first of ``rows`` is the baseline)."""
    summary = []
    for label, config in rows:
        folder = os.path.join(root, config)
        runs = {}
        if os.path.isdir(folder):
            for name in sorted(os.listdir(folder)):
                if name.startswith("seed"):
                    run = read_run(os.path.join(folder, name))
                    if run is not None:
                        runs[int(name[4:])] = run
        if not runs:
            continue
        entry = {"label": label, "config": config + ".py", "seeds": sorted(runs)}
        for metric in METRICS:
            entry[metric] = spread([runs[s]["final"][metric] for s in sorted(runs)])
        entry["AP_first_eval"] = spread([runs[s]["first"]["AP"] for s in sorted(runs)])
        entry["first_eval_iteration"] = runs[sorted(runs)[0]]["first"]["iteration"] + 1
        summary.append(entry)
    return summary


def _mean_std(metric: dict) -> str:
    """ "mean ± std", or the mean alone for one seed (no spread to show)."""
    if len(metric["values"]) < 2:
        return f"{metric['mean']:.1f}"
    return f"{metric['mean']:.1f} ± {metric['std']:.1f}"


def format_table(summary: list[dict], rows=ROWS) -> str:
    base = next((e for e in summary if e["config"] == rows[0][1] + ".py"), None)
    lines = [
        "| student | seeds | AP | ΔAP | AP50 | AP75 | AP per seed | AP half-way |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for e in summary:
        ap = e["AP"]
        delta = "—" if base is None or e is base else f"{ap['mean'] - base['AP']['mean']:+.1f}"
        lines.append(
            f"| {e['label']} | {len(e['seeds'])} | {_mean_std(ap)} | {delta} | "
            f"{_mean_std(e['AP50'])} | {_mean_std(e['AP75'])} | "
            f"{' / '.join(f'{v:.1f}' for v in ap['values'])} | "
            f"{_mean_std(e['AP_first_eval'])} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default="output/table")
    parser.add_argument("--pair", choices=sorted(PAIRS), default="tiny", help="which table")
    parser.add_argument("--json", default=None, help="also write the numbers here")
    args = parser.parse_args(argv)
    if not os.path.isdir(args.root):
        parser.error(f"{args.root} does not exist: run experiments/shapes_table.sh first")
    rows = PAIRS[args.pair]
    summary = summarize(args.root, rows)
    print(format_table(summary, rows))
    if args.json:
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json, "w") as f:
            json.dump({"root": args.root, "rows": summary}, f, indent=2)
            f.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
