"""Tests of the synthetic shapes generator and its atomic cache."""

from __future__ import annotations

import json
import multiprocessing as mp
from collections import Counter

import numpy as np
import pytest
from PIL import Image

from detrdistill.data import (
    SHAPES_CLASSES,
    default_shapes_root,
    ensure_shapes_split,
    generate_shapes_split,
    render_shapes_image,
    shapes_split_dir,
    synthetic_shapes,
)


def _read_split(json_path):
    coco = json.loads(json_path.read_text())
    images = {
        im["id"]: np.asarray(Image.open(json_path.parent / "images" / im["file_name"]))
        for im in coco["images"]
    }
    return coco, images


def test_same_seed_gives_identical_json_and_pixels(tmp_path):
    json_a = generate_shapes_split(tmp_path / "a", num_images=6, seed=3)
    json_b = generate_shapes_split(tmp_path / "b", num_images=6, seed=3)
    assert json_a.read_bytes() == json_b.read_bytes()
    coco_a, images_a = _read_split(json_a)
    _, images_b = _read_split(json_b)
    assert len(images_a) == 6 and len(coco_a["annotations"]) >= 6
    for image_id, pixels in images_a.items():
        assert pixels.shape == (128, 128, 3) and pixels.dtype == np.uint8
        np.testing.assert_array_equal(pixels, images_b[image_id])


def test_other_seed_differs_and_smaller_set_is_a_prefix(tmp_path):
    coco_a, images_a = _read_split(generate_shapes_split(tmp_path / "a", 4, seed=3))
    coco_c, images_c = _read_split(generate_shapes_split(tmp_path / "c", 4, seed=4))
    assert not np.array_equal(images_a[1], images_c[1])
    coco_big, images_big = _read_split(generate_shapes_split(tmp_path / "big", 6, seed=3))
    for image_id in images_a:
        np.testing.assert_array_equal(images_a[image_id], images_big[image_id])
    prefix = [a for a in coco_big["annotations"] if a["image_id"] <= 4]
    assert prefix == coco_a["annotations"]


def test_rendered_objects_are_valid_and_varied():
    classes, sides, counts = Counter(), [], Counter()
    for index in range(60):
        rng = np.random.default_rng(np.random.SeedSequence([11, index]))
        image, objects = render_shapes_image(rng, 128, return_masks=True)
        assert image.shape == (128, 128, 3) and image.dtype == np.uint8
        assert 1 <= len(objects) <= 6
        counts[len(objects)] += 1
        later_union = np.zeros((128, 128), dtype=bool)
        for obj in reversed(objects):  # last painted is on top
            x, y, w, h = obj["bbox"]
            mask = obj["mask"]
            # inside the image and tight: the mask touches all four box edges
            assert 0 <= x and 0 <= y and x + w <= 128 and y + h <= 128
            rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
            assert (cols[0], rows[0], cols[-1] + 1, rows[-1] + 1) == (x, y, x + w, y + h)
            assert obj["area"] == mask.sum()
            assert 13 <= max(w, h) <= 61
            visible = (mask & ~later_union).sum()
            assert visible >= 0.5 * obj["area"]
            later_union |= mask
            classes[obj["category"]] += 1
            sides.append(max(w, h))
    assert set(classes) == set(range(len(SHAPES_CLASSES)))
    assert min(classes.values()) >= 20
    assert min(sides) < 20 and max(sides) > 50
    assert len(counts) >= 5  # 1..6 objects per image occur
    # objects are painted flat: the top object's pixels differ clearly from the background
    rng = np.random.default_rng(np.random.SeedSequence([11, 0]))
    image, objects = render_shapes_image(rng, 128, return_masks=True)
    top = objects[-1]["mask"]
    ring = np.zeros_like(top)
    x, y, w, h = (int(v) for v in objects[-1]["bbox"])
    ring[max(y - 3, 0) : y + h + 3, max(x - 3, 0) : x + w + 3] = True
    ring &= ~top
    inside = image[top].astype(float).mean(0)
    assert image[top].astype(float).std(0).max() < 25  # flat colour + sigma-6 noise + shading
    assert np.abs(inside - image[ring].astype(float).mean(0)).max() > 20


