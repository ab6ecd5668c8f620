"""DETR dataset mapper and DETR's standard augmentation recipes (detectron2 transforms)."""

from __future__ import annotations

import copy
import logging
from collections.abc import Sequence

import numpy as np
import torch
from detectron2.data import detection_utils as utils
from detectron2.data import transforms as T

from .datasets import has_positive_size

__all__ = ["DetrDatasetMapper", "build_detr_augmentations", "build_detr_test_augmentations"]

logger = logging.getLogger(__name__)


def _as_size_tuple(value, what: str) -> tuple[int, ...]:
    sizes = (value,) if isinstance(value, (int, np.integer)) else tuple(value)
    if not sizes or any(isinstance(s, bool) or int(s) != s or s <= 0 for s in sizes):
        raise ValueError(
            f"{what} must be a positive int or a non-empty list of them, got {value!r}"
        )
    return tuple(int(s) for s in sizes)


def build_detr_augmentations(
    *,
    min_sizes: Sequence[int] | int,
    max_size: int,
    flip: bool = True,
    crop_resize_sizes: Sequence[int] | int | None = None,
    crop_size_range: Sequence[int] | None = None,
) -> list[T.Augmentation]:
    """Build one of DETR's two training augmentation branches.

    Plain branch (``crop_resize_sizes=None``): horizontal flip (p=0.5) then a multi-scale resize
    of the shortest edge to a random choice of ``min_sizes`` (longest edge <= ``max_size``).
    Crop branch: flip, resize the shortest edge to a choice of ``crop_resize_sizes`` (no
    maximum), ``RandomCrop("absolute_range", crop_size_range)`` (crop height and width each
    uniform in ``[lo, min(side, hi)]``), then the same multi-scale resize.

    Args:
        min_sizes: shortest-edge choices of the final resize, e.g. ``range(480, 801, 32)``.
        max_size: limit of the longest edge after the final resize, e.g. 1333.
        flip: add ``RandomFlip(horizontal=True)`` first.
        crop_resize_sizes: shortest-edge choices before the crop, e.g. ``(400, 500, 600)``;
            ``None`` for the plain branch.
        crop_size_range: ``(lo, hi)`` absolute crop size range, e.g. ``(384, 600)``; required
            with ``crop_resize_sizes``.

    Returns:
        list of detectron2 augmentations for :class:`DetrDatasetMapper`.
    """
    min_sizes = _as_size_tuple(min_sizes, "min_sizes")
    augs: list[T.Augmentation] = [T.RandomFlip(horizontal=True, vertical=False)] if flip else []
    if crop_resize_sizes is not None:
        if crop_size_range is None:
            raise ValueError("crop_size_range is required when crop_resize_sizes is given")
        crop_range = tuple(crop_size_range)
        if len(crop_range) != 2:
            raise ValueError(f"crop_size_range must be (lo, hi), got {crop_size_range!r}")
        lo, hi = _as_size_tuple(crop_range, "crop_size_range")
        if lo > hi:
            raise ValueError(f"crop_size_range must have lo <= hi, got {crop_size_range!r}")
        crop_resize = _as_size_tuple(crop_resize_sizes, "crop_resize_sizes")
        augs += [
            T.ResizeShortestEdge(crop_resize, sample_style="choice"),
            T.RandomCrop("absolute_range", (lo, hi)),
        ]
    elif crop_size_range is not None:
        raise ValueError("crop_size_range needs crop_resize_sizes (the resize before the crop)")
    augs.append(T.ResizeShortestEdge(min_sizes, max_size=max_size, sample_style="choice"))
    return augs


def build_detr_test_augmentations(*, min_size: int, max_size: int) -> list[T.Augmentation]:
    """Build DETR's test-time resize (shortest edge ``min_size``, longest <= ``max_size``).

    Args:
        min_size: shortest edge, e.g. 800.
        max_size: longest-edge limit, e.g. 1333.

    Returns:
        ``[ResizeShortestEdge(min_size, max_size)]``.
    """
    (size,) = _as_size_tuple(min_size, "min_size")
    return [T.ResizeShortestEdge(size, max_size=max_size)]


