"""Query contrastive distillation (InfoNCE between matched decoder states; official extra)."""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from ..inputs import DistillationInputs
from ..matching import TeacherStudentMatcher, class_probabilities
from .base import DistillationLoss
from .prediction import gather_pairs

__all__ = ["QueryContrastiveDistillation", "ContrastiveProjection"]

PAIR_SOURCES = ("logits", "own")


class ContrastiveProjection(nn.Module):
    """The official projection of one side: ``Linear(in, mid)``, then
    ``Linear(mid, mid) - BatchNorm1d(mid) - ReLU - Linear(mid, mid)``.

    Args:
        in_dim: Input width (a decoder's hidden size).
        mid_dim: Projection width (official: 512).
    """

    def __init__(self, in_dim: int, mid_dim: int):
        super().__init__()
        self.proj = nn.Linear(in_dim, mid_dim)
        self.encoder = nn.Sequential(
            nn.Linear(mid_dim, mid_dim),
            nn.BatchNorm1d(mid_dim),
            nn.ReLU(),
            nn.Linear(mid_dim, mid_dim),
        )

    def forward(self, states: Tensor) -> Tensor:
        """(N, in_dim) -> (N, mid_dim) L2-normalised."""
        return F.normalize(self.encoder(self.proj(states)), dim=1)


class QueryContrastiveDistillation(DistillationLoss):
    """InfoNCE between teacher query states and the student states matched to them.

    Not in the DETRDistill paper; the official code turns it on (weight 0.2, the wrapper's loss
    weight). Per layer pair ``(s, t)``: the N (student, teacher) pairs of the logits
    distillation's assignment (``pairs_from="logits"``, official: the same assignment is reused,
    so that loss must be configured too) or of this loss's own joint match (``"own"``). Both
    sides' hidden states of all images of the local batch pass through their own
    :class:`ContrastiveProjection`, and ``logits = z_T z_S^T / temperature`` (N, N) is scored by
    cross-entropy with the diagonal as targets: each teacher query must pick out its own
    student partner among the batch. Summed over layer pairs (``layer_reduction``).

    Args:
        student_dim: Student decoder hidden size.
        teacher_dim: Teacher decoder hidden size.
        proj_dim: Projection width (official: 512).
        temperature: InfoNCE temperature (official: 0.07).
        pairs_from: "logits" or "own".
        matcher: A :class:`TeacherStudentMatcher` for ``pairs_from="own"`` (default: its
            defaults).
        layer_reduction, empty_term_patience: see :class:`DistillationLoss`.

    Returns from ``forward``: dict with ``contrastive``.
    """

    def __init__(
        self,
        *,
        student_dim: int,
        teacher_dim: int,
        proj_dim: int = 512,
        temperature: float = 0.07,
        pairs_from: str = "logits",
        matcher: TeacherStudentMatcher | None = None,
        layer_reduction: str = "sum",
        empty_term_patience: int = 100,
    ):
        super().__init__(layer_reduction=layer_reduction, empty_term_patience=empty_term_patience)
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        if pairs_from not in PAIR_SOURCES:
            raise ValueError(f"pairs_from must be one of {PAIR_SOURCES}, got {pairs_from!r}")
        self.student_proj = ContrastiveProjection(student_dim, proj_dim)
        self.teacher_proj = ContrastiveProjection(teacher_dim, proj_dim)
        self.temperature = temperature
        self.pairs_from = pairs_from
        self.reads_shared = ("logits_pairs",) if pairs_from == "logits" else ()
        self.matcher = matcher if matcher is not None else TeacherStudentMatcher()

    def info_nce(self, student_states: Tensor, teacher_states: Tensor) -> Tensor:
        """InfoNCE with diagonal targets, teacher rows.

        Args:
            student_states: (N, Ds) student hidden states.
            teacher_states: (N, Dt) teacher hidden states of the matched partners.

        Returns:
            Scalar mean cross-entropy (0 attached to the graph when N < 2: BatchNorm needs two
            rows and one row has no negative).
        """
        if student_states.shape[0] < 2:
            return student_states.sum() * 0.0
        z_s = self.student_proj(student_states.float())
        z_t = self.teacher_proj(teacher_states.detach().float())
        logits = z_t @ z_s.t() / self.temperature
        target = torch.arange(len(logits), device=logits.device)
        return F.cross_entropy(logits, target)

    def layer_pairs(self, inputs: DistillationInputs) -> list[list[tuple[Tensor, Tensor]]]:
        """Per layer pair, B (student_idx, teacher_idx) pairs."""
        if self.pairs_from == "logits":
            if "logits_pairs" not in inputs.shared:
                raise ValueError(
                    'QueryContrastiveDistillation(pairs_from="logits") reuses the logits '
                    "distillation's assignment, but no HungarianLogitsDistillation ran in this "
                    'step: add it to model.losses or set pairs_from="own"'
                )
            return inputs.shared["logits_pairs"]
        student, teacher = inputs.student.decoder, inputs.teacher.decoder
        result = []
        for s, t in inputs.layer_pairs:
            probs = class_probabilities(
                teacher.pred_logits[t].detach().float(), inputs.teacher_class_type
            )
            result.append(
                self.matcher(
                    student.pred_logits[s],
                    student.pred_boxes[s],
                    probs,
                    teacher.pred_boxes[t],
                    inputs.student_class_type,
                )
            )
        return result

    def forward(self, inputs: DistillationInputs) -> dict[str, Tensor]:
        student, teacher = inputs.student.decoder, inputs.teacher.decoder
        device = student.hidden_states.device
        per_layer, count = [], 0
        for (s, t), pairs in zip(inputs.layer_pairs, self.layer_pairs(inputs)):
            batch, s_idx, t_idx = gather_pairs(pairs, device)
            count += len(batch)
            loss = self.info_nce(
                student.hidden_states[s][batch, s_idx], teacher.hidden_states[t][batch, t_idx]
            )
            per_layer.append({"contrastive": loss})
        self.empty_terms.update({"contrastive": count})
        return self.combine_layers(per_layer)

    def extra_repr(self) -> str:
        return (
            f"temperature={self.temperature}, pairs_from={self.pairs_from!r}, "
            f"{super().extra_repr()}"
        )
