"""The DETRDistill trainer: detectron2's ``SimpleTrainer`` plus AMP, clipping and loss schedules."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping
from contextlib import AbstractContextManager
from fnmatch import fnmatchcase

import torch
from detectron2.engine import SimpleTrainer
from detectron2.utils import comm

from ..data.loader import SeededTrainLoader
from .amp import build_grad_scaler, module_device_type, resolve_amp_dtype
from .loss_weights import LossWeightSchedule, apply_loss_weight_schedules, factor_metric_name

__all__ = ["DETRTrainer"]

logger = logging.getLogger(__name__)

GRAD_NORM_METRIC = "[metric]grad_norm"


class DETRTrainer(SimpleTrainer):
    """``SimpleTrainer`` with optional AMP, gradient clipping and per-term loss-weight schedules.

    One step (:meth:`run_step`):

    1. ``loss_dict = model(data)`` under ``torch.autocast`` when AMP is enabled (float16 or
       bfloat16, on CUDA or CPU; no CUDA assertion).
    2. :meth:`scale_losses` multiplies the terms matched by ``loss_weight_schedules`` by their
       factor at ``iter / max_iter`` and logs each factor; the scaled terms are summed.
    3. Backward (through the ``GradScaler`` for float16), then the gradients are unscaled, so
       ``after_backward`` hooks and clipping see true gradients.
    4. ``after_backward()`` hooks, then clipping of the total gradient norm of the optimizer's
       parameters; the norm *before* clipping is logged as ``[metric]grad_norm``.
    5. Metrics are written (losses as scaled, i.e. what was optimised) and the optimizer steps.

    Extension points for subclasses or hooks: :meth:`scale_losses` (per-iteration loss
    rescaling; hooks may also edit the ``loss_weight_schedules`` dict in ``before_step``) and
    :meth:`clip_gradients`.

    The checkpointed state (:meth:`state_dict`) holds ``iteration``, the stateful hooks,
    ``optimizer``, only when a ``GradScaler`` is in use ``grad_scaler``, and for a
    :class:`~detrdistill.data.SeededTrainLoader` its seed (``data_loader``). Loading a checkpoint
    with or without ``grad_scaler`` / ``data_loader`` works in both directions.

    With a :class:`~detrdistill.data.SeededTrainLoader`, :meth:`train` starts the loader at
    ``start_iter``, so a resumed run sees the batches of an uninterrupted one.
    """

    def __init__(
        self,
        model: torch.nn.Module,
        data_loader: Iterable,
        optimizer: torch.optim.Optimizer,
        *,
        amp_enabled: bool = False,
        amp_dtype: str | torch.dtype = "bfloat16",
        clip_grad_max_norm: float | None = None,
        clip_grad_norm_type: float = 2.0,
        loss_weight_schedules: Mapping[str, LossWeightSchedule] | None = None,
        gather_metric_period: int = 1,
        zero_grad_before_forward: bool = False,
        async_write_metrics: bool = False,
    ):
        """
        Args:
            model: returns a dict of (already weighted) scalar losses in training mode.
            data_loader: an iterable of batches.
            optimizer: the optimizer over the trainable parameters.
            amp_enabled: run the forward pass under ``torch.autocast``.
            amp_dtype: autocast dtype, ``"bfloat16"`` (no scaler) or ``"float16"`` (with a
                ``GradScaler`` on the model's device type).
            clip_grad_max_norm: clip the total gradient norm to this value; ``None`` or a
                non-positive value disables clipping (the norm is still logged).
            clip_grad_norm_type: the p of the p-norm used for clipping and logging.
            loss_weight_schedules: loss-key pattern -> schedule, see
                :func:`~detrdistill.engine.loss_weights.apply_loss_weight_schedules`.
            gather_metric_period, zero_grad_before_forward, async_write_metrics: as in
                :class:`detectron2.engine.SimpleTrainer`.
        """
        super().__init__(
            model,
            data_loader,
            optimizer,
            gather_metric_period=gather_metric_period,
            zero_grad_before_forward=zero_grad_before_forward,
            async_write_metrics=async_write_metrics,
        )
        self.device_type = module_device_type(model)
        self.amp_enabled = bool(amp_enabled)
        self.amp_dtype = resolve_amp_dtype(amp_dtype)
        self.grad_scaler = (
            build_grad_scaler(self.device_type, self.amp_dtype) if self.amp_enabled else None
        )
        self.clip_grad_max_norm = clip_grad_max_norm
        self.clip_grad_norm_type = float(clip_grad_norm_type)
        self.loss_weight_schedules: dict[str, LossWeightSchedule] = dict(
            loss_weight_schedules or {}
        )
        self._unmatched_patterns_reported: set[str] = set()

    def train(self, start_iter: int, max_iter: int):
        """Train; a :class:`~detrdistill.data.SeededTrainLoader` starts at ``start_iter``."""
        if isinstance(self.data_loader, SeededTrainLoader) and self._data_loader_iter_obj is None:
            self.data_loader.set_start_iter(start_iter)
        super().train(start_iter, max_iter)

    def autocast(self) -> AbstractContextManager:
        """Return the autocast context of the forward pass (a no-op when AMP is disabled)."""
        return torch.autocast(self.device_type, dtype=self.amp_dtype, enabled=self.amp_enabled)

    def run_step(self):
        """Run one training iteration (see the class docstring for the order of operations)."""
        assert self.model.training, "[DETRTrainer] model was changed to eval mode!"
        start = time.perf_counter()
        data = next(self._data_loader_iter)
        data_time = time.perf_counter() - start

        if self.zero_grad_before_forward:
            self.optimizer.zero_grad()
        with self.autocast():
            loss_dict = self.model(data)
        if isinstance(loss_dict, torch.Tensor):
            loss_dict = {"total_loss": loss_dict}
        loss_dict = self.scale_losses(loss_dict)
        # Sum in float32 even if the model returned low-precision terms under autocast.
        losses = sum(loss.float() for loss in loss_dict.values())
        if not self.zero_grad_before_forward:
            self.optimizer.zero_grad()

        if self.grad_scaler is not None:
            self.grad_scaler.scale(losses).backward()
            self.grad_scaler.unscale_(self.optimizer)
        else:
            losses.backward()

        self.after_backward()
        grad_norm = self.clip_gradients()
        self.storage.put_scalar(GRAD_NORM_METRIC, grad_norm)
        if self.grad_scaler is not None:
            self.storage.put_scalar("[metric]grad_scale", self.grad_scaler.get_scale())

        if self.async_write_metrics:
            self.concurrent_executor.submit(
                self._write_metrics, loss_dict, data_time, iter=self.iter
            )
        else:
            self._write_metrics(loss_dict, data_time)

        if self.grad_scaler is not None:
            self.grad_scaler.step(self.optimizer)
            self.grad_scaler.update()
        else:
            self.optimizer.step()

    def scale_losses(self, loss_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Apply ``loss_weight_schedules`` at the current progress and log the factors.

        Override to implement other per-iteration loss rescaling.

        Args:
            loss_dict: the model's loss dict.

        Returns:
            dict: the loss dict to sum and log.
        """
        if not self.loss_weight_schedules:
            return dict(loss_dict)
        where = self.iter / self.max_iter
        scaled, factors = apply_loss_weight_schedules(loss_dict, self.loss_weight_schedules, where)
        for pattern, factor in factors.items():
            self.storage.put_scalar(factor_metric_name(pattern), factor, smoothing_hint=False)
        self._report_unmatched_patterns(loss_dict)
        return scaled

    def _report_unmatched_patterns(self, loss_dict: Mapping[str, torch.Tensor]) -> None:
        for pattern in self.loss_weight_schedules:
            if pattern in self._unmatched_patterns_reported:
                continue
            if not any(fnmatchcase(key, pattern) for key in loss_dict):
                logger.warning(
                    "loss_weight_schedules pattern %r matches none of the loss terms %s.",
                    pattern,
                    sorted(loss_dict),
                )
                self._unmatched_patterns_reported.add(pattern)

    def _trainable_grads(self) -> list[torch.nn.Parameter]:
        return [
            param
            for group in self.optimizer.param_groups
            for param in group["params"]
            if param.grad is not None
        ]

    def clip_gradients(self) -> float:
        """Clip the total gradient norm of the optimizer's parameters if clipping is enabled.

        Returns:
            float: the total gradient norm before clipping (``nan``/``inf`` when a float16 step
            overflowed; the ``GradScaler`` then skips the step).
        """
        params = self._trainable_grads()
        if not params:
            return 0.0
        if self.clip_grad_max_norm is not None and self.clip_grad_max_norm > 0:
            norm = torch.nn.utils.clip_grad_norm_(
                params, self.clip_grad_max_norm, norm_type=self.clip_grad_norm_type
            )
        else:
            norms = [torch.linalg.vector_norm(p.grad, self.clip_grad_norm_type) for p in params]
            norm = torch.linalg.vector_norm(torch.stack(norms), self.clip_grad_norm_type)
        return norm.item()

    def state_dict(self) -> dict:
        """Trainer state; ``grad_scaler`` only with a GradScaler, ``data_loader`` only with a
        :class:`~detrdistill.data.SeededTrainLoader`; ``rng``: torch's CPU (and CUDA) random
        state, so that dropout continues exactly after ``--resume`` (one process)."""
        ret = super().state_dict()
        ret["rng"] = {"torch": torch.get_rng_state()}
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            ret["rng"]["cuda"] = torch.cuda.get_rng_state_all()
        if self.grad_scaler is not None:
            ret["grad_scaler"] = self.grad_scaler.state_dict()
        if isinstance(self.data_loader, SeededTrainLoader):
            ret["data_loader"] = self.data_loader.state_dict()
        return ret

    def load_state_dict(self, state_dict: Mapping) -> None:
        """Load trainer state, tolerating missing or superfluous ``grad_scaler`` and
        ``data_loader`` entries (the latter restores the data seed of the checkpoint's run)."""
        super().load_state_dict(state_dict)
        rng = state_dict.get("rng")
        if rng is not None and comm.get_world_size() == 1:  # ranks would share one stream
            torch.set_rng_state(rng["torch"])
            if "cuda" in rng and torch.cuda.is_available():
                torch.cuda.set_rng_state_all(rng["cuda"])
        if isinstance(self.data_loader, SeededTrainLoader) and "data_loader" in state_dict:
            self.data_loader.load_state_dict(state_dict["data_loader"])
        if self.grad_scaler is None:
            if "grad_scaler" in state_dict:
                logger.info("Checkpoint has a grad_scaler state; not used without float16 AMP.")
        elif "grad_scaler" in state_dict:
            self.grad_scaler.load_state_dict(state_dict["grad_scaler"])
        else:
            logger.warning(
                "Checkpoint has no grad_scaler state (saved without float16 AMP); "
                "starting from a fresh GradScaler."
            )
