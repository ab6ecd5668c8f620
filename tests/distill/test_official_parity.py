"""The two parity presets of ``configs/common/distill_losses.py`` against the reference code.

* ``detrdistill_official_losses`` must give the loss values of the official DETRDistill code
  (BIVLab-USTC/DETRDistill, mmdet Deformable DETR: ``distill_deformable_detr_head.py``,
  ``distiller.py``, ``moco_cl_head.py``, ``match_cost.py``);
* ``d3etr_port_losses`` those of the public D3ETR port (xingyitong1/TPRD,
  ``projects/deformable_detr/D3DETR``: ``distill_criterion.py``, ``distill_matcher.py``,
  ``attention.py::attn_map_to_flat_grid``).

The reference values are re-derived here from those formulas in plain torch / SciPy (own box
conversions, IoU / GIoU, soft BCE, focal loss, Hungarian solve with
``scipy.optimize.linear_sum_assignment``, bilinear splat, BatchNorm), in float64, without any
``detrdistill.distill`` / ``detrdistill.layers`` helper. Only the inputs (random DETR outputs,
the student's ``SetCriterion``) and the modules under test come from the project. Every term is
compared separately at rtol 1e-5. A last test checks that the default presets differ from the
parity presets where the documentation says they should.
"""

from __future__ import annotations

import math
import unittest

import torch
from detectron2.config import LazyConfig, instantiate
from distill_testing import (
    as_student,
    as_teacher,
    make_decoder,
    make_encoder,
    make_inputs,
    make_output,
    random_boxes,
)
from scipy.optimize import linear_sum_assignment

from detrdistill import model_zoo
from detrdistill.modeling.criterion import SetCriterion
from detrdistill.modeling.matcher import HungarianMatcher

LAYERS, BATCH, QUERIES, CLASSES, DIM, HEADS, POINTS = 6, 2, 300, 80, 256, 8, 2
SHAPES = ((8, 10), (4, 5), (2, 3), (1, 2))
NUM_GT = (5, 3)
RTOL, ATOL = 1e-5, 1e-8
f64 = torch.float64


# ----------------------------------------------------------------------------- reference maths
def to_xyxy(b):
    cx, cy, w, h = b.unbind(-1)
    return torch.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], -1)


def to_cxcywh(b):
    x0, y0, x1, y1 = b.unbind(-1)
    return torch.stack([(x0 + x1) / 2, (y0 + y1) / 2, x1 - x0, y1 - y0], -1)


def iou_and_giou(a, b):
    """IoU and GIoU of broadcastable xyxy boxes a (..., 4) and b (..., 4)."""
    area_a = (a[..., 2] - a[..., 0]) * (a[..., 3] - a[..., 1])
    area_b = (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])
    iw = (torch.minimum(a[..., 2], b[..., 2]) - torch.maximum(a[..., 0], b[..., 0])).clamp(min=0)
    ih = (torch.minimum(a[..., 3], b[..., 3]) - torch.maximum(a[..., 1], b[..., 1])).clamp(min=0)
    inter = iw * ih
    union = area_a + area_b - inter
    hull = (torch.maximum(a[..., 2], b[..., 2]) - torch.minimum(a[..., 0], b[..., 0])) * (
        torch.maximum(a[..., 3], b[..., 3]) - torch.minimum(a[..., 1], b[..., 1])
    )
    iou = inter / union
    return iou, iou - (hull - union) / hull


def clip_to_image(boxes):
    """Normalised cxcywh -> xyxy clipped to [0, 1] -> cxcywh (official teacher targets)."""
    return to_cxcywh(to_xyxy(boxes).clamp(0.0, 1.0))


def soft_bce(x, t):
    """Elementwise BCE-with-logits of logits x against soft targets t (stable form)."""
    return x.clamp(min=0) - x * t + torch.log1p(torch.exp(-x.abs()))


def soft_bce_cost(s_logits, t_probs):
    """(Qs, C), (Qt, C) -> (Qs, Qt): BCE summed over the classes (not divided by C)."""
    return soft_bce(s_logits[:, None, :], t_probs[None, :, :]).sum(-1)


def focal_loss(x, t, alpha=0.25, gamma=2.0):
    """Sigmoid focal loss, elementwise, one-hot targets t."""
    p = x.sigmoid()
    pos = -alpha * (1 - p) ** gamma * torch.nn.functional.logsigmoid(x)
    neg = -(1 - alpha) * p**gamma * torch.nn.functional.logsigmoid(-x)
    return t * pos + (1 - t) * neg


