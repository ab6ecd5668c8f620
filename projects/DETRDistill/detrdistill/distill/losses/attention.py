"""Attention-map distillation (D3ETR): self-attention and cross-attention of matched queries."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ...layers import DeformableAttentionWeights, deformable_weights_to_dense

__all__ = [
    "AttentionDistillation",
    "attention_distance",
    "self_attention_distillation",
    "cross_attention_distillation",
]

Pairs = list[tuple[Tensor, Tensor]]


def _match_heads(student: Tensor, teacher: Tensor) -> tuple[Tensor, Tensor]:
    """Average over heads (dim 0 or 1 given by the caller's layout) when head counts differ."""
    if student.shape[0] != teacher.shape[0]:
        return student.mean(0, keepdim=True), teacher.mean(0, keepdim=True)
    return student, teacher


DISTANCES = ("kl", "mse")
CROSS_SCOPES = ("matched", "all_queries")


def attention_distance(
    parts: list[tuple[Tensor, Tensor]], anchor: Tensor, distance: str, eps: float = 1e-6
) -> Tensor:
    """Distance between student and teacher attention rows, over all (student, teacher) parts.

    * ``"kl"``: every row (last axis = keys) is made a distribution, ``(a + eps) / sum(a + eps)``
      (so restricted and splatted maps, and keys one side never attends to, stay finite), and
      ``KL(teacher || student)`` is summed over the keys and averaged over the rows. A row's
      divergence does not shrink as the number of keys grows, so the term acts at any map size.
    * ``"mse"``: mean squared difference over all entries (the public D3ETR port); it shrinks
      about as 1/keys^2 for spread-out maps.

    Args:
        parts: (student, teacher) tensors of equal shape (..., keys).
        anchor: a student tensor; the result is attached to its graph even with no part.
        distance: "kl" or "mse".
        eps: smoothing of the "kl" distributions.

    Returns:
        Scalar tensor.
    """
    if distance not in DISTANCES:
        raise ValueError(f"attention distance must be one of {DISTANCES}, got {distance!r}")
    total, count = anchor.sum() * 0.0, 0
    for s, t in parts:
        s, t = s.float(), t.detach().float()
        if distance == "mse":
            total = total + (s - t).pow(2).sum()
            count += s.numel()
            continue
        s = s.clamp(min=0.0) + eps
        t = t.clamp(min=0.0) + eps
        s = s / s.sum(-1, keepdim=True)
        t = t / t.sum(-1, keepdim=True)
        total = total + (t * (t.log() - s.log())).sum()
        count += s[..., 0].numel()
    return total / max(count, 1)


def self_attention_distillation(
    student_attn: Tensor,
    teacher_attn: Tensor,
    pairs: Pairs,
    distance: str = "kl",
    eps: float = 1e-6,
) -> Tensor:
    """Distance between self-attention maps restricted to matched queries.

    For image b with pairs ``(si, ti)``: ``S[b][:, si][:, :, si]`` vs ``T[b][:, ti][:, :, ti]``
    (each (H, n, n)); heads are averaged first when the head counts differ.

    Args:
        student_attn: (B, Hs, Qs, Qs) student self-attention.
        teacher_attn: (B, Ht, Qt, Qt) teacher self-attention.
        pairs: B ``(student_idx, teacher_idx)``.
        distance: "kl" or "mse" (:func:`attention_distance`).
        eps: smoothing of "kl".

    Returns:
        Scalar tensor.
    """
    lengths = {len(si) for si, _ in pairs}
    if len(lengths) == 1:  # every image has as many pairs: one gather for the whole batch
        bsz = len(pairs)
        batch = torch.arange(bsz, device=student_attn.device)[:, None, None]
        si = torch.stack([si for si, _ in pairs]).to(student_attn.device)  # (B, n)
        ti = torch.stack([ti for _, ti in pairs]).to(teacher_attn.device)
        s = student_attn.permute(0, 2, 3, 1)[batch, si[:, :, None], si[:, None, :]]  # (B,n,n,H)
        t = teacher_attn.permute(0, 2, 3, 1)[batch.to(ti.device), ti[:, :, None], ti[:, None, :]]
        parts = [_match_heads(s.movedim(-1, 0), t.movedim(-1, 0))]
        return attention_distance(parts, student_attn, distance, eps)
    parts = []
    for b, (si, ti) in enumerate(pairs):
        si, ti = si.to(student_attn.device), ti.to(teacher_attn.device)
        s = student_attn[b][:, si][:, :, si]
        t = teacher_attn[b][:, ti][:, :, ti]
        parts.append(_match_heads(s, t))
    return attention_distance(parts, student_attn, distance, eps)


def _num_tokens(attn, shapes: Tensor | None) -> int:
    if isinstance(attn, DeformableAttentionWeights):
        if shapes is None:
            raise ValueError("deformable cross-attention needs the memory spatial_shapes")
        return int((shapes[:, 0] * shapes[:, 1]).sum())
    return attn.shape[-1]


def _flatten_pairs(pairs: Pairs) -> tuple[Tensor, Tensor, Tensor]:
    """B per-image ``(student_idx, teacher_idx)`` -> (N,) image, student and teacher indices."""
    image = torch.cat(
        [torch.full((len(si),), b, dtype=torch.int64) for b, (si, _) in enumerate(pairs)]
    )
    student = torch.cat([si.to("cpu", torch.int64) for si, _ in pairs])
    teacher = torch.cat([ti.to("cpu", torch.int64) for _, ti in pairs])
    return image, student, teacher


def _dense_rows(attn, image: Tensor, query: Tensor, shapes, half_pixel: bool) -> Tensor:
    """(H, N, S) dense cross-attention of the N queries ``query[k]`` of images ``image[k]``,
    all images in one call (one splat for deformable weights)."""
    if isinstance(attn, DeformableAttentionWeights):
        image = image.to(attn.attention_weights.device)
        query = query.to(attn.attention_weights.device)
        picked = DeformableAttentionWeights(
            attn.sampling_locations[image, query][None],  # (1, N, H, Lv, P, 2)
            attn.attention_weights[image, query][None],  # (1, N, H, Lv, P)
        )
        return deformable_weights_to_dense(picked, shapes, half_pixel)[0]
    return attn[image.to(attn.device), :, query.to(attn.device)].transpose(0, 1)


def _query_sum(attn, shapes, half_pixel: bool) -> Tensor:
    """(B, H, S): each image's cross-attention summed over all its queries."""
    if isinstance(attn, DeformableAttentionWeights):
        return deformable_weights_to_dense(attn, shapes, half_pixel).sum(2)
    return attn.sum(2)


def cross_attention_distillation(
    student_attn: Tensor | DeformableAttentionWeights,
    teacher_attn: Tensor | DeformableAttentionWeights,
    pairs: Pairs,
    student_shapes: Tensor | None = None,
    teacher_shapes: Tensor | None = None,
    distance: str = "kl",
    scope: str = "matched",
    half_pixel: bool = True,
    eps: float = 1e-6,
) -> Tensor:
    """Distance between cross-attention maps over the memory tokens.

    ``scope="matched"``: the maps of matched queries, one row per (pair, head);
    ``"all_queries"``: each image's map summed over all its queries, one row per (image, head),
    ignoring the matching (the public D3ETR port). Dense maps (B, H, Q, S) are compared
    directly; deformable weights are first splatted onto the flattened memory grid with
    :func:`deformable_weights_to_dense`. Heads are averaged first when the head counts differ.

    Args:
        student_attn: (B, Hs, Qs, S) or deformable weights of the student.
        teacher_attn: (B, Ht, Qt, S) or deformable weights of the teacher.
        pairs: B ``(student_idx, teacher_idx)``.
        student_shapes: (Lv, 2) student memory spatial shapes (deformable only).
        teacher_shapes: (Lv, 2) teacher memory spatial shapes (deformable only).
        distance: "kl" or "mse" (:func:`attention_distance`).
        scope: "matched" or "all_queries".
        half_pixel: splat convention (:func:`deformable_weights_to_dense`).
        eps: smoothing of "kl".

    Returns:
        Scalar tensor.

    Raises:
        ValueError: when student and teacher memories differ in size or layout.
    """
    if scope not in CROSS_SCOPES:
        raise ValueError(f"cross-attention scope must be one of {CROSS_SCOPES}, got {scope!r}")
    s_tokens = _num_tokens(student_attn, student_shapes)
    t_tokens = _num_tokens(teacher_attn, teacher_shapes)
    same_layout = s_tokens == t_tokens
    if same_layout and student_shapes is not None and teacher_shapes is not None:
        same_layout = torch.equal(student_shapes.cpu(), teacher_shapes.cpu())
    if not same_layout:
        raise ValueError(
            f"cross-attention distillation needs the same memory layout: the student attends "
            f"to S={s_tokens} tokens (spatial_shapes "
            f"{None if student_shapes is None else student_shapes.tolist()}), the teacher to "
            f"S={t_tokens} (spatial_shapes "
            f"{None if teacher_shapes is None else teacher_shapes.tolist()})"
        )
    anchor = (
        student_attn.attention_weights
        if isinstance(student_attn, DeformableAttentionWeights)
        else student_attn
    )
    if scope == "all_queries":
        s = _query_sum(student_attn, student_shapes, half_pixel).transpose(0, 1)  # (H, B, S)
        t = _query_sum(teacher_attn, teacher_shapes, half_pixel).transpose(0, 1)
    else:
        image, student_idx, teacher_idx = _flatten_pairs(pairs)
        s = _dense_rows(student_attn, image, student_idx, student_shapes, half_pixel)
        t = _dense_rows(teacher_attn, image, teacher_idx, teacher_shapes, half_pixel)
    return attention_distance([_match_heads(s, t)], anchor, distance, eps)


class AttentionDistillation(nn.Module):
    """Weighted self- and cross-attention distillation of one decoder layer pair.

    Args:
        self_attn_weight: Weight of the self-attention term (0 disables it).
        cross_attn_weight: Weight of the cross-attention term (0 disables it).
        distance: "kl" (default; per-query distributions, any map size) or "mse" (the public
            D3ETR port, with weights 1e4 / 1e3 there).
        cross_attn_scope: "matched" (default) or "all_queries" (the port).
        half_pixel: deformable splat convention (the port: False).
        eps: smoothing of "kl".
    """

    def __init__(
        self,
        *,
        self_attn_weight: float = 0.0,
        cross_attn_weight: float = 0.0,
        distance: str = "kl",
        cross_attn_scope: str = "matched",
        half_pixel: bool = True,
        eps: float = 1e-6,
    ):
        super().__init__()
        if distance not in DISTANCES:
            raise ValueError(f"attention distance must be one of {DISTANCES}, got {distance!r}")
        if cross_attn_scope not in CROSS_SCOPES:
            raise ValueError(
                f"cross_attn_scope must be one of {CROSS_SCOPES}, got {cross_attn_scope!r}"
            )
        self.self_attn_weight = self_attn_weight
        self.cross_attn_weight = cross_attn_weight
        self.distance = distance
        self.cross_attn_scope = cross_attn_scope
        self.half_pixel = half_pixel
        self.eps = eps

    @property
    def enabled(self) -> bool:
        return self.self_attn_weight > 0 or self.cross_attn_weight > 0

    def forward(
        self,
        student_self: Tensor | None,
        teacher_self: Tensor | None,
        student_cross,
        teacher_cross,
        pairs: Pairs,
        student_shapes: Tensor | None = None,
        teacher_shapes: Tensor | None = None,
    ) -> dict[str, Tensor]:
        """
        Args:
            student_self: (B, Hs, Qs, Qs) or None.
            teacher_self: (B, Ht, Qt, Qt) or None.
            student_cross: (B, Hs, Qs, S) or DeformableAttentionWeights, or None.
            teacher_cross: (B, Ht, Qt, S) or DeformableAttentionWeights, or None.
            pairs: B ``(student_idx, teacher_idx)``.
            student_shapes: (Lv, 2) student memory spatial shapes.
            teacher_shapes: (Lv, 2) teacher memory spatial shapes.

        Returns:
            dict with weighted ``self_attn`` and/or ``cross_attn`` (only the enabled ones).
        """
        losses = {}
        if self.self_attn_weight > 0:
            _require(student_self, teacher_self, "self")
            losses["self_attn"] = self.self_attn_weight * self_attention_distillation(
                student_self, teacher_self, pairs, self.distance, self.eps
            )
        if self.cross_attn_weight > 0:
            _require(student_cross, teacher_cross, "cross")
            losses["cross_attn"] = self.cross_attn_weight * cross_attention_distillation(
                student_cross,
                teacher_cross,
                pairs,
                student_shapes,
                teacher_shapes,
                self.distance,
                self.cross_attn_scope,
                self.half_pixel,
                self.eps,
            )
        return losses

    def extra_repr(self) -> str:
        return (
            f"self_attn_weight={self.self_attn_weight}, cross_attn_weight={self.cross_attn_weight}"
            f", distance={self.distance!r}, cross_attn_scope={self.cross_attn_scope!r}, "
            f"half_pixel={self.half_pixel}"
        )


def _require(student, teacher, kind: str) -> None:
    if student is None or teacher is None:
        missing = "student" if student is None else "teacher"
        raise ValueError(
            f"{kind}-attention distillation is enabled but the {missing} returned no {kind}-"
            "attention maps; run it with return_attention=True (the wrapper does this when a "
            "loss has needs_attention)"
        )
