"""`python -m detrdistill.demo`: a teacher and three students, one table, two pictures."""

import json
import os

import pytest

from detrdistill import demo

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_format_table_is_markdown():
    row = dict(
        name="DETRDistill", iterations=300, AP=41.25, AP50=60.0, AP75=50.04, params_m=4.2871,
        gflops=0.371, latency_ms=12.345,
    )  # fmt: skip
    header, rule, line = demo.format_table([row]).splitlines()
    assert header.startswith("| model | iterations | AP | AP50 | AP75 | params (M) | GFLOPs |")
    assert rule.count("---") == 8
    assert line == "| DETRDistill | 300 | 41.2 | 60.0 | 50.0 | 4.29 | 0.37 | 12.3 |"


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


def test_teacher_cache_follows_config_and_key(tmp_path):
    stage = demo.Stage("teacher", demo.TEACHER_CONFIG, str(tmp_path), 800, ["train.seed=0"])
    key = demo.teacher_cache_key(stage)
    assert key == demo.teacher_cache_key(stage)
    longer = demo.Stage("teacher", demo.TEACHER_CONFIG, str(tmp_path), 900, ["train.seed=0"])
    assert demo.teacher_cache_key(longer) != key
    other_seed = demo.Stage("teacher", demo.TEACHER_CONFIG, str(tmp_path), 800, ["train.seed=1"])
    assert demo.teacher_cache_key(other_seed) != key

    checkpoint, key_file = tmp_path / "model_final.pth", tmp_path / demo.CACHE_KEY_FILE
    assert not demo.is_cached(str(checkpoint), str(key_file), key)
    checkpoint.write_bytes(b"weights")
    assert not demo.is_cached(str(checkpoint), str(key_file), key)  # no key yet
    key_file.write_text(key + "\n")
    assert demo.is_cached(str(checkpoint), str(key_file), key)
    assert not demo.is_cached(str(checkpoint), str(key_file), demo.teacher_cache_key(longer))


def test_cache_key_ignores_the_demo_itself():
    sources = demo._package_sources()
    assert sources and all(path.endswith(".py") for path in sources)
    assert os.path.abspath(demo.__file__) not in map(os.path.abspath, sources)
    assert any(path.endswith(os.path.join("modeling", "matcher.py")) for path in sources)


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
            "--teacher-iters", "2", "--student-iters", "2", "--eval-every", "1",
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
    assert result["teacher_cached"] is False
    machine = result["machine"]
    assert result["date"] and machine["cpu_logical_cores"] >= 1 and machine["torch"]
    for name in ("ap_vs_iteration.png", "detections.png", "results.json", "results.md"):
        assert (out / name).stat().st_size > 0
    assert (out / "teacher" / demo.CACHE_KEY_FILE).is_file()
    printed = capsys.readouterr().out
    assert "| D3ETR | 2 |" in printed and "train_net.py --config-file d3etr/" in printed
