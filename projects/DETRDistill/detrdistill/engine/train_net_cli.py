"""Command line of ``train_net.py``: its argument parser, config loading with checked ``key=value``
overrides (also used by the tools, the demo and the benchmarks) and :func:`setup`."""

from __future__ import annotations

import argparse
import ast
import difflib
import inspect
import os
import sys
from collections.abc import Iterator, Mapping
from typing import Any

from detectron2.config import LazyConfig
from detectron2.engine import default_setup
from detectron2.utils import comm
from detectron2.utils.logger import setup_logger
from detectron2.utils.registry import locate
from omegaconf import DictConfig, ListConfig
from torch import nn

__all__ = [
    "OPEN_DICTS",
    "OPTIONAL_KEYS",
    "ConfigOverrideError",
    "apply_overrides",
    "argument_parser",
    "load_config",
    "resolve_config_file",
    "setup",
]

#: Keys the engine reads with a default (``cfg.train.get(...)``): they may be set even when the
#: config does not have them.
OPTIONAL_KEYS = frozenset(
    {
        "train.init_checkpoint",
        "train.allow_random_weights",
        "train.device",
        "train.seed",
        "train.cudnn_benchmark",
        "train.eval_period",
        "train.log_period",
        "train.amp.enabled",
        "train.amp.dtype",
        "train.clip_grad.enabled",
        "train.clip_grad.max_norm",
        "train.clip_grad.norm_type",
        "train.ddp",
        "train.loss_weight_schedules",
    }
)
#: Dicts whose keys are data rather than options: any new entry may be added to them.
OPEN_DICTS = frozenset({"train.loss_weight_schedules", "train.ddp"})

_EPILOG = """
Examples:
  Train on one machine with 8 GPUs:
    $ {prog} --config-file <config> --num-gpus 8 train.device=cuda
  Train on CPU in 2 processes (gloo backend), e.g. as a smoke test:
    $ {prog} --config-file <config> --num-gpus 2 train.max_iter=2
  Evaluate a checkpoint (it must fit the model; with a distillation config only the student
  is built and evaluated, and a distillation run's checkpoint gives its student.* part):
    $ {prog} --config-file <config> --eval-only train.init_checkpoint=/path/model_final.pth
  Resume the run in train.output_dir from its last checkpoint:
    $ {prog} --config-file <config> --resume
  Two machines (run on each, with its own --machine-rank):
    $ {prog} --config-file <config> --num-gpus 8 --num-machines 2 --machine-rank 0 \\
        --dist-url tcp://<host of machine 0>:<free port> train.device=cuda

<config> is a LazyConfig file path or a packaged config name (see
`python -c "import detrdistill.model_zoo as z; print(z.list_configs())"`).
"""


def argument_parser(epilog: str | None = None) -> argparse.ArgumentParser:
    """Build the parser of ``train_net.py`` (detectron2's flags, documented for CPU use).

    Args:
        epilog: text shown after the options; defaults to usage examples.

    Returns:
        argparse.ArgumentParser: parses ``--config-file``, ``--resume``, ``--eval-only``,
        ``--num-gpus``, ``--num-machines``, ``--machine-rank``, ``--dist-url`` and trailing
        ``key=value`` config overrides (``opts``).
    """
    prog = os.path.basename(sys.argv[0]) or "train_net.py"
    parser = argparse.ArgumentParser(
        epilog=epilog if epilog is not None else _EPILOG.format(prog=prog),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--config-file",
        required=True,
        metavar="FILE_OR_NAME",
        help="LazyConfig .py file, or a packaged config name such as 'coco/<file>.py' "
        "(optionally prefixed 'DETRDistill/', '.py' optional)",
    )
    parser.add_argument(
        "--resume",
        action="store_true",
        help="resume from the last checkpoint in train.output_dir (iteration, optimizer, "
        "LR schedule, grad scaler, data order, random state): the run continues exactly as if "
        "never stopped; without a checkpoint, start from train.init_checkpoint",
    )
    parser.add_argument("--eval-only", action="store_true", help="only evaluate")
    parser.add_argument(
        "--num-gpus",
        type=int,
        default=1,
        help="number of processes per machine: one per GPU with train.device=cuda (NCCL), "
        "or CPU worker processes (gloo) when CUDA is not available (on a GPU host, "
        "CUDA_VISIBLE_DEVICES= selects CPU processes)",
    )
    parser.add_argument("--num-machines", type=int, default=1, help="total number of machines")
    parser.add_argument(
        "--machine-rank", type=int, default=0, help="rank of this machine (0..num_machines-1)"
    )
    parser.add_argument(
        "--dist-url",
        default="auto",
        help="torch.distributed init URL; 'auto' picks a free local port (one machine only); "
        "use tcp://<host of machine 0>:<port> for several machines",
    )
    parser.add_argument(
        "opts",
        default=None,
        nargs=argparse.REMAINDER,
        help="config overrides 'path.key=value', e.g. train.max_iter=100 train.device=cuda; "
        "unknown keys and values of the wrong type are refused (the message names the closest "
        "key); '+path.key=value' adds a key on purpose",
    )
    return parser


