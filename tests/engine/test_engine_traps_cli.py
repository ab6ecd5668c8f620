"""User traps of train_net.py made errors or correct behaviour: --eval-only with distillation
configs and checkpoints, init checkpoints that do not fit, unknown or mistyped config overrides,
and unreadable checkpoint files."""

from __future__ import annotations

import logging
import sys

import pytest
import torch
from detectron2.config import instantiate
from omegaconf import DictConfig

import train_net
from detrdistill import model_zoo
from detrdistill.engine import do_eval_only, runner, setup
from detrdistill.engine.runner import load_init_checkpoint
from tests.helpers import TinyDetector, tiny_config_parts, write_tiny_config

DISTILL_CONFIG = "detrdistill/shapes_deformable_tiny.py"
ADVICE = ("likely succeed", "weights_only=False", "can still be loaded")


@pytest.fixture
def captured(monkeypatch):
    """Replace evaluation by recording the model it gets (keeps the tests fast)."""
    models = []

    def fake_do_test(cfg, model):
        models.append(model.module if hasattr(model, "module") else model)
        return {"bbox": {"AP": 1.0}}

    monkeypatch.setattr(runner, "do_test", fake_do_test)
    return models


def assert_same_weights(model: torch.nn.Module, state: dict) -> None:
    loaded = model.state_dict()
    assert set(loaded) == set(state)
    for key, value in state.items():
        assert torch.equal(loaded[key], value), key


def tiny_cfg(tmp_path, **train):
    parts = tiny_config_parts(str(tmp_path / "data"), str(tmp_path / "out"))
    cfg = DictConfig(parts, flags={"allow_objects": True})
    cfg.train.update(train)
    return cfg


def distillation_state(student_state: dict, teacher_state: dict) -> dict:
    state = {f"student.{k}": v for k, v in student_state.items()}
    state.update({f"teacher.{k}": v + 1 for k, v in teacher_state.items()})
    state["distill_losses.feature.proj.weight"] = torch.ones(2, 2)
    state["query_adapter.proj.weight"] = torch.ones(2, 2)
    return state


# 1. --eval-only with a distillation config: the student alone, strictly, no teacher file


@pytest.fixture
def distill_cfg(tmp_path):
    cfg = model_zoo.get_config(DISTILL_CONFIG)
    cfg.model.teacher_weights = str(tmp_path / "no_teacher_here.pth")
    cfg.train.output_dir = str(tmp_path / "out")
    torch.manual_seed(7)
    student = instantiate(cfg.model.student).state_dict()
    return cfg, student


@pytest.mark.parametrize("layout", ["state_dict", "detectron2", "distillation"])
def test_eval_only_distillation_config_evaluates_the_student(
    distill_cfg, captured, tmp_path, layout
):
    cfg, student = distill_cfg
    if layout == "state_dict":
        data = student
    elif layout == "detectron2":
        data = {"model": student, "iteration": 9}
    else:
        data = {"model": distillation_state(student, student), "iteration": 9}
    torch.save(data, tmp_path / "ckpt.pth")
    cfg.train.init_checkpoint = str(tmp_path / "ckpt.pth")
    assert do_eval_only(cfg) == {"bbox": {"AP": 1.0}}
    (model,) = captured
    assert type(model).__name__ == "DeformableDETR"  # the student, not the wrapper
    assert_same_weights(model, student)


def test_eval_only_distillation_config_refuses_checkpoint_that_does_not_fit(
    distill_cfg, captured, tmp_path
):
    cfg, student = distill_cfg
    state = dict(student)
    missing = next(k for k in state if k.endswith(".weight"))
    del state[missing]
    state["extra_head.weight"] = torch.zeros(3)
    resized = next(k for k in state if k.endswith(".bias") and state[k].dim() == 1)
    state[resized] = torch.zeros(state[resized].numel() + 1)
    torch.save({"model": state}, tmp_path / "other.pth")
    cfg.train.init_checkpoint = str(tmp_path / "other.pth")
    with pytest.raises(ValueError, match="does not fit") as info:
        do_eval_only(cfg)
    message = str(info.value)
    assert missing in message and "extra_head.weight" in message and resized in message
    assert "missing keys" in message and "unexpected keys" in message
    assert "shape mismatches" in message and not captured


