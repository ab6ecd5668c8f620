"""Packaged common configs (train/optim/schedule), DETR parameter groups and LR schedules."""

from __future__ import annotations

import functools
import os

import pytest
import torch
from detectron2.config import LazyConfig, instantiate
from omegaconf import OmegaConf
from torch import nn

from detrdistill import model_zoo
from detrdistill.engine import (
    detr_lr_factor,
    get_detr_param_groups,
    multistep_lr_multiplier,
    name_matches_keywords,
)


class _Attn(nn.Module):
    def __init__(self):
        super().__init__()
        self.sampling_offsets = nn.Linear(4, 4)
        self.value_proj = nn.Linear(4, 4)


class _Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.backbone = nn.Sequential(nn.Conv2d(3, 4, 1), nn.BatchNorm2d(4))
        self.attn = _Attn()
        self.reference_points = nn.Linear(4, 2)
        self.norm = nn.LayerNorm(4)
        self.backbone_proj = nn.Linear(4, 4)  # not the backbone: dot-bounded matching
        self.frozen = nn.Linear(4, 4).requires_grad_(False)


def _hyperparams(groups) -> dict[int, tuple[float, float | None]]:
    return {id(p): (g["lr"], g.get("weight_decay")) for g in groups for p in g["params"]}


def test_detr_param_groups():
    model = _Model()
    groups = get_detr_param_groups(model, base_lr=1e-4, weight_decay=1e-4)
    hp = _hyperparams(groups)
    by_name = dict(model.named_parameters())
    assert id(by_name["frozen.weight"]) not in hp and id(by_name["frozen.bias"]) not in hp
    assert len(hp) == len([p for p in model.parameters() if p.requires_grad])
    assert hp[id(by_name["backbone.0.weight"])] == pytest.approx((1e-5, 1e-4))
    assert hp[id(by_name["backbone.1.weight"])] == pytest.approx((1e-5, 0.0))  # BN: no decay
    assert hp[id(by_name["attn.sampling_offsets.weight"])] == pytest.approx((1e-5, 1e-4))
    assert hp[id(by_name["reference_points.bias"])] == pytest.approx((1e-5, 1e-4))
    assert hp[id(by_name["attn.value_proj.weight"])] == pytest.approx((1e-4, 1e-4))
    assert hp[id(by_name["backbone_proj.weight"])] == pytest.approx((1e-4, 1e-4))
    assert hp[id(by_name["norm.weight"])] == pytest.approx((1e-4, 0.0))


def test_name_keyword_matching():
    assert name_matches_keywords("student.backbone.res2.0.conv1.weight", ("backbone",))
    assert name_matches_keywords("student.backbone.stem.weight", ("student.backbone",))
    assert not name_matches_keywords("teacher.backbone.stem.weight", ("student.backbone",))
    assert not name_matches_keywords("backbone_proj.weight", ("backbone",))
    assert detr_lr_factor("a.sampling_offsets.bias", lr_linear_proj_multiplier=0.5) == 0.5
    assert detr_lr_factor("head.weight") == 1.0


def test_optim_config_instantiates_and_saves_without_pickle(tmp_path):
    cfg = LazyConfig.load(model_zoo.get_config_file("common/optim.py"))
    assert cfg.AdamW.lr == 1e-4 and cfg.AdamW.weight_decay == 1e-4
    model = _Model()
    cfg.AdamW.params.model = model
    optimizer = instantiate(cfg.AdamW)
    assert isinstance(optimizer, torch.optim.AdamW)
    lrs = sorted({g["lr"] for g in optimizer.param_groups})
    assert lrs == pytest.approx([1e-5, 1e-4])
    # Everything in the config is a reference to importable code (no lambdas): the YAML dump
    # reloads, so LazyConfig.save does not fall back to a pickle.
    del cfg.AdamW.params.model
    LazyConfig.save(cfg, str(tmp_path / "optim.yaml"))
    assert not os.path.exists(tmp_path / "optim.yaml.pkl")
    reloaded = LazyConfig.load(str(tmp_path / "optim.yaml"))
    assert reloaded.AdamW.params.lr_backbone_multiplier == 0.1


def test_lr_factor_func_is_a_partial_not_a_lambda(monkeypatch):
    seen = {}
    import detrdistill.engine.optim as optim_module

    def spy(model, **kwargs):
        seen.update(kwargs)
        return []

    monkeypatch.setattr(optim_module, "get_default_optimizer_params", spy)
    get_detr_param_groups(_Model(), base_lr=1.0)
    assert isinstance(seen["lr_factor_func"], functools.partial)
    assert seen["lr_factor_func"].func is detr_lr_factor


def test_train_config_keys():
    train = model_zoo.get_config("common/train.py").train
    for key in (
        "output_dir", "init_checkpoint", "max_iter", "eval_period", "log_period", "device",
        "seed", "cudnn_benchmark", "loss_weight_schedules",
    ):  # fmt: skip
        assert key in train
    assert dict(train.amp) == {"enabled": False, "dtype": "bfloat16"}
    assert set(train.ddp) == {"broadcast_buffers", "find_unused_parameters", "fp16_compression"}
    assert set(train.checkpointer) == {"period", "max_to_keep"}
    assert dict(train.clip_grad) == {"enabled": True, "max_norm": 0.1, "norm_type": 2.0}
    assert train.device == "cpu"


def test_multistep_lr_multiplier():
    sched = multistep_lr_multiplier(100, decay_fractions=(0.5, 0.8), gamma=0.1, warmup_iters=10)
    assert sched(0.0) == pytest.approx(0.001)
    assert sched(0.05) == pytest.approx(0.5, rel=0.01)
    assert sched(0.2) == 1.0
    assert sched(0.49) == 1.0 and sched(0.5) == pytest.approx(0.1)
    assert sched(0.8) == pytest.approx(0.01) and sched(0.99) == pytest.approx(0.01)
    # decay points that can never take effect are dropped instead of failing
    tiny = multistep_lr_multiplier(2, decay_fractions=(0.8,))
    assert [tiny(i / 2) for i in range(2)] == [1.0, 1.0]
    assert [multistep_lr_multiplier(4)(i / 4) for i in range(4)] == pytest.approx([1, 1, 1, 0.1])


@pytest.mark.parametrize(
    "name, epochs, decay_epoch",
    [("12ep", 12, 11), ("24ep", 24, 20), ("36ep", 36, 30), ("50ep", 50, 40)],
)
def test_named_coco_schedules(name, epochs, decay_epoch):
    cfg = model_zoo.get_config("common/schedule.py")
    sched = instantiate(cfg[f"lr_multiplier_{name}"])
    max_iter = epochs * 7500
    decay = decay_epoch * 7500
    assert sched(0.0) == 1.0
    assert sched((decay - 1) / max_iter) == 1.0
    assert sched(decay / max_iter) == pytest.approx(0.1)
    assert sched((max_iter - 1) / max_iter) == pytest.approx(0.1)


def test_relative_schedule_follows_train_max_iter():
    schedule = model_zoo.get_config("common/schedule.py")
    cfg = OmegaConf.create({"train": {"max_iter": 10}}, flags={"allow_objects": True})
    cfg.lr_multiplier = schedule.lr_multiplier
    sched = instantiate(cfg.lr_multiplier)
    assert [sched(i / 10) for i in range(10)] == pytest.approx([1.0] * 8 + [0.1] * 2)