def resolve_config_file(config_file: str) -> str:
    """Return the path of a config given as a file path or as a packaged config name.

    Args:
        config_file: an existing file path, or a name understood by
            :func:`detrdistill.model_zoo.get_config_file`.

    Returns:
        str: path of the config file.

    Raises:
        RuntimeError: if it is neither (the message lists close packaged names).
    """
    if os.path.isfile(config_file):
        return config_file
    from .. import model_zoo

    return model_zoo.get_config_file(config_file)


class ConfigOverrideError(ValueError):
    """A ``key=value`` override names a key the config does not have, or a value of the wrong
    type; the message names the override and, for unknown keys, the closest valid key."""


def _parse_overrides(overrides: list[str]) -> list[tuple[str, str, Any, bool]]:
    """``(override, key, value, add)`` for each ``key=value`` (hydra's grammar when available,
    as detectron2 parses them); ``add`` for hydra's ``+key=value`` / ``++key=value``."""
    try:
        from hydra.core.override_parser.overrides_parser import OverridesParser
    except ImportError:  # detectron2's fallback: split at "=", Python literals
        OverridesParser = None
    if OverridesParser is None:
        parsed = []
        for text in overrides:
            if "=" not in text:
                raise ConfigOverrideError(f"override {text!r} is not of the form key=value")
            key, raw = text.split("=", 1)
            try:
                value = ast.literal_eval(raw)
            except (ValueError, SyntaxError):
                value = raw
            parsed.append((text, key.lstrip("+"), value, key.startswith("+")))
        return parsed
    parser = OverridesParser.create()
    parsed = []
    for text in overrides:
        try:
            (override,) = parser.parse_overrides([text])
        except Exception as error:  # hydra's OverrideParseException
            raise ConfigOverrideError(f"cannot parse override {text!r}: {error}") from error
        if override.is_delete():
            raise ConfigOverrideError(f"override {text!r}: deleting keys is not supported")
        add = override.is_add() or override.is_force_add()
        parsed.append((text, override.key_or_group, override.value(), add))
    return parsed


