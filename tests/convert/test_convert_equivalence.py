"""Converted synthetic official and detrex checkpoints load strictly into this project's
detectors and reproduce the original architectures' outputs computed from the original tensors."""

import pytest
import torch
from convert_testing import (
    build_model,
    detrex_state_dict,
    images,
    model_layout,
    official_state_dict,
    reference_dino_outputs,
    reference_outputs,
    sizes_of,
)

from detrdistill.convert import COCO_CATEGORY_IDS, convert_state_dict

# name: (variant, sizes of the original, options of the target model only)
CASES = {
    "detr": ("detr", {}, {}),
    "conditional_detr": ("conditional_detr", {}, {}),
    "dab_detr": ("dab_detr", {}, {}),
    "dab_detr_fixed_anchor_centers": ("dab_detr", {}, {"random_anchor_centers": True}),
    "deformable_detr": ("deformable_detr", {}, {}),
    "deformable_detr_box_refine": ("deformable_detr", {"with_box_refine": True}, {}),
    "deformable_detr_two_stage": (
        "deformable_detr",
        {"with_box_refine": True, "two_stage": True},
        {},
    ),
    "dino": ("dino", {}, {}),
    "dino_separate_heads": ("dino", {"shared_heads": False}, {}),
}


@pytest.fixture(scope="module", params=sorted(CASES))
def case(request):
    variant, size_options, model_options = CASES[request.param]
    sizes = sizes_of(**size_options)
    official = official_state_dict(variant, sizes, with_counters=variant == "detr")
    model = build_model(variant, sizes, **model_options)
    shapes, tied = model_layout(model)
    converted, report = convert_state_dict(
        official, variant=variant, source="official", shapes=shapes, tied=tied
    )
    return variant, sizes, official, model, shapes, tied, converted, report


def test_converted_official_checkpoint_loads_strictly(case):
    variant, sizes, official, model, shapes, _, converted, report = case
    assert set(converted) == set(shapes)
    incompatible = model.load_state_dict(converted, strict=True)
    assert not incompatible.missing_keys and not incompatible.unexpected_keys
    assert report.mapped and all(m["to"] in shapes for m in report.mapped)
    accounted = {key for m in report.mapped for key in m["from"]}
    accounted |= {d["key"] for d in report.dropped}
    assert accounted == set(official), "every source key is mapped or dropped"
    assert {m["to"] for m in report.mapped} | {c["key"] for c in report.created} == set(shapes)


def test_forward_matches_the_original_architecture(case):
    variant, sizes, official, model, _, _, converted, _ = case
    model.load_state_dict(converted, strict=True)
    # Two-stage: the original may rank padded proposals; compare on unpadded images (DINO's
    # reference ranks them last as this project does, and runs on padded images).
    batch = images(same_size=sizes.two_stage)
    with torch.no_grad():
        output = model.run(batch)
        logits, boxes = reference_outputs(variant, official, batch, sizes)
    assert output.decoder.pred_logits.shape == logits.shape
    torch.testing.assert_close(output.decoder.pred_logits, logits, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(output.decoder.pred_boxes, boxes, rtol=1e-4, atol=1e-5)


def test_detrex_layout_converts_to_the_same_tensors(case):
    variant, sizes, official, _, shapes, tied, converted, _ = case
    detrex = detrex_state_dict(variant, official, sizes)
    assert not set(detrex) & {k for k in official if k.startswith("backbone.0.body")}
    again, report = convert_state_dict(
        detrex, variant=variant, source="detrex", shapes=shapes, tied=tied
    )
    assert report.source_format == "detrex"
    different = [key for key in converted if not torch.equal(converted[key], again[key])]
    assert not different


def test_report_names_the_layout_specific_steps(case):
    variant, sizes, official, model, _, _, _, report = case
    notes = " ".join(m["note"] for m in report.mapped)
    dropped = " ".join(d["reason"] for d in report.dropped)
    created = {c["key"] for c in report.created}
    assert "COCO category ids" in notes
    assert "q/k/v" in notes
    if variant == "detr":
        assert "no-object row 91" in notes
        assert "BatchNorm update counter" in dropped  # torchvision's num_batches_tracked
    if variant in ("detr", "conditional_detr", "dab_detr"):
        assert "class_embed.1.weight" in created  # the shared head, listed per layer
    if variant == "dab_detr":
        assert "transformer.decoder.bbox_embed.layers.0.weight" in {
            d["key"] for d in report.dropped
        }
    if variant in ("deformable_detr", "dino"):
        assert "norm1/norm2 swapped" in notes
    if variant == "dino":
        labels = next(m for m in report.mapped if m["from"] == ["label_enc.weight"])
        assert labels["to"] == "denoising.label_embed.weight"
        assert "80 COCO category ids of 92" in labels["note"]
        assert "transformer.decoder.bbox_embed.0.layers.0.weight" in {
            d["key"] for d in report.dropped
        }
    if sizes.two_stage:
        assert "objectness" in notes and "(y, x, w, h)" in notes
    if "anchor_centers" in model.state_dict():
        assert "anchor_centers" in created


def test_dino_proposals_and_boxes_match_the_original_on_padded_images():
    """DINO on a padded batch: the anchors' positional queries and the deformable sampling are
    scaled by the valid ratios; the selected proposals (the encoder loss's inputs) match too."""
    sizes = sizes_of()
    official = official_state_dict("dino", sizes, seed=4)
    model = build_model("dino", sizes)
    shapes, tied = model_layout(model)
    converted, _ = convert_state_dict(
        official, variant="dino", source="official", shapes=shapes, tied=tied
    )
    model.load_state_dict(converted, strict=True)
    batch = images(same_size=False, seed=5)
    assert batch.image_sizes[0] != batch.image_sizes[1]
    with torch.no_grad():
        output = model.run(batch)
        ref = reference_dino_outputs(official, batch, sizes)
    rows = list(COCO_CATEGORY_IDS)
    torch.testing.assert_close(
        output.decoder.enc_logits, ref["enc_logits"][..., rows], rtol=1e-4, atol=1e-4
    )
    torch.testing.assert_close(output.decoder.enc_boxes, ref["enc_boxes"], rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(
        output.decoder.pred_logits, ref["logits"][..., rows], rtol=1e-4, atol=1e-4
    )
    torch.testing.assert_close(output.decoder.pred_boxes, ref["boxes"], rtol=1e-4, atol=1e-5)
