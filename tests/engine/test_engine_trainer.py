"""DETRTrainer: loss decrease, grad-norm logging, clipping, AMP (bf16/fp16 on CPU), loss schedules,
checkpoint state with and without a grad scaler."""

from __future__ import annotations

import logging

import pytest
import torch
from detectron2.config import LazyCall as L
from detectron2.engine import HookBase
from fvcore.common.param_scheduler import LinearParamScheduler
from omegaconf import OmegaConf

from detrdistill import model_zoo
from detrdistill.engine import (
    DETRTrainer,
    apply_loss_weight_schedules,
    build_trainer,
    factor_metric_name,
)
from detrdistill.engine.train_loop import GRAD_NORM_METRIC
from tests.helpers import TinyDetector, repeat_batch, tiny_batch


def make_trainer(lr: float = 1e-2, **kwargs) -> DETRTrainer:
    torch.manual_seed(0)
    model = TinyDetector()
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr)
    return DETRTrainer(model, repeat_batch(tiny_batch()), optimizer, **kwargs)


def grad_norm(model: torch.nn.Module) -> float:
    grads = [p.grad.flatten() for p in model.parameters() if p.grad is not None]
    return torch.cat(grads).norm().item()


class Recorder(HookBase):
    """Records grad norms seen by after_backward (before clipping) and after_step (after)."""

    def __init__(self):
        self.before_clip: list[float] = []
        self.after_clip: list[float] = []
        self.raw_losses: list[dict[str, float]] = []

    def before_step(self):
        model, batch = self.trainer.model, next(self.trainer._data_loader_iter)
        with torch.no_grad():
            self.raw_losses.append({k: v.item() for k, v in model(batch).items()})

    def after_backward(self):
        self.before_clip.append(grad_norm(self.trainer.model))

    def after_step(self):
        self.after_clip.append(grad_norm(self.trainer.model))


def history(trainer: DETRTrainer, name: str) -> list[float]:
    return [value for value, _ in trainer.storage.history(name).values()]


def test_training_lowers_loss_and_logs_grad_norm():
    trainer = make_trainer()
    recorder = Recorder()
    trainer.register_hooks([recorder])
    trainer.train(0, 20)
    losses = history(trainer, "total_loss")
    assert len(losses) == 20
    assert losses[-1] < 0.7 * losses[0]
    # after_backward ran every step; without clipping the logged norm is the true gradient norm
    assert len(recorder.before_clip) == 20
    logged = history(trainer, GRAD_NORM_METRIC)
    assert logged == pytest.approx(recorder.before_clip, rel=1e-5)
    assert recorder.after_clip == pytest.approx(recorder.before_clip, rel=1e-6)


def test_grad_clipping_caps_the_total_norm():
    max_norm = 1e-3
    trainer = make_trainer(clip_grad_max_norm=max_norm, clip_grad_norm_type=2.0)
    recorder = Recorder()
    trainer.register_hooks([recorder])
    trainer.train(0, 3)
    assert min(recorder.before_clip) > 10 * max_norm
    assert max(recorder.after_clip) <= max_norm * (1 + 1e-4)
    # the logged norm is the one before clipping
    assert history(trainer, GRAD_NORM_METRIC) == pytest.approx(recorder.before_clip, rel=1e-5)


def test_bf16_autocast_trains_on_cpu_without_scaler():
    trainer = make_trainer(amp_enabled=True, amp_dtype="bfloat16")
    dtypes = []
    trainer.model.backbone[0].register_forward_hook(lambda m, i, o: dtypes.append(o.dtype))
    before = [p.detach().clone() for p in trainer.model.parameters()]
    trainer.train(0, 5)
    assert dtypes and set(dtypes) == {torch.bfloat16}
    assert trainer.grad_scaler is None
    assert "grad_scaler" not in trainer.state_dict()
    losses = history(trainer, "total_loss")
    assert all(torch.isfinite(torch.tensor(losses)))
    assert losses[-1] < losses[0]
    assert any(not torch.equal(a, b) for a, b in zip(before, trainer.model.parameters()))


def test_fp16_uses_grad_scaler_and_unscales_before_hooks():
    trainer = make_trainer(amp_enabled=True, amp_dtype="float16", clip_grad_max_norm=0.1)
    recorder = Recorder()
    trainer.register_hooks([recorder])
    trainer.train(0, 3)
    assert isinstance(trainer.grad_scaler, torch.amp.GradScaler)
    assert "grad_scaler" in trainer.state_dict()
    # hooks and clipping see unscaled gradients (scaled ones would be ~65536x larger)
    assert max(recorder.before_clip) < 1e3
    assert max(recorder.after_clip) <= 0.1 * (1 + 1e-3)
    assert history(trainer, "[metric]grad_scale")[-1] == trainer.grad_scaler.get_scale()


