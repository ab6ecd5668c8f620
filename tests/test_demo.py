"""`python -m detrdistill.demo`: the table of pairs, the failing Conditional pair, the progress
and evaluation lines, logs to files (not the screen), one table and four pictures."""

import io
import json
import logging
import os
import re
import subprocess
import sys
import time

import pytest

from detrdistill import demo
from detrdistill.tools import demo_progress

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


def detectron2_evaluations(iters: int, period: int) -> list[int]:
    """Iterations (finished) after which detectron2's EvalHook evaluates: the multiples of the
    period below max_iter, and after the last iteration."""
    return [*range(period, iters, period), iters]


def test_eval_period_gives_the_asked_evaluations():
    assert detectron2_evaluations(500, demo.eval_period(500, 6)) == [84, 168, 252, 336, 420, 500]
    for iters, evals in ((600, 6), (7, 3), (10, 4), (30, 2), (4, 2)):
        assert len(detectron2_evaluations(iters, demo.eval_period(iters, evals))) == evals
    assert detectron2_evaluations(2, demo.eval_period(2, 6)) == [1, 2]  # every iteration
    # 9 iterations cannot hold 4 evenly spaced ones ending at 9: one more rather than one less
    assert len(detectron2_evaluations(9, demo.eval_period(9, 4))) == 5


def test_read_eval_history(tmp_path):
    with pytest.raises(FileNotFoundError, match="metrics.json does not exist"):
        demo.read_eval_history(str(tmp_path), 20)
    rows = [
        {"iteration": 9, "total_loss": 3.0},
        {"iteration": 9, "bbox/AP": 1.5, "bbox/AP50": 4.0, "bbox/AP75": 0.5},
        {"iteration": 19, "bbox/AP": 7.0, "bbox/AP50": 12.0, "bbox/AP75": 6.0},
    ]
    (tmp_path / "metrics.json").write_text("\n".join(json.dumps(r) for r in rows[:1]))
    with pytest.raises(ValueError, match="no bbox evaluation"):
        demo.read_eval_history(str(tmp_path), 20)
    (tmp_path / "metrics.json").write_text("\n".join(json.dumps(r) for r in rows))
    # evaluations are logged at the 0-based index of the last finished iteration
    assert demo.read_eval_history(str(tmp_path), 20) == [
        {"iteration": 10, "AP": 1.5, "AP50": 4.0, "AP75": 0.5},
        {"iteration": 20, "AP": 7.0, "AP50": 12.0, "AP75": 6.0},
    ]


def test_the_default_pair_is_the_shipped_deformable_teacher_and_smaller_students():
    from detrdistill.checkpoint import SHIPPED
    from detrdistill.model_zoo import get_config

    pair = demo.resolve_pair(demo.DEFAULT_PAIR)
    assert pair.name == "deformable" and pair.missing() == []
    shipped = SHIPPED[pair.teacher_weights.removeprefix("detrdistill://shipped/")]
    assert shipped.config == pair.teacher_config
    assert [name for name, _ in pair.students] == ["baseline", "DETRDistill", "D3ETR"]
    teacher = get_config(pair.teacher_config).model
    for name, config in pair.students:
        cfg = get_config(config).model
        student = cfg.get("student", cfg)
        assert student.hidden_dim < teacher.hidden_dim
        assert student.backbone.width < teacher.backbone.width
        if name != "baseline":  # the distillation configs read the same shipped teacher
            assert cfg.teacher_weights == pair.teacher_weights
            assert cfg.teacher.hidden_dim == teacher.hidden_dim


def test_pair_missing_names_exactly_what_is_absent():
    pair = demo.PAIRS["deformable"]
    broken = demo.DemoPair(
        name="broken",
        title="Broken DETR",
        teacher_config=pair.teacher_config,
        teacher_weights="detrdistill://shipped/nothing.pth",
        students=(pair.students[0], ("DETRDistill", "detrdistill/no_such_config.py")),
    )
    missing = broken.missing()
    assert len(missing) == 2
    assert "detrdistill://shipped/nothing.pth" in missing[0]
    assert missing[1] == "the packaged config(s) detrdistill/no_such_config.py"


