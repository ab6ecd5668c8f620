"""Builders of tiny random DETR outputs for the distillation tests."""

from __future__ import annotations

import copy
import itertools
import math

import torch

from detrdistill.distill import TEACHER_QUERIES, DistillationInputs
from detrdistill.layers import DeformableAttentionWeights
from detrdistill.modeling.outputs import DecoderOutputs, DETROutput, EncoderOutputs, QueryGroup


def random_boxes(*shape):
    """Valid normalised cxcywh boxes of shape (*shape, 4)."""
    centre = 0.25 + 0.5 * torch.rand(*shape, 2)
    size = 0.05 + 0.3 * torch.rand(*shape, 2)
    return torch.cat([centre, size], dim=-1)


def make_encoder(batch=1, dim=4, shapes=((4, 4),), pad_cols=0):
    """Encoder outputs whose last ``pad_cols`` columns of every level are padding."""
    features, masks, pos = [], [], []
    for h, w in shapes:
        features.append(torch.randn(batch, dim, h, w))
        mask = torch.zeros(batch, h, w, dtype=torch.bool)
        if pad_cols:
            mask[:, :, w - pad_cols :] = True
        masks.append(mask)
        pos.append(torch.randn(batch, dim, h, w))
    memory = torch.cat([f.flatten(2).transpose(1, 2) for f in features], 1)
    memory_pos = torch.cat([p.flatten(2).transpose(1, 2) for p in pos], 1)
    memory_mask = torch.cat([m.flatten(1) for m in masks], 1)
    spatial = torch.tensor(shapes, dtype=torch.long)
    starts = torch.cat([spatial.new_zeros(1), (spatial[:, 0] * spatial[:, 1]).cumsum(0)[:-1]])
    return EncoderOutputs(
        features,
        masks,
        pos,
        memory,
        memory_pos,
        memory_mask,
        spatial,
        starts,
        torch.ones(batch, len(shapes), 2),
    )


def make_decoder(
    layers=2, batch=1, queries=3, classes=2, dim=4, heads=2, tokens=None, deformable=None
):
    """Random decoder outputs; attention maps when ``tokens`` (dense S) or ``deformable``
    ((spatial_shapes, points)) is given."""
    self_attn = cross_attn = None
    if tokens is not None or deformable is not None:
        self_attn = [torch.rand(batch, heads, queries, queries).softmax(-1) for _ in range(layers)]
    if tokens is not None:
        cross_attn = [torch.rand(batch, heads, queries, tokens).softmax(-1) for _ in range(layers)]
    if deformable is not None:
        shapes, points = deformable
        levels = len(shapes)
        cross_attn = [
            DeformableAttentionWeights(
                0.1 + 0.8 * torch.rand(batch, queries, heads, levels, points, 2),
                torch.rand(batch, queries, heads, levels * points)
                .softmax(-1)
                .view(batch, queries, heads, levels, points),
            )
            for _ in range(layers)
        ]
    return DecoderOutputs(
        pred_logits=2 * torch.randn(layers, batch, queries, classes),
        pred_boxes=random_boxes(layers, batch, queries),
        hidden_states=torch.randn(layers, batch, queries, dim),
        references=None,
        self_attn=self_attn,
        cross_attn=cross_attn,
    )


def make_output(decoder, encoder, teacher_queries=None):
    """A DETROutput; ``teacher_queries`` = the outputs of the "teacher_queries" group."""
    batch, queries = decoder.pred_logits.shape[1:3]
    dim = decoder.hidden_states.shape[-1]
    group = QueryGroup(torch.randn(batch, queries, dim))
    groups = {} if teacher_queries is None else {TEACHER_QUERIES: teacher_queries}
    return DETROutput(decoder, group, encoder, [(32, 32)] * batch, groups)


def _map_tensors(obj, fn):
    if isinstance(obj, torch.Tensor):
        return fn(obj)
    if isinstance(obj, list):
        return [_map_tensors(o, fn) for o in obj]
    if isinstance(obj, tuple):
        return tuple(_map_tensors(o, fn) for o in obj)
    if isinstance(obj, dict):
        return {k: _map_tensors(v, fn) for k, v in obj.items()}
    if hasattr(obj, "__dataclass_fields__"):
        new = copy.copy(obj)
        for name in obj.__dataclass_fields__:
            setattr(new, name, _map_tensors(getattr(obj, name), fn))
        return new
    return obj


def as_student(output):
    """A copy whose float tensors are leaves with requires_grad=True."""

    def leaf(t):
        if t.is_floating_point():
            return t.detach().clone().requires_grad_(True)
        return t.clone()

    return _map_tensors(output, leaf)


def as_teacher(output):
    """A copy with requires_grad=False everywhere."""
    return _map_tensors(output, lambda t: t.detach().clone())


def student_leaves(output):
    leaves = []
    _map_tensors(output, lambda t: leaves.append(t) if t.requires_grad else None)
    return leaves


def trainable(output):
    """A copy whose float tensors are trainable leaves: used for a TEACHER in the gradient
    checks, so that a missing ``detach`` in a loss shows up as a gradient on it."""
    return as_student(output)


def float_leaves(output):
    """Every floating tensor of a (nested) output."""
    leaves = []
    _map_tensors(output, lambda t: leaves.append(t) if t.is_floating_point() else None)
    return leaves


def grad_norm(tensors):
    """Total absolute gradient over tensors (0 where ``.grad`` is None)."""
    return sum(0.0 if t.grad is None else t.grad.abs().sum().item() for t in tensors)


