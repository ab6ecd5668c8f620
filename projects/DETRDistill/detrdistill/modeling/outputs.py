"""Structured outputs of the DETR-family detectors.

Distillation reads everything it needs from these containers, so every detector fills the same
fields. Shapes use B = images, Q = queries, D = hidden size, K = classification outputs
(``num_classes`` for sigmoid/focal variants, ``num_classes + 1`` for softmax DETR), L = decoder
layers, H = attention heads, S = flattened memory tokens over all levels, Lv = feature levels.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any

import torch
from torch import Tensor

__all__ = ["QueryGroup", "DecoderOutputs", "EncoderOutputs", "DETROutput"]


@dataclass
class QueryGroup:
    """Initial decoder queries of one group.

    Attributes:
        content: (B, Q, D) content queries (the decoder's ``tgt``).
        pos: (B, Q, D) positional queries, or None for variants that derive them from
            ``reference`` inside the decoder (DAB-DETR).
        reference: (B, Q, 2) reference points or (B, Q, 4) anchor boxes, normalised to [0, 1]
            (after sigmoid), or None for variants without them (DETR).
    """

    content: Tensor
    pos: Tensor | None = None
    reference: Tensor | None = None

    @property
    def num_queries(self) -> int:
        return self.content.shape[1]

    def detach(self) -> QueryGroup:
        return QueryGroup(*(None if t is None else t.detach() for t in self._tensors()))

    def _tensors(self):
        return (self.content, self.pos, self.reference)

    @staticmethod
    def concat(first: QueryGroup, second: QueryGroup) -> QueryGroup:
        """Concatenate two groups along the query axis; a field must be present in both or none."""
        merged = []
        for name in ("content", "pos", "reference"):
            a, b = getattr(first, name), getattr(second, name)
            if (a is None) != (b is None):
                raise ValueError(
                    f"QueryGroup.{name} is given for one query group but not the other; "
                    "an extra query group must provide the same fields as the model's own queries"
                )
            if a is not None and a.shape[-1] != b.shape[-1]:
                raise ValueError(
                    f"QueryGroup.{name} has last dimension {b.shape[-1]} in the extra group but "
                    f"{a.shape[-1]} in the model's own queries"
                )
            merged.append(None if a is None else torch.cat([a, b.expand(a.shape[0], -1, -1)], 1))
        return QueryGroup(*merged)


def _split_queries(value: Any, num_first: int, dim: int):
    if value is None:
        return None, None
    if isinstance(value, Tensor):
        return value.narrow(dim, 0, num_first), value.narrow(
            dim, num_first, value.shape[dim] - num_first
        )
    if isinstance(value, list):
        pairs = [_split_queries(v, num_first, dim) for v in value]
        return [p[0] for p in pairs], [p[1] for p in pairs]
    raise TypeError(f"cannot split a {type(value).__name__} along the query axis")


@dataclass
class DecoderOutputs:
    """Per-layer outputs of one query group.

    Attributes:
        pred_logits: (L, B, Q, K) classification logits of every decoder layer.
        pred_boxes: (L, B, Q, 4) boxes, normalised (cx, cy, w, h) in [0, 1].
        hidden_states: (L, B, Q, D) decoder output embeddings (after the decoder's final norm
            where the variant has one).
        references: (L, B, Q, 2|4) reference points / anchors given as input to each layer,
            or None (DETR).
        self_attn: per layer (B, H, Q, Q) self-attention probabilities, only when attention was
            requested.
        cross_attn: per layer (B, H, Q, S) dense cross-attention probabilities, or
            :class:`~detrdistill.layers.DeformableAttentionWeights` for deformable decoders;
            only when attention was requested.
        enc_logits: (B, Q, K) two-stage proposal logits (Deformable DETR two-stage), else None.
        enc_boxes: (B, Q, 4) two-stage proposal boxes, else None.
    """

    pred_logits: Tensor
    pred_boxes: Tensor
    hidden_states: Tensor
    references: Tensor | None = None
    self_attn: list | None = None
    cross_attn: list | None = None
    enc_logits: Tensor | None = None
    enc_boxes: Tensor | None = None

    @property
    def num_layers(self) -> int:
        return self.pred_logits.shape[0]

    def layer(self, index: int) -> dict[str, Tensor]:
        """Logits (B, Q, K) and boxes (B, Q, 4) of one layer, as a dict."""
        return {"pred_logits": self.pred_logits[index], "pred_boxes": self.pred_boxes[index]}

    def split_queries(self, num_first: int) -> tuple[DecoderOutputs, DecoderOutputs]:
        """Split every per-query field into the first ``num_first`` queries and the rest.

        Self-attention maps are cut to the diagonal blocks (each group attending to itself).
        """
        kwargs_a, kwargs_b = {}, {}
        for name, dim in (
            ("pred_logits", 2),
            ("pred_boxes", 2),
            ("hidden_states", 2),
            ("references", 2),
            ("cross_attn", None),
        ):
            value = getattr(self, name)
            if name == "cross_attn" and value is not None:
                kwargs_a[name], kwargs_b[name] = _split_cross_attention(value, num_first)
                continue
            kwargs_a[name], kwargs_b[name] = _split_queries(value, num_first, dim)
        if self.self_attn is not None:
            kwargs_a["self_attn"] = [w[:, :, :num_first, :num_first] for w in self.self_attn]
            kwargs_b["self_attn"] = [w[:, :, num_first:, num_first:] for w in self.self_attn]
        else:
            kwargs_a["self_attn"] = kwargs_b["self_attn"] = None
        # Two-stage proposals belong to the model's own queries only.
        return (
            DecoderOutputs(**kwargs_a, enc_logits=self.enc_logits, enc_boxes=self.enc_boxes),
            DecoderOutputs(**kwargs_b),
        )


def _split_cross_attention(per_layer: list, num_first: int):
    first, second = [], []
    for weights in per_layer:
        if isinstance(weights, Tensor):  # (B, H, Q, S)
            a, b = _split_queries(weights, num_first, 2)
        else:  # deformable: fields of shape (B, Q, ...)
            parts = {
                f.name: _split_queries(getattr(weights, f.name), num_first, 1)
                for f in fields(weights)
            }
            a = replace(weights, **{k: v[0] for k, v in parts.items()})
            b = replace(weights, **{k: v[1] for k, v in parts.items()})
        first.append(a)
        second.append(b)
    return first, second


@dataclass
class EncoderOutputs:
    """Transformer inputs and encoder memory.

    Attributes:
        features: per level (B, D, Hl, Wl) transformer input features (after input projection).
        masks: per level (B, Hl, Wl) bool padding masks, True on padding.
        pos: per level (B, D, Hl, Wl) positional encodings.
        memory: (B, S, D) encoder output, levels flattened and concatenated.
        memory_pos: (B, S, D) ``pos`` flattened like ``memory`` (the encoder's and the
            decoder's positional input, built once).
        memory_mask: (B, S) bool, True on padding.
        spatial_shapes: (Lv, 2) long, (Hl, Wl) of each level.
        level_start_index: (Lv,) long, offset of each level in S.
        valid_ratios: (B, Lv, 2) fraction (w, h) of each level that is not padding.
    """

    features: list[Tensor]
    masks: list[Tensor]
    pos: list[Tensor]
    memory: Tensor
    memory_pos: Tensor
    memory_mask: Tensor
    spatial_shapes: Tensor
    level_start_index: Tensor
    valid_ratios: Tensor


@dataclass
class DETROutput:
    """Everything one forward pass of a DETR-family detector produces.

    Attributes:
        decoder: outputs of the model's own queries.
        queries: the model's own initial queries (what a teacher hands to a student).
        encoder: transformer inputs and memory.
        extra: outputs of an extra query group given from outside, or None.
        image_sizes: (h, w) of each image before padding; boxes are normalised by these.
    """

    decoder: DecoderOutputs
    queries: QueryGroup
    encoder: EncoderOutputs
    extra: DecoderOutputs | None
    image_sizes: list[tuple[int, int]]