def hungarian(cost):
    rows, cols = linear_sum_assignment(cost.numpy())
    return torch.as_tensor(rows), torch.as_tensor(cols)


def splat_port(locations, weights, shapes):
    """The port's ``attn_map_to_flat_grid`` of one image, summed over queries.

    locations (Q, H, Lv, P, 2) normalised (x, y); weights (Q, H, Lv, P) -> (H, S): pixel
    coordinate = location * (W, H) (no half-pixel shift), bilinear over the 4 neighbours
    floor / floor + 1, neighbours outside the level dropped.
    """
    heads = weights.shape[1]
    out = torch.zeros(heads, sum(h * w for h, w in shapes), dtype=f64)
    start = 0
    for lvl, (h, w) in enumerate(shapes):
        col = locations[:, :, lvl, :, 0] * w
        row = locations[:, :, lvl, :, 1] * h
        c0, r0 = col.floor(), row.floor()
        fc, fr = col - c0, row - r0
        a = weights[:, :, lvl]
        head = torch.arange(heads)[None, :, None].expand_as(a)
        for dc, wc in ((0, 1 - fc), (1, fc)):
            for dr, wr in ((0, 1 - fr), (1, fr)):
                cc, rr = c0.long() + dc, r0.long() + dr
                ok = (cc >= 0) & (cc < w) & (rr >= 0) & (rr < h)
                out.index_put_(
                    (head[ok], (start + rr * w + cc)[ok]), (a * wc * wr)[ok], accumulate=True
                )
        start += h * w
    return out


def mse(a, b):
    return ((a - b) ** 2).mean()


# ------------------------------------------------------------------------------------ inputs
def _pad_image_1(encoder):
    """Image 0 unpadded; image 1 padded on the right and bottom of every level."""
    masks = []
    for lvl, (h, w) in enumerate(SHAPES):
        mask = torch.zeros(BATCH, h, w, dtype=torch.bool)
        mask[1, math.ceil(0.75 * h) :, :] = True
        mask[1, :, math.ceil(0.6 * w) :] = True
        encoder.masks[lvl] = mask
        masks.append(mask.flatten(1))
    encoder.memory_mask = torch.cat(masks, 1)
    for lvl, mask in enumerate(encoder.masks):
        encoder.valid_ratios[:, lvl, 0] = (~mask[:, 0, :]).float().mean(-1)
        encoder.valid_ratios[:, lvl, 1] = (~mask[:, :, 0]).float().mean(-1)
    return encoder


def _decoder():
    dec = make_decoder(
        layers=LAYERS,
        batch=BATCH,
        queries=QUERIES,
        classes=CLASSES,
        dim=DIM,
        heads=HEADS,
        deformable=(SHAPES, POINTS),
    )
    dec.pred_logits -= 2.0  # mostly background, as a trained detector
    for weights in dec.cross_attn:  # some sampling points near or past the border
        loc = weights.sampling_locations
        loc[:, :40] = -0.15 + 1.3 * torch.rand_like(loc[:, :40])
    return dec


def build_inputs(seed=0):
    torch.manual_seed(seed)
    teacher_dec = _decoder()
    # teacher boxes of any size anywhere: many cross the image border (clipping matters)
    centre = 0.02 + 0.96 * torch.rand(LAYERS, BATCH, QUERIES, 2)
    size = 0.05 + 0.6 * torch.rand(LAYERS, BATCH, QUERIES, 2)
    teacher_dec.pred_boxes = torch.cat([centre, size], -1)
    student_dec = _decoder()
    # a few student boxes outside [0, 1] in cxcywh (the port clips them in its matching cost)
    student_dec.pred_boxes[:, :, :15, 0] = 1.0 + 0.1 * torch.rand(LAYERS, BATCH, 15)
    extra_dec = _decoder()  # the student decoder's outputs for the teacher's queries
    teacher = make_output(teacher_dec, _pad_image_1(make_encoder(BATCH, DIM, SHAPES)))
    student = make_output(student_dec, _pad_image_1(make_encoder(BATCH, DIM, SHAPES)), extra_dec)
    for out in (teacher, student):
        out.image_sizes = [(32, 32), (24, 19)]
    targets = [
        {"labels": torch.randint(0, CLASSES, (n,)), "boxes": random_boxes(n)} for n in NUM_GT
    ]
    # a GT box close to a teacher box of the last layer, so that IoU weights are not tiny
    targets[0]["boxes"][0] = teacher_dec.pred_boxes[-1, 0, 7].clamp(0.1, 0.6)
    criterion = SetCriterion(
        num_classes=CLASSES,
        matcher=HungarianMatcher(
            cost_class=2.0, cost_bbox=5.0, cost_giou=2.0, class_cost_type="focal"
        ),
        weight_dict={"loss_class": 2.0, "loss_bbox": 5.0, "loss_giou": 2.0},
        loss_class_type="focal",
        focal_alpha=0.25,
        focal_gamma=2.0,
    )
    return make_inputs(
        as_teacher(teacher), as_student(student), targets=targets, student_criterion=criterion
    )


