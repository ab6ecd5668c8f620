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
detectron2's training scripts do). Everything but the datasets is coco.py's (DETR's COCO
augmentation, total batch 16); the model's ``num_classes`` must match the json's categories.

Top-level key: ``dataloader`` with ``train``, ``test`` and ``evaluator``.
"""

from detectron2.config import LazyCall as L

from detrdistill.data import config_placeholder, get_coco_dataset_dicts

from .coco import dataloader

dataloader.train.dataset = L(get_coco_dataset_dicts)(
    name="custom_train",
    json_file=config_placeholder("dataloader.train.dataset.json_file"),
    image_root=config_placeholder("dataloader.train.dataset.image_root"),
    filter_empty=True,
)
dataloader.test.dataset = L(get_coco_dataset_dicts)(
    name="custom_val",
    json_file=config_placeholder("dataloader.test.dataset.json_file"),
    image_root=config_placeholder("dataloader.test.dataset.image_root"),
    filter_empty=False,
)
dataloader.evaluator.dataset_name = "${..test.dataset.name}"
