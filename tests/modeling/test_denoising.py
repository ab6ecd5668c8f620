"""Denoising queries (DN-DETR / DINO contrastive denoising): layout, noise statistics, the mask,
the criterion's denoising losses by hand, and a DAB-DETR training with them."""

import math

import pytest
import torch
from detectron2.config import instantiate
from detectron2.utils.events import EventStorage
from test_detectors import CLASSES, CONFIGS, DEC_LAYERS, QUERIES, make_batch, tiny_model
from torchvision.ops import box_iou

from detrdistill.layers import box_cxcywh_to_xyxy
from detrdistill.modeling import DENOISING, DenoisingQueries
from detrdistill.modeling.criterion import SetCriterion
from detrdistill.modeling.matcher import HungarianMatcher
from detrdistill.modeling.outputs import DecoderOutputs

GT_BOX = [0.5, 0.5, 0.2, 0.1]  # away from the border: noise is never clipped here


def _targets(*counts, classes=CLASSES):
    gen = torch.Generator().manual_seed(0)
    return [
        {
            "labels": torch.randint(0, classes, (n,), generator=gen),
            "boxes": torch.cat(
                [
                    0.3 + 0.4 * torch.rand(n, 2, generator=gen),
                    0.1 + 0.2 * torch.rand(n, 2, generator=gen),
                ],
                -1,
            ),
        }
        for n in counts
    ]


def _noise_free(**kwargs):
    return DenoisingQueries(
        num_classes=CLASSES, hidden_dim=8, label_noise_ratio=0.0, box_noise_scale=0.0, **kwargs
    )


def test_layout_and_assignment_by_hand():
    module = _noise_free(num_groups=2, contrastive=True)
    targets = _targets(2, 1)
    group = module(targets)
    # M = 2 boxes at most, 2 kinds: groups of 4, [pos pos neg neg], twice
    assert group.content.shape == (2, 8, 8) and group.reference.shape == (2, 8, 4)
    assert group.pos is None and group.sees_own_queries and group.num_blocks == 2
    expected = {
        0: ([0, 1, 4, 5], [0, 1, 0, 1], [2, 3, 6, 7]),
        1: ([0, 4], [0, 0], [2, 6]),
    }
    for image, (positives, gts, negatives) in expected.items():
        assert group.assignment[image][0].tolist() == positives
        assert group.assignment[image][1].tolist() == gts
        assert group.negatives[image][0].tolist() == negatives
        assert group.negatives[image][1].tolist() == gts
        target = targets[image]
        for slots in (positives, negatives):  # noise off: exact copies of the ground truth
            torch.testing.assert_close(group.reference[image, slots], target["boxes"][gts])
            assert group.labels[image, slots].tolist() == target["labels"][gts].tolist()
            torch.testing.assert_close(
                group.content[image, slots], module.label_embed.weight[target["labels"][gts]]
            )
    # padding of image 1: no label, zero content, the (0.5, ...) box
    padding = [1, 3, 5, 7]
    assert group.labels[1, padding].tolist() == [-1] * 4
    assert group.content[1, padding].abs().sum() == 0
    assert torch.all(group.reference[1, padding] == 0.5)

    plain = _noise_free(num_groups=3)(targets)  # DN-DETR: positives only, groups of M = 2
    assert plain.content.shape[1] == 6 and plain.num_blocks == 3
    assert plain.assignment[0][0].tolist() == [0, 1, 2, 3, 4, 5]
    assert plain.assignment[1][0].tolist() == [0, 2, 4]
    assert all(len(q) == 0 for q, _ in plain.negatives)


def test_number_of_groups_from_a_budget():
    module = _noise_free(num_groups=None, num_dn_queries=10, contrastive=True)
    assert module.groups_for(3) == 3 and module.groups_for(20) == 1 and module.groups_for(0) == 10
    group = module(_targets(3, 1))
    assert group.num_blocks == 3 and group.content.shape[1] == 3 * 2 * 3
    empty = module(_targets(0, 0))
    assert empty.content.shape[1] == 0 and all(len(q) == 0 for q, _ in empty.assignment)
    with pytest.raises(ValueError, match="exactly one of model.denoising.num_groups"):
        DenoisingQueries(num_classes=2, hidden_dim=4, num_groups=5, num_dn_queries=100)
    with pytest.raises(ValueError, match="label_noise_ratio"):
        DenoisingQueries(num_classes=2, hidden_dim=4, label_noise_ratio=1.5)


