"""Dataset registration: the embedded synthetic shapes set and COCO-format json files.

Registered names (on ``import detrdistill.data``; nothing is generated or read at import):

* ``shapes_train`` (2000 images, seed 1) and ``shapes_val`` (200 images, seed 2) in the cache
  root :func:`~detrdistill.data.synthetic_shapes.default_shapes_root` (``$DETRDISTILL_CACHE/
  shapes_v1`` or ``~/.cache/detrdistill/shapes_v1``), generated on first load.
* COCO 2017 (``coco_2017_train``, ``coco_2017_val``, ...) is registered by detectron2 itself on
  ``import detectron2.data``, under ``$DETECTRON2_DATASETS`` (default ``./datasets``).

Other sets are registered on demand by :func:`register_shapes_dataset` /
:func:`get_shapes_dataset_dicts` (synthetic, any size/seed/root) and
:func:`register_coco_dataset` / :func:`get_coco_dataset_dicts` (any COCO json + image folder);
the ``get_*`` functions are meant as LazyConfig targets (``dataloader.train.dataset``).
"""

from __future__ import annotations

import functools
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path

from detectron2.data import DatasetCatalog, MetadataCatalog, get_detection_dataset_dicts
from detectron2.data.datasets import load_coco_json
from detectron2.structures import BoxMode
from detectron2.utils.file_io import PathManager

from .synthetic_shapes import (
    SHAPES_CLASSES,
    default_shapes_root,
    ensure_shapes_split,
    shapes_split_dir,
)

__all__ = [
    "DEFAULT_SHAPES_SPLITS",
    "config_placeholder",
    "register_shapes_dataset",
    "register_default_shapes_datasets",
    "get_shapes_dataset_dicts",
    "register_coco_dataset",
    "get_coco_dataset_dicts",
    "load_coco_json_checked",
    "check_category_ids",
]

logger = logging.getLogger(__name__)

DEFAULT_SHAPES_SPLITS: dict[str, dict] = {
    "shapes_train": {"split": "train", "num_images": 2000, "seed": 1},
    "shapes_val": {"split": "val", "num_images": 200, "seed": 2},
}
"""The shapes datasets registered on import (all in the default cache root, 128 px)."""

_PLACEHOLDER_RE = re.compile(r"^<REQUIRED: (?P<key>[^>]+)>$")


@dataclass(frozen=True)
class _ShapesSpec:
    split: str
    num_images: int
    seed: int
    root: str
    image_size: int


# name -> spec of the shapes datasets this module registered
_SHAPES_SPECS: dict[str, _ShapesSpec] = {}


def config_placeholder(key: str) -> str:
    """Return the placeholder string for a config value the user must set.

    :func:`get_coco_dataset_dicts` recognises it and fails with an error that names ``key``.

    Args:
        key: full config key, e.g. ``"dataloader.train.dataset.json_file"``.

    Returns:
        ``"<REQUIRED: key>"``.
    """
    return f"<REQUIRED: {key}>"


def _check_not_placeholder(value, what: str, example: str) -> None:
    match = _PLACEHOLDER_RE.match(value) if isinstance(value, str) else None
    if match:
        key = match.group("key")
        raise ValueError(
            f"Config value '{key}' is not set (it still holds the placeholder {value!r}): set "
            f"the {what}, e.g. on the command line: {key}={example}"
        )


def _registered_elsewhere_error(name: str) -> ValueError:
    return ValueError(
        f"Dataset '{name}' is already registered in DatasetCatalog by other code; "
        "choose another dataset name."
    )


# --------------------------------------------------------------------------------------------
# Synthetic shapes
# --------------------------------------------------------------------------------------------


def _load_shapes(name: str, spec: _ShapesSpec) -> list[dict]:
    json_file, image_root = ensure_shapes_split(
        spec.root, spec.split, spec.num_images, spec.seed, spec.image_size
    )
    return load_coco_json_checked(str(json_file), str(image_root), name)


