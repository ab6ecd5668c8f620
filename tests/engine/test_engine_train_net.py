"""train_net.py end to end on the tiny detector and dataset: training, evaluation, exact resume,
packaged config names and a 2-process CPU (gloo) launch."""

from __future__ import annotations

import glob
import json
import os
import shutil
import subprocess
import sys

import pytest
import torch

import train_net
from detrdistill.engine import resolve_config_file
from tests.helpers import write_tiny_config


def run(config_file: str, *flags_and_overrides: str):
    args = train_net.argument_parser().parse_args(
        ["--config-file", config_file, *flags_and_overrides]
    )
    return train_net.main(args)


def read_metrics(output_dir) -> list[dict]:
    with open(os.path.join(output_dir, "metrics.json")) as f:
        return [json.loads(line) for line in f]


def load_checkpoint(path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)


@pytest.fixture
def tiny_config(tmp_path):
    def make(**options) -> str:
        return write_tiny_config(
            str(tmp_path / "tiny_config.py"),
            str(tmp_path / "data"),
            str(tmp_path / "out"),
            **options,
        )

    return make


def test_train_lowers_loss_writes_outputs_and_evaluates(tiny_config, tmp_path):
    config = tiny_config(max_iter=25)
    trainer = run(config, "train.loss_weight_schedules.loss_bbox=0.5")
    out = tmp_path / "out"
    assert trainer.iter == 25

    metrics = [m for m in read_metrics(out) if "total_loss" in m]
    assert [m["iteration"] for m in metrics] == list(range(25))
    assert metrics[-1]["total_loss"] < 0.8 * metrics[0]["total_loss"]
    assert all("[metric]grad_norm" in m and "lr" in m for m in metrics)
    assert all(m["[metric]weight_factor/bbox"] == 0.5 for m in metrics)  # CLI-set loss schedule
    # the EvalHook ran after the last iteration and its results reached the writers
    final = read_metrics(out)[-1]
    assert {"bbox/AP", "bbox/AP50", "bbox/AP75"} <= set(final)

    log = (out / "log.txt").read_text()
    assert "eta: " in log and "iter: 24" in log
    assert glob.glob(str(out / "events.out.tfevents.*"))
    assert (out / "config.yaml").is_file() and not (out / "config.yaml.pkl").exists()
    assert (out / "model_final.pth").is_file()

    results = run(config, "--eval-only", f"train.init_checkpoint={out / 'model_final.pth'}")
    assert set(results["bbox"]) >= {"AP", "AP50", "AP75", "APs", "APm", "APl"}
    assert 0.0 <= results["bbox"]["AP50"] <= 100.0


def test_resume_continues_exactly(tiny_config, tmp_path):
    # 2 images at batch size 2: every batch holds the same images, so the data stream is the same
    # after resuming; the loss is a batch mean, so image order does not matter.
    config = tiny_config(num_images=2, batch_size=2, max_iter=4)
    full = tmp_path / "full"
    run(config, f"train.output_dir={full}")
    assert (full / "model_0000001.pth").is_file()  # checkpoint period 2

    resumed = tmp_path / "resumed"
    resumed.mkdir()
    shutil.copy(full / "model_0000001.pth", resumed / "model_0000001.pth")
    (resumed / "last_checkpoint").write_text("model_0000001.pth")
    trainer = run(config, "--resume", f"train.output_dir={resumed}")
    assert trainer.start_iter == 2 and trainer.iter == 4
    assert [m["iteration"] for m in read_metrics(resumed) if "total_loss" in m] == [2, 3]

    a = load_checkpoint(full / "model_final.pth")
    b = load_checkpoint(resumed / "model_final.pth")
    assert a["iteration"] == b["iteration"] == 3
    assert a["model"].keys() == b["model"].keys()
    for key in a["model"]:
        torch.testing.assert_close(b["model"][key], a["model"][key], rtol=0, atol=1e-6)
    opt_a, opt_b = a["trainer"]["optimizer"], b["trainer"]["optimizer"]
    assert opt_a["param_groups"] == opt_b["param_groups"]  # includes the decayed LR (step at 3)
    for index, state in opt_a["state"].items():
        for name, value in state.items():
            torch.testing.assert_close(opt_b["state"][index][name], value, rtol=0, atol=1e-6)
    # the LR schedule continued: iteration 3 ran at 0.1x (decay at 80% of max_iter=4)
    lrs = {m["iteration"]: m["lr"] for m in read_metrics(resumed) if "lr" in m}
    assert lrs[3] == pytest.approx(0.1 * lrs[2])


def test_seeded_runs_are_reproducible(tiny_config, tmp_path):
    config = tiny_config(max_iter=2)
    run(config, f"train.output_dir={tmp_path / 'a'}", "train.eval_period=1000")
    run(config, f"train.output_dir={tmp_path / 'b'}", "train.eval_period=1000")
    a = load_checkpoint(tmp_path / "a" / "model_final.pth")["model"]
    b = load_checkpoint(tmp_path / "b" / "model_final.pth")["model"]
    for key in a:
        torch.testing.assert_close(b[key], a[key], rtol=0, atol=0)


def test_config_file_accepts_packaged_names(tmp_path):
    path = resolve_config_file("DETRDistill/common/train")
    assert path.endswith(os.path.join("configs", "common", "train.py")) and os.path.isfile(path)
    assert resolve_config_file(path) == path
    with pytest.raises(RuntimeError, match="common/train.py"):
        resolve_config_file("common/trian.py")


def test_dist_url_auto_refused_for_several_machines(monkeypatch, capsys):
    monkeypatch.setattr(
        sys, "argv", ["train_net.py", "--config-file", "x.py", "--num-machines", "2"]
    )
    with pytest.raises(SystemExit):
        train_net.invoke_main()
    assert "--dist-url" in capsys.readouterr().err


@pytest.mark.slow
def test_two_process_cpu_launch(tiny_config, tmp_path, repo_root):
    config = tiny_config(num_images=4, batch_size=2, max_iter=2)
    out = tmp_path / "ddp"
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="", OMP_NUM_THREADS="1")
    cmd = [
        sys.executable, str(repo_root / "train_net.py"), "--config-file", config,
        "--num-gpus", "2", "--dist-url", "auto", f"train.output_dir={out}",
    ]  # fmt: skip
    proc = subprocess.run(cmd, cwd=repo_root, env=env, capture_output=True, text=True, timeout=540)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    log = (out / "log.txt").read_text()
    assert "World size: 2" in log
    checkpoint = load_checkpoint(out / "model_final.pth")
    assert checkpoint["iteration"] == 1
    assert [m["iteration"] for m in read_metrics(out) if "total_loss" in m] == [0, 1]