def test_eval_only_without_init_checkpoint_is_an_error(tmp_path, captured):
    cfg = tiny_cfg(tmp_path, init_checkpoint="")
    with pytest.raises(ValueError, match="train.init_checkpoint"):
        do_eval_only(cfg)
    assert not captured
    cfg.train.allow_random_weights = True  # the explicit opt-in
    do_eval_only(cfg)
    assert len(captured) == 1


# 2. A distillation checkpoint given to a plain detector config


def test_eval_only_plain_config_loads_student_part_of_distillation_checkpoint(
    tmp_path, captured, caplog
):
    torch.manual_seed(3)
    student = TinyDetector().state_dict()
    teacher = TinyDetector().state_dict()
    torch.save({"model": distillation_state(student, teacher)}, tmp_path / "run.pth")
    cfg = tiny_cfg(tmp_path, init_checkpoint=str(tmp_path / "run.pth"))
    with caplog.at_level(logging.INFO):
        do_eval_only(cfg)
    assert_same_weights(captured[0], student)
    assert any(
        r.levelno == logging.INFO and "distillation checkpoint" in r.getMessage()
        for r in caplog.records
    )


def test_train_net_eval_only_plain_config_with_distillation_checkpoint(tmp_path):
    config = write_tiny_config(str(tmp_path / "cfg.py"), tmp_path / "data", tmp_path / "out")
    torch.manual_seed(5)
    student = TinyDetector().state_dict()
    torch.save({"model": distillation_state(student, student)}, tmp_path / "run.pth")
    torch.save({"model": student}, tmp_path / "student.pth")

    def eval_only(checkpoint):
        args = train_net.argument_parser().parse_args(
            ["--config-file", config, "--eval-only", f"train.init_checkpoint={checkpoint}"]
        )
        return train_net.main(args)

    from_run = eval_only(tmp_path / "run.pth")["bbox"]
    exported = eval_only(tmp_path / "student.pth")["bbox"]
    assert from_run == pytest.approx(exported, nan_ok=True)  # the student's own results
    log = (tmp_path / "out" / "log.txt").read_text()
    assert "is a distillation checkpoint: loading its student.* part" in log


def test_training_init_checkpoint_loads_student_part_of_distillation_checkpoint(tmp_path):
    torch.manual_seed(4)
    student = TinyDetector().state_dict()
    torch.save({"model": distillation_state(student, student)}, tmp_path / "run.pth")
    model = TinyDetector()
    load_init_checkpoint(model, str(tmp_path / "run.pth"))
    assert_same_weights(model, student)


def test_eval_only_plain_config_refuses_checkpoint_of_another_model(tmp_path, captured):
    torch.save({"model": TinyDetector(num_queries=6).state_dict()}, tmp_path / "q6.pth")
    cfg = tiny_cfg(tmp_path, init_checkpoint=str(tmp_path / "q6.pth"))
    with pytest.raises(ValueError, match=r"shape mismatches.*head\.weight"):
        do_eval_only(cfg)
    assert not captured


# 3. Config overrides: unknown keys and wrong types fail before anything is built


def setup_with(tmp_path, *overrides):
    config = write_tiny_config(str(tmp_path / "cfg.py"), tmp_path / "data", tmp_path / "out")
    args = train_net.argument_parser().parse_args(["--config-file", config, *overrides])
    return setup(args)


@pytest.mark.parametrize(
    "override, closest",
    [
        ("train.max_iters=5", "train.max_iter"),
        ("trian.max_iter=5", "train.max_iter"),
        ("train.amp.enabeld=True", "train.amp.enabled"),
        ("model.num_querys=8", "model.num_queries"),
    ],
)
def test_unknown_override_key_names_the_closest_key(tmp_path, override, closest):
    with pytest.raises(ValueError, match="unknown config key") as info:
        setup_with(tmp_path, override)
    assert override.split("=")[0] in str(info.value)
    assert f"Did you mean {closest!r}" in str(info.value)
    assert not (tmp_path / "out").exists()  # nothing was set up


