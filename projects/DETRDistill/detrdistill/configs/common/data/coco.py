"""COCO 2017 with DETR's standard augmentation.

detectron2 registers ``coco_2017_train``/``coco_2017_val`` on ``import detectron2.data``, with
images and annotations under ``$DETECTRON2_DATASETS`` (default ``./datasets``):
``coco/train2017/``, ``coco/val2017/``, ``coco/annotations/instances_{train,val}2017.json``.

Top-level key: ``dataloader`` with ``train``, ``test`` and ``evaluator``. The evaluator's
``output_dir`` is None (no result files) so that this file stands alone; a full config may set
``dataloader.evaluator.output_dir = "${...train.output_dir}/inference"``.
"""

from detectron2.config import LazyCall as L
from detectron2.data import (
    build_detection_test_loader,
    build_detection_train_loader,
    get_detection_dataset_dicts,
)
from detectron2.evaluation import COCOEvaluator
from omegaconf import OmegaConf

from detrdistill.data import (
    DetrDatasetMapper,
    build_detr_augmentations,
    build_detr_test_augmentations,
)

_DETR_MIN_SIZES = tuple(range(480, 801, 32))  # 480, 512, ..., 800

dataloader = OmegaConf.create()

dataloader.train = L(build_detection_train_loader)(
    dataset=L(get_detection_dataset_dicts)(names="coco_2017_train", filter_empty=True),
    mapper=L(DetrDatasetMapper)(
        is_train=True,
        augmentation=L(build_detr_augmentations)(
            min_sizes=_DETR_MIN_SIZES, max_size=1333, flip=True
        ),
        augmentation_with_crop=L(build_detr_augmentations)(
            min_sizes=_DETR_MIN_SIZES,
            max_size=1333,
            flip=True,
            crop_resize_sizes=(400, 500, 600),
            crop_size_range=(384, 600),
        ),
        image_format="RGB",
    ),
    total_batch_size=16,
    num_workers=4,
)

dataloader.test = L(build_detection_test_loader)(
    dataset=L(get_detection_dataset_dicts)(names="coco_2017_val", filter_empty=False),
    mapper=L(DetrDatasetMapper)(
        is_train=False,
        augmentation=L(build_detr_test_augmentations)(min_size=800, max_size=1333),
        image_format="RGB",
    ),
    num_workers=4,
)

dataloader.evaluator = L(COCOEvaluator)(
    dataset_name="${..test.dataset.names}",
    max_dets_per_image=100,
    output_dir=None,  # the full config may set it, e.g. "${...train.output_dir}/inference"
)
