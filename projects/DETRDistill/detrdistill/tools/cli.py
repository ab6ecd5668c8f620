"""Command-line plumbing shared by the user tools: arguments, configs, devices, model building.

Every failure a user can cause (a missing file, an unknown config name, a bad override, a
model that cannot be built from the config) ends the tool with exit code 2 and a one-line
message that names the offending path or key, through :func:`fail` or ``parser.error``.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping
from typing import NoReturn

import torch
from detectron2.config import LazyConfig, instantiate
from omegaconf import DictConfig
from torch import nn

from ..engine.train_net_cli import apply_overrides, resolve_config_file

__all__ = [
    "add_config_argument",
    "add_device_argument",
    "add_opts_argument",
    "build_module",
    "fail",
    "is_distillation_config",
    "load_config",
    "new_parser",
    "require_file",
    "resolve_device",
    "without_teacher_weights",
]

CONFIG_HELP = (
    "LazyConfig .py file, or a packaged config name such as 'shapes/deformable_detr_tiny.py' "
    '(see `python -c "import detrdistill.model_zoo as z; print(z.list_configs())"`)'
)


def new_parser(tool: str, description: str, epilog: str | None = None) -> argparse.ArgumentParser:
    """An ``ArgumentParser`` for ``python -m detrdistill.tools.<tool>``.

    The program name in usage and error lines is the full ``python -m`` command, and the epilog
    (usage examples) keeps its line breaks.
    """
    return argparse.ArgumentParser(
        prog=f"python -m detrdistill.tools.{tool}",
        description=description,
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def add_config_argument(parser: argparse.ArgumentParser, help_suffix: str = "") -> None:
    """``--config-file FILE_OR_NAME`` (required)."""
    parser.add_argument(
        "--config-file", required=True, metavar="FILE_OR_NAME", help=CONFIG_HELP + help_suffix
    )


def add_opts_argument(parser: argparse.ArgumentParser) -> None:
    """Trailing ``key=value`` config overrides (detectron2's syntax), as in ``train_net.py``."""
    parser.add_argument(
        "opts",
        nargs=argparse.REMAINDER,
        default=[],
        help="config overrides 'path.key=value' after all options, e.g. "
        "model.allow_random_teacher=True model.teacher_weights=",
    )


def add_device_argument(parser: argparse.ArgumentParser) -> None:
    """``--device`` (default: cuda when available, else cpu)."""
    parser.add_argument(
        "--device", default=None, help="torch device (default: cuda if available, else cpu)"
    )


def fail(parser: argparse.ArgumentParser, message: str) -> NoReturn:
    """End the tool with exit code 2 and ``<prog>: error: <message>`` on stderr."""
    parser.exit(2, f"{parser.prog}: error: {message}\n")


def require_file(parser: argparse.ArgumentParser, path: str, what: str) -> str:
    """Return ``path`` if it is an existing file; otherwise end with exit code 2, naming it.

    ``detrdistill://`` and other ``PathManager`` prefixes are resolved to their local file.
    """
    local = path
    if "://" in path:
        from detectron2.utils.file_io import PathManager

        try:
            local = PathManager.get_local_path(path)
        except Exception as error:  # unknown prefix, download failure, missing cached file
            fail(parser, f"{what} {path!r} cannot be opened: {error}")
    if not os.path.isfile(local):
        fail(parser, f"{what} {path!r} does not exist (or is not a file)")
    return local


def load_config(
    parser: argparse.ArgumentParser, config_file: str, opts: list[str] | None
) -> DictConfig:
    """Load a LazyConfig file or packaged config name and apply ``key=value`` overrides.

    Ends with exit code 2 when the config is neither a file nor a packaged name (the message
    names it and lists close packaged names), cannot be loaded, or an override does not apply.
    """
    try:
        path = resolve_config_file(config_file)
    except RuntimeError as error:
        fail(parser, f"config {config_file!r} is neither a file nor a packaged config: {error}")
    try:
        cfg = LazyConfig.load(path)
    except Exception as error:  # syntax or import errors inside the config file
        fail(parser, f"could not load config {path!r}: {type(error).__name__}: {error}")
    try:
        return apply_overrides(cfg, list(opts or []))
    except Exception as error:
        fail(parser, f"could not apply overrides {list(opts or [])} to {path!r}: {error}")


def is_distillation_config(cfg: DictConfig) -> bool:
    """Whether ``cfg.model`` is a teacher-student wrapper (has ``student`` and ``teacher``)."""
    model = cfg.get("model")
    return isinstance(model, Mapping) and "student" in model and "teacher" in model


def without_teacher_weights(cfg: DictConfig) -> None:
    """Let a distillation config build without ``model.teacher_weights`` (random teacher).

    For tools whose teacher weights come from elsewhere (a full distillation checkpoint) or do
    not matter (parameter and FLOP counts).
    """
    cfg.model.teacher_weights = ""
    cfg.model.allow_random_teacher = True


def resolve_device(parser: argparse.ArgumentParser, requested: str | None) -> torch.device:
    """The device to run on; ends with exit code 2 when CUDA is asked for but absent."""
    if requested is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(requested)
    except RuntimeError as error:
        fail(parser, f"bad --device {requested!r}: {error}")
    if device.type == "cuda" and not torch.cuda.is_available():
        fail(parser, f"--device {requested} asked for, but CUDA is not available here")
    return device


def build_module(parser: argparse.ArgumentParser, node, what: str) -> nn.Module:
    """Instantiate a LazyConfig node (``cfg.model`` or a part of it).

    Ends with exit code 2 on the errors a config can cause (a missing teacher checkpoint, keys
    that do not fit, bad values), with the message of the error.
    """
    try:
        module = instantiate(node)
    except (FileNotFoundError, RuntimeError, ValueError, KeyError, TypeError) as error:
        fail(parser, f"could not build {what}: {type(error).__name__}: {error}")
    if not isinstance(module, nn.Module):
        fail(parser, f"{what} is not a torch module but {type(module).__name__}")
    return module
