"""Tests of dataset registration: shapes (default and custom sizes) and COCO-format files."""

from __future__ import annotations

import json
import shutil

import pytest
from detectron2.data import DatasetCatalog, MetadataCatalog
from detectron2.structures import BoxMode

from detrdistill.data import (
    DEFAULT_SHAPES_SPLITS,
    SHAPES_CLASSES,
    config_placeholder,
    get_coco_dataset_dicts,
    get_shapes_dataset_dicts,
    register_coco_dataset,
    register_shapes_dataset,
)


def test_default_shapes_registered_lazily():
    for name, spec in DEFAULT_SHAPES_SPLITS.items():
        assert name in DatasetCatalog.list()
        meta = MetadataCatalog.get(name)
        assert meta.thing_classes == list(SHAPES_CLASSES)
        assert meta.evaluator_type == "coco"
        folder = f"{spec['split']}_n{spec['num_images']}_seed{spec['seed']}_128px"
        assert meta.json_file.endswith(f"shapes_v1/{folder}/annotations.json")
        assert meta.image_root.endswith(f"shapes_v1/{folder}/images")
    assert DEFAULT_SHAPES_SPLITS["shapes_train"]["num_images"] == 2000
    assert DEFAULT_SHAPES_SPLITS["shapes_val"]["num_images"] == 200
    # registering the defaults again with the same parameters is a no-op
    register_shapes_dataset("shapes_train", **DEFAULT_SHAPES_SPLITS["shapes_train"])


def test_builtin_coco_names_exist():
    assert {"coco_2017_train", "coco_2017_val"} <= set(DatasetCatalog.list())


def test_shapes_registration_loads_generated_split(tmp_path, make_name):
    name = make_name("shapes")
    register_shapes_dataset(name, "train", 4, 21, root=tmp_path)
    assert not any(tmp_path.iterdir())  # nothing generated at registration
    dicts = DatasetCatalog.get(name)
    assert len(dicts) == 4 and [d["image_id"] for d in dicts] == [1, 2, 3, 4]
    for d in dicts:
        assert d["file_name"].startswith(str(tmp_path)) and d["height"] == d["width"] == 128
        for a in d["annotations"]:
            assert a["bbox_mode"] == BoxMode.XYWH_ABS and 0 <= a["category_id"] < 5
    meta = MetadataCatalog.get(name)
    assert meta.thing_dataset_id_to_contiguous_id == {1: 0, 2: 1, 3: 2, 4: 3, 5: 4}
    # idempotent with the same parameters, an error with other ones
    register_shapes_dataset(name, "train", 4, 21, root=str(tmp_path))
    with pytest.raises(ValueError, match=f"'{name}' is already registered"):
        register_shapes_dataset(name, "train", 5, 21, root=tmp_path)
    with pytest.raises(ValueError, match="registered in DatasetCatalog by other code"):
        register_shapes_dataset("coco_2017_val", "val", 4, 21, root=tmp_path)


def test_get_shapes_dataset_dicts_matches_catalog(tiny_shapes):
    dicts = get_shapes_dataset_dicts(tiny_shapes.val_name, **tiny_shapes.val_kwargs)
    assert len(dicts) == 6
    assert dicts == DatasetCatalog.get(tiny_shapes.val_name)


def _write_coco(path, images=2, with_empty=True):
    coco = {
        "images": [
            {"id": i, "file_name": f"{i}.png", "height": 20, "width": 30}
            for i in range(1, images + 1)
        ],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 7, "bbox": [1, 2, 5, 6], "iscrowd": 0}
        ],
        "categories": [{"id": 7, "name": "thing"}, {"id": 9, "name": "other"}],
    }
    if not with_empty:
        coco["images"] = coco["images"][:1]
    path.write_text(json.dumps(coco))
    return path


def test_custom_coco_dataset_register_and_filter(tmp_path, make_name):
    json_file = _write_coco(tmp_path / "ann.json")
    name = make_name("custom")
    dicts = get_coco_dataset_dicts(name, json_file, tmp_path, filter_empty=False)
    assert len(dicts) == 2
    assert dicts[0]["annotations"][0]["category_id"] == 0
    assert dicts[0]["file_name"] == str(tmp_path / "1.png")
    meta = MetadataCatalog.get(name)
    assert meta.thing_classes == ["thing", "other"] and meta.evaluator_type == "coco"
    assert meta.json_file == str(json_file)
    # idempotent (same paths), filter_empty drops the image without annotations
    assert len(get_coco_dataset_dicts(name, str(json_file), str(tmp_path))) == 1
    other = _write_coco(tmp_path / "other.json")
    with pytest.raises(ValueError, match="already registered with json_file"):
        get_coco_dataset_dicts(name, other, tmp_path)


def test_missing_json_names_the_file(tmp_path, make_name):
    missing = tmp_path / "nope.json"
    with pytest.raises(FileNotFoundError, match="nope.json"):
        get_coco_dataset_dicts(make_name("missing"), missing, tmp_path)
    json_file = _write_coco(tmp_path / "ann.json")
    with pytest.raises(FileNotFoundError, match="no_images_here"):
        get_coco_dataset_dicts(make_name("noroot"), json_file, tmp_path / "no_images_here")


@pytest.mark.parametrize(
    "content",
    [
        "{not json",
        "[]",
        json.dumps({"images": [{"id": 1, "file_name": "a.png", "height": 2, "width": 2}]}),
        json.dumps(
            {
                "images": [{"id": 1, "file_name": "a.png", "height": 2, "width": 2}],
                "annotations": [{"id": 1, "image_id": 1, "category_id": 3, "bbox": [0, 0, 1, 1]}],
                "categories": [{"id": 1, "name": "x"}],
            }
        ),
        json.dumps({"images": [], "annotations": [], "categories": [{"id": 1, "name": "x"}]}),
    ],
    ids=["syntax", "not-a-dict", "no-categories", "unknown-category", "no-images"],
)
def test_broken_json_names_the_file(tmp_path, make_name, content):
    broken = tmp_path / "broken_ann.json"
    broken.write_text(content)
    with pytest.raises(ValueError, match="broken_ann.json"):
        get_coco_dataset_dicts(make_name("broken"), broken, tmp_path)


def test_placeholder_error_names_the_config_key(tmp_path, make_name):
    key = "dataloader.train.dataset.json_file"
    with pytest.raises(ValueError, match=f"'{key}' is not set.*{key}=/path"):
        register_coco_dataset(make_name("ph"), config_placeholder(key), tmp_path)
    key = "dataloader.test.dataset.image_root"
    json_file = _write_coco(tmp_path / "ann.json")
    with pytest.raises(ValueError, match=f"'{key}' is not set"):
        get_coco_dataset_dicts(make_name("ph"), json_file, config_placeholder(key))


def test_custom_dataset_from_generated_shapes_json(tiny_shapes, tmp_path, make_name):
    image_root = tmp_path / "imgs"
    shutil.copytree(tiny_shapes.image_root_val, image_root)
    name = make_name("shapes_as_custom")
    dicts = get_coco_dataset_dicts(name, tiny_shapes.val_json, image_root, filter_empty=False)
    assert len(dicts) == 6
    assert MetadataCatalog.get(name).thing_classes == list(SHAPES_CLASSES)