def test_grad_scaler_state_is_optional_when_loading(caplog):
    plain = make_trainer()
    plain.train(0, 2)
    plain_state = plain.state_dict()
    assert "grad_scaler" not in plain_state

    fp16 = make_trainer(amp_enabled=True, amp_dtype="float16")
    with caplog.at_level(logging.WARNING, logger="detrdistill.engine.train_loop"):
        fp16.load_state_dict(plain_state)  # detectron2's AMPTrainer: KeyError: 'grad_scaler'
    assert fp16.iter == plain.iter
    assert "no grad_scaler state" in caplog.text

    fp16.train(0, 2)
    fp16.grad_scaler.update(new_scale=128.0)
    fp16_state = fp16.state_dict()
    other = make_trainer(amp_enabled=True, amp_dtype="float16")
    other.load_state_dict(fp16_state)
    assert other.grad_scaler.state_dict() == fp16.grad_scaler.state_dict()
    assert other.grad_scaler.get_scale() == 128.0
    make_trainer().load_state_dict(fp16_state)  # and the other way round


def test_loss_weight_schedules_scale_terms_before_summing():
    schedules = {"loss_bbox": LinearParamScheduler(1.0, 0.0), "loss_cl*": 2.0}
    trainer = make_trainer(loss_weight_schedules=schedules)
    recorder = Recorder()
    trainer.register_hooks([recorder])
    trainer.train(0, 4)
    assert history(trainer, factor_metric_name("loss_bbox")) == pytest.approx([1, 0.75, 0.5, 0.25])
    assert history(trainer, factor_metric_name("loss_cl*")) == [2.0] * 4
    logged_class = history(trainer, "loss_class")
    logged_bbox = history(trainer, "loss_bbox")
    raw_class = [d["loss_class"] for d in recorder.raw_losses]
    raw_bbox = [d["loss_bbox"] for d in recorder.raw_losses]
    assert logged_class == pytest.approx([2 * v for v in raw_class], rel=1e-5)
    assert logged_bbox == pytest.approx(
        [f * v for f, v in zip([1, 0.75, 0.5, 0.25], raw_bbox)], rel=1e-5
    )
    totals = history(trainer, "total_loss")
    assert totals == pytest.approx([c + b for c, b in zip(logged_class, logged_bbox)], rel=1e-6)


def test_apply_loss_weight_schedules_matching():
    loss = {
        "loss_a": torch.tensor(1.0),
        "loss_distill_x": torch.tensor(2.0),
        "other": torch.tensor(3.0),
    }
    schedules = {"loss_distill_*": LinearParamScheduler(0.0, 1.0), "*_x": 3.0}
    scaled, factors = apply_loss_weight_schedules(loss, schedules, where=0.5)
    assert factors == {"loss_distill_*": 0.5, "*_x": 3.0}
    assert scaled["loss_distill_x"].item() == pytest.approx(2.0 * 0.5 * 3.0)
    assert scaled["loss_a"] is loss["loss_a"] and scaled["other"] is loss["other"]
    assert list(scaled) == list(loss)
    assert factor_metric_name("loss_distill_*") == "[metric]weight_factor/distill_*"
    assert "loss" not in factor_metric_name("loss_distill_*")


def test_unknown_amp_dtype_is_rejected():
    with pytest.raises(ValueError, match="train.amp.dtype"):
        make_trainer(amp_enabled=True, amp_dtype="float8")


def test_build_trainer_reads_the_train_config():
    cfg = OmegaConf.create(flags={"allow_objects": True})
    cfg.train = model_zoo.get_config("common/train.py").train
    cfg.train.amp.enabled = True
    cfg.train.loss_weight_schedules = {
        "loss_distill_*": L(LinearParamScheduler)(start_value=0.0, end_value=1.0),
        "loss_bbox": 0.5,
    }
    model = TinyDetector()
    optimizer = torch.optim.AdamW(model.parameters())
    trainer = build_trainer(cfg, model, repeat_batch(tiny_batch()), optimizer)
    assert trainer.amp_enabled and trainer.amp_dtype == torch.bfloat16
    assert trainer.grad_scaler is None
    assert trainer.clip_grad_max_norm == 0.1 and trainer.clip_grad_norm_type == 2.0
    assert isinstance(trainer.loss_weight_schedules["loss_distill_*"], LinearParamScheduler)
    assert trainer.loss_weight_schedules["loss_bbox"] == 0.5
    cfg.train.clip_grad.enabled = False
    assert build_trainer(cfg, model, [], optimizer).clip_grad_max_norm is None


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_amp_on_cuda(dtype):
    torch.manual_seed(0)
    model = TinyDetector().cuda()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    trainer = DETRTrainer(
        model,
        repeat_batch(tiny_batch()),
        optimizer,
        amp_enabled=True,
        amp_dtype=dtype,
        clip_grad_max_norm=0.1,
    )
    trainer.train(0, 5)
    assert (trainer.grad_scaler is not None) == (dtype == "float16")
    losses = history(trainer, "total_loss")
    assert all(torch.isfinite(torch.tensor(losses))) and losses[-1] < losses[0]


def test_checkpoint_state_restores_the_random_state():
    """Dropout after --resume draws what it would have drawn: the trainer state carries torch's
    random state, and loading it puts the generator back."""
    trainer = make_trainer()
    torch.manual_seed(123)
    state = trainer.state_dict()
    expected = torch.rand(5)
    torch.manual_seed(999)  # a resumed process starts from another state
    make_trainer().load_state_dict(state)
    assert torch.equal(torch.rand(5), expected)
