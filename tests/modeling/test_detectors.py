"""Every DETR variant builds from its packaged config, trains a step, infers, and exposes the
structured outputs distillation needs, with the documented shapes."""

from pathlib import Path

import pytest
import torch
from detectron2.config import LazyConfig, instantiate
from detectron2.modeling import META_ARCH_REGISTRY
from detectron2.structures import Boxes, Instances
from detectron2.utils.events import EventStorage
from omegaconf import OmegaConf

import detrdistill
from detrdistill.layers import DeformableAttentionWeights
from detrdistill.modeling import QueryGroup

VARIANTS = {
    "detr": {},
    "conditional_detr": {},
    "dab_detr": {},
    "deformable_detr": {},
    "deformable_detr_refine": {"with_box_refine": True},
    "deformable_detr_two_stage": {"with_box_refine": True, "as_two_stage": True},
    "dino": {},
}
CONFIGS = Path(detrdistill.__file__).parent / "configs"
HIDDEN, QUERIES, CLASSES, DEC_LAYERS, HEADS = 32, 7, 5, 3, 4


def tiny_model(variant: str):
    name = variant.split("_refine")[0].split("_two_stage")[0]
    cfg = LazyConfig.load(str(CONFIGS / f"common/models/{name}.py"))
    model = cfg.model
    model.backbone.update(depth=18, width=8, norm="BN", freeze_at=0)
    model.update(hidden_dim=HIDDEN, num_queries=QUERIES, num_classes=CLASSES)
    model.encoder.update(num_layers=1, num_heads=HEADS, ffn_dim=64, dropout=0.0)
    model.decoder.update(num_layers=DEC_LAYERS, num_heads=HEADS, ffn_dim=64, dropout=0.0)
    model.position_embedding.num_pos_feats = HIDDEN // 2
    if name in ("deformable_detr", "dino"):
        model.encoder.num_levels = 3
        model.neck.num_extra_levels = 0
    model.update(VARIANTS[variant])
    torch.manual_seed(0)
    return instantiate(model)


