"""Wall time of the Hungarian solves of one distillation iteration at COCO shapes.

    python benchmarks/matching.py
    python benchmarks/matching.py --threads 1 --candidates   # no other solvers

One iteration's assignment problems (defaults: batch 2, 6 decoder layers, 300 student and 300
teacher queries, 80 classes, 7 ground-truth boxes per image):

* ground-truth matching: per layer and image, a (300 x 7) cost from the project's
  ``HungarianMatcher.cost_matrices`` (focal class cost 2, L1 5, GIoU 2);
* teacher-student matching: per layer and image, a (300 x 300) cost from the project's
  ``TeacherStudentMatcher.cost_matrix`` (soft class 1, L1 5, GIoU 2).

Two workloads, each built once from random predictions (fixed seed): ``independent`` (student
and teacher predictions unrelated, as at the start of training; the hardest case for the
solvers) and ``correlated`` (each student prediction is a teacher prediction plus noise, as once
the student has learnt something; ``--noise``). Each is solved --iters times after --warmup
unmeasured rounds by

* ``scipy_loop``: a plain loop calling ``scipy.optimize.linear_sum_assignment`` on one image's
  matrix at a time (tensor -> NumPy included), the baseline;
* ``project``: ``detrdistill.modeling.matcher.linear_sum_assignment_batch``, called as the
  matchers call it: once per matcher with every layer's and image's matrix (lapx's Rust
  Jonker-Volgenant ``lapjvr_batch`` on ``--threads`` threads; default: torch's thread count);
* --candidates, other lapx solvers for comparison: ``lapjv`` and ``lapjvx`` (one image at a
  time), ``lapjvh_batch`` (hybrid, batched like the project path).

Every solver's assignments are checked against SciPy's: same total cost (the optimum) and how
many assignments are identical.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import inspect
import os
import sys
import time
from collections.abc import Callable

import lap
import numpy as np
import scipy
import scipy.optimize
import torch
from _benchlib import (
    describe_machine,
    resolve_device,
    summarize_times,
    synchronize,
    utc_now,
    write_result,
)

from detrdistill.distill.matching import TeacherStudentMatcher, class_probabilities
from detrdistill.modeling.matcher import HungarianMatcher, linear_sum_assignment_batch

__all__ = [
    "CANDIDATES",
    "WORKLOADS",
    "build_parser",
    "build_workload",
    "main",
    "project_solver_info",
]

RESULTS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")
DEFAULT_OUTPUT = "benchmarks/results/matching.json"  # relative to the repository
CANDIDATES = ("lapjv", "lapjvx", "lapjvh_batch")
WORKLOADS = ("independent", "correlated")


def build_parser() -> argparse.ArgumentParser:
    """The command line (see the module docstring)."""
    lines = __doc__.splitlines()
    parser = argparse.ArgumentParser(
        description=lines[0],
        epilog="\n".join(lines[1:]),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--batch-size", type=int, default=2)
    parser.add_argument("--student-queries", type=int, default=300)
    parser.add_argument("--teacher-queries", type=int, default=300)
    parser.add_argument("--layers", type=int, default=6, help="decoder layers (matched pairs)")
    parser.add_argument("--classes", type=int, default=80)
    parser.add_argument("--num-gt", type=int, default=7, help="ground-truth boxes per image")
    parser.add_argument("--iters", type=int, default=20, help="measured rounds")
    parser.add_argument("--warmup", type=int, default=2, help="unmeasured rounds first")
    parser.add_argument(
        "--device", default="cpu", help="where the cost matrices live (cpu, cuda, auto)"
    )
    parser.add_argument(
        "--candidates",
        nargs="*",
        default=list(CANDIDATES),
        help=f"other lapx solvers to time ({', '.join(CANDIDATES)}; none given: skip)",
    )
    parser.add_argument(
        "--threads", type=int, default=None, help="solver threads (default: torch's threads)"
    )
    parser.add_argument(
        "--noise", type=float, default=0.05, help="box noise of the correlated workload"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", default=None, help=f"JSON result (default {DEFAULT_OUTPUT})")
    return parser


# ------------------------------------------------------------------------------ workload
def _random_boxes(gen: torch.Generator, *shape: int) -> torch.Tensor:
    centre = 0.1 + 0.8 * torch.rand(*shape, 2, generator=gen)
    size = 0.02 + 0.3 * torch.rand(*shape, 2, generator=gen)
    return torch.cat([centre, size], -1)


def build_workload(
    args: argparse.Namespace, device: torch.device, kind: str = "independent"
) -> list[dict]:
    """The cost matrices of one iteration, grouped as the project's matchers hand them to the
    solver: one group per matcher holding every decoder layer's and image's matrix
    (``HungarianMatcher.match_layers``; the teacher-student losses stack their layer pairs).

    Args:
        kind: "independent" (student and teacher predictions unrelated) or "correlated"
            (student = teacher + noise: boxes ``args.noise`` in cxcywh, logits 0.5).

    Returns:
        ``[{"kind": "gt", "costs": [L*B tensors]}, {"kind": "teacher_student", ...}]``,
        layer-major.
    """
    gen = torch.Generator().manual_seed(args.seed)
    bsz, qs, qt, classes = args.batch_size, args.student_queries, args.teacher_queries, args.classes
    gt_matcher = HungarianMatcher(
        cost_class=2.0, cost_bbox=5.0, cost_giou=2.0, class_cost_type="focal"
    )
    ts_matcher = TeacherStudentMatcher()
    targets = [
        {
            "labels": torch.randint(0, classes, (args.num_gt,), generator=gen).to(device),
            "boxes": _random_boxes(gen, args.num_gt).to(device),
        }
        for _ in range(bsz)
    ]
    groups = [{"kind": "gt", "costs": []}, {"kind": "teacher_student", "costs": []}]
    for _ in range(args.layers):
        t_logits = (2 * torch.randn(bsz, qt, classes, generator=gen) - 4).to(device)
        t_boxes = _random_boxes(gen, bsz, qt).to(device)
        if kind == "correlated":
            pick = torch.randint(0, qt, (bsz, qs), generator=gen)
            pick[:, : min(qs, qt)] = torch.randperm(qt, generator=gen)[: min(qs, qt)]
            batch = torch.arange(bsz)[:, None]
            noise = args.noise * torch.randn(bsz, qs, 4, generator=gen)
            s_boxes = (t_boxes.cpu()[batch, pick] + noise).clamp(0.01, 0.99).to(device)
            s_logits = t_logits.cpu()[batch, pick] + 0.5 * torch.randn(
                bsz, qs, classes, generator=gen
            )
            s_logits = s_logits.to(device)
        else:
            s_logits = (torch.randn(bsz, qs, classes, generator=gen) - 3).to(device)
            s_boxes = _random_boxes(gen, bsz, qs).to(device)
        gt_costs = gt_matcher.cost_matrices(s_logits, s_boxes, targets)
        groups[0]["costs"] += list(gt_costs)
        ts_cost = ts_matcher.cost_matrix(
            s_logits, s_boxes, class_probabilities(t_logits, "focal"), t_boxes, "focal"
        )
        groups[1]["costs"] += list(ts_cost)
    return groups


# ------------------------------------------------------------------------------ solvers
def _solve_project(threads: int | None):
    def solve(groups):
        return [
            pair
            for g in groups
            for pair in linear_sum_assignment_batch(g["costs"], num_threads=threads)
        ]

    return solve


def _solve_scipy(groups):
    out = []
    for group in groups:
        for cost in group["costs"]:
            out.append(scipy.optimize.linear_sum_assignment(cost.detach().cpu().numpy()))
    return out


def _solve_one_at_a_time(function):
    def solve(groups):
        out = []
        for group in groups:
            for cost in group["costs"]:
                matrix = cost.detach().cpu().numpy().astype(np.float64)
                rows, cols = function(matrix)
                out.append((rows, cols))
        return out

    return solve


def _lapjv(matrix):
    _, x, _ = lap.lapjv(matrix, extend_cost=True)
    rows = np.nonzero(x >= 0)[0]
    return rows, x[rows]


def _lapjvx(matrix):
    return lap.lapjvx(matrix, extend_cost=True, return_cost=False)


def _solve_batched(function, threads: int):
    def solve(groups):
        out = []
        for group in groups:
            costs = torch.stack([c.detach() for c in group["costs"]]).to("cpu", torch.float64)
            rows, cols = function(
                costs.numpy(), extend_cost=True, return_cost=False, n_threads=threads
            )
            out.extend(zip(rows, cols))
        return out

    return solve


def _candidate(name: str, threads: int) -> tuple[Callable, str]:
    """``(solve, description)`` of a --candidates entry."""
    if name == "lapjv":
        return _solve_one_at_a_time(_lapjv), "lap.lapjv(extend_cost=True), one image at a time"
    if name == "lapjvx":
        return _solve_one_at_a_time(_lapjvx), "lap.lapjvx(extend_cost=True), one image at a time"
    return _solve_batched(lap.lapjvh_batch, threads), (
        f"lap.lapjvh_batch(extend_cost=True, n_threads={threads}) per matcher"
    )


# ------------------------------------------------------------------------------ checks
def _flat_costs(groups) -> list[np.ndarray]:
    return [c.detach().cpu().double().numpy() for g in groups for c in g["costs"]]


def agreement(reference: list, candidate: list, costs: list[np.ndarray]) -> dict:
    """Compare two solvers' assignments matrix by matrix.

    Returns:
        ``agrees`` (every total cost equal to the reference's within 1e-9 relative, every
        assignment complete), ``max_abs_total_cost_diff``, ``identical_assignments``,
        ``matrices``.
    """
    worst, identical, complete = 0.0, 0, True
    for (r_rows, r_cols), (c_rows, c_cols), cost in zip(reference, candidate, costs):
        r_rows, r_cols = np.asarray(r_rows), np.asarray(r_cols)
        c_rows, c_cols = np.asarray(c_rows), np.asarray(c_cols)
        complete &= len(c_rows) == min(cost.shape)
        ref_total = cost[r_rows, r_cols].sum()
        diff = abs(cost[c_rows, c_cols].sum() - ref_total)
        worst = max(worst, float(diff) / max(1.0, abs(float(ref_total))))
        r_order, c_order = np.argsort(r_rows), np.argsort(c_rows)
        identical += int(
            np.array_equal(r_rows[r_order], c_rows[c_order])
            and np.array_equal(r_cols[r_order], c_cols[c_order])
        )
    return {
        "agrees": bool(complete and worst <= 1e-9),
        "max_rel_total_cost_diff": worst,
        "identical_assignments": identical,
        "matrices": len(costs),
    }


def project_solver_info(threads: int) -> dict:
    """What ``linear_sum_assignment_batch`` calls by default."""
    default = inspect.signature(linear_sum_assignment_batch).parameters["solver"].default
    return {
        "function": "detrdistill.modeling.matcher.linear_sum_assignment_batch",
        "solver": default,
        "backend": "lap.lapjvr_batch (lapx, Rust Jonker-Volgenant)"
        if default == "lapx"
        else "scipy.optimize.linear_sum_assignment",
        "lapx_version": importlib.metadata.version("lapx"),
        "threads": threads,
    }


# ------------------------------------------------------------------------------ driver
def _time(solve, groups, iters: int, warmup: int, device: torch.device):
    result = None
    for _ in range(warmup):
        result = solve(groups)
    times = []
    for _ in range(iters):
        synchronize(device)
        begin = time.perf_counter()
        result = solve(groups)
        times.append(time.perf_counter() - begin)
    return summarize_times(times), result


def _run_workload(args, device, kind: str, threads: int) -> dict:
    groups = build_workload(args, device, kind)
    costs = _flat_costs(groups)
    scipy_stats, reference = _time(_solve_scipy, groups, args.iters, args.warmup, device)
    project_stats, project_out = _time(
        _solve_project(threads), groups, args.iters, args.warmup, device
    )
    project_pairs = [(r.numpy(), c.numpy()) for r, c in project_out]
    results = {
        "scipy_loop": scipy_stats,
        "project": {**project_stats, "agreement": agreement(reference, project_pairs, costs)},
        "speedup_project_vs_scipy_loop": scipy_stats["median_s"] / project_stats["median_s"],
        "candidates": {},
    }
    print(f"[{kind}] scipy_loop   {scipy_stats['median_s'] * 1e3:9.3f} ms")
    print(
        f"[{kind}] project      {project_stats['median_s'] * 1e3:9.3f} ms  "
        f"speed-up x{results['speedup_project_vs_scipy_loop']:.2f}  "
        f"agrees {results['project']['agreement']['agrees']}"
    )
    for name in args.candidates:
        solve, description = _candidate(name, threads)
        stats, out = _time(solve, groups, args.iters, args.warmup, device)
        info = {
            "function": description,
            **stats,
            "speedup_vs_scipy_loop": scipy_stats["median_s"] / stats["median_s"],
            "agreement": agreement(reference, out, costs),
        }
        print(
            f"[{kind}] {name:<12} {stats['median_s'] * 1e3:9.3f} ms  speed-up "
            f"x{info['speedup_vs_scipy_loop']:.2f}  agrees {info['agreement']['agrees']}"
        )
        results["candidates"][name] = info
    return results


def run(args: argparse.Namespace) -> dict:
    """Build the workloads, time every solver; returns the JSON payload."""
    device = resolve_device(args.device)
    threads = torch.get_num_threads() if args.threads is None else args.threads
    shapes: dict[str, int] = {}
    groups = build_workload(args, device)
    for cost in _flat_costs(groups):
        key = f"{cost.shape[0]}x{cost.shape[1]}"
        shapes[key] = shapes.get(key, 0) + 1
    results = {kind: _run_workload(args, device, kind, threads) for kind in WORKLOADS}
    return {
        "benchmark": "matching",
        "date": utc_now(),
        "machine": describe_machine(device),
        "settings": {
            "device": str(device),
            "batch_size": args.batch_size,
            "student_queries": args.student_queries,
            "teacher_queries": args.teacher_queries,
            "layers": args.layers,
            "classes": args.classes,
            "num_gt": args.num_gt,
            "noise": args.noise,
            "threads": threads,
            "iters": args.iters,
            "warmup": args.warmup,
            "seed": args.seed,
            "scipy": scipy.__version__,
            "numpy": np.__version__,
        },
        "workload": {
            "solves_per_iteration": sum(shapes.values()),
            "solver_calls_per_iteration": len(groups),
            "matrix_shapes": shapes,
            "description": "per layer: ground-truth matching (student queries x GT boxes) and "
            "teacher-student matching (student x teacher queries), one matrix per image",
        },
        "project_solver": project_solver_info(threads),
        "results": results,
    }


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and write the JSON result; returns 0."""
    parser = build_parser()
    args = parser.parse_args(argv)
    sizes = (args.batch_size, args.student_queries, args.teacher_queries, args.layers)
    if min(sizes) < 1 or args.classes < 1 or args.num_gt < 1 or args.iters < 1:
        parser.error("sizes, --num-gt and --iters must be >= 1")
    unknown = sorted(set(args.candidates) - set(CANDIDATES))
    if unknown:
        parser.error(f"unknown candidates {unknown}; choose from {list(CANDIDATES)}")
    payload = run(args)
    output = args.output or os.path.join(RESULTS_DIR, "matching.json")
    print(f"wrote {write_result(output, payload)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
