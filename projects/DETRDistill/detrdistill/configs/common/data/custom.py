"""Any COCO-format dataset (instances json + image folder), set through config values alone.

The four paths below are placeholders; training fails with an error naming the key until they
are set, e.g.::

    train_net.py --config-file ... \
        dataloader.train.dataset.json_file=/data/mine/train.json \
        dataloader.train.dataset.image_root=/data/mine/images \
        dataloader.test.dataset.json_file=/data/mine/val.json \
        dataloader.test.dataset.image_root=/data/mine/images

The sets are registered as ``custom_train``/``custom_val`` (``dataloader.*.dataset.name``) when
the loaders are built; instantiate ``dataloader.test`` before ``dataloader.evaluator`` (as
detectron2's training scripts do). Augmentation is DETR's COCO recipe (see coco.py); the model's
``num_classes`` must match the json's categories.

Top-level key: ``dataloader`` with ``train``, ``test`` and ``evaluator``.
"""

from detectron2.config import LazyCall as L
from detectron2.data import build_detection_test_loader, build_detection_train_loader
from detectron2.evaluation import COCOEvaluator
from omegaconf import OmegaConf

from detrdistill.data import (
    DetrDatasetMapper,
    build_detr_augmentations,
    build_detr_test_augmentations,
    config_placeholder,
    get_coco_dataset_dicts,
)

_DETR_MIN_SIZES = tuple(range(480, 801, 32))  # 480, 512, ..., 800

dataloader = OmegaConf.create()

dataloader.train = L(build_detection_train_loader)(
    dataset=L(get_coco_dataset_dicts)(
        name="custom_train",
        json_file=config_placeholder("dataloader.train.dataset.json_file"),
        image_root=config_placeholder("dataloader.train.dataset.image_root"),
        filter_empty=True,
    ),
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
    dataset=L(get_coco_dataset_dicts)(
        name="custom_val",
        json_file=config_placeholder("dataloader.test.dataset.json_file"),
        image_root=config_placeholder("dataloader.test.dataset.image_root"),
        filter_empty=False,
    ),
    mapper=L(DetrDatasetMapper)(
        is_train=False,
        augmentation=L(build_detr_test_augmentations)(min_size=800, max_size=1333),
        image_format="RGB",
    ),
    num_workers=4,
)

dataloader.evaluator = L(COCOEvaluator)(
    dataset_name="${..test.dataset.name}",
    max_dets_per_image=100,
    output_dir=None,  # the full config may set it, e.g. "${...train.output_dir}/inference"
)
