"""Two-stage query selection shared by two-stage Deformable DETR and DINO: one box proposal per
encoder token, and the top-scoring valid proposals."""

from __future__ import annotations

import torch
from torch import Tensor

from ..outputs import EncoderOutputs

__all__ = ["encoder_proposals", "select_proposals", "top_proposals"]


def encoder_proposals(encoder: EncoderOutputs) -> tuple[Tensor, Tensor]:
    """A box prior at every memory token: its cell centre in the valid (unpadded) extent of its
    level, with side ``0.05 * 2**level``.

    Args:
        encoder: the encoder outputs (``memory_mask``, ``spatial_shapes``,
            ``level_start_index``).

    Returns:
        proposals (B, S, 4) cxcywh in inverse-sigmoid space, +inf where invalid; valid (B, S, 1)
        bool, False on padding and where a coordinate leaves (0.01, 0.99).
    """
    mask = encoder.memory_mask
    batch = mask.shape[0]
    device = mask.device
    proposals = []
    for level, (height, width) in enumerate(encoder.spatial_shapes.tolist()):
        start = int(encoder.level_start_index[level])
        level_mask = mask[:, start : start + height * width].view(batch, height, width)
        valid_h = (~level_mask[:, :, 0]).sum(1).clamp(min=1)
        valid_w = (~level_mask[:, 0, :]).sum(1).clamp(min=1)
        ys, xs = torch.meshgrid(
            torch.arange(height, device=device, dtype=torch.float32),
            torch.arange(width, device=device, dtype=torch.float32),
            indexing="ij",
        )
        scale = torch.stack([valid_w, valid_h], -1).view(batch, 1, 1, 2).float()
        centers = (torch.stack([xs, ys], -1)[None] + 0.5) / scale
        sizes = torch.full_like(centers, 0.05 * 2.0**level)
        proposals.append(torch.cat([centers, sizes], -1).view(batch, -1, 4))
    proposals = torch.cat(proposals, 1)
    valid = ((proposals > 0.01) & (proposals < 0.99)).all(-1, keepdim=True) & ~mask[..., None]
    proposals = torch.log(proposals / (1 - proposals)).masked_fill(~valid, float("inf"))
    return proposals, valid


def top_proposals(scores: Tensor, valid: Tensor, k: int) -> Tensor:
    """Indices of the ``k`` best-scoring valid tokens of every image.

    Args:
        scores: (B, S) ranking score of every token.
        valid: (B, S, 1) or (B, S) bool from :func:`encoder_proposals`; invalid tokens rank last.
        k: how many to keep (at most S).

    Returns:
        (B, k) long indices, best first.
    """
    ranking = scores.masked_fill(~valid.view(scores.shape), float("-inf"))
    return ranking.topk(k, dim=1).indices


def select_proposals(model, encoder: EncoderOutputs) -> tuple[Tensor, Tensor]:
    """Two-stage query selection of a model (two-stage Deformable DETR, DINO): each valid memory
    token, through ``model.enc_output`` and ``model.enc_output_norm``, is scored by
    ``model.enc_class_embed`` and refines its :func:`encoder_proposals` box with
    ``model.enc_bbox_embed``; the ``model.num_queries`` best by their best class score are kept.

    Args:
        model: a two-stage detector with the four modules above and ``num_queries``.
        encoder: its encoder outputs.

    Returns:
        logits (B, k, K) and boxes (B, k, 4) cxcywh in [0, 1] of the selected proposals, with
        their gradients (for the encoder loss), best first; k = min(num_queries, S).
    """
    proposals, valid = encoder_proposals(encoder)
    memory = model.enc_output_norm(model.enc_output(encoder.memory.masked_fill(~valid, 0.0)))
    logits = model.enc_class_embed(memory)
    coords = model.enc_bbox_embed(memory) + proposals.to(memory.dtype)
    k = min(model.num_queries, memory.shape[1])
    top = top_proposals(logits.max(-1).values, valid, k)
    top_logits = torch.gather(logits, 1, top[..., None].expand(-1, -1, logits.shape[-1]))
    top_boxes = torch.gather(coords, 1, top[..., None].expand(-1, -1, 4)).sigmoid()
    return top_logits, top_boxes