def test_label_noise_replaces_the_configured_fraction():
    torch.manual_seed(0)
    module = DenoisingQueries(num_classes=10, hidden_dim=4, label_noise_ratio=0.3)
    labels = torch.zeros(40000, dtype=torch.long)
    noised = module.noise_labels(labels)
    # replaced with probability 0.3 by a uniform class, which is a different one 9 times in 10
    changed = (noised != labels).float().mean().item()
    assert abs(changed - 0.3 * 0.9) < 0.01
    per_class = torch.bincount(noised, minlength=10).float() / len(labels)
    assert torch.all((per_class[1:] - 0.03).abs() < 0.005)
    module.label_noise_ratio = 0.0
    assert torch.equal(module.noise_labels(labels), labels)


def test_dn_detr_box_noise_bounds():
    torch.manual_seed(1)
    scale = 0.4
    module = DenoisingQueries(num_classes=2, hidden_dim=4, box_noise_scale=scale)
    boxes = torch.tensor([GT_BOX]).expand(20000, 4)
    shift = module.noise_boxes(boxes, torch.zeros(20000, dtype=torch.bool)) - boxes
    w, h = GT_BOX[2:]
    bounds = torch.tensor([scale * w / 2, scale * h / 2, scale * w, scale * h])
    # uniform in [-bound, bound] per coordinate: within, reaching it, centred
    assert torch.all(shift.abs() <= bounds + 1e-7)
    assert torch.all(shift.abs().max(0).values > 0.99 * bounds)
    assert torch.all(shift.mean(0).abs() < 0.02 * bounds)


def test_dino_negatives_are_farther_than_positives():
    torch.manual_seed(2)
    scale = 0.4
    module = DenoisingQueries(
        num_classes=CLASSES,
        hidden_dim=4,
        num_groups=500,
        box_noise_scale=scale,
        label_noise_ratio=0.5,
        contrastive=True,
    )
    target = {"labels": torch.tensor([2]), "boxes": torch.tensor([GT_BOX])}
    group = module([target])
    gt = box_cxcywh_to_xyxy(torch.tensor([GT_BOX]))
    half = torch.tensor(GT_BOX[2:] * 2) / 2  # (w/2, h/2, w/2, h/2)
    shifts = {}
    for kind, (slots, _) in (("pos", group.assignment[0]), ("neg", group.negatives[0])):
        corners = box_cxcywh_to_xyxy(group.reference[0, slots])
        shifts[kind] = (corners - gt).abs() / (scale * half)  # in units of lambda * half size
        ious = box_iou(corners, gt)[:, 0]
        shifts[kind + "_iou"] = ious.mean()
    # per corner coordinate: positives move by [0, 1), negatives by [1, 2) units
    assert shifts["pos"].max() < 1 + 1e-5 and shifts["neg"].min() > 1 - 1e-5
    assert shifts["neg"].max() < 2 + 1e-5
    # so every negative is farther (L1 over the corners) than every positive
    assert shifts["neg"].sum(1).min() >= shifts["pos"].sum(1).max()
    assert shifts["pos_iou"] > shifts["neg_iou"] + 0.2
    # labels: replaced with probability 0.5, uniformly: 0.5 * (K - 1) / K of them differ
    changed = (group.labels[0] != 2).float().mean().item()
    assert abs(changed - 0.5 * (CLASSES - 1) / CLASSES) < 0.05


def test_references_stay_valid_anchors():
    torch.manual_seed(3)
    module = DenoisingQueries(num_classes=2, hidden_dim=4, box_noise_scale=1.0, contrastive=True)
    boxes = torch.tensor([[0.02, 0.98, 0.04, 0.04]]).expand(1000, 4)  # at the border
    noised = module.noise_boxes(boxes, torch.arange(1000) % 2 == 1)
    assert noised.min() >= 1e-3 and noised.max() <= 1 - 1e-3


def _hand_focal(logits, onehot, alpha=0.25):
    p = logits.sigmoid()
    positive = -alpha * (1 - p) ** 2 * torch.log(p)
    negative = -(1 - alpha) * p**2 * torch.log(1 - p)
    return torch.where(onehot == 1, positive, negative).sum()


