"""Structured outputs of the DETR-family detectors.

Distillation reads everything it needs from these containers, so every detector fills the same
fields. Shapes use B = images, Q = queries, D = hidden size, K = classification outputs
(``num_classes`` for sigmoid/focal variants, ``num_classes + 1`` for softmax DETR), L = decoder
layers, H = attention heads, S = flattened memory tokens over all levels, Lv = feature levels.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
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
        sees_own_queries: as an extra group decoded next to a model's own queries (see
            :func:`~detrdistill.modeling.meta_arch.query_group_mask`): whether its queries may
            attend to the model's own queries (DN-DETR's denoising queries do); the model's own
            queries never attend to an extra group.
        num_blocks: the group's Q queries are this many equal consecutive blocks that do not
            attend to each other (DN-DETR's denoising groups); 1 = one block.
    """

    content: Tensor
    pos: Tensor | None = None
    reference: Tensor | None = None
    sees_own_queries: bool = False
    num_blocks: int = 1

    @property
    def num_queries(self) -> int:
        return self.content.shape[1]

    @property
    def block_sizes(self) -> list[int]:
        """Sizes of the group's blocks (see ``num_blocks``)."""
        if self.num_blocks < 1 or self.num_queries % self.num_blocks:
            raise ValueError(
                f"a query group of {self.num_queries} queries cannot form {self.num_blocks} "
                "equal blocks (QueryGroup.num_blocks)"
            )
        return [self.num_queries // self.num_blocks] * self.num_blocks

    def detach(self) -> QueryGroup:
        detached = (None if t is None else t.detach() for t in self._tensors())
        return QueryGroup(*detached, self.sees_own_queries, self.num_blocks)

    def _tensors(self):
        return (self.content, self.pos, self.reference)

    @staticmethod
    def concat(own: QueryGroup, groups: dict[str, QueryGroup]) -> QueryGroup:
        """A model's own queries followed by named extra groups, along the query axis.

        Every group must give the same fields as ``own`` (present or None, same last
        dimension); a group's batch axis may be 1 (expanded to ``own``'s).
        """
        merged = []
        for field_name in ("content", "pos", "reference"):
            first = getattr(own, field_name)
            parts = [first]
            for name, group in groups.items():
                value = getattr(group, field_name)
                if (first is None) != (value is None):
                    given = "gives" if value is not None else "lacks"
                    raise ValueError(
                        f"query group {name!r} {given} QueryGroup.{field_name} but the model's "
                        "own queries do not; a query group must provide the same fields as the "
                        "model's own queries"
                    )
                if first is not None:
                    if value.shape[-1] != first.shape[-1]:
                        raise ValueError(
                            f"QueryGroup.{field_name} has last dimension {value.shape[-1]} in "
                            f"query group {name!r} but {first.shape[-1]} in the model's own "
                            "queries"
                        )
                    parts.append(value.expand(first.shape[0], -1, -1))
            merged.append(None if first is None else torch.cat(parts, 1))
        return QueryGroup(*merged)


def _split_queries(value: Any, sizes: list[int], dim: int) -> list:
    if value is None:
        return [None] * len(sizes)
    if isinstance(value, Tensor):
        return list(value.split(sizes, dim))
    if isinstance(value, list):
        per_item = [_split_queries(v, sizes, dim) for v in value]
        return [[item[part] for item in per_item] for part in range(len(sizes))]
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

    def split_queries(self, sizes: list[int]) -> list[DecoderOutputs]:
        """Split every per-query field into consecutive parts of ``sizes`` queries.

        Self-attention maps are cut to the diagonal blocks (each part attending to itself).
        Two-stage proposals (``enc_logits``/``enc_boxes``) stay with the first part (the model's
        own queries).
        """
        if sum(sizes) != self.pred_logits.shape[2]:
            raise ValueError(f"query sizes {sizes} do not add up to {self.pred_logits.shape[2]}")
        parts: list[dict] = [{} for _ in sizes]
        for name in ("pred_logits", "pred_boxes", "hidden_states", "references"):
            for part, value in zip(parts, _split_queries(getattr(self, name), sizes, 2)):
                part[name] = value
        cross = _split_cross_attention(self.cross_attn, sizes)
        starts = [sum(sizes[:i]) for i in range(len(sizes))]
        for index, (part, start, size) in enumerate(zip(parts, starts, sizes)):
            part["cross_attn"] = cross[index]
            part["self_attn"] = (
                None
                if self.self_attn is None
                else [w[:, :, start : start + size, start : start + size] for w in self.self_attn]
            )
        parts[0].update(enc_logits=self.enc_logits, enc_boxes=self.enc_boxes)
        return [DecoderOutputs(**part) for part in parts]


def _split_cross_attention(per_layer: list | None, sizes: list[int]) -> list:
    if per_layer is None:
        return [None] * len(sizes)
    split = [[] for _ in sizes]
    for weights in per_layer:
        if isinstance(weights, Tensor):  # (B, H, Q, S)
            pieces = _split_queries(weights, sizes, 2)
        else:  # deformable: fields of shape (B, Q, ...)
            by_field = {
                f.name: _split_queries(getattr(weights, f.name), sizes, 1) for f in fields(weights)
            }
            pieces = [
                replace(weights, **{k: v[part] for k, v in by_field.items()})
                for part in range(len(sizes))
            ]
        for target, piece in zip(split, pieces):
            target.append(piece)
    return split


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
        image_sizes: (h, w) of each image before padding; boxes are normalised by these.
        groups: name -> outputs of each extra query group decoded in the same pass (e.g.
            ``"teacher_queries"``, ``"denoising"``); empty without groups.
        group_queries: name -> the initial queries of each extra group, as given to ``run``.
    """

    decoder: DecoderOutputs
    queries: QueryGroup
    encoder: EncoderOutputs
    image_sizes: list[tuple[int, int]]
    groups: dict[str, DecoderOutputs] = field(default_factory=dict)
    group_queries: dict[str, QueryGroup] = field(default_factory=dict)
