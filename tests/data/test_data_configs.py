"""Tests of the LazyConfig data configs (shapes, coco, custom) and COCO evaluation."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from detectron2.config import LazyConfig, instantiate
from detectron2.data import DatasetCatalog
from detectron2.structures import Boxes, BoxMode, Instances

import detrdistill
from detrdistill.data import DEFAULT_SHAPES_SPLITS, register_shapes_dataset

CONFIG_DIR = Path(detrdistill.__file__).parent / "configs" / "common" / "data"


def _load(name: str):
    return LazyConfig.load(str(CONFIG_DIR / f"{name}.py"))


def _first_batch(loader_cfg):
    return next(iter(instantiate(loader_cfg)))


def _check_train_batch(batch, batch_size):
    assert len(batch) == batch_size
    for item in batch:
        image, inst = item["image"], item["instances"]
        assert image.dtype == torch.uint8 and image.shape[0] == 3
        assert inst.image_size == tuple(image.shape[1:])
        assert inst.gt_boxes.tensor.shape[1] == 4 and len(inst.gt_classes) == len(inst)


def _check_test_batch(batch, short_edge):
    (item,) = batch
    assert "instances" not in item and "annotations" not in item
    assert min(item["image"].shape[1:]) == short_edge


@pytest.mark.parametrize("name", ["shapes", "coco", "custom"])
def test_config_loads_and_saves(name, tmp_path):
    cfg = _load(name)
    assert list(cfg.keys()) == ["dataloader"]
    assert set(cfg.dataloader.keys()) == {"train", "test", "evaluator"}
    assert cfg.dataloader.test.dataset.filter_empty is False
    assert cfg.dataloader.evaluator.max_dets_per_image == 100
    LazyConfig.save(cfg, str(tmp_path / "cfg.yaml"))  # placeholders must not break saving
    assert (tmp_path / "cfg.yaml").stat().st_size > 0


def test_shapes_config_defaults_match_the_registered_sets():
    cfg = _load("shapes")
    assert cfg.dataloader.train.total_batch_size == 8
    assert cfg.dataloader.train.num_workers == 2
    for part, name in (("train", "shapes_train"), ("test", "shapes_val")):
        ds = cfg.dataloader[part].dataset
        assert ds.name == name and ds.root is None
        assert {k: ds[k] for k in ("split", "num_images", "seed")} == DEFAULT_SHAPES_SPLITS[name]
        register_shapes_dataset(ds.name, ds.split, ds.num_images, ds.seed, ds.root)  # no clash


def _shapes_overrides(tiny, train_name, val_name, workers=0):
    return [
        f"dataloader.train.dataset.name={train_name}",
        f"dataloader.train.dataset.num_images={tiny.train_kwargs['num_images']}",
        f"dataloader.train.dataset.seed={tiny.train_kwargs['seed']}",
        f"dataloader.train.dataset.root={tiny.root}",
        "dataloader.train.total_batch_size=4",
        f"dataloader.train.num_workers={workers}",
        f"dataloader.test.dataset.name={val_name}",
        f"dataloader.test.dataset.num_images={tiny.val_kwargs['num_images']}",
        f"dataloader.test.dataset.seed={tiny.val_kwargs['seed']}",
        f"dataloader.test.dataset.root={tiny.root}",
        f"dataloader.test.num_workers={workers}",
    ]


@pytest.mark.parametrize("workers", [0, 2])
def test_shapes_config_loaders_yield_batches(tiny_shapes, workers):
    cfg = LazyConfig.apply_overrides(
        _load("shapes"),
        _shapes_overrides(tiny_shapes, tiny_shapes.train_name, tiny_shapes.val_name, workers),
    )
    batch = _first_batch(cfg.dataloader.train)
    _check_train_batch(batch, 4)
    assert all(96 <= min(b["image"].shape[1:]) <= 160 for b in batch)
    _check_test_batch(_first_batch(cfg.dataloader.test), 128)


def test_shapes_config_new_name_generates_into_root(tmp_path, make_name):
    name = make_name("cfg_shapes")
    cfg = LazyConfig.apply_overrides(
        _load("shapes"),
        [
            f"dataloader.test.dataset.name={name}",
            "dataloader.test.dataset.num_images=3",
            f"dataloader.test.dataset.root={tmp_path}",
            "dataloader.test.num_workers=0",
        ],
    )
    dicts = instantiate(cfg.dataloader.test.dataset)
    assert len(dicts) == 3 and (tmp_path / "val_n3_seed2_128px" / "annotations.json").is_file()
    cfg.dataloader.test.dataset.num_images = 4  # same name, other size: a clear error
    with pytest.raises(ValueError, match=f"'{name}' is already registered"):
        instantiate(cfg.dataloader.test.dataset)


def test_coco_config_on_a_tiny_set(tiny_shapes):
    cfg = _load("coco")
    assert cfg.dataloader.train.dataset.names == "coco_2017_train"
    assert cfg.dataloader.test.dataset.names == "coco_2017_val"
    assert cfg.dataloader.train.total_batch_size == 16
    cfg = LazyConfig.apply_overrides(
        cfg,
        [
            f"dataloader.train.dataset.names={tiny_shapes.train_name}",
            f"dataloader.test.dataset.names={tiny_shapes.val_name}",
            "dataloader.train.total_batch_size=2",
            "dataloader.train.num_workers=0",
            "dataloader.test.num_workers=0",
        ],
    )
    batch = _first_batch(cfg.dataloader.train)
    _check_train_batch(batch, 2)
    assert all(480 <= min(b["image"].shape[1:]) <= 800 for b in batch)
    _check_test_batch(_first_batch(cfg.dataloader.test), 800)


def test_custom_config_placeholder_error_names_the_key():
    cfg = _load("custom")
    with pytest.raises(ValueError, match="dataloader.train.dataset.json_file"):
        instantiate(cfg.dataloader.train.dataset)
    cfg.dataloader.test.dataset.json_file = "/somewhere/val.json"
    with pytest.raises(ValueError, match="dataloader.test.dataset.image_root"):
        instantiate(cfg.dataloader.test.dataset)


def test_custom_config_from_values(tiny_shapes, make_name):
    train_name, val_name = make_name("custom_train"), make_name("custom_val")
    cfg = LazyConfig.apply_overrides(
        _load("custom"),
        [
            f"dataloader.train.dataset.name={train_name}",
            f"dataloader.train.dataset.json_file={tiny_shapes.train_json}",
            f"dataloader.train.dataset.image_root={tiny_shapes.image_root_train}",
            f"dataloader.test.dataset.name={val_name}",
            f"dataloader.test.dataset.json_file={tiny_shapes.val_json}",
            f"dataloader.test.dataset.image_root={tiny_shapes.image_root_val}",
            "dataloader.train.total_batch_size=2",
            "dataloader.train.num_workers=0",
            "dataloader.test.num_workers=0",
        ],
    )
    _check_train_batch(_first_batch(cfg.dataloader.train), 2)
    _check_test_batch(_first_batch(cfg.dataloader.test), 800)
    assert len(DatasetCatalog.get(val_name)) == tiny_shapes.val_kwargs["num_images"]


def _ground_truth_as_predictions(record):
    inst = Instances((record["height"], record["width"]))
    boxes = [
        BoxMode.convert(a["bbox"], a["bbox_mode"], BoxMode.XYXY_ABS) for a in record["annotations"]
    ]
    inst.pred_boxes = Boxes(torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4))
    inst.scores = torch.linspace(1.0, 0.5, len(boxes))
    inst.pred_classes = torch.tensor([a["category_id"] for a in record["annotations"]])
    return {"instances": inst}


@pytest.mark.parametrize("name", ["shapes", "custom"])
def test_evaluator_gives_full_ap_for_ground_truth(tiny_shapes, tmp_path, make_name, name):
    cfg = _load(name)
    if name == "shapes":
        overrides = _shapes_overrides(tiny_shapes, tiny_shapes.train_name, tiny_shapes.val_name)
    else:
        overrides = [
            f"dataloader.test.dataset.name={make_name('custom_eval')}",
            f"dataloader.test.dataset.json_file={tiny_shapes.val_json}",
            f"dataloader.test.dataset.image_root={tiny_shapes.image_root_val}",
        ]
    cfg = LazyConfig.apply_overrides(cfg, overrides)
    cfg.train = {"output_dir": str(tmp_path)}  # the pattern a full config may use
    cfg.dataloader.evaluator.output_dir = "${...train.output_dir}/inference"
    records = instantiate(cfg.dataloader.test.dataset)  # registers (and generates) first
    evaluator = instantiate(cfg.dataloader.evaluator)
    evaluator.reset()
    for record in records:
        evaluator.process([record], [_ground_truth_as_predictions(record)])
    results = evaluator.evaluate()
    assert results["bbox"]["AP"] == pytest.approx(100.0)
    assert results["bbox"]["AP50"] == pytest.approx(100.0)
    assert os.path.isfile(tmp_path / "inference" / "coco_instances_results.json")