def load_presets():
    library = LazyConfig.load(model_zoo.get_config_file("common/distill_losses.py"))
    for name in ("detrdistill_official_losses", "detrdistill_losses"):
        preset = library[name]
        preset.feature.student_channels = DIM
        preset.feature.teacher_channels = DIM
        preset.feature.num_levels = len(SHAPES)
        preset.contrastive.student_dim = DIM
        preset.contrastive.teacher_dim = DIM
    return library


def build(preset):
    return {key: instantiate(cfg) for key, cfg in preset.items()}


def values(losses):
    return {k: v.detach().double() for k, v in losses.items()}


# --------------------------------------------------------------------- reference: DETRDistill
def teacher_student_cost(s_logits, s_boxes, t_probs, t_boxes, class_cost=None):
    """Official soft matching cost (class 1 summed BCE / L1 5 / GIoU 2) of one image."""
    if class_cost is None:
        class_cost = soft_bce_cost(s_logits, t_probs)
    l1 = (s_boxes[:, None, :] - t_boxes[None, :, :]).abs().sum(-1)
    _, giou = iou_and_giou(to_xyxy(s_boxes)[:, None], to_xyxy(t_boxes)[None])
    return 1.0 * class_cost + 5.0 * l1 - 2.0 * giou


def prediction_terms(s_logits, s_boxes, t_probs, t_boxes, pairs):
    """Sums (not normalised) of class BCE, L1, 1 - GIoU over the pairs of all images."""
    cls = l1 = giou = 0.0
    for b, (si, ti) in enumerate(pairs):
        cls = cls + soft_bce(s_logits[b, si], t_probs[b, ti]).sum()
        l1 = l1 + (s_boxes[b, si] - t_boxes[b, ti]).abs().sum()
        _, g = iou_and_giou(to_xyxy(s_boxes[b, si]), to_xyxy(t_boxes[b, ti]))
        giou = giou + (1 - g).sum()
    return cls, l1, giou