def test_coco_json_format(tmp_path):
    coco, images = _read_split(generate_shapes_split(tmp_path, 5, seed=1, split="val"))
    assert [c["name"] for c in coco["categories"]] == list(SHAPES_CLASSES)
    assert [c["id"] for c in coco["categories"]] == [1, 2, 3, 4, 5]
    assert [im["id"] for im in coco["images"]] == [1, 2, 3, 4, 5]
    assert coco["info"]["seed"] == 1 and coco["info"]["split"] == "val"
    ids = [a["id"] for a in coco["annotations"]]
    assert len(set(ids)) == len(ids)
    for a in coco["annotations"]:
        assert a["iscrowd"] == 0 and 1 <= a["category_id"] <= 5 and a["image_id"] in images
        assert len(a["bbox"]) == 4 and a["area"] <= a["bbox"][2] * a["bbox"][3]


def test_default_root_follows_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("DETRDISTILL_CACHE", str(tmp_path))
    assert default_shapes_root() == tmp_path / "shapes_v1"
    monkeypatch.delenv("DETRDISTILL_CACHE")
    assert str(default_shapes_root()).endswith(".cache/detrdistill/shapes_v1")


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(split="a/b", num_images=2, seed=0),
        dict(split="train", num_images=0, seed=0),
        dict(split="train", num_images=2, seed=-1),
        dict(split="train", num_images=2.5, seed=0),
        dict(split="train", num_images=2, seed=0, image_size=64),
    ],
)
def test_bad_split_arguments_are_rejected(tmp_path, kwargs):
    with pytest.raises(ValueError, match="split|num_images|seed|image_size"):
        shapes_split_dir(tmp_path, **kwargs)


def test_ensure_reuses_cache_and_rejects_incomplete_folder(tmp_path):
    json_file, image_root = ensure_shapes_split(tmp_path, "train", 3, 5)
    assert json_file == shapes_split_dir(tmp_path, "train", 3, 5) / "annotations.json"
    assert sorted(p.name for p in image_root.iterdir()) == [
        "000001.png",
        "000002.png",
        "000003.png",
    ]
    stamp = json_file.stat().st_mtime_ns
    assert ensure_shapes_split(tmp_path, "train", 3, 5) == (json_file, image_root)
    assert json_file.stat().st_mtime_ns == stamp  # not regenerated
    broken = shapes_split_dir(tmp_path, "train", 3, 6)
    broken.mkdir()
    with pytest.raises(RuntimeError, match="exists but has no annotations.json"):
        ensure_shapes_split(tmp_path, "train", 3, 6)


def _ensure_in_child(root, barrier, queue, use_lock):
    if not use_lock:
        synthetic_shapes.fcntl = None  # exercise the lost-rename path
    barrier.wait()
    json_file, image_root = ensure_shapes_split(root, "train", 20, 9)
    queue.put((str(json_file), str(image_root)))


@pytest.mark.parametrize("use_lock", [True, False])
def test_concurrent_generation_is_safe(tmp_path, use_lock):
    ctx = mp.get_context("fork")
    barrier, queue = ctx.Barrier(2), ctx.Queue()
    procs = [
        ctx.Process(target=_ensure_in_child, args=(tmp_path, barrier, queue, use_lock))
        for _ in range(2)
    ]
    for p in procs:
        p.start()
    results = [queue.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    assert results[0] == results[1]
    target = shapes_split_dir(tmp_path, "train", 20, 9)
    coco = json.loads((target / "annotations.json").read_text())
    assert len(coco["images"]) == 20 and len(list((target / "images").iterdir())) == 20
    leftovers = [p.name for p in tmp_path.iterdir() if ".tmp-" in p.name]
    assert leftovers == []
    reference = generate_shapes_split(tmp_path / "ref", 20, 9)
    assert reference.read_bytes() == (target / "annotations.json").read_bytes()