def make_inputs(teacher, student, targets=None, layer_pairs=None, **kwargs):
    batch = teacher.decoder.pred_logits.shape[1]
    if targets is None:
        targets = [{"labels": torch.tensor([0, 1]), "boxes": random_boxes(2)} for _ in range(batch)]
    if layer_pairs is None:
        layer_pairs = [(i, i) for i in range(student.decoder.num_layers)]
    kwargs.setdefault("teacher_class_type", "focal")
    kwargs.setdefault("student_class_type", "focal")
    return DistillationInputs(
        teacher=teacher, student=student, targets=targets, layer_pairs=layer_pairs, **kwargs
    )


def sigmoid(x):
    return 1 / (1 + math.exp(-x))


def soft_bce(p, s):
    """Hand formula: BCE of logit s against the soft target p."""
    q = sigmoid(s)
    return -(p * math.log(q) + (1 - p) * math.log(1 - q))


def binary_kl(p, s):
    """Hand formula: BCE(logit s, target p) minus the entropy of p."""
    q = sigmoid(s)
    bce = -(p * math.log(q) + (1 - p) * math.log(1 - q))
    ent = -sum(v * math.log(v) for v in (p, 1 - p) if v > 0)
    return bce - ent


def cxcywh_to_xyxy(b):
    cx, cy, w, h = b
    return (cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2)


def iou_giou(a, b):
    """Hand IoU and GIoU of two cxcywh boxes (python floats)."""
    ax0, ay0, ax1, ay1 = cxcywh_to_xyxy(a)
    bx0, by0, bx1, by1 = cxcywh_to_xyxy(b)
    iw = max(0.0, min(ax1, bx1) - max(ax0, bx0))
    ih = max(0.0, min(ay1, by1) - max(ay0, by0))
    inter = iw * ih
    union = (ax1 - ax0) * (ay1 - ay0) + (bx1 - bx0) * (by1 - by0) - inter
    hull = (max(ax1, bx1) - min(ax0, bx0)) * (max(ay1, by1) - min(ay0, by0))
    iou = inter / union
    return iou, iou - (hull - union) / hull


def naive_cost(s_logit, s_box, t_prob, t_box, kind="focal", reduction="sum", weights=(1, 5, 2)):
    """One (student, teacher) pair's matching cost from explicit formulas (python floats)."""
    if kind == "focal":
        cls = sum(soft_bce(p, x) for x, p in zip(s_logit, t_prob))
        cls /= len(t_prob) if reduction == "mean" else 1
    else:
        norm = math.log(sum(math.exp(x) for x in s_logit))
        cls = -sum(p * (x - norm) for x, p in zip(s_logit, t_prob))
    l1 = sum(abs(a - b) for a, b in zip(s_box, t_box))
    _, giou = iou_giou(s_box, t_box)
    return weights[0] * cls + weights[1] * l1 - weights[2] * giou


def brute_force(cost, rows, cols):
    """Minimum-cost injective assignment of the smaller side by enumeration.

    Args:
        cost: nested list, ``cost[r][c]``.
        rows, cols: the candidate row / column indices.

    Returns:
        tuple (total, sorted list of (row, col)).
    """
    best, best_pairs = math.inf, []
    if len(rows) <= len(cols):
        candidates = ((rows, perm) for perm in itertools.permutations(cols, len(rows)))
    else:
        candidates = ((perm, cols) for perm in itertools.permutations(rows, len(cols)))
    for rs, cs in candidates:
        total = sum(cost[r][c] for r, c in zip(rs, cs))
        if total < best:
            best, best_pairs = total, sorted(zip(rs, cs))
    return best, best_pairs


def hand_cost_matrix(s_logits, s_boxes, t_logits, t_boxes, **kwargs):
    """(Qs, Qt) nested list of :func:`naive_cost` of one image (focal teacher logits)."""
    t_probs = [[sigmoid(x) for x in row] for row in t_logits.tolist()]
    return [
        [naive_cost(sl, sb, tp, tb, **kwargs) for tp, tb in zip(t_probs, t_boxes.tolist())]
        for sl, sb in zip(s_logits.tolist(), s_boxes.tolist())
    ]


def hand_prediction_loss(s_logits, s_boxes, t_logits, t_boxes, pairs, weights=(1, 5, 2)):
    """Focal-focal prediction distillation of one layer by hand (soft BCE, L1, 1 - GIoU), each
    divided by the number of pairs.

    Args:
        s_logits, s_boxes, t_logits, t_boxes: (B, Q, .) tensors of one layer.
        pairs: B lists of (student, teacher) python index pairs.

    Returns:
        dict of python floats ``class``, ``bbox``, ``giou``.
    """
    cls = l1 = giou = 0.0
    count = 0
    for b, image_pairs in enumerate(pairs):
        for i, j in image_pairs:
            s, t = s_logits[b, i].tolist(), t_logits[b, j].tolist()
            sb, tb = s_boxes[b, i].tolist(), t_boxes[b, j].tolist()
            cls += sum(soft_bce(sigmoid(y), x) for x, y in zip(s, t))
            l1 += sum(abs(x - y) for x, y in zip(sb, tb))
            giou += 1 - iou_giou(sb, tb)[1]
            count += 1
    count = max(count, 1)
    return {
        "class": weights[0] * cls / count,
        "bbox": weights[1] * l1 / count,
        "giou": weights[2] * giou / count,
    }


def hand_kl_rows(student_rows, teacher_rows, eps=1e-6):
    """Mean over rows of KL(teacher || student) after ``(a + eps) / sum(a + eps)`` (floats)."""
    total = 0.0
    for s, t in zip(student_rows, teacher_rows):
        s = [max(x, 0.0) + eps for x in s]
        t = [max(x, 0.0) + eps for x in t]
        s_sum, t_sum = sum(s), sum(t)
        total += sum((b / t_sum) * math.log((b / t_sum) / (a / s_sum)) for a, b in zip(s, t))
    return total / len(student_rows)
