"""A conversion that cannot be exact stops with the key named; the command line converts a
release-shaped file into a checkpoint that loads strictly and safely."""

import argparse
import fractions
import json

import pytest
import torch
from convert_testing import (
    build_model,
    detrex_state_dict,
    model_config,
    model_layout,
    official_state_dict,
    sizes_of,
)
from detectron2.checkpoint import DetectionCheckpointer
from detectron2.config import LazyConfig

from detrdistill.checkpoint import CHECKPOINTS_ENV
from detrdistill.convert import (
    RULE_SETS,
    ConversionError,
    convert_checkpoint,
    convert_state_dict,
    detect_layout,
)
from detrdistill.convert.__main__ import main
from detrdistill.distill.teacher import load_teacher_weights

SMALL = sizes_of()


def _convert(variant, weights, source="official", sizes=SMALL, **options):
    shapes, tied = model_layout(build_model(variant, sizes, device="meta", **options))
    return convert_state_dict(weights, variant=variant, source=source, shapes=shapes, tied=tied)


def test_every_variant_has_an_official_and_a_detrex_table():
    assert set(RULE_SETS) == {
        (variant, source)
        for variant in ("detr", "conditional_detr", "dab_detr", "deformable_detr", "dino")
        for source in ("official", "detrex")
    }


@pytest.mark.parametrize(
    "variant", ["detr", "conditional_detr", "dab_detr", "deformable_detr", "dino"]
)
def test_layout_detection(variant):
    official = official_state_dict(variant, device="meta")
    assert detect_layout(official) == (variant, "official")
    assert detect_layout(detrex_state_dict(variant, official)) == (variant, "detrex")


def test_wrong_variant_is_named():
    conditional = official_state_dict("conditional_detr")
    with pytest.raises(
        ConversionError,
        match=r"looks like a conditional_detr checkpoint \(official layout\), but the config "
        r"builds a deformable_detr model",
    ):
        _convert("deformable_detr", conditional)


def test_wrong_source_is_named():
    detrex = detrex_state_dict("detr", official_state_dict("detr"))
    with pytest.raises(ConversionError, match="detrex layout, not official"):
        _convert("detr", detrex, source="official")


def test_unknown_key_stops_the_conversion():
    weights = official_state_dict("dab_detr")
    weights["transformer.patterns.weight"] = torch.zeros(3, SMALL.hidden)  # 3-pattern DAB-DETR
    with pytest.raises(ConversionError, match=r"^transformer\.patterns\.weight: unknown key"):
        _convert("dab_detr", weights)


def test_shape_mismatch_names_both_keys():
    weights = official_state_dict("conditional_detr", sizes_of(queries=9))
    with pytest.raises(
        ConversionError, match=r"query_embed\.weight: shape \(9, 32\) does not fit query_embed"
    ):
        _convert("conditional_detr", weights)


def test_missing_key_is_named():
    weights = official_state_dict("detr")
    del weights["transformer.decoder.layers.1.norm2.weight"]
    with pytest.raises(ConversionError, match=r"decoder\.layers\.1\.norm2\.weight"):
        _convert("detr", weights)


def test_refinement_checkpoint_into_a_shared_head_model_is_refused():
    sizes = sizes_of(with_box_refine=True)
    weights = official_state_dict("deformable_detr", sizes)
    with pytest.raises(ConversionError, match="with_box_refine=True"):
        _convert("deformable_detr", weights, sizes=sizes_of())


def test_dino_checkpoint_with_per_layer_heads_into_a_shared_head_model_is_refused():
    weights = official_state_dict("dino", sizes_of(shared_heads=False))
    detrex = detrex_state_dict("dino", weights, sizes_of(shared_heads=False))
    for source, layout in (("official", weights), ("detrex", detrex)):
        with pytest.raises(ConversionError, match="model.share_heads=False"):
            _convert("dino", layout, source=source, sizes=sizes_of())


def test_two_stage_checkpoint_into_a_single_stage_model_is_refused():
    sizes = sizes_of(with_box_refine=True, two_stage=True)
    weights = official_state_dict("deformable_detr", sizes)
    with pytest.raises(ConversionError, match="enc_output|enc_class_embed|pos_trans"):
        _convert("deformable_detr", weights, sizes=sizes_of(with_box_refine=True))


def test_class_rows_need_coco_classes():
    with pytest.raises(ConversionError, match=r"class_embed\.(weight|bias): .*num_classes=80"):
        _convert("conditional_detr", official_state_dict("conditional_detr"), num_classes=20)