def test_each_pair_has_its_own_default_output_dir():
    assert demo.default_output_dir("deformable") == "./output/demo"
    assert demo.default_output_dir("conditional") == "./output/demo_conditional"


def test_conditional_pair_is_runnable():
    pair = demo.resolve_pair("conditional")
    assert pair.missing() == []
    assert pair.teacher_config == "shapes/conditional_detr_tiny_teacher.py"
    assert [label for label, _ in pair.students] == ["baseline", "DETRDistill", "D3ETR"]


def test_bad_arguments_exit_2(tmp_path, monkeypatch):
    with pytest.raises(SystemExit) as info:
        demo.main(["--iters", "0"])
    assert info.value.code == 2
    with pytest.raises(SystemExit) as info:
        demo.main(["--pair", "nope"])
    assert info.value.code == 2
    monkeypatch.chdir(tmp_path)  # no train_net.py here
    with pytest.raises(SystemExit) as info:
        demo.main([])
    assert info.value.code == 2


def test_quiet_warnings_are_the_makefiles_and_silence_the_import():
    with open(os.path.join(REPO, "Makefile")) as f:
        makefile = f.read()
    (setting,) = re.findall(r"^DEMO_WARNINGS := (.*)$", makefile, re.M)
    assert setting == demo.pythonwarnings()
    assert "PYTHONWARNINGS='$(DEMO_WARNINGS)'" in makefile and "--pair $(PAIR)" in makefile
    env = dict(os.environ, PYTHONWARNINGS=demo.pythonwarnings())
    result = subprocess.run(
        [sys.executable, "-c", "import detrdistill.demo"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert "Warning" not in result.stderr, result.stderr


def test_importing_the_package_is_silent_without_any_filter():
    """``python -m detrdistill.demo`` imports the package before demo.py can set a filter."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONWARNINGS"}
    result = subprocess.run(
        [sys.executable, "-W", "default", "-c", "import detrdistill"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert "Warning" not in result.stderr, result.stderr


def test_eval_line_format():
    metrics = {"iteration": 84, "AP": 12.345, "AP50": 30.0, "AP75": 9.0}
    line = demo_progress.eval_line("baseline", metrics, 500)
    assert line == "  eval baseline     iter   84/500   AP  12.3  AP50  30.0"
    assert demo_progress.eval_line("teacher", metrics).endswith("AP  12.3  AP50  30.0")
    assert "iter" not in demo_progress.eval_line("teacher", metrics)


def test_metrics_follower_returns_complete_new_rows_only(tmp_path):
    path = tmp_path / "metrics.json"
    follower = demo_progress.MetricsFollower(str(path))
    assert follower.new_rows() == []  # not written yet
    path.write_text('{"iteration": 0, "total_loss": 2.0}\n{"iteration": 1, "tot')
    assert follower.new_rows() == [{"iteration": 0, "total_loss": 2.0}]
    with open(path, "a") as f:
        f.write('al_loss": 1.5}\n')
    assert follower.new_rows() == [{"iteration": 1, "total_loss": 1.5}]
    assert follower.new_rows() == []


def test_stage_bar_shows_count_eta_and_loss():
    stream = io.StringIO()
    with demo_progress.stage_bar("DETRDistill", 500, stream) as bar:
        bar.update(100)
        bar.set_postfix_str("loss 12.345")
    last = stream.getvalue().split("\r")[-1].strip()
    assert re.fullmatch(
        r"DETRDistill\s+20%\|[^|]{24}\| 100/500 it \[\d\d:\d\d<\d\d:\d\d, loss 12\.345\]", last
    ), last


def test_log_to_file_takes_logs_prints_and_warnings_off_the_screen(tmp_path, capsys):
    path = tmp_path / "stage" / "log.txt"
    with demo_progress.log_to_file(str(path)):
        logging.getLogger("detectron2.evaluation").info("inference done")
        print("Average Precision (AP) table")
        print("a warning", file=sys.stderr)
    logging.getLogger("detectron2.evaluation").info("after the block")
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""
    text = path.read_text()
    assert "detectron2.evaluation INFO] inference done" in text
    assert "Average Precision (AP) table" in text and "a warning" in text
    assert "after the block" not in text


def test_log_to_file_also_takes_detectron2s_own_logger(tmp_path, capsys):
    """After detectron2's setup_logger (own stdout handler, no propagation), e.g. when another
    part of the process trained before, its records still go to the file only."""
    from detectron2.utils.logger import setup_logger

    logger = setup_logger(name="detectron2_demo_test")
    handlers, propagate = list(logger.handlers), logger.propagate
    path = tmp_path / "log.txt"
    with demo_progress.log_to_file(str(path)):
        logger.info("evaluation tables")
    captured = capsys.readouterr()
    assert "evaluation tables" not in captured.out + captured.err
    assert "evaluation tables" in path.read_text()
    assert logger.handlers == handlers and logger.propagate == propagate
    logger.info("afterwards on screen again")
    assert "afterwards on screen again" in capsys.readouterr().out


def test_run_training_follows_metrics_and_reports_failures(tmp_path):
    out = tmp_path / "run"
    rows = [
        {"iteration": 0, "total_loss": 5.0},
        {"iteration": 1, "bbox/AP": 1.0, "bbox/AP50": 2.0, "bbox/AP75": 0.5},
        {"iteration": 3, "total_loss": 4.0},
        {"iteration": 3, "bbox/AP": 3.0, "bbox/AP50": 6.0, "bbox/AP75": 1.5},
    ]
    script = (
        "import json, sys, time\n"
        f"rows = {rows!r}\n"
        "print('Environment info: noise')\n"
        f"with open({str(out / 'metrics.json')!r}, 'a') as f:\n"
        "    for row in rows:\n"
        "        f.write(json.dumps(row) + '\\n'); f.flush(); time.sleep(0.05)\n"
    )
    stream = io.StringIO()
    history = demo_progress.run_training(
        "baseline", [sys.executable, "-c", script], str(out), 4, stream, poll_seconds=0.02
    )
    assert [h["iteration"] for h in history] == [2, 4]
    screen = stream.getvalue()
    assert "Environment info" not in screen
    assert (out / "console.txt").read_text().startswith("Environment info: noise")
    evals = [line for line in screen.replace("\r", "\n").splitlines() if "eval" in line]
    assert evals == [
        "  eval baseline     iter    2/4     AP   1.0  AP50   2.0",
        "  eval baseline     iter    4/4     AP   3.0  AP50   6.0",
    ]
    assert "4/4 it" in screen and "loss 4.000" in screen

    failing = [sys.executable, "-c", "import sys; print('boom'); sys.exit(3)"]
    with pytest.raises(demo_progress.TrainingFailed, match=r"exit 3\).*console.txt(.|\n)*boom"):
        demo_progress.run_training("D3ETR", failing, str(tmp_path / "bad"), 4, io.StringIO())


TINY_DATA = [
    "dataloader.train.dataset.name=demo_train",
    "dataloader.train.dataset.num_images=4",
    "dataloader.test.dataset.name=demo_val",
    "dataloader.test.dataset.num_images=3",
    "dataloader.train.total_batch_size=2",
    "dataloader.train.num_workers=0",
    "dataloader.test.num_workers=0",
]
# what detectron2 writes to log.txt and must not reach the screen
ENV_DUMP = "Environment info"
CONFIG_ECHO = "Full config saved to"


@pytest.mark.slow
def test_demo_runs_end_to_end_on_a_tiny_split(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(REPO)
    root = str(tmp_path / "data")
    out = tmp_path / "out"
    data = [*TINY_DATA, f"dataloader.train.dataset.root={root}"]
    data.append(f"dataloader.test.dataset.root={root}")
    begin = time.perf_counter()
    argv = ["--iters", "4", "--evals", "2", "--latency-images", "3", "--output-dir", str(out)]
    result = demo.main([*argv, *data])
    seconds = time.perf_counter() - begin
    names = [row["name"] for row in result["rows"]]
    assert names == ["teacher", "baseline", "DETRDistill", "D3ETR"]
    for row in result["rows"]:
        assert row["params_m"] > 0 and row["gflops"] > 0 and row["latency_ms"] > 0
        assert 0 <= row["AP"] <= 100
    # every student evaluated twice, on the same schedule
    for name in ("baseline", "DETRDistill", "D3ETR"):
        assert [h["iteration"] for h in result["histories"][name]] == [2, 4]
    assert result["teacher"] == demo.PAIRS["deformable"].teacher_weights
    assert result["pair"] == "deformable" and result["seconds"] <= seconds
    machine = result["machine"]
    assert result["date"] and machine["cpu_logical_cores"] >= 1 and machine["torch"]
    pictures = ("detections.png", "matches.png", "attention.png", "ap_vs_iteration.png")
    for name in (*pictures, "results.json", "results.md", "log.txt"):
        assert (out / name).stat().st_size > 0
    assert sorted(os.path.basename(p) for p in result["pictures"].values()) == sorted(pictures)

    captured = capsys.readouterr()
    screen = captured.out + captured.err
    # logs and configs are files: detectron2's environment dump and config echo are there ...
    for stage in ("teacher", "baseline", "detrdistill", "d3etr"):
        assert (out / stage / "config.yaml").stat().st_size > 0
        assert str(out / stage / "log.txt") in screen  # the paths are printed
    for stage in ("baseline", "detrdistill", "d3etr"):
        log = (out / stage / "log.txt").read_text()
        assert ENV_DUMP in log and CONFIG_ECHO in log
    assert "Average Precision" in (out / "teacher" / "log.txt").read_text()
    # ... and not on the screen, nor pycocotools' tables, model dumps or warnings
    for noise in (ENV_DUMP, CONFIG_ECHO, "Average Precision", "Model:", "Warning"):
        assert noise not in screen, noise
    lines = screen.replace("\r", "\n").splitlines()
    assert not [line for line in lines if re.match(r"[WE]\d{4} ", line)]  # torch's C++ log
    for name in ("baseline", "DETRDistill", "D3ETR"):
        evals = [line for line in lines if line.startswith(f"  eval {name} ")]
        assert len(evals) == 2
        for line, iteration in zip(evals, (2, 4)):
            pattern = rf"  eval {name}\s+iter\s+{iteration}/4\s+AP\s+\d+\.\d  AP50\s+\d+\.\d"
            assert re.fullmatch(pattern, line), line
        bars = [line for line in lines if line.startswith(name) and "100%|" in line]
        assert bars and re.search(r"4/4 it \[\d\d:\d\d<\d\d:\d\d, loss \d+\.\d{3}\]", bars[-1])
    assert any(re.fullmatch(r"teacher\s+100%\|.*\| 3/3 img .*", line) for line in lines)
    assert [line for line in lines if line.startswith("  eval teacher ")]
    assert "| D3ETR | 4 |" in screen and "train_net.py --config-file d3etr/" in screen

    # the pictures can be redrawn from the trained students without training again
    again = demo.main([*argv, "--skip-training", *data])
    assert again["histories"] == result["histories"]
    assert "train_net.py" not in capsys.readouterr().out
    with pytest.raises(SystemExit) as info:  # they trained 4 iterations, not 5
        demo.main(["--iters", "5", *argv[2:], "--skip-training", *data])
    assert info.value.code == 2 and "pass --iters 4" in capsys.readouterr().err
