"""Tests of DetrDatasetMapper and the DETR augmentation builders."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from detectron2.data import transforms as T
from detectron2.structures import Boxes, BoxMode, Instances
from PIL import Image

from detrdistill.data import (
    DetrDatasetMapper,
    build_detr_augmentations,
    build_detr_test_augmentations,
)

H, W = 40, 60


@pytest.fixture
def sample(tmp_path):
    """A 40x60 dark image with a white box at XYWH (10, 5, 20, 10) and its dataset dict."""
    pixels = np.full((H, W, 3), 20, dtype=np.uint8)
    pixels[5:15, 10:30] = 250
    path = tmp_path / "img.png"
    Image.fromarray(pixels).save(path)

    def anno(bbox, category_id=2, iscrowd=0, mode=BoxMode.XYWH_ABS):
        return {"bbox": bbox, "bbox_mode": mode, "category_id": category_id, "iscrowd": iscrowd}

    record = {
        "file_name": str(path),
        "height": H,
        "width": W,
        "image_id": 7,
        "annotations": [anno([10, 5, 20, 10])],
    }
    return record, anno


def _boxes(out):
    return out["instances"].gt_boxes.tensor.tolist()


def test_flip_and_resize_move_a_known_box(sample):
    record, _ = sample
    mapper = DetrDatasetMapper(
        is_train=True,
        augmentation=[T.RandomFlip(prob=1.0), T.ResizeShortestEdge(80, max_size=1000)],
    )
    out = mapper(record)
    image = out["image"]
    assert image.dtype == torch.uint8 and image.shape == (3, 2 * H, 2 * W)
    # flip: x -> 60 - x, so XYXY (10, 5, 30, 15) -> (30, 5, 50, 15); then x2
    assert _boxes(out) == [[60.0, 10.0, 100.0, 30.0]]
    assert out["instances"].gt_classes.tolist() == [2]
    assert out["instances"].image_size == (2 * H, 2 * W)
    assert isinstance(out["instances"].gt_boxes, Boxes)
    # the pixels moved with the box
    assert image[:, 12:28, 62:98].float().mean() > 240
    assert image[:, 12:28, 22:58].float().mean() < 30
    assert record["annotations"][0]["bbox"] == [10, 5, 20, 10]  # input not modified
    assert out["height"] == H and out["width"] == W and out["image_id"] == 7


def test_crop_clips_boxes_and_drops_vanished_ones(sample):
    record, anno = sample
    record["annotations"].append(anno([50, 30, 5, 5], category_id=1))  # outside the crop
    mapper = DetrDatasetMapper(is_train=True, augmentation=[T.CropTransform(15, 0, 30, 20)])
    out = mapper(record)
    assert out["image"].shape == (3, 20, 30)
    assert _boxes(out) == [[0.0, 5.0, 15.0, 15.0]]
    assert out["instances"].gt_classes.tolist() == [2]


def test_degenerate_and_crowd_boxes_are_removed(sample):
    record, anno = sample
    record["annotations"] += [
        anno([3, 3, 0, 8]),  # zero width
        anno([3, 3, 8, 0]),  # zero height
        anno([20, 20, 10, 15], mode=BoxMode.XYXY_ABS),  # negative height
        anno([0, 0, 10, 10], iscrowd=1),
        {**anno([1, 1, 4, 4], category_id=0), "segmentation": [[1, 1, 5, 1, 5, 5]]},
    ]
    mapper = DetrDatasetMapper(is_train=True, augmentation=[])
    out = mapper(record)
    assert _boxes(out) == [[10.0, 5.0, 30.0, 15.0], [1.0, 1.0, 5.0, 5.0]]
    assert out["instances"].gt_classes.tolist() == [2, 0]
    assert "annotations" not in out and not out["instances"].has("gt_masks")


def test_images_whose_boxes_all_vanish_are_kept_empty(sample):
    record, _ = sample
    mapper = DetrDatasetMapper(is_train=True, augmentation=[T.CropTransform(40, 20, 20, 20)])
    out = mapper(record)
    inst = out["instances"]
    assert isinstance(inst, Instances) and len(inst) == 0
    assert inst.gt_boxes.tensor.shape == (0, 4) and inst.gt_classes.dtype == torch.int64
    assert inst.image_size == (20, 20)
    record["annotations"] = []
    assert len(DetrDatasetMapper(is_train=True, augmentation=[])(record)["instances"]) == 0
    del record["annotations"]
    assert len(DetrDatasetMapper(is_train=True, augmentation=[])(record)["instances"]) == 0


def test_test_mode_drops_annotations(sample):
    record, _ = sample
    mapper = DetrDatasetMapper(
        is_train=False,
        augmentation=build_detr_test_augmentations(min_size=20, max_size=100),
        augmentation_with_crop=[T.CropTransform(0, 0, 5, 5)],  # ignored at test time
    )
    out = mapper(record)
    assert out["image"].shape == (3, 20, 30)
    assert "annotations" not in out and "instances" not in out


def test_random_select_uses_both_branches(sample):
    record, _ = sample
    record["annotations"] = []
    mapper = DetrDatasetMapper(
        is_train=True,
        augmentation=[T.ResizeShortestEdge(40, max_size=1000)],
        augmentation_with_crop=[T.ResizeShortestEdge(80, max_size=1000)],
    )
    np.random.seed(0)
    heights = [mapper(record)["image"].shape[1] for _ in range(100)]
    assert set(heights) == {40, 80} and 25 < heights.count(80) < 75


def test_bgr_format_and_validation(sample):
    record, _ = sample
    rgb = DetrDatasetMapper(is_train=False, augmentation=[])(record)["image"]
    bgr = DetrDatasetMapper(is_train=False, augmentation=[], image_format="BGR")(record)["image"]
    assert torch.equal(rgb.flip(0), bgr)
    with pytest.raises(ValueError, match="image_format"):
        DetrDatasetMapper(is_train=False, augmentation=[], image_format="L")
    with pytest.raises(TypeError, match="augmentation"):
        DetrDatasetMapper(is_train=True, augmentation=[lambda x: x])


def test_augmentation_builders():
    plain = build_detr_augmentations(min_sizes=range(480, 801, 32), max_size=1333)
    assert [type(a) for a in plain] == [T.RandomFlip, T.ResizeShortestEdge]
    assert plain[1].short_edge_length == tuple(range(480, 801, 32)) and plain[1].max_size == 1333
    assert plain[1].is_range is False and plain[0].horizontal
    crop = build_detr_augmentations(
        min_sizes=[96, 128],
        max_size=256,
        crop_resize_sizes=(400, 500, 600),
        crop_size_range=(384, 600),
    )
    assert [type(a) for a in crop] == [
        T.RandomFlip,
        T.ResizeShortestEdge,
        T.RandomCrop,
        T.ResizeShortestEdge,
    ]
    assert crop[1].short_edge_length == (400, 500, 600)
    assert crop[2].crop_type == "absolute_range" and tuple(crop[2].crop_size) == (384, 600)
    assert crop[3].short_edge_length == (96, 128) and crop[3].max_size == 256
    no_flip = build_detr_augmentations(min_sizes=128, max_size=256, flip=False)
    assert [type(a) for a in no_flip] == [T.ResizeShortestEdge]
    (test_resize,) = build_detr_test_augmentations(min_size=800, max_size=1333)
    assert test_resize.short_edge_length == (800, 800) and test_resize.max_size == 1333
    with pytest.raises(ValueError, match="crop_size_range is required"):
        build_detr_augmentations(min_sizes=128, max_size=256, crop_resize_sizes=(64,))
    with pytest.raises(ValueError, match="lo <= hi"):
        build_detr_augmentations(
            min_sizes=128, max_size=256, crop_resize_sizes=(64,), crop_size_range=(9, 3)
        )
    with pytest.raises(ValueError, match="min_sizes"):
        build_detr_augmentations(min_sizes=[], max_size=256)


def test_crop_branch_output_is_consistent(tiny_shapes):
    """Random DETR crop branch on real shapes images: boxes stay inside and non-degenerate."""
    from detectron2.data import DatasetCatalog

    mapper = DetrDatasetMapper(
        is_train=True,
        augmentation=build_detr_augmentations(min_sizes=(96, 128), max_size=256),
        augmentation_with_crop=build_detr_augmentations(
            min_sizes=(96, 128), max_size=256, crop_resize_sizes=(64, 80), crop_size_range=(40, 64)
        ),
    )
    np.random.seed(1)
    for record in DatasetCatalog.get(tiny_shapes.train_name) * 3:
        out = mapper(record)
        h, w = out["image"].shape[1:]
        boxes = out["instances"].gt_boxes.tensor
        assert (out["instances"].image_size) == (h, w) and max(h, w) <= 256
        assert bool((boxes[:, 2] > boxes[:, 0]).all() and (boxes[:, 3] > boxes[:, 1]).all())
        assert bool((boxes >= 0).all() and (boxes[:, 2] <= w).all() and (boxes[:, 3] <= h).all())
