"""Evaluation glue: run ``cfg.dataloader.evaluator`` over ``cfg.dataloader.test``."""

from __future__ import annotations

import logging

import torch
from detectron2.config import instantiate
from detectron2.evaluation import inference_on_dataset, print_csv_format
from omegaconf import DictConfig

__all__ = ["do_test"]

logger = logging.getLogger(__name__)


def do_test(cfg: DictConfig, model: torch.nn.Module) -> dict:
    """Evaluate ``model`` on the test loader with the configured evaluator.

    The test loader is built before the evaluator: building it loads the dataset, which fills
    COCO metadata (``thing_dataset_id_to_contiguous_id``) that ``COCOEvaluator`` reads.

    Args:
        cfg: full LazyConfig with ``dataloader.test`` and (optionally) ``dataloader.evaluator``.
        model: the model to evaluate, possibly DDP-wrapped (every rank must call this).

    Returns:
        dict: nested results, e.g. ``{"bbox": {"AP": ..., "AP50": ...}}``; empty when the
        config has no evaluator (or on non-main ranks, for gathering evaluators).
    """
    if "evaluator" not in cfg.dataloader:
        logger.info("No dataloader.evaluator in the config; skipping evaluation.")
        return {}
    data_loader = instantiate(cfg.dataloader.test)
    evaluator = instantiate(cfg.dataloader.evaluator)
    results = inference_on_dataset(model, data_loader, evaluator)
    print_csv_format(results)
    return results
