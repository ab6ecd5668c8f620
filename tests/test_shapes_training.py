"""A short run of a packaged detector config on the embedded shapes data learns something."""

import json

import numpy as np
import pytest
from detectron2.utils.env import seed_all_rng

import detrdistill  # noqa: F401
from detrdistill import model_zoo
from detrdistill.engine import do_train


def _short_run(tmp_path, config: str, tag: str, seed: int = 0) -> tuple[list[dict], list[float]]:
    """60 training steps of ``config`` on 16 embedded images; its metrics records and losses.

    Seeds python, numpy and torch as ``train_net.py`` does (``do_train`` alone does not), so
    the model's initialisation does not depend on the tests run before in the same process.
    """
    cfg = model_zoo.get_config(config)
    cfg.train.seed = seed
    seed_all_rng(seed)
    root = str(tmp_path / "shapes")
    cfg.dataloader.train.dataset.update(name=f"shapes_train_16{tag}", num_images=16, root=root)
    cfg.dataloader.test.dataset.update(name=f"shapes_val_8{tag}", num_images=8, root=root)
    cfg.dataloader.train.update(total_batch_size=4, num_workers=0)
    cfg.dataloader.test.num_workers = 0
    cfg.train.update(max_iter=60, eval_period=0, log_period=1, output_dir=str(tmp_path / "out"))
    cfg.train.checkpointer.period = 1000
    do_train(cfg)
    lines = (tmp_path / "out" / "metrics.json").read_text().splitlines()
    records = [json.loads(line) for line in lines]
    return records, [r["total_loss"] for r in records if "total_loss" in r]


@pytest.mark.slow
def test_short_training_on_embedded_data_lowers_the_loss_and_evaluates(tmp_path):
    records, losses = _short_run(tmp_path, "shapes/deformable_detr_tiny.py", "")
    assert len(losses) == 60
    # measured: the mean falls by 13% over these 60 steps (seed 0, 1 or 2 threads; 13-18% for
    # seeds 0-2)
    assert np.mean(losses[-10:]) < 0.9 * np.mean(losses[:10])
    evaluation = [r for r in records if "bbox/AP" in r]
    assert evaluation, "evaluation after the last iteration wrote no bbox AP"
    assert 0.0 <= evaluation[-1]["bbox/AP50"] <= 100.0


@pytest.mark.slow
def test_short_dino_training_on_embedded_data_lowers_the_loss(tmp_path):
    records, losses = _short_run(tmp_path, "shapes/dino_tiny.py", "_dino")
    assert len(losses) == 60
    assert any("loss_class_enc" in r for r in records)  # the encoder (two-stage) loss
    assert any("loss_class_dn" in r for r in records)  # contrastive denoising
    # measured: the mean falls by 23-24% over these 60 steps (seed 0, 1 or 2 threads; 16-24% for
    # seeds 0-2); unseeded, the initialisation followed the tests before it (6% seen once)
    assert np.mean(losses[-10:]) < 0.9 * np.mean(losses[:10])
    evaluation = [r for r in records if "bbox/AP" in r]
    assert evaluation and 0.0 <= evaluation[-1]["bbox/AP50"] <= 100.0