def register_shapes_dataset(
    name: str,
    split: str,
    num_images: int,
    seed: int,
    root: str | os.PathLike | None = None,
    image_size: int = 128,
) -> None:
    """Register a synthetic shapes split under ``name`` (lazily; idempotent).

    The images are generated into the cache the first time ``DatasetCatalog.get(name)`` runs.
    Metadata: ``thing_classes``, ``thing_dataset_id_to_contiguous_id``, ``json_file``,
    ``image_root`` and ``evaluator_type="coco"``.

    Args:
        name: dataset name for ``DatasetCatalog``/``MetadataCatalog``.
        split: split label (names the cache sub-folder).
        num_images: number of images.
        seed: generator seed (the content depends on it, not on ``split``).
        root: cache root; ``None`` means :func:`default_shapes_root` (read at this call).
        image_size: side of the square images in pixels.

    Raises:
        ValueError: ``name`` is already registered with other parameters, or by other code.
    """
    root_path = Path(root).expanduser().absolute() if root is not None else default_shapes_root()
    split_dir = shapes_split_dir(root_path, split, num_images, seed, image_size)  # validates
    spec = _ShapesSpec(split, int(num_images), int(seed), str(root_path), int(image_size))
    if name in DatasetCatalog.list():
        old = _SHAPES_SPECS.get(name)
        if old is None:
            raise _registered_elsewhere_error(name)
        if old != spec:
            raise ValueError(
                f"Shapes dataset '{name}' is already registered with {old}; cannot register it "
                f"again with {spec}. Use another dataset name for other parameters."
            )
        return
    metadata = {
        "thing_classes": list(SHAPES_CLASSES),
        "thing_dataset_id_to_contiguous_id": {i + 1: i for i in range(len(SHAPES_CLASSES))},
        "json_file": str(split_dir / "annotations.json"),
        "image_root": str(split_dir / "images"),
        "evaluator_type": "coco",
    }
    _check_metadata_compatible(name, metadata)
    DatasetCatalog.register(name, functools.partial(_load_shapes, name, spec))
    MetadataCatalog.get(name).set(**metadata)
    _SHAPES_SPECS[name] = spec


def register_default_shapes_datasets() -> None:
    """Register ``shapes_train`` and ``shapes_val`` (see :data:`DEFAULT_SHAPES_SPLITS`)."""
    for name, kwargs in DEFAULT_SHAPES_SPLITS.items():
        register_shapes_dataset(name, **kwargs)


def get_shapes_dataset_dicts(
    name: str,
    split: str,
    num_images: int,
    seed: int,
    root: str | os.PathLike | None = None,
    image_size: int = 128,
    filter_empty: bool = True,
) -> list[dict]:
    """Register (if needed) and load a synthetic shapes split; a LazyConfig dataset target.

    Args:
        name: dataset name; the defaults ``shapes_train``/``shapes_val`` are pre-registered, so
            other ``num_images``/``seed``/``root`` values need another name.
        split, num_images, seed, root, image_size: see :func:`register_shapes_dataset`.
        filter_empty: drop images without annotations (every shapes image has >= 1 object).

    Returns:
        detectron2 dataset dicts (boxes XYWH_ABS, contiguous ``category_id``).
    """
    register_shapes_dataset(name, split, num_images, seed, root, image_size)
    return get_detection_dataset_dicts([name], filter_empty=filter_empty)


# --------------------------------------------------------------------------------------------
# COCO-format json + image folder
# --------------------------------------------------------------------------------------------