def _hand_giou_loss(a, b):
    """1 - GIoU of two cxcywh boxes, from the definition."""
    ax1, ay1, ax2, ay2 = (a[0] - a[2] / 2, a[1] - a[3] / 2, a[0] + a[2] / 2, a[1] + a[3] / 2)
    bx1, by1, bx2, by2 = (b[0] - b[2] / 2, b[1] - b[3] / 2, b[0] + b[2] / 2, b[1] + b[3] / 2)
    inter = max(0.0, min(ax2, bx2) - max(ax1, bx1)) * max(0.0, min(ay2, by2) - max(ay1, by1))
    union = a[2] * a[3] + b[2] * b[3] - inter
    hull = (max(ax2, bx2) - min(ax1, bx1)) * (max(ay2, by2) - min(ay1, by1))
    return 1 - (inter / union - (hull - union) / hull)


def test_denoising_losses_by_hand():
    """Two images (1 and 0 boxes), 2 contrastive groups -> 4 queries per image, 2 layers."""
    torch.manual_seed(4)
    num_classes, layers = 3, 2
    targets = [
        {"labels": torch.tensor([2]), "boxes": torch.tensor([[0.5, 0.5, 0.4, 0.2]])},
        {"labels": torch.zeros(0, dtype=torch.long), "boxes": torch.zeros(0, 4)},
    ]
    assignment = [(torch.tensor([0, 2]), torch.tensor([0, 0])), (torch.tensor([]).long(),) * 2]
    logits = torch.randn(layers, 2, 4, num_classes)
    boxes = torch.tensor([0.45, 0.55, 0.3, 0.3]) + 0.05 * torch.rand(layers, 2, 4, 4)
    criterion = SetCriterion(
        num_classes,
        HungarianMatcher(),
        {"loss_class": 1.0, "loss_bbox": 5.0, "loss_giou": 2.0},
        loss_class_type="focal",
    )
    outputs = DecoderOutputs(logits, boxes, torch.zeros(layers, 2, 4, 1))
    losses = criterion.denoising_losses(outputs, targets, assignment, num_groups=2)
    assert set(losses) == {"loss_class_dn", "loss_bbox_dn", "loss_giou_dn"} | {
        "loss_class_dn_0",
        "loss_bbox_dn_0",
        "loss_giou_dn_0",
    }
    normaliser = 1 * 2  # one box, two denoising groups
    gt = targets[0]["boxes"][0]
    for layer, suffix in ((0, "_dn_0"), (1, "_dn")):
        onehot = torch.zeros(2, 4, num_classes)
        onehot[0, [0, 2], 2] = 1  # positives of image 0 -> class 2; all else "no object"
        expected_class = _hand_focal(logits[layer], onehot) / normaliser
        positives = boxes[layer, 0, [0, 2]]
        expected_l1 = (positives - gt).abs().sum() / normaliser
        expected_giou = sum(_hand_giou_loss(p.tolist(), gt.tolist()) for p in positives)
        expected_giou /= normaliser
        assert math.isclose(
            losses["loss_class" + suffix].item(), expected_class.item(), rel_tol=1e-5
        )
        assert math.isclose(
            losses["loss_bbox" + suffix].item(), 5 * expected_l1.item(), rel_tol=1e-5
        )
        assert math.isclose(losses["loss_giou" + suffix].item(), 2 * expected_giou, rel_tol=1e-5)


def tiny_dab(**denoising):
    model = tiny_model("dab_detr")
    if denoising:
        torch.manual_seed(5)
        model.denoising = DenoisingQueries(
            num_classes=CLASSES, hidden_dim=model.hidden_dim, **denoising
        )
    return model


def test_dn_mask_by_hand_and_own_outputs_unchanged():
    model = tiny_dab(num_groups=2, contrastive=True).train()
    batch = make_batch()  # 2 boxes per image: M = 2, groups of 4
    images = model.preprocess_image(batch)
    targets = model.prepare_targets(batch)
    masks = []
    decode = model.decode

    def spy(queries, encoder, mask, return_attention):
        masks.append(mask)
        return decode(queries, encoder, mask, return_attention)

    model.decode = spy
    torch.manual_seed(6)
    groups = model.training_groups(targets)
    assert list(groups) == [DENOISING]
    with torch.no_grad():
        with_dn = model.run(images, groups=groups)
        plain = model.run(images)
    q = QUERIES
    expected = torch.ones(q + 8, q + 8, dtype=torch.bool)  # True = blocked
    expected[:q, :q] = False  # matching queries see themselves only
    expected[q : q + 4, : q + 4] = False  # DN group 0: the matching queries and itself
    expected[q + 4 :, :q] = False  # DN group 1: the matching queries ...
    expected[q + 4 :, q + 4 :] = False  # ... and itself
    assert torch.equal(masks[0], expected)
    torch.testing.assert_close(
        with_dn.decoder.pred_logits, plain.decoder.pred_logits, atol=1e-5, rtol=0
    )
    torch.testing.assert_close(
        with_dn.decoder.pred_boxes, plain.decoder.pred_boxes, atol=1e-5, rtol=0
    )
    assert with_dn.groups[DENOISING].pred_boxes.shape == (DEC_LAYERS, 2, 8, 4)
    model.eval()
    assert model.training_groups(targets) == {}  # training only


