"""Pieces shared by the transformer encoders and decoders of all variants."""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor, nn

__all__ = ["FFN", "DecoderRawOutput", "DecoderRecorder", "stack_layers", "get_activation"]


def get_activation(name: str) -> nn.Module:
    """ "relu", "gelu" or "prelu" as a module."""
    activations = {"relu": nn.ReLU, "gelu": nn.GELU, "prelu": nn.PReLU}
    if name not in activations:
        raise ValueError(f"activation {name!r} is not supported; choose from {sorted(activations)}")
    return activations[name]()


class FFN(nn.Module):
    """Position-wise feed-forward block: Linear -> activation -> dropout -> Linear (no residual)."""

    def __init__(self, dim: int, hidden_dim: int, dropout: float = 0.0, activation: str = "relu"):
        super().__init__()
        self.linear1 = nn.Linear(dim, hidden_dim)
        self.activation = get_activation(activation)
        self.dropout = nn.Dropout(dropout)
        self.linear2 = nn.Linear(hidden_dim, dim)

    def forward(self, x: Tensor) -> Tensor:
        """(..., D) -> (..., D)."""
        return self.linear2(self.dropout(self.activation(self.linear1(x))))


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


def stack_layers(layer_factory, num_layers: int) -> nn.ModuleList:
    """``num_layers`` independently initialised layers from a zero-argument factory."""
    return nn.ModuleList(layer_factory() for _ in range(num_layers))


def expand_batch(tensor: Tensor | None, batch_size: int) -> Tensor | None:
    """(1 or B, ...) -> (B, ...)."""
    if tensor is None:
        return None
    return tensor.expand(batch_size, *tensor.shape[1:]) if tensor.shape[0] == 1 else tensor


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
    return torch.stack(tensors) if tensors else None
