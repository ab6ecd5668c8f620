"""Embedded synthetic shapes set (128x128, 5 classes), sized for CPU training.

The datasets are generated into the cache on first load (about 10 s): ``$DETRDISTILL_CACHE/
shapes_v1`` or ``~/.cache/detrdistill/shapes_v1``. ``shapes_train``/``shapes_val`` are the
pre-registered defaults; to use another size, seed or cache root, also give the set a new name:

    dataloader.train.dataset.name=shapes_train_500 dataloader.train.dataset.num_images=500
    dataloader.test.dataset.name=shapes_val_tmp dataloader.test.dataset.root=/tmp/shapes

Top-level key: ``dataloader`` with ``train``, ``test`` and ``evaluator``. The evaluator's
``output_dir`` is None (no result files) so that this file stands alone; a full config may set
``dataloader.evaluator.output_dir = "${...train.output_dir}/inference"``. Instantiate
``dataloader.test`` before ``dataloader.evaluator`` (as detectron2's training scripts do): it
generates the set that the evaluator reads.
"""

from detectron2.config import LazyCall as L
from detectron2.data import build_detection_test_loader, build_detection_train_loader
from detectron2.evaluation import COCOEvaluator
from omegaconf import OmegaConf

from detrdistill.data import (
    DetrDatasetMapper,
    build_detr_augmentations,
    build_detr_test_augmentations,
    get_shapes_dataset_dicts,
)

dataloader = OmegaConf.create()

dataloader.train = L(build_detection_train_loader)(
    dataset=L(get_shapes_dataset_dicts)(
        name="shapes_train", split="train", num_images=2000, seed=1, root=None, filter_empty=True
    ),
    mapper=L(DetrDatasetMapper)(
        is_train=True,
        augmentation=L(build_detr_augmentations)(
            min_sizes=(96, 112, 128, 144, 160), max_size=256, flip=True
        ),
        # DETR's crop branch scaled by 128/800: resize 400/500/600 -> 64/80/96, crop 384..600
        # -> 61..96, then the same multi-scale resize.
        augmentation_with_crop=L(build_detr_augmentations)(
            min_sizes=(96, 112, 128, 144, 160),
            max_size=256,
            flip=True,
            crop_resize_sizes=(64, 80, 96),
            crop_size_range=(61, 96),
        ),
        image_format="RGB",
    ),
    total_batch_size=8,
    num_workers=2,
)

dataloader.test = L(build_detection_test_loader)(
    dataset=L(get_shapes_dataset_dicts)(
        name="shapes_val", split="val", num_images=200, seed=2, root=None, filter_empty=False
    ),
    mapper=L(DetrDatasetMapper)(
        is_train=False,
        augmentation=L(build_detr_test_augmentations)(min_size=128, max_size=256),
        image_format="RGB",
    ),
    num_workers=2,
)

dataloader.evaluator = L(COCOEvaluator)(
    dataset_name="${..test.dataset.name}",
    max_dets_per_image=100,
    output_dir=None,  # the full config may set it, e.g. "${...train.output_dir}/inference"
)