class Reference:
    """float64 copies of the inputs and the reference formulas."""

    def __init__(self, inputs):
        t, s = inputs.teacher, inputs.student
        self.t_logits = t.decoder.pred_logits.detach().to(f64)
        self.t_boxes = t.decoder.pred_boxes.detach().to(f64)
        self.t_hs = t.decoder.hidden_states.detach().to(f64)
        self.s_logits = s.decoder.pred_logits.detach().to(f64)
        self.s_boxes = s.decoder.pred_boxes.detach().to(f64)
        self.s_hs = s.decoder.hidden_states.detach().to(f64)
        self.x_logits = s.groups["teacher_queries"].pred_logits.detach().to(f64)
        self.x_boxes = s.groups["teacher_queries"].pred_boxes.detach().to(f64)
        self.t_feats = [f.detach().to(f64) for f in t.encoder.features]
        self.s_feats = [f.detach().to(f64) for f in s.encoder.features]
        self.gt_boxes = [x["boxes"].to(f64) for x in inputs.targets]
        self.gt_labels = [x["labels"] for x in inputs.targets]
        self.t_probs = self.t_logits.sigmoid()
        self.attn = {
            name: (
                [a.detach().to(f64) for a in dec.self_attn],
                [
                    (c.sampling_locations.detach().to(f64), c.attention_weights.detach().to(f64))
                    for c in dec.cross_attn
                ],
            )
            for name, dec in (
                ("t", t.decoder),
                ("s", s.decoder),
                ("x", s.groups["teacher_queries"]),
            )
        }
        self._class_cost = {}

    def class_cost(self, k, b):
        """Soft-BCE cost of student layer k vs teacher layer k, image b (shared by A and B)."""
        if (k, b) not in self._class_cost:
            self._class_cost[k, b] = soft_bce_cost(self.s_logits[k, b], self.t_probs[k, b])
        return self._class_cost[k, b]

    # (a) Hungarian logits distillation, joint match, teacher boxes clipped to the image
    def logits(self):
        num_pairs = BATCH * QUERIES
        total = {"class": 0.0, "bbox": 0.0, "giou": 0.0}
        all_pairs = []
        for k in range(LAYERS):
            t_boxes = clip_to_image(self.t_boxes[k])
            pairs = [
                hungarian(
                    teacher_student_cost(
                        None, self.s_boxes[k, b], None, t_boxes[b], self.class_cost(k, b)
                    )
                )
                for b in range(BATCH)
            ]
            all_pairs.append(pairs)
            cls, l1, giou = prediction_terms(
                self.s_logits[k], self.s_boxes[k], self.t_probs[k], t_boxes, pairs
            )
            total["class"] += 1.0 * cls / num_pairs
            total["bbox"] += 5.0 * l1 / num_pairs
            total["giou"] += 2.0 * giou / num_pairs
        return total, all_pairs

    # (b) target-aware feature distillation, official mask
    def feature(self):
        total = 0.0
        for k in range(LAYERS):
            directions, scores = [], []
            for b in range(BATCH):
                top, flat = self.t_probs[k, b].flatten().topk(100)
                query = flat // CLASSES
                iou, _ = iou_and_giou(
                    to_xyxy(self.t_boxes[k, b, query])[:, None], to_xyxy(self.gt_boxes[b])[None]
                )
                scores.append(top * iou.max(1).values if len(self.gt_boxes[b]) else top)
                q = self.t_hs[k, b, query]
                directions.append(q / q.norm(dim=-1, keepdim=True))
            for ft, fs in zip(self.t_feats, self.s_feats):
                unit = ft / ft.norm(dim=1, keepdim=True)
                masks = []
                for b in range(BATCH):
                    cos = torch.einsum("jc,chw->jhw", directions[b], unit[b])
                    a = (scores[b][:, None, None] * cos).sum(0).clamp(min=0.01)
                    masks.append(a / a.max())
                m = torch.stack(masks)[:, None]
                total = total + mse(m * ft, m * fs)
        return {"feature": total}

    # (c) teacher-query group, the student's own Hungarian matching to the GT
    def query_prior(self):
        num_boxes = float(sum(NUM_GT))
        out = {}
        for layer in range(LAYERS):
            logits, boxes = self.x_logits[layer], self.x_boxes[layer]
            onehot = torch.zeros_like(logits)
            l1 = giou_loss = 0.0
            for b in range(BATCH):
                prob = logits[b].sigmoid()[:, self.gt_labels[b]]
                focal_cost = (
                    0.25 * (1 - prob) ** 2 * -(prob + 1e-8).log()
                    - 0.75 * prob**2 * -(1 - prob + 1e-8).log()
                )
                l1_cost = (boxes[b][:, None] - self.gt_boxes[b][None]).abs().sum(-1)
                _, g = iou_and_giou(to_xyxy(boxes[b])[:, None], to_xyxy(self.gt_boxes[b])[None])
                qi, gi = hungarian(2.0 * focal_cost + 5.0 * l1_cost - 2.0 * g)
                onehot[b, qi, self.gt_labels[b][gi]] = 1.0
                l1 = l1 + (boxes[b, qi] - self.gt_boxes[b][gi]).abs().sum()
                _, g = iou_and_giou(to_xyxy(boxes[b, qi]), to_xyxy(self.gt_boxes[b][gi]))
                giou_loss = giou_loss + (1 - g).sum()
            suffix = "" if layer == LAYERS - 1 else f"_{layer}"
            out["class" + suffix] = 2.0 * focal_loss(logits, onehot).sum() / num_boxes
            out["bbox" + suffix] = 5.0 * l1 / num_boxes
            out["giou" + suffix] = 2.0 * giou_loss / num_boxes
        return out

    # (d) MoCo-style InfoNCE on the logits loss's assignment
    @staticmethod
    def project(x, module):
        """Linear -> Linear -> BatchNorm1d (batch statistics) -> ReLU -> Linear -> L2-norm."""

        def linear(v, layer):
            return v @ layer.weight.detach().to(f64).t() + layer.bias.detach().to(f64)

        lin1, bn, _, lin2 = module.encoder
        h = linear(linear(x, module.proj), lin1)
        mean, var = h.mean(0), h.var(0, unbiased=False)
        h = (h - mean) / torch.sqrt(var + bn.eps) * bn.weight.detach().to(f64)
        h = (h + bn.bias.detach().to(f64)).clamp(min=0)
        h = linear(h, lin2)
        return h / h.norm(dim=1, keepdim=True)

    def contrastive(self, module, pairs):
        total = 0.0
        for k in range(LAYERS):
            student = torch.cat([self.s_hs[k, b, si] for b, (si, _) in enumerate(pairs[k])])
            teacher = torch.cat([self.t_hs[k, b, ti] for b, (_, ti) in enumerate(pairs[k])])
            z_s = self.project(student, module.student_proj)
            z_t = self.project(teacher, module.teacher_proj)
            logits = z_t @ z_s.t() / 0.07  # teacher rows
            total = total + (logits.logsumexp(1) - logits.diagonal()).mean()
        return {"contrastive": total}

    # ------------------------------------------------------------------ D3ETR port (TPRD)
    def port_terms(self, k, s_name, s_logits, s_boxes, pairs):
        """The five terms of one layer pair (unweighted sums / means, then weighted)."""
        num = BATCH * QUERIES
        cls, l1, giou = prediction_terms(s_logits, s_boxes, self.t_probs[k], self.t_boxes[k], pairs)
        s_self, s_cross = self.attn[s_name][0][k], self.attn[s_name][1][k]
        t_self, t_cross = self.attn["t"][0][k], self.attn["t"][1][k]
        self_attn = cross_attn = 0.0
        for b, (si, ti) in enumerate(pairs):
            self_attn = self_attn + mse(s_self[b][:, si][:, :, si], t_self[b][:, ti][:, :, ti])
            cross_attn = cross_attn + mse(
                splat_port(s_cross[0][b], s_cross[1][b], SHAPES),
                splat_port(t_cross[0][b], t_cross[1][b], SHAPES),
            )
        return {
            "class": 1.0 * cls / num,
            "bbox": 5.0 * l1 / num,
            "giou": 2.0 * giou / num,
            "self_attn": 1e4 * self_attn / BATCH,
            "cross_attn": 1e3 * cross_attn / BATCH,
        }

    def adaptive(self):
        total, all_pairs = {}, []
        for k in range(LAYERS):
            pairs = []
            for b in range(BATCH):
                clipped = self.s_boxes[k, b].clamp(0.0, 1.0)  # student boxes, cost only
                cost = teacher_student_cost(
                    None, clipped, None, self.t_boxes[k, b], self.class_cost(k, b)
                )
                pairs.append(hungarian(cost))
            all_pairs.append(pairs)
            terms = self.port_terms(k, "s", self.s_logits[k], self.s_boxes[k], pairs)
            total = {key: total.get(key, 0.0) + v for key, v in terms.items()}
        return total, all_pairs

    def fixed(self):
        index = torch.arange(QUERIES)
        total = {}
        for k in range(LAYERS):
            pairs = [(index, index)] * BATCH
            terms = self.port_terms(k, "x", self.x_logits[k], self.x_boxes[k], pairs)
            total = {key: total.get(key, 0.0) + v for key, v in terms.items()}
        return total


