"""Small multi-layer perceptron used for box heads and query projections."""

from torch import Tensor, nn
from torch.nn import functional as F

__all__ = ["MLP"]


class MLP(nn.Module):
    """A stack of ``num_layers`` Linear layers with ReLU in between (none after the last).

    Submodules are named ``layers.{i}`` (same names as DETR checkpoints).

    Args:
        input_dim: Input feature size.
        hidden_dim: Size of every hidden layer.
        output_dim: Output feature size.
        num_layers: Number of Linear layers (>= 1).
    """

    def __init__(self, input_dim: int, hidden_dim: int, output_dim: int, num_layers: int):
        super().__init__()
        if num_layers < 1:
            raise ValueError(f"num_layers must be >= 1, got {num_layers}")
        self.num_layers = num_layers
        dims_in = [input_dim] + [hidden_dim] * (num_layers - 1)
        dims_out = [hidden_dim] * (num_layers - 1) + [output_dim]
        self.layers = nn.ModuleList(nn.Linear(i, o) for i, o in zip(dims_in, dims_out))

    def forward(self, x: Tensor) -> Tensor:
        """
        Args:
            x: Tensor of shape (..., input_dim).

        Returns:
            Tensor of shape (..., output_dim).
        """
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i < self.num_layers - 1:
                x = F.relu(x)
        return x
