"""Every packaged teacher config accepts a converted published checkpoint of its own size
(official layout and detrex's, checked key by key and shape by shape on the meta device) and
names its checkpoint and the published source in the file."""

from dataclasses import replace

import pytest
from convert_testing import detrex_state_dict, official_state_dict, sizes_of_config

from detrdistill import model_zoo
from detrdistill.convert import (
    ConversionError,
    convert_state_dict,
    load_config,
    target_layout,
    variant_of_config,
)

TEACHERS = [name for name in model_zoo.list_configs() if name.startswith("teachers/")]
PAPER_PAIRS = {
    "teachers/deformable_detr_r101.py",
    "teachers/deformable_detr_r50.py",
    "teachers/conditional_detr_r101.py",
    "teachers/dab_detr_r101.py",
    "teachers/dab_detr_r50.py",
}


def test_the_paper_teachers_are_packaged():
    assert PAPER_PAIRS <= set(TEACHERS)
    assert {variant_of_config(load_config(n)) for n in TEACHERS} == {
        "detr",
        "conditional_detr",
        "dab_detr",
        "deformable_detr",
        "dino",
    }


@pytest.mark.parametrize("name", TEACHERS)
def test_teacher_config_names_its_checkpoint_and_source(name):
    cfg = load_config(name)
    stem = name.removeprefix("teachers/").removesuffix(".py")
    assert cfg.train.init_checkpoint == f"detrdistill://teachers/{stem}.pth"
    text = open(model_zoo.get_config_file(name)).read()
    assert "python -m detrdistill.convert" in text
    assert " AP" in text and ("https://" in text or "No R101 checkpoint is published" in text)


@pytest.mark.parametrize("name", TEACHERS)
@pytest.mark.parametrize("source", ["official", "detrex"])
def test_teacher_config_accepts_a_converted_checkpoint(name, source):
    cfg = load_config(name)
    variant = variant_of_config(cfg)
    sizes = sizes_of_config(cfg, variant)
    weights = official_state_dict(variant, sizes, device="meta")
    if source == "detrex":
        weights = detrex_state_dict(variant, weights, sizes)
    shapes, tied = target_layout(cfg)
    converted, report = convert_state_dict(
        weights, variant=variant, source=source, shapes=shapes, tied=tied
    )
    assert set(converted) == set(shapes)
    assert all(tuple(converted[k].shape) == tuple(shapes[k]) for k in shapes)
    assert report.mapped


def test_r50_checkpoint_does_not_fit_the_r101_teacher():
    cfg = load_config("teachers/conditional_detr_r101.py")
    sizes = replace(sizes_of_config(cfg, "conditional_detr"), depth=50)
    weights = official_state_dict("conditional_detr", sizes, device="meta")
    shapes, tied = target_layout(cfg)
    with pytest.raises(ConversionError, match=r"nothing for 255 key.*backbone\.res4\.\d+"):
        convert_state_dict(
            weights, variant="conditional_detr", source="official", shapes=shapes, tied=tied
        )
