"""Query contrastive distillation (InfoNCE between matched decoder states; official extra)."""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from ...layers import MLP
from ..inputs import DistillationInputs
from ..matching import TeacherStudentMatcher, class_probabilities
from .prediction import LayerAverage, gather_pairs

__all__ = ["QueryContrastiveDistillation"]


class QueryContrastiveDistillation(nn.Module):
    """InfoNCE between student query states and the states of their matched teacher queries.

    Per layer pair ``(s, t)``: the student's layer-``s`` predictions are matched to the
    teacher's layer-``t`` predictions (joint match, every teacher prediction). The N matched
    student hidden states and the N teacher hidden states of their partners (all images of the
    local batch) pass through their own 2-layer projection MLP (ReLU, ``proj_dim`` wide), are
    L2-normalised, and ``logits = z_S z_T^T / temperature`` (N, N) is scored by cross-entropy
    with the diagonal as targets: each student query must pick out its own teacher partner
    among the batch. Averaged over layer pairs. This term is not in the DETRDistill paper; the
    official code turns it on with weight 0.2 (the wrapper's loss weight decides).

    Args:
        student_dim: Student decoder hidden size.
        teacher_dim: Teacher decoder hidden size.
        proj_dim: Projection size.
        temperature: InfoNCE temperature.
        matcher: A :class:`TeacherStudentMatcher` (default: its defaults).

    Returns from ``forward``: dict with ``contrastive``.
    """

    needs_attention = False
    needs_teacher_queries = False
    needs_teacher_assignment = False

    def __init__(
        self,
        *,
        student_dim: int,
        teacher_dim: int,
        proj_dim: int = 512,
        temperature: float = 0.07,
        matcher: TeacherStudentMatcher | None = None,
    ):
        super().__init__()
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        self.student_proj = MLP(student_dim, proj_dim, proj_dim, 2)
        self.teacher_proj = MLP(teacher_dim, proj_dim, proj_dim, 2)
        self.temperature = temperature
        self.matcher = matcher if matcher is not None else TeacherStudentMatcher()

    def info_nce(self, student_states: Tensor, teacher_states: Tensor) -> Tensor:
        """InfoNCE with diagonal targets.

        Args:
            student_states: (N, Ds) student hidden states.
            teacher_states: (N, Dt) teacher hidden states of the matched partners.

        Returns:
            Scalar mean cross-entropy (0 attached to the graph when N = 0).
        """
        if student_states.shape[0] == 0:
            return student_states.sum() * 0.0
        z_s = F.normalize(self.student_proj(student_states.float()), dim=-1)
        z_t = F.normalize(self.teacher_proj(teacher_states.detach().float()), dim=-1)
        logits = z_s @ z_t.t() / self.temperature
        target = torch.arange(len(logits), device=logits.device)
        return F.cross_entropy(logits, target)

    def forward(self, inputs: DistillationInputs) -> dict[str, Tensor]:
        student, teacher = inputs.student.decoder, inputs.teacher.decoder
        mean = LayerAverage(len(inputs.layer_pairs))
        for s, t in inputs.layer_pairs:
            probs = class_probabilities(
                teacher.pred_logits[t].detach().float(), inputs.teacher_class_type
            )
            pairs = self.matcher(
                student.pred_logits[s],
                student.pred_boxes[s],
                probs,
                teacher.pred_boxes[t],
                inputs.student_class_type,
            )
            batch, s_idx, t_idx = gather_pairs(pairs, student.hidden_states.device)
            loss = self.info_nce(
                student.hidden_states[s][batch, s_idx], teacher.hidden_states[t][batch, t_idx]
            )
            mean.add({"contrastive": loss})
        return mean.total

    def extra_repr(self) -> str:
        return f"temperature={self.temperature}"