@pytest.mark.parametrize(
    "override", ["train.max_iter=abc", "train.amp.enabled=maybe", "train.amp=True"]
)
def test_mistyped_override_fails_before_anything_is_built(tmp_path, override):
    with pytest.raises(ValueError, match=override.split("=")[0].replace(".", r"\.")):
        setup_with(tmp_path, override)
    assert not (tmp_path / "out").exists()


def test_legitimate_overrides_apply(tmp_path):
    cfg = setup_with(
        tmp_path,
        "train.max_iter=7",
        "optimizer.weight_decay=0.05",
        "train.clip_grad.max_norm=1",  # an int for a float key
        "train.checkpointer.period=null",
        "train.loss_weight_schedules.loss_bbox=0.5",  # entry of an open dict
        "train.eval_period=${train.max_iter}",
        "model.hidden_dim=8",  # an argument of the LazyCall target, not in the config
        "+train.note=hello",  # explicitly added
    )
    assert cfg.train.max_iter == 7 and cfg.train.eval_period == 7
    assert cfg.optimizer.weight_decay == 0.05 and cfg.train.clip_grad.max_norm == 1
    assert cfg.train.checkpointer.period is None
    assert cfg.train.loss_weight_schedules.loss_bbox == 0.5
    assert cfg.model.hidden_dim == 8 and cfg.train.note == "hello"


def test_distillation_config_overrides(tmp_path):
    cfg = model_zoo.get_config(DISTILL_CONFIG)
    from detrdistill.engine.train_net_cli import apply_overrides

    apply_overrides(
        cfg,
        [
            "model.loss_weights.logits=2.0",
            "model.loss_weights.extra=1.0",  # new entry of a dict given to the model
            "model.teacher_half_precision=True",
            "model.student.num_queries=20",
        ],
    )
    assert cfg.model.loss_weights.extra == 1.0 and cfg.model.student.num_queries == 20
    with pytest.raises(ValueError, match="Did you mean 'model.teacher_weights'"):
        apply_overrides(cfg, ["model.teacher_weigths=x.pth"])


def test_train_net_exits_with_the_override_error_before_launching(tmp_path, monkeypatch, capsys):
    config = write_tiny_config(str(tmp_path / "cfg.py"), tmp_path / "data", tmp_path / "out")
    launched = []
    monkeypatch.setattr(train_net, "launch", lambda *a, **k: launched.append(a))
    argv = ["train_net.py", "--config-file", config, "train.max_iters=5"]
    monkeypatch.setattr(sys, "argv", argv)
    with pytest.raises(SystemExit) as info:
        train_net.invoke_main()
    assert info.value.code == 2 and not launched
    assert "Did you mean 'train.max_iter'" in capsys.readouterr().err


# 4. Unreadable checkpoint files: what is wrong and what to do, not torch's advice


def truncated_legacy_checkpoint(tmp_path, keep: float) -> str:
    import argparse

    payload = {"model": TinyDetector().state_dict(), "args": argparse.Namespace(lr=1e-4)}
    torch.save(payload, tmp_path / "full.pth", _use_new_zipfile_serialization=False)
    data = (tmp_path / "full.pth").read_bytes()
    path = tmp_path / f"cut_{keep}.pth"
    path.write_bytes(data[: int(len(data) * keep)])
    return str(path)


@pytest.mark.parametrize("keep", [0.02, 0.3, 0.5, 0.8])
def test_eval_only_truncated_checkpoint_says_truncated(tmp_path, captured, keep):
    path = truncated_legacy_checkpoint(tmp_path, keep)
    cfg = tiny_cfg(tmp_path, init_checkpoint=path)
    with pytest.raises(RuntimeError, match="is not a readable torch checkpoint") as info:
        do_eval_only(cfg)
    message = str(info.value)
    assert "truncated" in message and path in message
    assert not any(advice in message for advice in ADVICE)


def test_export_of_truncated_checkpoint_does_not_repeat_torch_advice(tmp_path):
    from detrdistill.distill.export import export_student

    path = truncated_legacy_checkpoint(tmp_path, 0.5)
    with pytest.raises(RuntimeError, match="truncated") as info:
        export_student(path, str(tmp_path / "student.pth"))
    assert not any(advice in str(info.value) for advice in ADVICE)
