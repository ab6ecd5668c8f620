"""Per-iteration rescaling of named loss terms (e.g. a warm-up of ``loss_distill_*`` terms).

A schedule maps training progress ``where = iter / max_iter`` in [0, 1) to a multiplicative
factor. Schedules are keyed by :func:`fnmatch.fnmatchcase` patterns over loss-dict keys
(``"loss_distill_*"``, ``"loss_bbox"``); a key matched by several patterns gets the product of
their factors. Anything callable as ``schedule(where) -> float`` works (fvcore's
``ParamScheduler`` family: ``LinearParamScheduler``, ``CosineParamScheduler``,
``MultiStepParamScheduler``, ...); a plain number is a constant factor.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from fnmatch import fnmatchcase

import torch

__all__ = ["LossWeightSchedule", "apply_loss_weight_schedules", "factor_metric_name"]

LossWeightSchedule = Callable[[float], float] | float


def _factor(schedule: LossWeightSchedule, where: float) -> float:
    return float(schedule(where)) if callable(schedule) else float(schedule)


def apply_loss_weight_schedules(
    loss_dict: Mapping[str, torch.Tensor],
    schedules: Mapping[str, LossWeightSchedule],
    where: float,
) -> tuple[dict[str, torch.Tensor], dict[str, float]]:
    """Multiply matching loss terms by their scheduled factors.

    Args:
        loss_dict: loss name -> scalar tensor, as returned by the model in training mode.
        schedules: key pattern -> schedule (callable of ``where``, or a constant number).
        where: training progress in [0, 1], usually ``iter / max_iter``.

    Returns:
        tuple: ``(scaled_loss_dict, factors)`` where ``scaled_loss_dict`` has the same keys and
        order as ``loss_dict`` (unmatched terms are passed through untouched) and ``factors``
        maps every pattern to the factor it applied at ``where``.
    """
    factors = {pattern: _factor(schedule, where) for pattern, schedule in schedules.items()}
    scaled = {}
    for key, value in loss_dict.items():
        factor = 1.0
        for pattern, pattern_factor in factors.items():
            if fnmatchcase(key, pattern):
                factor *= pattern_factor
        scaled[key] = value if factor == 1.0 else value * factor
    return scaled, factors


def factor_metric_name(pattern: str) -> str:
    """Name under which the factor of ``pattern`` is logged to the EventStorage.

    The ``[metric]`` prefix makes detectron2's ``CommonMetricPrinter`` show it among the
    non-loss metrics; the leading ``loss_`` is dropped so the printer (which lists every key that
    contains "loss" as a loss) does not mistake the factor for a loss term.

    Args:
        pattern: a key pattern of ``loss_weight_schedules``.

    Returns:
        str: e.g. ``"[metric]weight_factor/distill_*"`` for the pattern ``"loss_distill_*"``.
    """
    return "[metric]weight_factor/" + pattern.removeprefix("loss_")