# -------------------------------------------------------------------------------------- tests
class TestOfficialParity(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.inputs = build_inputs()
        cls.library = load_presets()
        cls.ref = Reference(cls.inputs)

        official = build(cls.library.detrdistill_official_losses)
        contrastive = official["contrastive"]
        with torch.no_grad():  # trained-looking projections: BatchNorm affine and biases matter
            for proj in (contrastive.student_proj, contrastive.teacher_proj):
                bn = proj.encoder[1]
                bn.weight.uniform_(0.5, 1.5)
                bn.bias.normal_(0.0, 0.5)
                for layer in (proj.proj, proj.encoder[0], proj.encoder[3]):
                    layer.bias.normal_(0.0, 0.2)
        inputs = cls.inputs
        cls.official = {}
        for key in ("logits", "feature", "query_prior", "contrastive"):  # logits first
            cls.official[key] = values(official[key](inputs))
        cls.official_pairs = inputs.shared["logits_pairs"]
        cls.ref_logits, cls.ref_logits_pairs = cls.ref.logits()
        cls.contrastive_module = contrastive

        port = build(cls.library.d3etr_port_losses)
        cls.port = {key: values(port[key](inputs)) for key in ("adaptive", "fixed")}

    def assert_terms(self, actual, expected, what):
        self.assertEqual(set(actual), set(expected), what)
        for key in expected:
            torch.testing.assert_close(
                actual[key],
                torch.as_tensor(expected[key], dtype=f64),
                rtol=RTOL,
                atol=ATOL,
                msg=lambda m, key=key: f"{what}[{key!r}]: {m}",
            )

    def test_inputs_exercise_the_edge_cases(self):
        xyxy = to_xyxy(self.ref.t_boxes)
        self.assertGreater(int(((xyxy < 0) | (xyxy > 1)).any(-1).sum()), 1000)  # clipping
        self.assertTrue(self.inputs.teacher.encoder.masks[0][1].any())  # image 1 is padded
        self.assertFalse(self.inputs.teacher.encoder.masks[0][0].any())
        self.assertTrue((self.ref.s_boxes > 1).any())  # the port's student clip in the cost

    def test_weights(self):
        self.assertEqual(
            dict(self.library.detrdistill_official_weights),
            {"logits": 1.0, "feature": 1.0, "query_prior": 1.0, "contrastive": 0.2},
        )
        self.assertEqual(dict(self.library.d3etr_port_weights), {"adaptive": 1.0, "fixed": 1.0})

    # -------------------------------------------------------------------- DETRDistill official
    def test_detrdistill_logits(self):
        for k, (mine, theirs) in enumerate(zip(self.ref_logits_pairs, self.official_pairs)):
            for b, ((ms, mt), (ts, tt)) in enumerate(zip(mine, theirs)):
                self.assertTrue(torch.equal(ms, ts.cpu()), f"layer {k} image {b}")
                self.assertTrue(torch.equal(mt, tt.cpu()), f"layer {k} image {b}")
        self.assert_terms(self.official["logits"], self.ref_logits, "logits")

    def test_detrdistill_feature(self):
        self.assert_terms(self.official["feature"], self.ref.feature(), "feature")

    def test_detrdistill_query_prior(self):
        self.assert_terms(self.official["query_prior"], self.ref.query_prior(), "query_prior")

    def test_detrdistill_contrastive(self):
        expected = self.ref.contrastive(self.contrastive_module, self.ref_logits_pairs)
        self.assert_terms(self.official["contrastive"], expected, "contrastive")

    # ------------------------------------------------------------------------ D3ETR port
    def test_d3etr_port_adaptive(self):
        expected, _ = self.ref.adaptive()
        self.assert_terms(self.port["adaptive"], expected, "adaptive")

    def test_d3etr_port_fixed(self):
        self.assert_terms(self.port["fixed"], self.ref.fixed(), "fixed")

    # ----------------------------------------------------- the defaults are not the references
    def test_default_presets_differ(self):
        inputs = self.inputs
        # the teacher's own assignment to the GT, needed by the default "split" logits loss
        matcher = inputs.student_criterion.matcher
        inputs.teacher_gt_indices = matcher.match_layers(
            inputs.teacher.decoder.pred_logits, inputs.teacher.decoder.pred_boxes, inputs.targets
        )
        defaults = build(self.library.detrdistill_losses)
        logits = values(defaults["logits"](inputs))
        feature = values(defaults["feature"](inputs))
        d3etr = values(build(self.library.d3etr_losses)["adaptive"](inputs))

        def far(a, b):  # well outside the parity tolerance
            return abs(float(a) - float(b)) > 10 * RTOL * abs(float(b))

        # split (8 positives matched first) vs one joint match: a few pairs change
        self.assertTrue(far(logits["class"], self.ref_logits["class"]))
        self.assertTrue(far(logits["bbox"], self.ref_logits["bbox"]))
        self.assertTrue(far(feature["feature"], self.official["feature"]["feature"]))  # Eq. 9
        expected, _ = self.ref.adaptive()
        self.assertTrue(far(d3etr["self_attn"], expected["self_attn"]))  # KL vs port MSE
        self.assertTrue(far(d3etr["cross_attn"], expected["cross_attn"]))


if __name__ == "__main__":
    unittest.main()
