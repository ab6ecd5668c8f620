"""``train_net.py --resume`` continues a run exactly: same batches (order and augmentation), same
losses and weights as an uninterrupted run, with the packaged shapes config and its loader
workers; the trainer checkpoint keeps the data seed."""

from __future__ import annotations

import shutil

import torch

import train_net

CONFIG = "shapes/deformable_detr_tiny.py"


def run(*flags_and_overrides: str):
    args = train_net.argument_parser().parse_args(["--config-file", CONFIG, *flags_and_overrides])
    return train_net.main(args)


def tiny_overrides(tmp_path, output_dir, max_iter=6) -> list[str]:
    """8 shapes images at batch 2 (4 batches an epoch), a small model, the config's workers."""
    root, tag = tmp_path / "data", tmp_path.name  # dataset names are global: one per test
    return [
        f"dataloader.train.dataset.name=resume_train_{tag}",
        "dataloader.train.dataset.num_images=8",
        f"dataloader.train.dataset.root={root}",
        "dataloader.train.total_batch_size=2",
        f"dataloader.test.dataset.name=resume_val_{tag}",
        "dataloader.test.dataset.num_images=2",
        f"dataloader.test.dataset.root={root}",
        "dataloader.test.num_workers=0",
        "model.backbone.width=8",
        "model.num_queries=6",
        f"train.max_iter={max_iter}",
        "train.eval_period=0",
        "train.log_period=1",
        "train.checkpointer.period=3",
        f"train.output_dir={output_dir}",
    ]


def losses(trainer) -> dict[int, float]:
    return {it: value for value, it in trainer.storage.history("total_loss").values()}


def test_resume_from_own_checkpoint_continues_exactly(tmp_path):
    full_dir, resumed_dir = tmp_path / "full", tmp_path / "resumed"
    full = run(*tiny_overrides(tmp_path, full_dir))  # 2 loader workers, the packaged default
    assert (full_dir / "model_0000002.pth").is_file()  # after iterations 0..2

    resumed_dir.mkdir()
    shutil.copy(full_dir / "model_0000002.pth", resumed_dir)
    (resumed_dir / "last_checkpoint").write_text("model_0000002.pth")
    resumed = run("--resume", *tiny_overrides(tmp_path, resumed_dir))
    assert resumed.start_iter == 3 and resumed.iter == 6

    a, b = losses(full), losses(resumed)
    assert sorted(b) == [3, 4, 5]
    diff = max(abs(a[it] - b[it]) for it in b)
    assert diff <= 1e-6, f"losses after resuming differ by up to {diff}"
    final_a = torch.load(full_dir / "model_final.pth", weights_only=True)
    final_b = torch.load(resumed_dir / "model_final.pth", weights_only=True)
    for key, value in final_a["model"].items():
        torch.testing.assert_close(final_b["model"][key], value, rtol=0, atol=1e-6, msg=key)
    assert final_a["trainer"]["data_loader"] == final_b["trainer"]["data_loader"]
    # not vacuous: the batches after the checkpoint are other images than those before it
    batches = full.data_loader.batch_indices(6)
    assert batches[3:] != batches[:3]


def test_resume_keeps_the_random_data_seed_of_the_checkpoint(tmp_path):
    """With ``train.seed=-1`` the loader's random seed is saved and restored on resume."""
    first = run(*tiny_overrides(tmp_path, tmp_path / "out", max_iter=3), "train.seed=-1")
    seed = first.data_loader.seed
    saved = torch.load(tmp_path / "out" / "model_final.pth", weights_only=True)
    assert saved["trainer"]["data_loader"]["seed"] == seed
    resumed = run("--resume", *tiny_overrides(tmp_path, tmp_path / "out", 4), "train.seed=-1")
    assert resumed.start_iter == 3 and resumed.data_loader.seed == seed
