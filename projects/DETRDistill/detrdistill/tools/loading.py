"""Checkpoints, image inputs and class names for the user tools."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping

import numpy as np
import torch
from detectron2.config import instantiate
from detectron2.data import MetadataCatalog
from detectron2.data import detection_utils as utils
from detectron2.data import transforms as T
from omegaconf import DictConfig, ListConfig
from torch import Tensor, nn

from ..checkpoint import CheckpointReadError, safe_load
from .cli import fail, require_file

__all__ = [
    "class_names",
    "image_input",
    "is_distillation_state",
    "load_weights",
    "read_state_dict",
    "strip_prefix",
    "test_resize",
]


def read_state_dict(parser: argparse.ArgumentParser, path: str) -> dict[str, Tensor]:
    """The model state dict of a checkpoint file (``{"model": ...}`` or a bare state dict).

    A ``module.`` prefix (DDP) is removed. Ends with exit code 2, naming the file, when it is
    missing, unreadable or holds no tensors.
    """
    local = require_file(parser, path, "checkpoint")
    try:
        data = safe_load(local)
    except CheckpointReadError as error:  # truncated file, not a torch file, unsafe pickle
        fail(parser, f"could not read checkpoint {path!r}: {error}")
    if isinstance(data, Mapping) and isinstance(data.get("model"), Mapping):
        data = data["model"]
    state = (
        {
            str(key).removeprefix("module."): value
            for key, value in data.items()
            if isinstance(value, Tensor)
        }
        if isinstance(data, Mapping)
        else {}
    )
    if not state:
        fail(parser, f"checkpoint {path!r} holds no model state dict (no tensors found)")
    return state


def is_distillation_state(state: Mapping[str, Tensor]) -> bool:
    """Whether a state dict is a DistillationDetector's (``student.*`` keys)."""
    return any(key.startswith("student.") for key in state)


def strip_prefix(state: Mapping[str, Tensor], prefix: str) -> dict[str, Tensor]:
    """The entries of ``state`` under ``prefix`` (e.g. ``"teacher."``), prefix removed."""
    return {key[len(prefix) :]: value for key, value in state.items() if key.startswith(prefix)}


def _show(keys: list[str], limit: int = 5) -> str:
    more = f" (+{len(keys) - limit} more)" if len(keys) > limit else ""
    return ", ".join(keys[:limit]) + more


def load_weights(
    parser: argparse.ArgumentParser,
    module: nn.Module,
    state: Mapping[str, Tensor],
    path: str,
    what: str,
) -> dict[str, int]:
    """Load the entries of ``state`` that fit ``module``; report the rest on stderr.

    Ends with exit code 2 when not a single weight fits (the wrong checkpoint for the config).

    Returns:
        counts of ``loaded``, ``missing`` (model keys not in the checkpoint), ``unexpected``
        and ``mismatched`` (same key, different shape) entries.
    """
    expected = module.state_dict()
    mismatched = sorted(
        f"{key} {tuple(state[key].shape)} vs {tuple(expected[key].shape)}"
        for key in set(state) & set(expected)
        if state[key].shape != expected[key].shape
    )
    usable = {
        key: value
        for key, value in state.items()
        if key in expected and value.shape == expected[key].shape
    }
    if not usable:
        fail(
            parser,
            f"checkpoint {path!r} holds none of the weights of {what} (checkpoint keys: "
            f"{_show(sorted(state), 3)}; model keys: {_show(sorted(expected), 3)})",
        )
    module.load_state_dict(usable, strict=False)
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    for label, keys in (("missing", missing), ("unexpected", unexpected)):
        if keys:
            print(
                f"warning: {len(keys)} {label} keys loading {path}: {_show(keys)}", file=sys.stderr
            )
    if mismatched:
        print(f"warning: shape mismatches loading {path}: {_show(mismatched)}", file=sys.stderr)
    return {
        "loaded": len(usable),
        "missing": len(missing),
        "unexpected": len(unexpected),
        "mismatched": len(mismatched),
    }


def _test_mapper(parser: argparse.ArgumentParser, cfg: DictConfig):
    node = cfg.get("dataloader", {}).get("test", {}).get("mapper")
    if node is None:
        return None
    try:
        return instantiate(node)
    except Exception as error:
        fail(parser, f"could not build dataloader.test.mapper: {type(error).__name__}: {error}")


def image_input(
    parser: argparse.ArgumentParser, cfg: DictConfig, path: str, input_format: str = "RGB"
) -> tuple[dict, np.ndarray]:
    """One image as a detector input, resized as the config's test mapper does.

    Args:
        parser: for error exits (a missing or unreadable image ends with exit code 2).
        cfg: the full config; ``dataloader.test.mapper`` is used when present, else the image
            is given at its own size.
        path: image file.
        input_format: channel order of the model input when the config has no test mapper.

    Returns:
        ``(record, original)``: the mapper's output dict (``image`` (3, H', W') uint8,
        ``height``/``width`` of the original) and the original image as (H, W, 3) uint8 RGB.
    """
    require_file(parser, path, "input image")
    try:
        original = utils.read_image(path, format="RGB")
    except Exception as error:  # not an image, truncated file
        fail(parser, f"could not read input image {path!r}: {type(error).__name__}: {error}")
    height, width = original.shape[:2]
    record = {"file_name": path, "height": height, "width": width, "image_id": 0}
    mapper = _test_mapper(parser, cfg)
    if mapper is not None:
        return mapper(record), original
    pixels = original[:, :, ::-1] if input_format == "BGR" else original
    record["image"] = torch.as_tensor(np.ascontiguousarray(pixels.transpose(2, 0, 1)))
    return record, original


def test_resize(parser: argparse.ArgumentParser, cfg: DictConfig) -> tuple[int, int] | None:
    """``(shortest edge, max size)`` of the config's test-time ``ResizeShortestEdge``, or None."""
    mapper = _test_mapper(parser, cfg)
    augmentation = getattr(mapper, "augmentation", None)
    for aug in getattr(augmentation, "augs", []):
        if isinstance(aug, T.ResizeShortestEdge):
            return int(aug.short_edge_length[0]), int(aug.max_size)
    return None


def _dataset_names(cfg: DictConfig) -> list[str]:
    dataset = cfg.get("dataloader", {}).get("test", {}).get("dataset", {})
    if not isinstance(dataset, Mapping):
        return []
    names = dataset.get("names", dataset.get("name"))
    if isinstance(names, str):
        return [names]
    if isinstance(names, (list, tuple, ListConfig)):
        return [n for n in names if isinstance(n, str)]
    return []


def class_names(cfg: DictConfig, num_classes: int) -> list[str]:
    """Class names of the config's test dataset (``thing_classes``), else ``class <i>``."""
    for name in _dataset_names(cfg):
        classes = MetadataCatalog.get(name).get("thing_classes", None)
        if classes is not None and len(classes) == num_classes:
            return [str(c) for c in classes]
    return [f"class {i}" for i in range(num_classes)]
