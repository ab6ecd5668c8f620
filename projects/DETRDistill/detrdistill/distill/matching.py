"""Soft Hungarian matching of student predictions to teacher predictions."""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from ..layers import box_cxcywh_to_xyxy, generalized_box_iou
from ..modeling.class_type import check_class_type
from ..modeling.matcher import linear_sum_assignment_batch

__all__ = ["class_probabilities", "layers_as_batch", "split_by_layer", "TeacherStudentMatcher"]

Pairs = list[tuple[Tensor, Tensor]]


def layers_as_batch(x: Tensor, layers: list[int]) -> Tensor:
    """Stack the chosen decoder layers into the batch axis, so that one matcher call (and one
    solver call) serves every layer pair.

    Args:
        x: (L, B, ...) per-layer tensor.
        layers: P layer indices (repeats allowed).

    Returns:
        Tensor of shape (P * B, ...), layer-major.
    """
    return x[list(layers)].flatten(0, 1)


def split_by_layer(items: list, num_layers: int) -> list[list]:
    """Undo :func:`layers_as_batch` on a per-image list: P*B items -> P lists of B."""
    if len(items) % num_layers:
        raise ValueError(f"{len(items)} items do not split into {num_layers} layers")
    bsz = len(items) // num_layers
    return [items[p * bsz : (p + 1) * bsz] for p in range(num_layers)]


def class_probabilities(logits: Tensor, class_type: str) -> Tensor:
    """Foreground class probabilities of a detector's logits.

    Args:
        logits: Tensor of shape (..., K); K = C for "focal", C + 1 (no-object last) for
            "softmax".
        class_type: "focal" (independent sigmoids) or "softmax".

    Returns:
        Tensor of shape (..., C): ``sigmoid(logits)`` for "focal", ``softmax(logits)`` without
        the no-object column for "softmax".
    """
    check_class_type(class_type, "class_type")
    if class_type == "focal":
        return logits.sigmoid()
    return logits.softmax(-1)[..., :-1]


def soft_class_cost(
    student_logits: Tensor, teacher_probs: Tensor, student_class_type: str, reduction: str
) -> Tensor:
    """Pairwise classification cost between student logits and teacher probabilities.

    Focal student: ``sum_c BCEWithLogits(s_c, p_c) = sum_c softplus(s_c) - s_c p_c``, divided by
    C when ``reduction == "mean"``. Softmax student: cross-entropy
    ``-sum_c p_c log softmax(s)_c`` over the C foreground classes (``reduction`` is not used:
    it is already one term per distribution).

    Args:
        student_logits: (B, Qs, K_s).
        teacher_probs: (B, Qt, C) foreground probabilities.
        student_class_type: "focal" (K_s = C) or "softmax" (K_s = C + 1).
        reduction: "mean" or "sum" over classes (focal students only).

    Returns:
        Tensor of shape (B, Qs, Qt).
    """
    num_classes = teacher_probs.shape[-1]
    expected = num_classes + (1 if student_class_type == "softmax" else 0)
    if student_logits.shape[-1] != expected:
        raise ValueError(
            f"student logits have {student_logits.shape[-1]} outputs but the teacher predicts "
            f"{num_classes} foreground classes; a {student_class_type} student needs {expected}"
        )
    if student_class_type == "focal":
        cost = F.softplus(student_logits).sum(-1, keepdim=True) - torch.bmm(
            student_logits, teacher_probs.transpose(1, 2)
        )
        return cost / num_classes if reduction == "mean" else cost
    log_prob = student_logits.log_softmax(-1)[..., :num_classes]
    return -torch.bmm(log_prob, teacher_probs.transpose(1, 2))