def test_dab_detr_with_denoising_trains_and_infers_like_without():
    model = tiny_dab(num_groups=3, contrastive=True, box_noise_scale=0.4, label_noise_ratio=0.2)
    model.train()
    torch.manual_seed(7)
    with EventStorage():
        losses = model(make_batch(with_empty=True))
    base = {"loss_class", "loss_bbox", "loss_giou"}
    expected = base | {f"{k}_{i}" for k in base for i in range(DEC_LAYERS - 1)}
    expected |= {f"{k}_dn" for k in base} | {
        f"{k}_dn_{i}" for k in base for i in range(DEC_LAYERS - 1)
    }
    assert set(losses) == expected
    assert all(torch.isfinite(v) for v in losses.values())
    # the denoising losses alone train the label embedding and the shared decoder and heads
    sum(v for k, v in losses.items() if "_dn" in k).backward()
    assert model.denoising.label_embed.weight.grad.abs().sum() > 0
    assert model.class_embed[0].weight.grad.abs().sum() > 0
    assert model.decoder.layers[0].self_attn.out_proj.weight.grad.abs().sum() > 0
    # inference is the plain model's
    plain = tiny_dab().eval()
    state = {k: v for k, v in model.state_dict().items() if not k.startswith("denoising.")}
    plain.load_state_dict(state)
    model.eval()
    batch = make_batch()
    with torch.no_grad():
        a, b = model(batch), plain(batch)
    torch.testing.assert_close(a[0]["instances"].scores, b[0]["instances"].scores)
    torch.testing.assert_close(
        a[0]["instances"].pred_boxes.tensor, b[0]["instances"].pred_boxes.tensor
    )


def test_denoising_configuration_errors():
    model = tiny_dab(num_groups=2).train()
    images = model.preprocess_image(make_batch())
    targets = model.prepare_targets(make_batch())
    with torch.no_grad():
        output = model.run(images)  # without training_groups
    with pytest.raises(ValueError, match="training_groups"):
        model.compute_losses(output, targets)
    cfg_model = tiny_model("conditional_detr")
    with pytest.raises(ValueError, match="model.denoising"):
        denoising = DenoisingQueries(num_classes=CLASSES, hidden_dim=32)
        cfg_model._check_denoising(denoising, CLASSES, 32)
    dab = tiny_dab()
    with pytest.raises(ValueError, match="model.denoising.hidden_dim=16"):
        dab._check_denoising(DenoisingQueries(num_classes=CLASSES, hidden_dim=16), CLASSES, 32)


def test_denoising_from_a_config():
    from detectron2.config import LazyCall as L
    from detectron2.config import LazyConfig

    cfg = LazyConfig.load(str(CONFIGS / "common/models/dab_detr.py"))
    assert "denoising" not in cfg.model  # off by default
    cfg.model.backbone.update(depth=18, width=8, norm="BN", freeze_at=0)
    cfg.model.update(hidden_dim=32, num_queries=QUERIES, num_classes=CLASSES)
    cfg.model.encoder.update(num_layers=1, num_heads=4, ffn_dim=64)
    cfg.model.decoder.update(num_layers=DEC_LAYERS, num_heads=4, ffn_dim=64)
    cfg.model.position_embedding.num_pos_feats = 16
    cfg.model.denoising = L(DenoisingQueries)(num_classes=CLASSES, hidden_dim=32, num_groups=2)
    model = instantiate(cfg.model)
    assert isinstance(model.denoising, DenoisingQueries)
    cfg.model.denoising.hidden_dim = 8
    with pytest.raises(ValueError, match="model.denoising.hidden_dim=8"):
        instantiate(cfg.model)