def make_batch(with_empty=False):
    batch = []
    for index, (h, w) in enumerate([(72, 80), (64, 40)]):
        instances = Instances((h, w))
        if with_empty and index == 1:
            instances.gt_boxes = Boxes(torch.zeros(0, 4))
            instances.gt_classes = torch.zeros(0, dtype=torch.long)
        else:
            instances.gt_boxes = Boxes(
                torch.tensor([[4.0, 6.0, 30.0, 40.0], [20.0, 10.0, 38.0, 50.0]])
            )
            instances.gt_classes = torch.tensor([1, 4])
        image = torch.randint(0, 256, (3, h, w), dtype=torch.uint8)
        batch.append({"image": image, "instances": instances, "height": 2 * h, "width": 2 * w})
    return batch


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_train_step_and_inference(variant):
    model = tiny_model(variant)
    assert type(model).__name__ in META_ARCH_REGISTRY
    with EventStorage():
        losses = model(make_batch(with_empty=True))
    expected = {"loss_class", "loss_bbox", "loss_giou"}
    expected |= {f"{k}_{i}" for k in expected for i in range(DEC_LAYERS - 1)}
    if "two_stage" in variant or variant == "dino":
        expected |= {"loss_class_enc", "loss_bbox_enc", "loss_giou_enc"}
    if variant == "dino":  # contrastive denoising
        base = ("loss_class", "loss_bbox", "loss_giou")
        expected |= {f"{k}_dn" for k in base}
        expected |= {f"{k}_dn_{i}" for k in base for i in range(DEC_LAYERS - 1)}
    assert set(losses) == expected
    total = sum(losses.values())
    assert torch.isfinite(total)
    total.backward()
    trainable = [p for p in model.parameters() if p.requires_grad]
    with_grad = [p for p in trainable if p.grad is not None and p.grad.abs().sum() > 0]
    assert len(with_grad) > 0.9 * len(trainable)

    model.eval()
    with torch.no_grad():
        results = model(make_batch())
    instances = results[0]["instances"]
    assert instances.image_size == (144, 160)  # original size from "height"/"width"
    assert len(instances) > 0
    boxes = instances.pred_boxes.tensor
    assert (boxes[:, 2:] >= boxes[:, :2]).all()
    assert boxes[:, 2].max() <= 160 and boxes[:, 3].max() <= 144
    assert ((instances.scores >= 0) & (instances.scores <= 1)).all()
    assert instances.pred_classes.max() < CLASSES


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_structured_outputs_have_documented_shapes(variant):
    model = tiny_model(variant).eval()
    images = model.preprocess_image(make_batch())
    batch = 2
    with torch.no_grad():
        out = model.run(images, return_attention=True)
    num_logits = CLASSES + 1 if variant == "detr" else CLASSES
    dec = out.decoder
    assert dec.pred_logits.shape == (DEC_LAYERS, batch, QUERIES, num_logits)
    assert dec.pred_boxes.shape == (DEC_LAYERS, batch, QUERIES, 4)
    assert ((dec.pred_boxes >= 0) & (dec.pred_boxes <= 1)).all()
    assert dec.hidden_states.shape == (DEC_LAYERS, batch, QUERIES, HIDDEN)
    assert out.queries.content.shape == (batch, QUERIES, HIDDEN)
    if variant == "detr":
        assert dec.references is None and out.queries.reference is None
    else:
        ref_dim = 4 if variant in ("dab_detr", "deformable_detr_two_stage", "dino") else 2
        assert out.queries.reference.shape == (batch, QUERIES, ref_dim)
        assert dec.references.shape[:3] == (DEC_LAYERS, batch, QUERIES)
    enc = out.encoder
    tokens = int(enc.spatial_shapes.prod(1).sum())
    assert enc.memory.shape == (batch, tokens, HIDDEN)
    assert enc.memory_mask.shape == (batch, tokens)
    assert len(enc.features) == len(enc.masks) == len(enc.pos) == enc.spatial_shapes.shape[0]
    for feature, mask in zip(enc.features, enc.masks):
        assert feature.shape[0] == batch and feature.shape[1] == HIDDEN
        assert mask.shape == (batch, *feature.shape[-2:])
    # the second image is half as wide as the padded batch: its padding mask must show that
    assert enc.masks[0][1].any() and not enc.masks[0][0].any()
    assert len(dec.self_attn) == len(dec.cross_attn) == DEC_LAYERS
    assert dec.self_attn[0].shape == (batch, HEADS, QUERIES, QUERIES)
    torch.testing.assert_close(dec.self_attn[0].sum(-1), torch.ones(batch, HEADS, QUERIES))
    cross = dec.cross_attn[0]
    if variant.startswith(("deformable", "dino")):
        assert isinstance(cross, DeformableAttentionWeights)
        assert cross.attention_weights.shape[:3] == (batch, QUERIES, HEADS)
    else:
        assert cross.shape == (batch, HEADS, QUERIES, tokens)
        # no attention to padded memory
        assert cross[:, :, :, :][enc.memory_mask[:, None, None].expand_as(cross)].abs().max() == 0


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_no_cost_when_attention_not_requested(variant):
    model = tiny_model(variant).eval()
    with torch.no_grad():
        out = model.run(model.preprocess_image(make_batch()))
    assert out.decoder.self_attn is None and out.decoder.cross_attn is None and out.groups == {}


