"""Every user tool in detrdistill.tools: ``--help`` works as ``python -m``, and bad paths end
with exit code 2 and the path named on stderr."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from detrdistill.tools import (
    export_student,
    model_stats,
    visualize_detections,
    visualize_distillation,
)

TOOLS = ["visualize_detections", "visualize_distillation", "model_stats", "export_student"]
DETECTOR = "shapes/deformable_detr_tiny.py"
DISTILL = "detrdistill/shapes_deformable_tiny.py"


@pytest.mark.parametrize("tool", TOOLS)
def test_help_exits_zero(tool):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    result = subprocess.run(
        [sys.executable, "-m", f"detrdistill.tools.{tool}", "--help"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "usage:" in result.stdout
    assert "--" in result.stdout


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    image = root / "image.png"
    Image.fromarray(np.full((40, 50, 3), 90, np.uint8)).save(image)
    checkpoint = root / "weights.pth"
    torch.save({"model": {"backbone.weight": torch.zeros(1)}}, checkpoint)
    not_an_image = root / "notes.png"
    not_an_image.write_text("not a picture")
    return {
        "root": root,
        "image": str(image),
        "checkpoint": str(checkpoint),
        "text": str(not_an_image),
    }


def run_main(main, argv, capsys):
    with pytest.raises(SystemExit) as info:
        main(argv)
    return info.value.code, capsys.readouterr().err


def test_visualize_detections_names_missing_paths(files, capsys):
    missing = str(files["root"] / "missing.png")
    code, err = run_main(
        visualize_detections.main,
        ["--config-file", DETECTOR, "--checkpoint", files["checkpoint"], "--input", missing],
        capsys,
    )
    assert code == 2 and missing in err and "input image" in err

    missing = str(files["root"] / "missing.pth")
    code, err = run_main(
        visualize_detections.main,
        ["--config-file", DETECTOR, "--checkpoint", missing, "--input", files["image"]],
        capsys,
    )
    assert code == 2 and missing in err and "checkpoint" in err

    missing = str(files["root"] / "missing_config.py")
    code, err = run_main(
        visualize_detections.main,
        ["--config-file", missing, "--checkpoint", files["checkpoint"], "--input", files["image"]],
        capsys,
    )
    assert code == 2 and missing in err and "config" in err


def test_visualize_detections_rejects_a_file_that_is_no_image(files, capsys):
    code, err = run_main(
        visualize_detections.main,
        ["--config-file", DETECTOR, "--checkpoint", files["checkpoint"], "--input", files["text"]],
        capsys,
    )
    assert code == 2 and files["text"] in err and "could not read input image" in err


def test_visualize_detections_teacher_flag_needs_a_distillation_config(files, capsys):
    argv = ["--config-file", DETECTOR, "--checkpoint", files["checkpoint"]]
    code, err = run_main(
        visualize_detections.main, [*argv, "--input", files["image"], "--teacher"], capsys
    )
    assert code == 2 and "--teacher needs a distillation config" in err


def test_visualize_distillation_names_missing_paths(files, capsys):
    out = str(files["root"] / "out")
    missing = str(files["root"] / "missing.png")
    code, err = run_main(
        visualize_distillation.main,
        ["--config-file", DISTILL, "--input", missing, "--output-dir", out],
        capsys,
    )
    assert code == 2 and missing in err

    missing = str(files["root"] / "missing.pth")
    argv = ["--config-file", DISTILL, "--checkpoint", missing]
    code, err = run_main(
        visualize_distillation.main, [*argv, "--input", files["image"], "--output-dir", out], capsys
    )
    assert code == 2 and missing in err

    code, err = run_main(
        visualize_distillation.main,
        ["--config-file", "detrdistill/no_such.py", "--input", files["image"], "--output-dir", out],
        capsys,
    )
    assert code == 2 and "detrdistill/no_such.py" in err


def test_visualize_distillation_missing_teacher_weights_is_named(files, capsys):
    # without --checkpoint the teacher comes from model.teacher_weights, which is not there
    missing = str(files["root"] / "teacher_final.pth")
    code, err = run_main(
        visualize_distillation.main,
        [
            "--config-file",
            DISTILL,
            "--input",
            files["image"],
            "--output-dir",
            str(files["root"] / "out"),
            f"model.teacher_weights={missing}",
        ],
        capsys,
    )
    assert code == 2 and missing in err


def test_visualize_distillation_rejects_plain_configs_and_checkpoints(files, capsys):
    out = str(files["root"] / "out")
    code, err = run_main(
        visualize_distillation.main,
        ["--config-file", DETECTOR, "--input", files["image"], "--output-dir", out],
        capsys,
    )
    assert code == 2 and "not a distillation config" in err
    argv = ["--config-file", DISTILL, "--checkpoint", files["checkpoint"]]
    code, err = run_main(
        visualize_distillation.main, [*argv, "--input", files["image"], "--output-dir", out], capsys
    )
    assert code == 2 and files["checkpoint"] in err and "not a distillation checkpoint" in err


def test_model_stats_names_missing_config(files, capsys):
    missing = str(files["root"] / "nope.py")
    code, err = run_main(model_stats.main, ["--config-file", missing], capsys)
    assert code == 2 and missing in err
    code, err = run_main(
        model_stats.main, ["--config-file", DETECTOR, "model.no_such_key=1"], capsys
    )
    assert code == 2 and "no_such_key" in err


def test_export_student_names_missing_checkpoint(files, capsys):
    missing = str(files["root"] / "run.pth")
    code, err = run_main(export_student.main, [missing, str(files["root"] / "s.pth")], capsys)
    assert code == 2 and missing in err


def test_export_student_writes_the_student(files, tmp_path):
    state = {"student.head.weight": torch.ones(2), "teacher.head.weight": torch.zeros(2)}
    torch.save({"model": state}, tmp_path / "run.pth")
    export_student.main([str(tmp_path / "run.pth"), str(tmp_path / "student.pth")])
    exported = torch.load(tmp_path / "student.pth", weights_only=True)["model"]
    assert list(exported) == ["head.weight"]
    assert torch.equal(exported["head.weight"], torch.ones(2))