class TeacherStudentMatcher(nn.Module):
    """One-to-one assignment of student predictions to teacher predictions.

    ``C = cost_class * C_class + cost_bbox * L1(cxcywh) - cost_giou * GIoU(xyxy)`` where
    ``C_class`` compares student logits with the teacher's soft class probabilities (see
    :func:`soft_class_cost`). All images' costs are computed in one batched pass on the
    prediction device; only the assignment runs per image (via
    :func:`~detrdistill.modeling.matcher.linear_sum_assignment_batch`). Qs != Qt is fine: the
    smaller side is fully matched.

    Args:
        cost_class: Weight of the soft classification cost.
        cost_bbox: Weight of the L1 cost on normalised cxcywh boxes.
        cost_giou: Weight of the (negative) GIoU cost.
        class_cost_reduction: How a focal student's per-class BCE cost is reduced over classes:
            "sum" (default: the official DETRDistill code and the public D3ETR port) or "mean"
            (divided by C; at C = 80 the class term then barely moves the assignment).
        clamp_student_boxes: Clip the student's cxcywh boxes to [0, 1] in the cost (the public
            D3ETR port does; the official DETRDistill code does not).
    """

    def __init__(
        self,
        *,
        cost_class: float = 1.0,
        cost_bbox: float = 5.0,
        cost_giou: float = 2.0,
        class_cost_reduction: str = "sum",
        clamp_student_boxes: bool = False,
    ):
        super().__init__()
        if class_cost_reduction not in ("mean", "sum"):
            raise ValueError(
                f"class_cost_reduction must be 'mean' or 'sum', got {class_cost_reduction!r}"
            )
        if cost_class == 0 and cost_bbox == 0 and cost_giou == 0:
            raise ValueError("all teacher-student matching costs are 0")
        self.cost_class = cost_class
        self.cost_bbox = cost_bbox
        self.cost_giou = cost_giou
        self.class_cost_reduction = class_cost_reduction
        self.clamp_student_boxes = clamp_student_boxes

    @torch.no_grad()
    def cost_matrix(
        self,
        student_logits: Tensor,
        student_boxes: Tensor,
        teacher_probs: Tensor,
        teacher_boxes: Tensor,
        student_class_type: str,
        box_only: bool = False,
    ) -> Tensor:
        """Batched matching cost.

        Args:
            student_logits: (B, Qs, K_s).
            student_boxes: (B, Qs, 4) normalised cxcywh.
            teacher_probs: (B, Qt, C) teacher foreground probabilities.
            teacher_boxes: (B, Qt, 4) normalised cxcywh.
            student_class_type: "focal" or "softmax".
            box_only: Leave the classification cost out (L1 and GIoU only).

        Returns:
            Tensor of shape (B, Qs, Qt), float32.
        """
        check_class_type(student_class_type, "student_class_type")
        if student_logits.shape[0] != teacher_probs.shape[0]:
            raise ValueError(
                f"student batch {student_logits.shape[0]} != teacher batch {teacher_probs.shape[0]}"
            )
        s_logits = student_logits.detach().float()
        t_probs = teacher_probs.detach().float()
        cost = s_logits.new_zeros(s_logits.shape[0], s_logits.shape[1], t_probs.shape[1])
        if not box_only:
            cost = self.cost_class * soft_class_cost(
                s_logits, t_probs, student_class_type, self.class_cost_reduction
            )
        s_boxes = student_boxes.detach().float()
        if self.clamp_student_boxes:
            s_boxes = s_boxes.clamp(0.0, 1.0)
        t_boxes = teacher_boxes.detach().float()
        if self.cost_bbox:
            cost = cost + self.cost_bbox * torch.cdist(s_boxes, t_boxes, p=1)
        if self.cost_giou:
            giou = torch.stack(
                [
                    generalized_box_iou(box_cxcywh_to_xyxy(s), box_cxcywh_to_xyxy(t))
                    for s, t in zip(s_boxes, t_boxes)
                ]
            )
            cost = cost - self.cost_giou * giou
        return cost

    @torch.no_grad()
    def forward(
        self,
        student_logits: Tensor,
        student_boxes: Tensor,
        teacher_probs: Tensor,
        teacher_boxes: Tensor,
        student_class_type: str,
        teacher_mask: Tensor | None = None,
        *,
        student_mask: Tensor | None = None,
        box_only: bool = False,
    ) -> Pairs:
        """Match every image's student predictions to its teacher predictions.

        Args:
            student_logits: (B, Qs, K_s) logits.
            student_boxes: (B, Qs, 4) normalised cxcywh.
            teacher_probs: (B, Qt, C) foreground probabilities (:func:`class_probabilities`).
            teacher_boxes: (B, Qt, 4) normalised cxcywh.
            student_class_type: "focal" or "softmax".
            teacher_mask: Optional (B, Qt) bool; only teacher predictions marked True take part.
            student_mask: Optional (B, Qs) bool; only student queries marked True take part.
            box_only: Match on the box costs alone.

        Returns:
            list of B ``(student_idx, teacher_idx)`` int64 CPU tensors (indices into the full
            Qs / Qt axes), sorted by ``student_idx``, of length ``min(#students, #teachers)``.
        """
        cost = self.cost_matrix(
            student_logits,
            student_boxes,
            teacher_probs,
            teacher_boxes,
            student_class_type,
            box_only=box_only,
        )
        return self.assign(cost, teacher_mask, student_mask=student_mask)

    def assign(
        self,
        cost: Tensor,
        teacher_mask: Tensor | None = None,
        *,
        student_mask: Tensor | None = None,
    ) -> Pairs:
        """Solve a (B, Qs, Qt) cost from :meth:`cost_matrix`, each image restricted to the
        student queries / teacher predictions its masks keep (see :meth:`forward`), so that
        several assignments can share one cost computation."""
        bsz, num_s, num_t = cost.shape
        rows = self._kept(student_mask, bsz, num_s, "student_mask")
        cols = self._kept(teacher_mask, bsz, num_t, "teacher_mask")
        solved = linear_sum_assignment_batch([c[r][:, k] for c, r, k in zip(cost, rows, cols)])
        return [(r.cpu()[i], k.cpu()[j]) for (i, j), r, k in zip(solved, rows, cols)]

    @staticmethod
    def _kept(mask: Tensor | None, bsz: int, num: int, name: str) -> list[Tensor]:
        """Per image, the int64 indices a (B, N) bool mask keeps (all when None)."""
        if mask is None:
            return [torch.arange(num)] * bsz
        if mask.shape != (bsz, num):
            raise ValueError(f"{name} must have shape {(bsz, num)}, got {tuple(mask.shape)}")
        return [m.nonzero(as_tuple=True)[0] for m in mask.bool()]

    def extra_repr(self) -> str:
        return (
            f"cost_class={self.cost_class}, cost_bbox={self.cost_bbox}, "
            f"cost_giou={self.cost_giou}, class_cost_reduction={self.class_cost_reduction!r}, "
            f"clamp_student_boxes={self.clamp_student_boxes}"
        )