def _accepts_argument(target: Any, name: str) -> bool:
    """Whether the LazyCall target ``target`` takes a keyword argument ``name`` (True when its
    signature cannot be read, or it takes ``**kwargs`` that go anywhere but ``nn.Module``)."""
    if isinstance(target, str):
        try:
            target = locate(target)
        except Exception:
            return True
    try:
        if not inspect.isclass(target):
            params = inspect.signature(target).parameters.values()
            return name in {p.name for p in params} or any(p.kind is p.VAR_KEYWORD for p in params)
        names: set[str] = set()
        for cls in target.__mro__:  # **kwargs of a subclass go to the base class
            if cls in (object, nn.Module):
                break
            if "__init__" not in vars(cls):
                continue
            params = inspect.signature(vars(cls)["__init__"]).parameters.values()
            names |= {p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
            if not any(p.kind is p.VAR_KEYWORD for p in params):
                break
        return name in names
    except (TypeError, ValueError):  # builtins and other callables without a signature
        return True


def _target(node: DictConfig) -> Any:
    return node._get_node("_target_")._value() if "_target_" in node else None


def _may_add(node: DictConfig, parent: Any, path: str) -> bool:
    """Whether the new key ``path`` may be added to ``node`` (see :func:`apply_overrides`)."""
    if path in OPTIONAL_KEYS or any(key.startswith(path + ".") for key in OPTIONAL_KEYS):
        return True
    node_path = path.rpartition(".")[0]
    if node_path in OPEN_DICTS:
        return True
    target = _target(node)
    if target is not None:
        return _accepts_argument(target, path.rpartition(".")[2])
    # a plain dict given as an argument of a call (model.losses, model.loss_weights), or empty
    return len(node) == 0 or (isinstance(parent, DictConfig) and _target(parent) is not None)


def _valid_keys(node: Any, prefix: str = "") -> Iterator[str]:
    """Every key path of ``node``, plus the arguments LazyCall nodes could take."""
    if isinstance(node, DictConfig):
        target = _target(node)
        names = [str(k) for k in node.keys() if k != "_target_"]
        if target is not None and not isinstance(target, str) and callable(target):
            try:
                params = inspect.signature(target).parameters.values()
                names += [
                    p.name
                    for p in params
                    if p.name not in names and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
                ]
            except (TypeError, ValueError):
                pass
        for name in names:
            path = f"{prefix}{name}"
            yield path
            if name in node:
                yield from _valid_keys(node._get_node(name), path + ".")
    elif isinstance(node, ListConfig):
        for index in range(len(node)):
            yield from _valid_keys(node._get_node(index), f"{prefix}{index}.")


def _unknown_key(cfg: DictConfig, text: str, key: str, path: str) -> ConfigOverrideError:
    candidates = sorted(set(_valid_keys(cfg)) | OPTIONAL_KEYS)
    close = difflib.get_close_matches(key, candidates, n=1, cutoff=0.6)
    if not close and path != key:
        close = difflib.get_close_matches(path, candidates, n=1, cutoff=0.6)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    where = f"{path!r} does not exist in the config" if path != key else "it does not exist"
    return ConfigOverrideError(
        f"override {text!r}: unknown config key {key!r} ({where}).{hint} Overrides set existing "
        "keys; to add a key on purpose, write +key=value."
    )


def _wrong_type(text: str, path: str, current: Any, value: Any, expected: str):
    return ConfigOverrideError(
        f"override {text!r}: {path} holds {current!r} ({type(current).__name__}); "
        f"{value!r} ({type(value).__name__}) is not {expected}"
    )


def _check_value(text: str, cfg: DictConfig, path: str, current: Any, value: Any) -> None:
    """Refuse a value whose type cannot stand for the current one (see apply_overrides)."""
    if value is None or current is None or (isinstance(value, str) and "${" in value):
        return
    if isinstance(current, DictConfig):
        if not isinstance(value, Mapping):
            example = next((str(k) for k in current.keys()), "<key>")
            raise ConfigOverrideError(
                f"override {text!r}: {path} is a config node; set its entries (e.g. "
                f"{path}.{example}=...) or give a dict {{key: value}}, not {value!r}"
            )
        for key, entry in value.items():
            _check_override(cfg, text, f"{path}.{key}", entry, add=False)
    elif isinstance(current, bool):
        if not isinstance(value, bool):
            raise _wrong_type(text, path, current, value, "a bool: use True or False")
    elif isinstance(current, (int, float)):
        if isinstance(value, (bool, str)):
            raise _wrong_type(text, path, current, value, "a number")


def _check_override(cfg: DictConfig, text: str, key: str, value: Any, add: bool) -> None:
    parts = key.split(".")
    node: Any = cfg
    parent: Any = None
    for depth, part in enumerate(parts):
        path = ".".join(parts[: depth + 1])
        if isinstance(node, ListConfig):
            if not (part.isdigit() and int(part) < len(node)):
                raise ConfigOverrideError(
                    f"override {text!r}: {path.rpartition('.')[0]} is a list of {len(node)} "
                    f"entries; {part!r} is not an index of it"
                )
            child = node._get_node(int(part))
        elif isinstance(node, DictConfig):
            if part not in node:
                if add or _may_add(node, parent, path):
                    return
                raise _unknown_key(cfg, text, key, path)
            child = node._get_node(part)
        else:
            raise ConfigOverrideError(
                f"override {text!r}: {path.rpartition('.')[0]} holds {node!r}, not a config node"
            )
        if child._is_interpolation():
            return  # the override replaces a reference; its target's type is not checked
        current = child if isinstance(child, (DictConfig, ListConfig)) else child._value()
        if depth == len(parts) - 1:
            _check_value(text, cfg, path, current, value)
            return
        parent, node = node, current


def apply_overrides(cfg: DictConfig, overrides: list[str]) -> DictConfig:
    """Check ``key=value`` overrides against ``cfg``, then apply them (detectron2's
    ``LazyConfig.apply_overrides``, hydra's syntax); nothing is applied if one is refused.

    The rule: an override sets a key the config has, with a value of a fitting type. Allowed
    besides: an argument the called object of a LazyCall node takes (its signature, e.g.
    ``model.teacher_half_precision``); a new entry of a dict that is data (``model.losses``,
    ``model.loss_weights``: a dict given to a call; an empty dict; :data:`OPEN_DICTS`); the keys
    the engine reads with a default (:data:`OPTIONAL_KEYS`); any key written ``+key=value``.
    Types: a bool key takes True/False only; a number key takes numbers (an int key takes
    floats too), lists and None, not strings; a config node takes a dict (its entries checked
    alike); string, list and None keys take anything; ``${...}`` interpolations go anywhere.

    Args:
        cfg: the loaded config; modified in place.
        overrides: ``key=value`` strings.

    Returns:
        DictConfig: ``cfg``.

    Raises:
        ConfigOverrideError: an unknown key (the message names the closest valid key) or a value
            of the wrong type; raised before anything is applied.
    """
    parsed = _parse_overrides(list(overrides))
    for text, key, value, add in parsed:
        _check_override(cfg, text, key, value, add)
    return LazyConfig.apply_overrides(cfg, [text.lstrip("+") for text, *_ in parsed])


def load_config(config_file: str, overrides: list[str] | None = None) -> DictConfig:
    """Load a config file or packaged name and apply checked overrides (:func:`apply_overrides`).

    Raises:
        RuntimeError: the config is neither a file nor a packaged name.
        ConfigOverrideError: an override is refused.
    """
    cfg = LazyConfig.load(resolve_config_file(config_file))
    return apply_overrides(cfg, list(overrides or []))


def setup(args: argparse.Namespace) -> DictConfig:
    """Load the config, apply overrides and run detectron2's ``default_setup``.

    Overrides are checked first (:func:`apply_overrides`): an unknown key or a value of the
    wrong type raises :class:`ConfigOverrideError` before anything is created or built.
    ``default_setup`` creates ``train.output_dir``, sets up logging, dumps the full config to
    ``output_dir/config.yaml`` and seeds python/numpy/torch from ``train.seed`` (plus the rank;
    a negative seed means a random one). The ``detrdistill`` loggers print to the console and
    ``output_dir/log.txt`` like detectron2's.

    Args:
        args: parsed command line of :func:`argument_parser`; not modified.

    Returns:
        DictConfig: the final config.
    """
    args = argparse.Namespace(**vars(args))
    args.config_file = resolve_config_file(args.config_file)
    cfg = load_config(args.config_file, args.opts)
    default_setup(cfg, args)
    # detectron2 sets up its own loggers only: ours (checkpoint loading, data, teacher) go to
    # the console and output_dir/log.txt too
    setup_logger(
        cfg.train.get("output_dir") or None,
        distributed_rank=comm.get_rank(),
        name="detrdistill",
        enable_propagation=True,
    )
    return cfg
