"""Denoising queries (DN-DETR, Li et al. 2022; DINO's contrastive denoising, Zhang et al. 2022).

In training, noised copies of the ground-truth boxes and labels are decoded next to the model's
own (matching) queries as one extra query group, :data:`DENOISING`, and each copy is supervised
by the box it was made from: no Hungarian matching, the assignment is known. Inference never
builds the group.

Layout of the group for a batch whose largest image has ``M`` ground-truth boxes: ``G`` equal
denoising groups (``QueryGroup.num_blocks``), one after the other. Each holds ``M`` positive
slots and, with ``contrastive=True``, ``M`` negative slots after them; image ``b`` fills the
first ``n_b`` slots of each kind, the rest is padding (zero content, reference box
(0.5, 0.5, 0.5, 0.5)). Attention (see :func:`~detrdistill.modeling.meta_arch.query_group_mask`):
a denoising group sees itself and the matching queries, never another denoising group; the
matching queries never see a denoising query.

Noise (``λ = box_noise_scale``, ``u ~ U[0, 1)``, independent per coordinate):

* labels: each copy's label is replaced, with probability ``label_noise_ratio``, by a class drawn
  uniformly from all ``num_classes`` (possibly the same one). DN-DETR's ``label_noise_scale``
  is this probability; DINO's code replaces with probability ``dn_label_noise_ratio / 2``, so
  DINO's 0.5 is 0.25 here.
* boxes, DN-DETR (``contrastive=False``): centre ``+ (2u - 1) λ (w/2, h/2)``, size
  ``+ (2u - 1) λ (w, h)``.
* boxes, DINO (``contrastive=True``): each corner coordinate of the (x1, y1, x2, y2) box moves by
  ``± u λ (w/2 or h/2)`` for positives and ``± (1 + u) λ (w/2 or h/2)`` for negatives (random
  sign), so negatives lie farther from their ground truth than positives.

Then boxes are clipped to the image ([0, 1]) and, as anchor references, to
``[REFERENCE_EPS, 1 - REFERENCE_EPS]`` (a collapsed negative keeps a positive size).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from ..layers import box_cxcywh_to_xyxy, box_xyxy_to_cxcywh
from .outputs import QueryGroup

__all__ = ["DENOISING", "REFERENCE_EPS", "DenoisingGroup", "DenoisingQueries"]

#: Name of the denoising query group in ``DETROutput.groups``.
DENOISING = "denoising"
#: Smallest coordinate / size of a denoising reference box.
REFERENCE_EPS = 1e-3
#: Reference box of padding slots (DINO's zero in inverse-sigmoid space).
PADDING_BOX = 0.5

Indices = list[tuple[Tensor, Tensor]]


@dataclass
class DenoisingGroup(QueryGroup):
    """The denoising query group of a batch and its known assignment.

    ``content`` (B, Q, D) is the label embedding of each noised label (zero on padding),
    ``reference`` (B, Q, 4) the noised boxes (cxcywh in [0, 1]), ``pos`` None;
    ``num_blocks`` = the number of denoising groups G, ``sees_own_queries`` = True.

    Attributes:
        assignment: per image ``(query index (n,), gt index (n,))`` int64 of the positive queries
            (supervised by that ground-truth box and label).
        negatives: per image ``(query index, gt index)`` of the negative queries and the box each
            was made from (supervised as "no object"); empty without ``contrastive``.
        labels: (B, Q) int64 noised label of each query, -1 on padding.
    """

    assignment: Indices = field(default_factory=list)
    negatives: Indices = field(default_factory=list)
    labels: Tensor | None = None


class DenoisingQueries(nn.Module):
    """Builds the :class:`DenoisingGroup` of a training batch from its targets (see module
    docstring for the layout and the noise).

    Args:
        num_classes: foreground classes (must equal the model's).
        hidden_dim: width D of the content queries (must equal the model's).
        num_groups: fixed number of denoising groups G (DN-DETR: 5); or None with
            ``num_dn_queries``.
        num_dn_queries: a budget instead (DINO's ``dn_number``, 100): G = max(1,
            num_dn_queries // M) for M = the largest number of boxes in an image of the batch.
        label_noise_ratio: probability of replacing a label (DN-DETR 0.2; DINO 0.25).
        box_noise_scale: λ (DN-DETR 0.4; DINO 1.0).
        contrastive: add a negative copy of every box (DINO's contrastive denoising).
    """

    def __init__(
        self,
        *,
        num_classes: int,
        hidden_dim: int,
        num_groups: int | None = 5,
        num_dn_queries: int | None = None,
        label_noise_ratio: float = 0.2,
        box_noise_scale: float = 0.4,
        contrastive: bool = False,
    ):
        super().__init__()
        if (num_groups is None) == (num_dn_queries is None):
            raise ValueError(
                "give exactly one of model.denoising.num_groups (fixed G) and "
                f"model.denoising.num_dn_queries (a budget), got {num_groups} and "
                f"{num_dn_queries}"
            )
        for key, value in (("num_groups", num_groups), ("num_dn_queries", num_dn_queries)):
            if value is not None and value < 1:
                raise ValueError(f"model.denoising.{key} must be >= 1, got {value}")
        if not 0.0 <= label_noise_ratio <= 1.0:
            raise ValueError(
                f"model.denoising.label_noise_ratio must be in [0, 1], got {label_noise_ratio}"
            )
        if box_noise_scale < 0:
            raise ValueError(f"model.denoising.box_noise_scale must be >= 0, got {box_noise_scale}")
        self.num_classes = num_classes
        self.hidden_dim = hidden_dim
        self.num_groups = num_groups
        self.num_dn_queries = num_dn_queries
        self.label_noise_ratio = label_noise_ratio
        self.box_noise_scale = box_noise_scale
        self.contrastive = contrastive
        self.label_embed = nn.Embedding(num_classes, hidden_dim)

    def groups_for(self, max_boxes: int) -> int:
        """Number of denoising groups G for a batch whose largest image has ``max_boxes``."""
        if self.num_groups is not None:
            return self.num_groups
        return max(1, self.num_dn_queries // max(max_boxes, 1))

    def forward(self, targets: list[dict[str, Tensor]]) -> DenoisingGroup:
        """
        Args:
            targets: per image ``{"labels": (n,) int64, "boxes": (n, 4) normalised cxcywh}``.

        Returns:
            the batch's :class:`DenoisingGroup` (Q = G * M * (2 if contrastive else 1)).
        """
        device = self.label_embed.weight.device
        max_boxes = max((len(t["labels"]) for t in targets), default=0)
        num_groups = self.groups_for(max_boxes)
        kinds = 2 if self.contrastive else 1
        group_size = kinds * max_boxes
        total = num_groups * group_size
        batch = len(targets)
        labels = torch.full((batch, total), -1, dtype=torch.int64, device=device)
        reference = torch.full((batch, total, 4), PADDING_BOX, device=device)
        assignment, negatives = [], []
        for image, target in enumerate(targets):
            count = len(target["labels"])
            # slot[g, k, i]: query of box i, kind k (0 positive, 1 negative), denoising group g
            slot = (
                torch.arange(num_groups, device=device)[:, None, None] * group_size
                + torch.arange(kinds, device=device)[None, :, None] * max_boxes
                + torch.arange(count, device=device)[None, None, :]
            )
            gt = torch.arange(count, device=device).expand_as(slot)
            negative = torch.arange(kinds, device=device)[None, :, None].expand_as(slot) == 1
            gt_labels = target["labels"].to(device)[gt.flatten()]
            gt_boxes = target["boxes"].to(device, torch.float32)[gt.flatten()]
            labels[image, slot.flatten()] = self.noise_labels(gt_labels)
            reference[image, slot.flatten()] = self.noise_boxes(gt_boxes, negative.flatten())
            assignment.append((slot[:, 0].flatten().cpu(), gt[:, 0].flatten().cpu()))
            if self.contrastive:
                negatives.append((slot[:, 1].flatten().cpu(), gt[:, 1].flatten().cpu()))
            else:
                empty = torch.empty(0, dtype=torch.int64)
                negatives.append((empty, empty.clone()))
        valid = labels >= 0
        content = self.label_embed(labels.clamp(min=0)) * valid[..., None]
        return DenoisingGroup(
            content=content,
            pos=None,
            reference=reference,
            sees_own_queries=True,
            num_blocks=num_groups,
            assignment=assignment,
            negatives=negatives,
            labels=labels,
        )

    def noise_labels(self, labels: Tensor) -> Tensor:
        """(N,) labels, each replaced with probability ``label_noise_ratio`` by a uniform
        class."""
        if self.label_noise_ratio <= 0 or labels.numel() == 0:
            return labels
        replace = torch.rand(labels.shape, device=labels.device) < self.label_noise_ratio
        random = torch.randint(0, self.num_classes, labels.shape, device=labels.device)
        return torch.where(replace, random, labels)

    def noise_boxes(self, boxes: Tensor, negative: Tensor) -> Tensor:
        """Noised copies of (N, 4) cxcywh boxes; ``negative`` (N,) bool marks DINO negatives
        (ignored without ``contrastive``). Returns (N, 4) cxcywh in [REFERENCE_EPS,
        1 - REFERENCE_EPS]."""
        scale = self.box_noise_scale
        if scale > 0 and boxes.numel():
            size = boxes[:, 2:]
            if self.contrastive:
                half = (size / 2).repeat(1, 2)  # (w/2, h/2, w/2, h/2) for (x1, y1, x2, y2)
                magnitude = torch.rand_like(boxes) + negative[:, None].to(boxes.dtype)
                sign = torch.randint_like(boxes, 0, 2) * 2 - 1
                corners = box_cxcywh_to_xyxy(boxes) + sign * magnitude * half * scale
                boxes = box_xyxy_to_cxcywh(corners.clamp(0.0, 1.0))
            else:
                spread = torch.cat([size / 2, size], -1)
                boxes = boxes + (torch.rand_like(boxes) * 2 - 1) * spread * scale
                boxes = boxes.clamp(0.0, 1.0)
        return boxes.clamp(REFERENCE_EPS, 1 - REFERENCE_EPS)

    def extra_repr(self) -> str:
        groups = (
            f"num_groups={self.num_groups}"
            if self.num_groups is not None
            else f"num_dn_queries={self.num_dn_queries}"
        )
        return (
            f"{groups}, label_noise_ratio={self.label_noise_ratio}, "
            f"box_noise_scale={self.box_noise_scale}, contrastive={self.contrastive}"
        )