def load_coco_json_checked(json_file: str, image_root: str, dataset_name: str) -> list[dict]:
    """``detectron2.data.datasets.load_coco_json`` with errors that name the file.

    Args:
        json_file: COCO instances json.
        image_root: folder the json's ``file_name`` entries are relative to.
        dataset_name: name whose metadata receives ``thing_classes`` and the id map.

    Annotations whose box has a width or height that is not positive (zero, negative or NaN)
    are dropped, with one warning that counts them and names the file: the mapper would turn a
    negative-size box into another, valid-looking box, and a zero-size box marks no object.

    Returns:
        detectron2 dataset dicts.

    Raises:
        FileNotFoundError: the json file or the image folder does not exist.
        ValueError: the json cannot be parsed or is not valid COCO instances data.
    """
    if not PathManager.isfile(json_file):
        raise FileNotFoundError(
            f"Dataset '{dataset_name}': COCO annotation file '{json_file}' does not exist"
        )
    if not PathManager.isdir(image_root):
        raise FileNotFoundError(
            f"Dataset '{dataset_name}': image folder '{image_root}' does not exist"
        )
    try:
        dicts = load_coco_json(json_file, image_root, dataset_name)
    except (ValueError, KeyError, TypeError, IndexError, AttributeError, AssertionError) as e:
        raise ValueError(
            f"Dataset '{dataset_name}': could not load COCO annotation file '{json_file}' "
            f"({type(e).__name__}: {e})"
        ) from e
    if not dicts:
        raise ValueError(
            f"Dataset '{dataset_name}': COCO annotation file '{json_file}' lists no images"
        )
    _drop_degenerate_boxes(dicts, json_file, dataset_name)
    return dicts


def has_positive_size(obj: dict) -> bool:
    """False for an annotation whose box has zero, negative or NaN width/height in its own
    ``bbox_mode`` (True without a box).

    Transforming such a box would silently turn it into another, valid-looking box.
    """
    if "bbox" not in obj:
        return True
    x0, y0, x1, y1 = BoxMode.convert(list(obj["bbox"]), obj["bbox_mode"], BoxMode.XYXY_ABS)
    return x1 > x0 and y1 > y0


def _drop_degenerate_boxes(dicts: list[dict], json_file: str, dataset_name: str) -> int:
    """Remove annotations with a non-positive box width/height in place; one warning in all."""
    dropped, example = 0, None
    for record in dicts:
        annos = record.get("annotations")
        if not annos:
            continue
        kept = [a for a in annos if has_positive_size(a)]
        if len(kept) != len(annos):
            if example is None:
                bad = next(a for a in annos if not has_positive_size(a))
                example = (record.get("file_name"), list(bad["bbox"]))
            dropped += len(annos) - len(kept)
            record["annotations"] = kept
    if dropped:
        logger.warning(
            "Dataset '%s': dropped %d annotation(s) whose box width or height is not positive "
            "from '%s' (first: image '%s', bbox [x, y, w, h] = %s).",
            dataset_name,
            dropped,
            json_file,
            example[0],
            example[1],
        )
    return dropped


def check_category_ids(
    dataset_dicts: list[dict],
    num_classes: int,
    *,
    num_classes_key: str = "model.num_classes",
    dataset_names: str | list[str] | tuple[str, ...] | None = None,
) -> None:
    """Fail if an annotation's (contiguous) ``category_id`` is not below ``num_classes``.

    Such ids crash DETR's matcher in training and can never be predicted in evaluation (their
    AP is silently 0), so this runs when the loaders are built.

    Args:
        dataset_dicts: detectron2 dataset dicts (``annotations[i]["category_id"]`` contiguous).
        num_classes: the model's number of foreground classes.
        num_classes_key: config key of ``num_classes``, named in the error.
        dataset_names: names of the datasets the dicts come from; their ``json_file`` and
            ``thing_classes`` metadata (where set) are named in the error.

    Raises:
        ValueError: names the dataset(s), their json file(s), the largest category id, the
            number of categories and ``num_classes_key``.
    """
    max_id = -1
    for record in dataset_dicts:
        for anno in record.get("annotations", ()):
            category = anno.get("category_id")
            if category is not None and category > max_id:
                max_id = int(category)
    if max_id < num_classes:
        return
    if isinstance(dataset_names, str):
        dataset_names = [dataset_names]
    sources = []
    num_categories = None
    for name in dataset_names or ():
        meta = MetadataCatalog.get(name)
        json_file = meta.get("json_file")
        sources.append(f"'{name}' (json file '{json_file}')" if json_file else f"'{name}'")
        classes = meta.get("thing_classes")
        if classes is not None:
            num_categories = max(num_categories or 0, len(classes))
    where = f"Dataset {', '.join(sources)}" if sources else "The dataset"
    categories = f"; {num_categories} categories in the json" if num_categories else ""
    needed = max(max_id + 1, num_categories or 0)
    raise ValueError(
        f"{where} has category ids up to {max_id} (contiguous, 0-based{categories}), but "
        f"{num_classes_key} is {num_classes}: the model can only predict ids 0..{num_classes - 1}. "
        f"Set {num_classes_key}={needed} (e.g. on the command line) or fix the categories of "
        "the json file."
    )


