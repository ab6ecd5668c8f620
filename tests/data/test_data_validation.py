"""Dataset validation: category ids beyond the model's ``num_classes`` fail before training (with
the json file and the config key named), and boxes with a non-positive width or height are
dropped with one warning (not turned into other boxes)."""

from __future__ import annotations

import json
import logging

import pytest
from detectron2.config import LazyCall as L
from detectron2.data import transforms as T
from detectron2.structures import BoxMode

from detrdistill import model_zoo
from detrdistill.data import DetrDatasetMapper, get_coco_dataset_dicts
from detrdistill.engine import do_train
from detrdistill.engine import runner as runner_module


def write_json_with_extra_classes(tiny_shapes, path, extra: int = 2):
    """The tiny shapes train json with ``extra`` more categories, the last one used once."""
    coco = json.loads(tiny_shapes.train_json.read_text())
    first = max(c["id"] for c in coco["categories"]) + 1
    coco["categories"] += [{"id": first + i, "name": f"extra{i}"} for i in range(extra)]
    coco["annotations"][0]["category_id"] = first + extra - 1
    path.write_text(json.dumps(coco))
    return path


def coco_dataset_node(name, json_file, image_root, filter_empty=True):
    return L(get_coco_dataset_dicts)(
        name=name, json_file=str(json_file), image_root=str(image_root), filter_empty=filter_empty
    )


@pytest.fixture
def no_model_build(monkeypatch):
    """Fail if do_train gets as far as building the model (the check must come first)."""

    def refuse(cfg):
        raise AssertionError("the model was built before the dataset was checked")

    monkeypatch.setattr(runner_module, "build_model", refuse)


@pytest.mark.parametrize(
    "config, key",
    [
        ("shapes/deformable_detr_tiny.py", "model.num_classes"),
        ("detrdistill/shapes_deformable_tiny.py", "model.student.num_classes"),
    ],
)
def test_category_ids_beyond_num_classes_fail_before_training(
    tiny_shapes, tmp_path, make_name, no_model_build, config, key
):
    json_file = write_json_with_extra_classes(tiny_shapes, tmp_path / "seven_classes.json")
    cfg = model_zoo.get_config(config)
    cfg.dataloader.train.dataset = coco_dataset_node(
        make_name("extra"), json_file, tiny_shapes.image_root_train
    )
    cfg.train.output_dir = str(tmp_path / "out")
    with pytest.raises(ValueError) as info:
        do_train(cfg)
    message = str(info.value)
    assert str(json_file) in message and f"{key} is 5" in message
    assert "up to 6" in message and f"{key}=7" in message


def test_test_set_category_ids_are_checked_before_training(
    tiny_shapes, tmp_path, make_name, no_model_build
):
    """Ids the model cannot predict in the test set would silently score AP 0 at the end."""
    json_file = write_json_with_extra_classes(tiny_shapes, tmp_path / "val_extra.json", extra=1)
    cfg = model_zoo.get_config("shapes/deformable_detr_tiny.py")
    cfg.dataloader.train.dataset.update(name=tiny_shapes.train_name, **tiny_shapes.train_kwargs)
    cfg.dataloader.test.dataset = coco_dataset_node(
        make_name("val_extra"), json_file, tiny_shapes.image_root_train, filter_empty=False
    )
    cfg.dataloader.evaluator.dataset_name = "${..test.dataset.name}"
    cfg.train.output_dir = str(tmp_path / "out")
    with pytest.raises(ValueError, match=r"val_extra\.json.*model\.num_classes is 5"):
        do_train(cfg)


def test_matching_num_classes_passes_the_check(tiny_shapes, tmp_path, make_name):
    json_file = write_json_with_extra_classes(tiny_shapes, tmp_path / "seven.json")
    cfg = model_zoo.get_config("shapes/deformable_detr_tiny.py")
    cfg.model.num_classes = 7
    cfg.dataloader.train.dataset = coco_dataset_node(
        make_name("seven"), json_file, tiny_shapes.image_root_train
    )
    cfg.dataloader.train.num_workers = 0
    loader = runner_module.build_train_loader(cfg)
    assert len(next(iter(loader))) == cfg.dataloader.train.total_batch_size


def test_non_positive_box_sizes_are_dropped_with_one_warning(
    tiny_shapes, tmp_path, make_name, caplog
):
    coco = json.loads(tiny_shapes.train_json.read_text())
    total = len(coco["annotations"])
    x, y, w, h = coco["annotations"][0]["bbox"]
    coco["annotations"][0]["bbox"] = [x + w, y, -w, h]  # negative width
    coco["annotations"][1]["bbox"][3] = 0  # zero height
    coco["annotations"][2]["bbox"][2] = -1.5
    json_file = tmp_path / "bad_boxes.json"
    json_file.write_text(json.dumps(coco))
    with caplog.at_level(logging.WARNING, logger="detrdistill.data.datasets"):
        dicts = get_coco_dataset_dicts(
            make_name("bad_boxes"), json_file, tiny_shapes.image_root_train, filter_empty=False
        )
    boxes = [a["bbox"] for d in dicts for a in d["annotations"]]
    assert len(boxes) == total - 3
    assert all(b[2] > 0 and b[3] > 0 for b in boxes)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    dropped = [m for m in warnings if "dropped" in m]
    assert len(dropped) == 1, warnings
    assert "dropped 3 annotation(s)" in dropped[0] and str(json_file) in dropped[0]


def test_mapper_drops_negative_size_boxes_instead_of_flipping_them(tiny_shapes):
    """Dataset dicts from elsewhere (e.g. detectron2's own registrations) are guarded too."""
    mapper = DetrDatasetMapper(is_train=True, augmentation=[T.RandomFlip(prob=1.0)])
    record = {
        "file_name": str(next(tiny_shapes.image_root_train.iterdir())),
        "height": 128,
        "width": 128,
        "annotations": [
            {"bbox": [60, 10, -20, 30], "bbox_mode": BoxMode.XYWH_ABS, "category_id": 1},
            {"bbox": [10, 10, 20, 0], "bbox_mode": BoxMode.XYWH_ABS, "category_id": 2},
            {"bbox": [50, 60, 40, 70], "bbox_mode": BoxMode.XYXY_ABS, "category_id": 3},
            {"bbox": [5, 6, 20, 30], "bbox_mode": BoxMode.XYWH_ABS, "category_id": 4},
        ],
    }
    out = mapper(record)
    # (a flip computes min/max of the corners: the negative box would come out as a valid one)
    assert out["instances"].gt_boxes.tensor.tolist() == [[103.0, 6.0, 123.0, 36.0]]
    assert out["instances"].gt_classes.tolist() == [4]