def test_alias_with_other_values_is_refused():
    weights = official_state_dict("dab_detr")
    weights["transformer.decoder.bbox_embed.layers.0.bias"] = torch.ones(SMALL.hidden)
    with pytest.raises(ConversionError, match="bbox_embed.layers.0.bias.*differs"):
        _convert("dab_detr", weights)


def test_already_converted_checkpoint_is_refused():
    model = build_model("detr")
    with pytest.raises(ConversionError, match="already in this project's layout"):
        _convert("detr", model.state_dict())


@pytest.fixture()
def release(tmp_path):
    """A small official Deformable DETR release file and a config for its sizes."""
    payload = {
        "model": official_state_dict("deformable_detr"),
        "optimizer": {"state": {}, "param_groups": [{"lr": 2e-4, "params": [0, 1]}]},
        "epoch": 49,
        "args": argparse.Namespace(lr=2e-4, num_feature_levels=4, two_stage=False),
    }
    path = tmp_path / "r50_deformable_detr-checkpoint.pth"
    torch.save(payload, path)
    config = tmp_path / "teacher.yaml"
    LazyConfig.save(model_config("deformable_detr"), str(config))
    return path, config


def test_cli_converts_reports_and_writes_a_safely_loadable_checkpoint(release, tmp_path, capsys):
    path, config = release
    output = tmp_path / "out" / "teacher.pth"
    assert main(["--config", str(config), str(path), str(output)]) == 0
    printed = capsys.readouterr().out
    assert "official deformable_detr checkpoint" in printed and "norm1/norm2 swapped" in printed
    saved = torch.load(output, weights_only=True)  # plain data only
    assert saved["__author__"] == "detrdistill.convert"
    assert saved["conversion"]["source_file"]["file"] == path.name
    assert saved["conversion"]["variant"] == "deformable_detr"
    report = json.loads((tmp_path / "out" / "teacher.report.json").read_text())
    assert report["counts"]["mapped"] == len(saved["model"])
    teacher = build_model("deformable_detr")
    load_teacher_weights(teacher, str(output))  # strict: no missing / unexpected keys
    checkpointer = DetectionCheckpointer(build_model("deformable_detr"))  # train_net's loader
    reported = []
    checkpointer._log_incompatible_keys = reported.append
    checkpointer.load(str(output))
    assert not reported[0].missing_keys and not reported[0].unexpected_keys
    assert not reported[0].incorrect_shapes


def test_cli_writes_into_the_checkpoint_cache(release, tmp_path, monkeypatch, capsys):
    path, config = release
    monkeypatch.setenv(CHECKPOINTS_ENV, str(tmp_path / "cache"))
    target = "detrdistill://teachers/deformable_detr_small.pth"
    assert main([str(path), target, "--source", "official", "--config", str(config)]) == 0
    assert (tmp_path / "cache" / "teachers" / "deformable_detr_small.pth").is_file()


def test_cli_config_overrides_and_refusal(release, tmp_path, capsys):
    path, config = release
    output = tmp_path / "never.pth"
    code = main(["--config", str(config), str(path), str(output), "model.num_queries=11"])
    assert code == 1 and not output.exists()
    assert "query_embed.weight: shape (7, 64)" in capsys.readouterr().err


def test_cli_unsafe_file_needs_the_explicit_flag(tmp_path, capsys):
    weights = official_state_dict("detr")
    path = tmp_path / "detr.pth"
    torch.save({"model": weights, "note": fractions.Fraction(1, 2)}, path)
    config = tmp_path / "detr.yaml"
    LazyConfig.save(model_config("detr"), str(config))
    output = tmp_path / "detr_converted.pth"
    assert main(["--config", str(config), str(path), str(output)]) == 1
    err = capsys.readouterr().err
    assert "fractions.Fraction" in err and "--allow-unsafe-pickle" in err and not output.exists()
    args = ["--config", str(config), "--allow-unsafe-pickle", str(path), str(output)]
    assert main(args) == 0 and output.exists()


def test_python_api_reads_release_files(release):
    path, config = release
    state, report, info = convert_checkpoint(str(path), str(config))
    assert info["source_format"] == "official" and info["source_file"]["bytes"] > 0
    assert "args" in info["source_file"]["top_level_keys"]
    assert report.variant == "deformable_detr" and len(state) == report.to_dict()["counts"][
        "mapped"
    ] + len(report.created)


def test_help_lists_the_tables(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for variant, source in RULE_SETS:
        assert variant in text and source in text
    assert "--allow-unsafe-pickle" in text and "detrdistill://" in text
