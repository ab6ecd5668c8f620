"""Learning-rate multiplier schedules expressed relative to the training length."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from detectron2.solver import WarmupParamScheduler
from fvcore.common.param_scheduler import MultiStepParamScheduler

__all__ = ["multistep_lr_multiplier"]

logger = logging.getLogger(__name__)


def multistep_lr_multiplier(
    max_iter: int,
    decay_fractions: Iterable[float] = (0.8,),
    gamma: float = 0.1,
    warmup_iters: int = 0,
    warmup_factor: float = 0.001,
    warmup_method: str = "linear",
) -> WarmupParamScheduler:
    """Step decay at fractions of ``max_iter``, with an optional warm-up.

    Use it in a config with ``L(multistep_lr_multiplier)(max_iter="${train.max_iter}", ...)`` so
    the decay points follow ``train.max_iter`` overrides (a 4-iteration smoke test decays at
    iteration 3 instead of never).

    Args:
        max_iter: total number of training iterations.
        decay_fractions: increasing fractions in (0, 1) of ``max_iter`` at which the multiplier
            is multiplied by ``gamma``. Points that round to iteration 0, to ``max_iter`` or
            later, or onto an earlier point are dropped (they could never take effect).
        gamma: decay factor per step.
        warmup_iters: length of the warm-up in iterations (0 disables it).
        warmup_factor: multiplier at iteration 0 of the warm-up.
        warmup_method: ``"linear"`` or ``"constant"``.

    Returns:
        WarmupParamScheduler: a ParamScheduler for detectron2's ``LRScheduler`` hook.
    """
    max_iter = int(max_iter)
    if max_iter < 1:
        raise ValueError(f"max_iter must be >= 1, got {max_iter}")
    milestones: list[int] = []
    for fraction in decay_fractions:
        milestone = round(float(fraction) * max_iter)
        if 0 < milestone < max_iter and (not milestones or milestone > milestones[-1]):
            milestones.append(milestone)
        else:
            logger.warning(
                "Dropping LR decay point %s * max_iter = %d (max_iter=%d).",
                fraction,
                milestone,
                max_iter,
            )
    values = [gamma**step for step in range(len(milestones) + 1)]
    scheduler = MultiStepParamScheduler(values, num_updates=max_iter, milestones=milestones)
    return WarmupParamScheduler(
        scheduler,
        warmup_factor=warmup_factor,
        warmup_length=min(warmup_iters / max_iter, 1.0),
        warmup_method=warmup_method,
    )