def _same_path(a, b) -> bool:
    return os.path.normpath(os.path.abspath(str(a))) == os.path.normpath(os.path.abspath(str(b)))


def _check_metadata_compatible(name: str, metadata: dict) -> None:
    """Fail clearly where stale metadata (e.g. of a removed dataset) would conflict."""
    existing = MetadataCatalog.get(name)
    for key, value in metadata.items():
        if hasattr(existing, key) and getattr(existing, key) != value:
            raise ValueError(
                f"MetadataCatalog['{name}'].{key} is already {getattr(existing, key)!r}, not "
                f"{value!r}; remove the old metadata (MetadataCatalog.remove) or use another name."
            )


def register_coco_dataset(
    name: str,
    json_file: str | os.PathLike,
    image_root: str | os.PathLike,
) -> None:
    """Register a COCO-format dataset under ``name`` (lazily; idempotent).

    Like ``detectron2.data.datasets.register_coco_instances`` (same metadata: ``json_file``,
    ``image_root``, ``evaluator_type="coco"``; ``thing_classes`` is filled when loading), with
    clearer load errors and a check that an existing registration uses the same paths.

    Args:
        name: dataset name.
        json_file: COCO instances json.
        image_root: image folder.

    Raises:
        ValueError: a placeholder value was not replaced, or ``name`` is registered with
            other paths.
    """
    _check_not_placeholder(json_file, "COCO annotation json file", "/path/to/instances.json")
    _check_not_placeholder(image_root, "image folder", "/path/to/images")
    if not isinstance(name, str) or not name:
        raise ValueError(f"Dataset name must be a non-empty string, got {name!r}")
    json_file, image_root = os.fspath(json_file), os.fspath(image_root)
    if name in DatasetCatalog.list():
        meta = MetadataCatalog.get(name)
        old_json, old_root = meta.get("json_file"), meta.get("image_root")
        if old_json is None or old_root is None:
            raise _registered_elsewhere_error(name)
        if not (_same_path(old_json, json_file) and _same_path(old_root, image_root)):
            raise ValueError(
                f"Dataset '{name}' is already registered with json_file='{old_json}', "
                f"image_root='{old_root}'; cannot register it with json_file='{json_file}', "
                f"image_root='{image_root}'. Use another dataset name."
            )
        return
    metadata = {"json_file": json_file, "image_root": image_root, "evaluator_type": "coco"}
    _check_metadata_compatible(name, metadata)
    DatasetCatalog.register(
        name, functools.partial(load_coco_json_checked, json_file, image_root, name)
    )
    MetadataCatalog.get(name).set(**metadata)


def get_coco_dataset_dicts(
    name: str,
    json_file: str | os.PathLike,
    image_root: str | os.PathLike,
    filter_empty: bool = True,
) -> list[dict]:
    """Register (if needed) and load a COCO-format dataset; a LazyConfig dataset target.

    Args:
        name: dataset name (also what the evaluator refers to).
        json_file: COCO instances json.
        image_root: image folder.
        filter_empty: drop images without non-crowd annotations (use False for evaluation).

    Returns:
        detectron2 dataset dicts.
    """
    register_coco_dataset(name, json_file, image_root)
    return get_detection_dataset_dicts([name], filter_empty=filter_empty)
