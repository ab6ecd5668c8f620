"""`python -m detrdistill.demo`: the shipped teacher and three smaller students, one table, two
pictures."""

import json
import os

import pytest

from detrdistill import demo

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_format_table_is_markdown():
    teacher = dict(
        name="teacher", iterations=4000, AP=80.0, AP50=95.0, AP75=90.0, params_m=4.2871,
        gflops=0.496, latency_ms=30.0,
    )  # fmt: skip
    row = dict(
        name="DETRDistill", iterations=300, AP=41.25, AP50=60.0, AP75=50.04, params_m=1.0283,
        gflops=0.108, latency_ms=12.0,
    )  # fmt: skip
    header, rule, first, line = demo.format_table([teacher, row]).splitlines()
    assert header.startswith("| model | iterations | AP | AP50 | AP75 | % of teacher AP |")
    assert header.endswith("| speed-up vs teacher |")
    assert rule.count("---") == 10
    assert first.endswith("| 100% | 4.29 | 0.50 | 30.0 | 1.0x |")
    assert line == "| DETRDistill | 300 | 41.2 | 60.0 | 50.0 | 52% | 1.03 | 0.11 | 12.0 | 2.5x |"


def test_eval_period_gives_at_least_the_asked_evaluations():
    for iters, evals in ((500, 6), (2, 6), (7, 3), (600, 6)):
        period = demo.eval_period(iters, evals)
        assert period >= 1 and len(range(period, iters + 1, period)) >= min(evals, iters)


def test_read_eval_history(tmp_path):
    with pytest.raises(FileNotFoundError, match="metrics.json does not exist"):
        demo.read_eval_history(str(tmp_path), 20)
    rows = [
        {"iteration": 9, "total_loss": 3.0},
        {"iteration": 9, "bbox/AP": 1.5, "bbox/AP50": 4.0, "bbox/AP75": 0.5},
        {"iteration": 20, "bbox/AP": 7.0, "bbox/AP50": 12.0, "bbox/AP75": 6.0},
    ]
    (tmp_path / "metrics.json").write_text("\n".join(json.dumps(r) for r in rows[:1]))
    with pytest.raises(ValueError, match="no bbox evaluation"):
        demo.read_eval_history(str(tmp_path), 20)
    (tmp_path / "metrics.json").write_text("\n".join(json.dumps(r) for r in rows))
    # periodic evaluations are logged at the 0-based iteration, the final one at max_iter
    assert demo.read_eval_history(str(tmp_path), 20) == [
        {"iteration": 10, "AP": 1.5, "AP50": 4.0, "AP75": 0.5},
        {"iteration": 20, "AP": 7.0, "AP50": 12.0, "AP75": 6.0},
    ]


def test_demo_uses_the_shipped_teacher_and_smaller_students():
    from detrdistill.checkpoint import SHIPPED
    from detrdistill.model_zoo import get_config

    assert demo.TEACHER_WEIGHTS.removeprefix("detrdistill://shipped/") in SHIPPED
    teacher = get_config(demo.TEACHER_CONFIG).model
    for _, config in demo.STUDENTS:
        cfg = get_config(config).model
        student = cfg.get("student", cfg)
        assert student.hidden_dim < teacher.hidden_dim
        assert student.backbone.width < teacher.backbone.width


def test_bad_arguments_exit_2(tmp_path, monkeypatch):
    with pytest.raises(SystemExit) as info:
        demo.main(["--student-iters", "0"])
    assert info.value.code == 2
    monkeypatch.chdir(tmp_path)  # no train_net.py here
    with pytest.raises(SystemExit) as info:
        demo.main([])
    assert info.value.code == 2


@pytest.mark.slow
def test_demo_runs_end_to_end_on_a_tiny_split(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(REPO)
    root = str(tmp_path / "data")
    out = tmp_path / "out"
    result = demo.main(
        [
            "--student-iters", "2", "--evals", "2",
            "--latency-images", "2", "--output-dir", str(out),
            "dataloader.train.dataset.name=demo_train",
            "dataloader.train.dataset.num_images=4",
            f"dataloader.train.dataset.root={root}",
            "dataloader.test.dataset.name=demo_val",
            "dataloader.test.dataset.num_images=2",
            f"dataloader.test.dataset.root={root}",
            "dataloader.train.total_batch_size=2",
            "dataloader.train.num_workers=0",
            "dataloader.test.num_workers=0",
        ]
    )  # fmt: skip
    names = [row["name"] for row in result["rows"]]
    assert names == ["teacher", "baseline", "DETRDistill", "D3ETR"]
    for row in result["rows"]:
        assert row["params_m"] > 0 and row["gflops"] > 0 and row["latency_ms"] > 0
        assert 0 <= row["AP"] <= 100
    # every student evaluated after each iteration, on the same schedule
    for name in ("baseline", "DETRDistill", "D3ETR"):
        assert [h["iteration"] for h in result["histories"][name]] == [1, 2]
    assert result["teacher"] == demo.TEACHER_WEIGHTS
    machine = result["machine"]
    assert result["date"] and machine["cpu_logical_cores"] >= 1 and machine["torch"]
    for name in ("ap_vs_iteration.png", "detections.png", "results.json", "results.md"):
        assert (out / name).stat().st_size > 0
    printed = capsys.readouterr().out
    assert "| D3ETR | 2 |" in printed and "train_net.py --config-file d3etr/" in printed