@pytest.mark.parametrize("variant", sorted(VARIANTS))
@pytest.mark.parametrize("training", [False, True])
def test_extra_query_group_leaves_own_outputs_unchanged(variant, training):
    model = tiny_model(variant).train(training)
    images = model.preprocess_image(make_batch())
    torch.manual_seed(1)
    with torch.no_grad():
        plain = model.run(images)
    # a foreign group: perturbed copies of the model's own initial queries, 5 of them
    gen = torch.Generator().manual_seed(3)
    own = plain.queries

    def perturb(t):
        if t is None:
            return None
        noise = torch.randn(t.shape, generator=gen)
        if t is own.reference:
            return (t[:, :5] + 0.05 * noise[:, :5]).clamp(0.05, 0.95)
        return t[:, :5] + noise[:, :5]

    extra = QueryGroup(perturb(own.content), perturb(own.pos), perturb(own.reference))
    torch.manual_seed(1)
    with torch.no_grad():
        both = model.run(images, groups={"foreign": extra}, return_attention=True)
    torch.testing.assert_close(
        both.decoder.pred_logits, plain.decoder.pred_logits, atol=1e-5, rtol=0
    )
    torch.testing.assert_close(both.decoder.pred_boxes, plain.decoder.pred_boxes, atol=1e-5, rtol=0)
    assert both.groups["foreign"].pred_logits.shape[2] == 5
    assert both.decoder.self_attn[0].shape[-1] == QUERIES
    assert both.groups["foreign"].self_attn[0].shape[-1] == 5
    # and the extra group's outputs depend on its own queries only: running it with the model's
    # own queries reproduces the model's outputs
    with torch.no_grad():
        same = model.run(images, groups={"copy": own}).groups["copy"]
    torch.testing.assert_close(same.pred_logits, plain.decoder.pred_logits, atol=1e-5, rtol=0)


def test_bad_extra_group_is_rejected_with_a_clear_error():
    model = tiny_model("deformable_detr").eval()
    images = model.preprocess_image(make_batch())
    with torch.no_grad():
        own = model.run(images).queries
    with pytest.raises(ValueError, match="reference"):
        model.run(images, groups={"bad": QueryGroup(own.content, own.pos, None)})


@pytest.mark.parametrize("name,default", [("detr", "softmax"), ("deformable_detr", "focal")])
def test_model_loss_class_type_is_the_one_key_of_the_class_type(name, default):
    """The criterion and its matcher take model.loss_class_type; overriding it alone switches
    all three (and the class head's width); an explicit contradicting value names both keys."""
    cfg = LazyConfig.load(str(CONFIGS / f"common/models/{name}.py"))
    cfg.model.update(hidden_dim=HIDDEN, num_queries=QUERIES, num_classes=CLASSES)
    other = {"softmax": "focal", "focal": "softmax"}[default]
    for class_type in (default, other):
        cfg.model.loss_class_type = class_type
        with torch.device("meta"):
            model = instantiate(cfg.model)
        kinds = (model.criterion.loss_class_type, model.criterion.matcher.class_cost_type)
        assert kinds == (class_type, class_type)
        width = CLASSES + 1 if class_type == "softmax" else CLASSES
        assert model.class_embed[0].out_features == width
    cfg.model.loss_class_type = default
    for key in ("criterion.loss_class_type", "criterion.matcher.class_cost_type"):
        bad = LazyConfig.load(str(CONFIGS / f"common/models/{name}.py"))
        OmegaConf.update(bad.model, key, other)
        message = rf"model\.{key}='{other}' disagrees with model\.loss_class_type='{default}'"
        with pytest.raises(ValueError, match=message):
            with torch.device("meta"):
                instantiate(bad.model)


def test_unknown_backbone_depth_names_the_config_key():
    from detrdistill.modeling import build_resnet_backbone

    with pytest.raises(ValueError, match="model.backbone.depth"):
        build_resnet_backbone(depth=42)


@pytest.mark.parametrize("depth,channels", [(18, 512), (50, 2048), (101, 2048)])
def test_backbone_depths_and_projection_shapes_agree(depth, channels):
    from detrdistill.modeling import build_resnet_backbone, resnet_output_shapes

    backbone = build_resnet_backbone(depth=depth, out_features=["res3", "res5"])
    real = backbone.output_shape()
    predicted = resnet_output_shapes(depth=depth)
    assert real["res5"].channels == predicted["res5"].channels == channels
    assert real["res3"].stride == predicted["res3"].stride == 8
