"""benchmarks/matching.py: --help, a 1-iteration smoke run, the agreement check."""

from __future__ import annotations

import json

import numpy as np
import pytest
import scipy.optimize
import torch
from bench_testing import import_benchmark, run_benchmark


def run_script(*args: str):
    return run_benchmark("matching", *args)


@pytest.fixture(scope="module")
def matching_module():
    return import_benchmark("matching")


def test_help():
    result = run_script("--help")
    assert result.returncode == 0, result.stderr[-2000:]
    for option in ("--student-queries", "--teacher-queries", "--layers", "--candidates"):
        assert option in result.stdout


def test_smoke_run_writes_the_json(tmp_path):
    output = tmp_path / "matching.json"
    result = run_script(
        "--batch-size", "2", "--student-queries", "12", "--teacher-queries", "9",
        "--layers", "2", "--classes", "4", "--num-gt", "3", "--iters", "1", "--warmup", "0",
        "--output", str(output),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    data = json.loads(output.read_text())
    assert data["benchmark"] == "matching" and data["date"]
    assert {"cpu_model", "cpu_logical_cores", "torch", "cuda_device"} <= set(data["machine"])
    workload = data["workload"]
    assert workload["solves_per_iteration"] == 2 * 2 * 2  # (GT + teacher-student) x layers x B
    assert workload["solver_calls_per_iteration"] == 2  # one per matcher, all layers in it
    assert workload["matrix_shapes"] == {"12x3": 4, "12x9": 4}
    solver = data["project_solver"]
    assert solver["solver"] == "lapx" and solver["lapx_version"] and solver["threads"] >= 1
    assert set(data["results"]) == {"independent", "correlated"}
    for results in data["results"].values():
        for key in ("scipy_loop", "project"):
            assert results[key]["median_s"] > 0 and results[key]["iterations"] == 1
        assert results["project"]["agreement"]["agrees"] is True
        assert results["project"]["agreement"]["matrices"] == 8
        assert results["speedup_project_vs_scipy_loop"] == pytest.approx(
            results["scipy_loop"]["median_s"] / results["project"]["median_s"]
        )
        assert set(results["candidates"]) == {"lapjv", "lapjvx", "lapjvh_batch"}
        for info in results["candidates"].values():
            assert info["agreement"]["agrees"] is True and info["median_s"] > 0


def test_correlated_workload_pairs_students_with_teachers(matching_module):
    """In the correlated workload the optimal teacher-student cost is far below the
    independent one's (students sit next to their teachers)."""
    args = matching_module.build_parser().parse_args(
        ["--student-queries", "20", "--teacher-queries", "20", "--layers", "1", "--classes", "3"]
    )
    totals = {}
    for kind in matching_module.WORKLOADS:
        groups = matching_module.build_workload(args, torch.device("cpu"), kind)
        cost = [g for g in groups if g["kind"] == "teacher_student"][0]["costs"][0].double()
        rows, cols = scipy.optimize.linear_sum_assignment(cost.numpy())
        totals[kind] = cost[rows, cols].sum().item()
    assert totals["correlated"] < totals["independent"] - 20 * 0.5


def test_unknown_candidate_exits_2(matching_module, capsys):
    with pytest.raises(SystemExit) as info:
        matching_module.main(["--candidates", "hungarian9000"])
    assert info.value.code == 2 and "hungarian9000" in capsys.readouterr().err


def test_agreement_detects_a_suboptimal_assignment(matching_module):
    cost = np.array([[1.0, 2.0, 9.0], [2.0, 1.0, 9.0]])
    best = scipy.optimize.linear_sum_assignment(cost)
    same = matching_module.agreement([best], [best], [cost])
    assert same == {
        "agrees": True,
        "max_rel_total_cost_diff": 0.0,
        "identical_assignments": 1,
        "matrices": 1,
    }
    worse = (np.array([0, 1]), np.array([1, 0]))
    report = matching_module.agreement([best], [worse], [cost])
    assert report["agrees"] is False and report["identical_assignments"] == 0
    incomplete = (np.array([0]), np.array([0]))
    assert matching_module.agreement([best], [incomplete], [cost])["agrees"] is False
