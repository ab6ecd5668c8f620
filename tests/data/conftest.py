"""Fixtures for the data tests: tiny generated shapes splits and catalog cleanup."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from detectron2.data import DatasetCatalog, MetadataCatalog

from detrdistill.data import ensure_shapes_split, register_shapes_dataset

_counter = itertools.count()


def unique_name(prefix: str) -> str:
    """A dataset name not used by any other test in this process."""
    return f"_test_{prefix}_{next(_counter)}"


def remove_dataset(name: str) -> None:
    """Remove ``name`` from both catalogs if present."""
    if name in DatasetCatalog.list():
        DatasetCatalog.remove(name)
    if name in MetadataCatalog.list():
        MetadataCatalog.remove(name)


@pytest.fixture
def make_name() -> Iterator[Callable[[str], str]]:
    """Factory of unique dataset names; every name made is removed from the catalogs after."""
    names: list[str] = []

    def make(prefix: str = "ds") -> str:
        names.append(unique_name(prefix))
        return names[-1]

    yield make
    for name in names:
        remove_dataset(name)


@dataclass(frozen=True)
class TinyShapes:
    """A tiny generated shapes set, registered under two names."""

    root: Path
    train_name: str
    val_name: str
    train_json: Path
    val_json: Path
    image_root_train: Path
    image_root_val: Path
    train_kwargs: dict
    val_kwargs: dict


@pytest.fixture(scope="session")
def tiny_shapes(tmp_path_factory) -> Iterator[TinyShapes]:
    """10 train images (seed 7) and 6 val images (seed 8), 128 px, generated once."""
    root = tmp_path_factory.mktemp("shapes_cache")
    train_kwargs = dict(split="train", num_images=10, seed=7, root=str(root))
    val_kwargs = dict(split="val", num_images=6, seed=8, root=str(root))
    train_json, train_images = ensure_shapes_split(root, "train", 10, 7)
    val_json, val_images = ensure_shapes_split(root, "val", 6, 8)
    train_name, val_name = unique_name("tiny_train"), unique_name("tiny_val")
    register_shapes_dataset(train_name, **train_kwargs)
    register_shapes_dataset(val_name, **val_kwargs)
    yield TinyShapes(
        root,
        train_name,
        val_name,
        train_json,
        val_json,
        train_images,
        val_images,
        train_kwargs,
        val_kwargs,
    )
    remove_dataset(train_name)
    remove_dataset(val_name)