def _as_augmentation_list(augs, what: str) -> T.AugmentationList:
    if isinstance(augs, (T.Augmentation, T.Transform)):
        augs = [augs]
    augs = list(augs)
    for aug in augs:
        if not isinstance(aug, (T.Augmentation, T.Transform)):
            raise TypeError(
                f"{what} must hold detectron2 Augmentation or Transform objects, got {type(aug)}"
            )
    return T.AugmentationList(augs)


class DetrDatasetMapper:
    """Map a detectron2 dataset dict to DETR's training / inference input.

    In training one of the two augmentation lists is chosen with probability 1/2 per image (DETR's
    ``RandomSelect``; drawn from ``np.random``, which the training loader seeds per element).
    Crowd annotations and boxes with zero or negative width or height (before and after the
    transforms) are dropped; boxes are transformed (and clipped to a crop); an image whose boxes
    all vanish is kept with empty ``instances``. Normalisation to ``cxcywh`` in [0, 1] and pixel
    normalisation happen in the model.

    Output dict: the input keys (``file_name``, ``height``, ``width``, ``image_id``, ...) plus

    * ``image``: ``(3, H', W')`` uint8 tensor in ``image_format`` channel order, augmented;
    * ``instances`` (training only): ``Instances`` of size ``(H', W')`` with ``gt_boxes``
      (``Boxes``, ``(N, 4)`` absolute XYXY in the augmented image) and ``gt_classes``
      (``(N,)`` int64).

    In test mode ``annotations`` is removed and no ``instances`` are made.
    """

    def __init__(
        self,
        *,
        is_train: bool,
        augmentation: Sequence[T.Augmentation | T.Transform],
        augmentation_with_crop: Sequence[T.Augmentation | T.Transform] | None = None,
        image_format: str = "RGB",
    ):
        """
        Args:
            is_train: training mode (random branch choice, annotations to ``instances``).
            augmentation: the plain augmentation list (the only one used in test mode).
            augmentation_with_crop: the second training branch (usually with a crop); ``None``
                means always use ``augmentation``.
            image_format: format for ``detection_utils.read_image`` (``"RGB"`` or ``"BGR"``).
        """
        if image_format not in ("RGB", "BGR"):
            raise ValueError(f"image_format must be 'RGB' or 'BGR', got {image_format!r}")
        self.is_train = bool(is_train)
        self.augmentation = _as_augmentation_list(augmentation, "augmentation")
        self.augmentation_with_crop = (
            None
            if augmentation_with_crop is None
            else _as_augmentation_list(augmentation_with_crop, "augmentation_with_crop")
        )
        self.image_format = image_format
        mode = "training" if self.is_train else "inference"
        logger.info(
            "DetrDatasetMapper (%s): augmentation %s; with crop %s",
            mode,
            self.augmentation,
            self.augmentation_with_crop,
        )

    def __call__(self, dataset_dict: dict) -> dict:
        """Map one dataset dict (see the class docstring for the output)."""
        dataset_dict = copy.deepcopy(dataset_dict)
        image = utils.read_image(dataset_dict["file_name"], format=self.image_format)
        utils.check_image_size(dataset_dict, image)

        augs = self.augmentation
        if self.is_train and self.augmentation_with_crop is not None and np.random.rand() < 0.5:
            augs = self.augmentation_with_crop
        aug_input = T.AugInput(image)
        transforms = augs(aug_input)
        image = aug_input.image
        image_shape = image.shape[:2]  # (H', W')
        dataset_dict["image"] = torch.as_tensor(np.ascontiguousarray(image.transpose(2, 0, 1)))

        if not self.is_train:
            dataset_dict.pop("annotations", None)
            return dataset_dict

        annos = []
        for obj in dataset_dict.pop("annotations", []):
            if obj.get("iscrowd", 0) != 0 or not has_positive_size(obj):
                continue
            obj.pop("segmentation", None)
            obj.pop("keypoints", None)
            annos.append(utils.transform_instance_annotations(obj, transforms, image_shape))
        instances = utils.annotations_to_instances(annos, image_shape)
        dataset_dict["instances"] = utils.filter_empty_instances(instances)
        return dataset_dict
