"""What the encoder and decoder layers of every variant are built from: the activation by name,
the feed-forward block and a stack of independent layers."""

from __future__ import annotations

from torch import Tensor, nn

__all__ = ["FFN", "get_activation", "stack_layers"]


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


def stack_layers(layer_factory, num_layers: int) -> nn.ModuleList:
    """``num_layers`` independently initialised layers from a zero-argument factory."""
    return nn.ModuleList(layer_factory() for _ in range(num_layers))
