"""benchmarks/step_cost.py: --help, a 1-iteration smoke run on tiny models, the COCO preset."""

from __future__ import annotations

import json
import sys

import pytest
import torch
from bench_testing import import_benchmark, run_benchmark

import detrdistill  # noqa: F401  (first: it quiets detectron2's import-time jit warning)
from tests.helpers import tiny_pair_overrides

TINY_OPTS = tiny_pair_overrides(num_queries=8)
STATS = {"median_s", "mean_s", "min_s", "max_s", "iterations", "times_s", "peak_memory_mib"}


def run_script(*args: str):
    return run_benchmark("step_cost", *args)


@pytest.fixture(scope="module")
def step_cost_module():
    return import_benchmark("step_cost")


def test_help():
    result = run_script("--help")
    assert result.returncode == 0, result.stderr[-2000:]
    for option in ("--configs", "--iters", "--warmup", "--device", "--output", "--preset"):
        assert option in result.stdout
    assert "--allow-random-teacher" in result.stdout


def test_smoke_run_writes_the_json(tmp_path):
    output = tmp_path / "step_cost.json"
    result = run_script(
        "--iters", "1", "--warmup", "0", "--batch-size", "1", "--image-size", "64", "64",
        "--num-gt", "2", "--device", "cpu", "--output", str(output), *TINY_OPTS,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    data = json.loads(output.read_text())
    assert data["benchmark"] == "step_cost" and data["date"]
    machine = data["machine"]
    for key in ("cpu_model", "cpu_logical_cores", "torch", "cuda_device", "python"):
        assert key in machine
    assert machine["torch"] == torch.__version__ and machine["cuda_device"] is None
    settings = data["settings"]
    assert settings["preset"] == "shapes" and settings["device"] == "cpu"
    assert settings["iters"] == 1 and settings["image_size"] == [64, 64]
    assert settings["allow_random_teacher"] is True
    methods = [entry["method"] for entry in data["results"]]
    assert methods == ["detrdistill", "d3etr"]
    for entry in data["results"]:
        for phase in ("student_train", "teacher_inference", "distill_train"):
            assert STATS <= set(entry[phase]) and entry[phase]["median_s"] > 0
            assert entry[phase]["iterations"] == 1
        expected = entry["distill_train"]["median_s"] / (
            entry["student_train"]["median_s"] + entry["teacher_inference"]["median_s"]
        )
        assert entry["ratio"] == pytest.approx(expected)
        assert entry["student"]["num_queries"] == 8 and entry["teacher"]["decoder_layers"] == 3
        assert entry["student"]["parameters"] < entry["teacher"]["parameters"]
    assert data["results"][0]["losses"] == ["feature", "logits", "query_prior"]
    assert data["results"][1]["losses"] == ["adaptive", "fixed"]
    assert "ratio" in result.stdout


def test_bad_config_exits_2(step_cost_module, tmp_path, capsys):
    argv = ["--configs", "detrdistill/no_such_config.py", "--output", str(tmp_path / "x.json")]
    with pytest.raises(SystemExit) as info:
        step_cost_module.main(argv)
    assert info.value.code == 2 and "no_such_config" in capsys.readouterr().err
    assert not (tmp_path / "x.json").exists()


def test_coco_preset_builds_r101_teacher_and_r50_student(step_cost_module):
    configs = step_cost_module.load_configs("coco", None, ["model.student.num_queries=100"])
    assert [c.method for c in configs] == ["detrdistill", "d3etr"]
    for item in configs:
        student, teacher = item.cfg.model.student, item.cfg.model.teacher
        assert (student.backbone.depth, teacher.backbone.depth) == (50, 101)
        assert student.num_queries == 100 and teacher.num_queries == 300  # opts applied
        assert student.decoder.num_layers == teacher.decoder.num_layers == 6
        assert student.num_classes == teacher.num_classes == 80
        assert "deformable_detr_r101_to_r50_50ep.py" in item.name  # the packaged pair
    feature = configs[0].cfg.model.losses.feature
    assert feature.student_channels == 256 and feature.num_levels == 4
    assert step_cost_module.PRESETS["coco"] == dict(batch_size=2, image_size=(800, 1333), num_gt=7)


def test_synthetic_batch_is_fixed_and_valid(step_cost_module):
    first = step_cost_module.synthetic_batch(2, 40, 60, 3, 80, seed=1)
    second = step_cost_module.synthetic_batch(2, 40, 60, 3, 80, seed=1)
    for a, b in zip(first, second):
        assert torch.equal(a["image"], b["image"]) and a["image"].shape == (3, 40, 60)
        boxes = a["instances"].gt_boxes.tensor
        assert torch.equal(boxes, b["instances"].gt_boxes.tensor) and boxes.shape == (3, 4)
        assert (boxes[:, 2:] > boxes[:, :2]).all()
        assert (boxes[:, [0, 2]] <= 60).all() and (boxes[:, [1, 3]] <= 40).all()
        assert (boxes >= 0).all() and (a["instances"].gt_classes < 80).all()


def test_measure_interleaved_runs_steps_in_turns(step_cost_module):
    """Each round calls every step once, in order; medians come from each step's own times."""
    bench = sys.modules["_benchlib"]
    calls = []

    def fast():
        calls.append("fast")

    def slow():
        calls.append("slow")
        sum(range(200_000))

    timed = bench.measure_interleaved({"fast": fast, "slow": slow}, 3, torch.device("cpu"))
    assert calls == ["fast", "slow"] * 3
    assert timed["fast"]["iterations"] == timed["slow"]["iterations"] == 3
    assert timed["slow"]["median_s"] > timed["fast"]["median_s"]
