"""Data: the embedded synthetic shapes set, COCO-format registration, the DETR mapper and the
seeded, resumable training loader.

Importing this package registers ``shapes_train`` and ``shapes_val`` (lazily: the images are
generated into the cache on first load). COCO 2017 (``coco_2017_train``/``coco_2017_val``) is
registered by detectron2 itself under ``$DETECTRON2_DATASETS``.
"""

from .datasets import (
    DEFAULT_SHAPES_SPLITS,
    check_category_ids,
    config_placeholder,
    get_coco_dataset_dicts,
    get_shapes_dataset_dicts,
    load_coco_json_checked,
    register_coco_dataset,
    register_default_shapes_datasets,
    register_shapes_dataset,
)
from .loader import SeededTrainLoader, build_detr_train_loader, sample_seed
from .mapper import DetrDatasetMapper, build_detr_augmentations, build_detr_test_augmentations
from .synthetic_shapes import (
    SHAPES_CACHE_ENV,
    SHAPES_CLASSES,
    SHAPES_VERSION,
    default_shapes_root,
    ensure_shapes_split,
    generate_shapes_split,
    render_shapes_image,
    shapes_split_dir,
)

__all__ = [
    "DEFAULT_SHAPES_SPLITS",
    "SHAPES_CACHE_ENV",
    "SHAPES_CLASSES",
    "SHAPES_VERSION",
    "DetrDatasetMapper",
    "SeededTrainLoader",
    "build_detr_augmentations",
    "build_detr_test_augmentations",
    "build_detr_train_loader",
    "check_category_ids",
    "config_placeholder",
    "default_shapes_root",
    "ensure_shapes_split",
    "generate_shapes_split",
    "get_coco_dataset_dicts",
    "get_shapes_dataset_dicts",
    "load_coco_json_checked",
    "register_coco_dataset",
    "register_default_shapes_datasets",
    "register_shapes_dataset",
    "render_shapes_image",
    "sample_seed",
    "shapes_split_dir",
]

register_default_shapes_datasets()
