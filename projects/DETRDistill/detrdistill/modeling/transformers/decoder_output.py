"""What every decoder returns before the prediction heads, and the recorder that assembles it
layer by layer."""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

__all__ = ["DecoderRawOutput", "DecoderRecorder", "stack_or_none"]


class DecoderRawOutput(NamedTuple):
    """What every decoder returns before the prediction heads.

    Attributes:
        hidden_states: (L, B, Q, D).
        references: (L, B, Q, 2|4) reference given to each layer as input, or None.
        self_attn: per layer (B, H, Q, Q) or None.
        cross_attn: per layer (B, H, Q, S) or DeformableAttentionWeights, or None.
    """

    hidden_states: Tensor
    references: Tensor | None
    self_attn: list | None
    cross_attn: list | None


class DecoderRecorder:
    """Collects what every decoder layer produces and assembles the :class:`DecoderRawOutput`.

    Args:
        return_attention: keep the per-layer attention weights (else they are dropped).
    """

    def __init__(self, return_attention: bool):
        self.return_attention = return_attention
        self.hidden: list[Tensor] = []
        self.references: list[Tensor] = []
        self.self_attn: list | None = [] if return_attention else None
        self.cross_attn: list | None = [] if return_attention else None

    def record(self, hidden: Tensor, self_weights=None, cross_weights=None, reference=None):
        """Add one layer: output (B, Q, D), its attention weights, its input reference."""
        self.hidden.append(hidden)
        if reference is not None:
            self.references.append(reference)
        if self.return_attention:
            self.self_attn.append(self_weights)
            self.cross_attn.append(cross_weights)

    def output(self, references: Tensor | None = None) -> DecoderRawOutput:
        """The stacked outputs; ``references`` overrides the recorded ones when given."""
        if references is None:
            references = stack_or_none(self.references)
        hidden = torch.stack(self.hidden)
        return DecoderRawOutput(hidden, references, self.self_attn, self.cross_attn)


def stack_or_none(tensors: list[Tensor]) -> Tensor | None:
    """``torch.stack(tensors)``, or None for an empty list."""
    return torch.stack(tensors) if tensors else None
