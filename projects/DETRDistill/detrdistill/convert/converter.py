"""Converting a published checkpoint file into a checkpoint of this project's detector.

The target is always a detector config: the model it builds decides the variant and every key
and shape the output must have (built on the ``meta`` device, so no memory is spent on it).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from typing import Any

import torch
from detectron2.config import LazyConfig, instantiate
from detectron2.utils.file_io import PathManager
from omegaconf import DictConfig
from torch import Tensor

from ..checkpoint import safe_load
from .rules import ConversionError, ConversionReport
from .rulesets import SOURCES, get_rule_set

__all__ = [
    "FORMAT_VERSION",
    "VARIANT_OF_CLASS",
    "convert_checkpoint",
    "convert_state_dict",
    "detect_layout",
    "load_config",
    "read_state_dict",
    "save_converted",
    "target_layout",
    "target_shapes",
    "variant_of_config",
]

FORMAT_VERSION = 1

#: Detector class name -> conversion variant.
VARIANT_OF_CLASS = {
    "DETR": "detr",
    "ConditionalDETR": "conditional_detr",
    "DABDETR": "dab_detr",
    "DeformableDETR": "deformable_detr",
    "DINO": "dino",
}

# What identifies a layout: (variant, source, key). A key starting with "." is a fragment
# searched in every key; otherwise it must be a whole key. Checked in this order.
_SIGNATURES = (
    ("dino", "official", "transformer.enc_out_class_embed.weight"),
    ("dino", "detrex", "transformer.tgt_embed.weight"),
    ("deformable_detr", "detrex", "transformer.level_embeds"),
    ("deformable_detr", "official", "transformer.level_embed"),
    ("dab_detr", "official", "refpoint_embed.weight"),
    ("dab_detr", "detrex", "anchor_box_embed.weight"),
    ("conditional_detr", "official", ".sa_qcontent_proj."),
    ("conditional_detr", "detrex", ".attentions.0.query_content_proj."),
    ("detr", "official", ".multihead_attn."),
    ("detr", "detrex", ".attentions.1.attn."),
)
_OWN_LAYOUT = ("neck.convs.0.0.weight", "decoder.layers.0.self_attn.out_proj.weight")


def detect_layout(keys) -> tuple[str | None, str | None]:
    """Guess the (variant, source layout) of a state dict from its keys.

    Returns:
        ``(variant, source)``; either may be None when the keys do not tell.
    """
    keys = list(keys)
    key_set = set(keys)
    for variant, source, signature in _SIGNATURES:
        if signature.startswith("."):
            if any(signature in key for key in keys):
                return variant, source
        elif signature in key_set:
            return variant, source
    if any(k.startswith("backbone.0.body.") for k in keys):
        return None, "official"
    if any(k.startswith(("backbone.stem.", "backbone.res2.")) for k in keys):
        return None, "detrex"
    return None, None


def load_config(config: str | DictConfig, overrides: list[str] | tuple[str, ...] = ()):
    """A LazyConfig from a file path or a packaged name (``teachers/...py``), with overrides."""
    if isinstance(config, DictConfig):
        cfg = config
    else:
        path = config
        if not os.path.isfile(path):
            from ..model_zoo import get_config_file

            path = get_config_file(config)
        cfg = LazyConfig.load(path)
    if overrides:
        cfg = LazyConfig.apply_overrides(cfg, list(overrides))
    return cfg


def variant_of_config(cfg) -> str:
    """The conversion variant of the detector ``cfg.model`` builds."""
    target = cfg.model.get("_target_")
    name = target if isinstance(target, str) else getattr(target, "__name__", repr(target))
    name = name.rsplit(".", 1)[-1]
    if name not in VARIANT_OF_CLASS:
        raise ConversionError(
            f"the config builds {name}, not one of the detectors a published checkpoint can be "
            f"converted to ({', '.join(VARIANT_OF_CLASS)}); pass a detector config such as "
            "teachers/deformable_detr_r50.py (for a distillation config, its model.teacher)"
        )
    return VARIANT_OF_CLASS[name]


def target_shapes(cfg) -> dict[str, torch.Size]:
    """Key -> shape of the state dict of the model ``cfg.model`` builds (built on ``meta``)."""
    return target_layout(cfg)[0]


def target_layout(cfg) -> tuple[dict[str, torch.Size], list[tuple[str, ...]]]:
    """Shapes of the state dict of the model ``cfg.model`` builds (on the ``meta`` device),
    and the groups of keys that name one shared tensor (a head shared by all layers)."""
    with torch.device("meta"):
        model = instantiate(cfg.model)
    state = model.state_dict(keep_vars=True)
    groups: dict[int, list[str]] = {}
    for key, value in state.items():
        groups.setdefault(id(value), []).append(key)
    tied = [tuple(keys) for keys in groups.values() if len(keys) > 1]
    return {key: value.shape for key, value in state.items()}, tied


def read_state_dict(path: str, *, allow_unsafe: bool = False) -> tuple[dict[str, Tensor], dict]:
    """Read the model weights of a checkpoint file.

    Args:
        path: the file (``PathManager`` paths work).
        allow_unsafe: see :func:`detrdistill.checkpoint.safe_load`.

    Returns:
        ``(state_dict, info)``: the weights (a ``module.`` prefix removed) and a small dict of
        plain facts about the file (name, size, sha256, top-level keys).
    """
    checkpoint = safe_load(path, allow_unsafe=allow_unsafe)
    top_keys = sorted(checkpoint) if isinstance(checkpoint, dict) else []
    state = checkpoint
    if isinstance(state, dict) and "model" in state:
        state = state["model"]
    elif isinstance(state, dict) and "state_dict" in state:
        raise ConversionError(
            f"{path} is an mmdetection-style checkpoint ('state_dict', 'meta'); only the "
            f"official repositories' and detrex's layouts are supported"
        )
    if not isinstance(state, Mapping) or not state:
        raise ConversionError(f"{path} does not hold a state dict (top-level keys: {top_keys})")
    weights: dict[str, Tensor] = {}
    for key, value in state.items():
        if not isinstance(value, Tensor):
            raise ConversionError(f"{path}: {key} holds a {type(value).__name__}, not a tensor")
        weights[key.removeprefix("module.")] = value
    local = PathManager.get_local_path(path)
    digest = hashlib.sha256()
    with open(local, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    info = {
        "file": os.path.basename(local),
        "bytes": os.path.getsize(local),
        "sha256": digest.hexdigest(),
        "top_level_keys": [str(k) for k in top_keys],
    }
    return weights, info


def convert_state_dict(
    state_dict: Mapping[str, Tensor],
    *,
    variant: str,
    source: str,
    shapes: Mapping[str, torch.Size],
    tied: list[tuple[str, ...]] | tuple = (),
) -> tuple[dict[str, Tensor], ConversionReport]:
    """Convert a state dict with the (variant, source) table; see :class:`RuleSet.convert`
    (``shapes`` and ``tied`` come from :func:`target_layout`).

    A state dict whose keys reveal another variant or layout than the one asked for stops with
    a message saying which one it looks like.
    """
    found_variant, found_source = detect_layout(state_dict)
    if any(key in state_dict for key in _OWN_LAYOUT):
        raise ConversionError(
            "the checkpoint is already in this project's layout (it has "
            f"{next(k for k in _OWN_LAYOUT if k in state_dict)}); load it directly"
        )
    if found_variant is not None and found_variant != variant:
        raise ConversionError(
            f"the checkpoint looks like a {found_variant} checkpoint ({found_source} layout), "
            f"but the config builds a {variant} model; use a {found_variant} config (e.g. "
            f"teachers/{found_variant}_r50.py)"
        )
    if found_source is not None and found_source != source:
        raise ConversionError(
            f"the checkpoint looks like the {found_source} layout, not {source}; pass "
            f"--source {found_source} (or auto)"
        )
    return get_rule_set(variant, source).convert(state_dict, shapes, tied)


def convert_checkpoint(
    path: str,
    config: str | DictConfig,
    *,
    source: str = "auto",
    overrides: list[str] | tuple[str, ...] = (),
    allow_unsafe: bool = False,
) -> tuple[dict[str, Tensor], ConversionReport, dict[str, Any]]:
    """Read ``path`` and convert it for the detector built by ``config``.

    Args:
        path: the published checkpoint.
        config: a detector config (file or packaged name) or a loaded LazyConfig.
        source: ``"official"``, ``"detrex"`` or ``"auto"`` (read from the keys).
        overrides: ``key=value`` config overrides.
        allow_unsafe: unrestricted unpickling of ``path`` (trusted files only).

    Returns:
        ``(state_dict, report, info)``; ``info`` holds plain facts for the output file.
    """
    cfg = load_config(config, overrides)
    variant = variant_of_config(cfg)
    weights, file_info = read_state_dict(path, allow_unsafe=allow_unsafe)
    if source == "auto":
        found = detect_layout(weights)[1]
        if found is None:
            raise ConversionError(
                f"{path}: cannot tell the layout from its keys (first: {next(iter(weights))}); "
                f"pass --source ({', '.join(SOURCES)})"
            )
        source = found
    shapes, tied = target_layout(cfg)
    state, report = convert_state_dict(
        weights, variant=variant, source=source, shapes=shapes, tied=tied
    )
    info = {
        "format_version": FORMAT_VERSION,
        "variant": variant,
        "source_format": source,
        "source_file": file_info,
        "config": config if isinstance(config, str) else "<LazyConfig>",
        "overrides": list(overrides),
        "counts": report.to_dict()["counts"],
    }
    return state, report, info


def save_converted(state: Mapping[str, Tensor], info: Mapping[str, Any], output: str) -> None:
    """Write ``{"model": state, "__author__": "detrdistill.convert", "conversion": info}``.

    Only tensors and plain data are stored, so ``torch.load(weights_only=True)`` (and
    detectron2's ``DetectionCheckpointer``) read the file. ``output`` may be a
    ``detrdistill://`` path.
    """
    payload = {
        "model": {k: v.detach().contiguous() for k, v in state.items()},
        "__author__": "detrdistill.convert",
        "conversion": dict(info),
    }
    folder = os.path.dirname(output)
    if folder and "://" not in output:
        os.makedirs(folder, exist_ok=True)
    with PathManager.open(output, "wb") as handle:
        torch.save(payload, handle)
