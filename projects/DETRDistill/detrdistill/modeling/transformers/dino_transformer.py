"""DINO's decoder: deformable decoder layers driven by 4-D anchor boxes, look-forward-twice.

The encoder is Deformable DETR's (:class:`~.deformable_transformer.DeformableEncoder`); the layers
are Deformable DETR's decoder layers. What DINO changes is how a layer's queries are made and how
its boxes are supervised:

* the positional query of every layer is ``ref_point_head(sine(anchor))`` (as in DAB-DETR), the
  anchor being scaled into the padded frame of the first level, as the official code does;
* each layer refines the anchor with the box head on its (un-normalised) output; the next layer
  gets the refined anchor detached, but the box *predicted* by the next layer is an offset to the
  refined anchor with its gradient kept ("look forward twice"): layer ``i``'s box loss also
  trains layer ``i - 1``'s refinement.
"""

from __future__ import annotations

from torch import Tensor, nn

from ...layers import MLP, coordinate_sine_embedding, inverse_sigmoid
from .decoder_output import DecoderRawOutput, DecoderRecorder
from .deformable_transformer import DeformableDecoderLayer, scale_reference_to_levels
from .layer_blocks import stack_layers

__all__ = ["DinoDecoder"]


class DinoDecoder(nn.Module):
    """DINO decoder (see module docstring).

    Args:
        dim, num_heads, ffn_dim, num_layers, dropout, activation, num_levels, num_points: as
            :class:`~.deformable_transformer.DeformableDecoder` (DINO: ffn 2048, dropout 0).
        look_forward_twice: predict layer ``i``'s box from layer ``i - 1``'s refined anchor with
            its gradient (DINO); False detaches it as in Deformable DETR's box refinement.
        inverse_sigmoid_eps: clamp of the inverse sigmoid of the anchors (official DINO: 1e-3).
    """

    def __init__(
        self,
        *,
        dim: int = 256,
        num_heads: int = 8,
        ffn_dim: int = 2048,
        num_layers: int = 6,
        dropout: float = 0.0,
        activation: str = "relu",
        num_levels: int = 4,
        num_points: int = 4,
        look_forward_twice: bool = True,
        inverse_sigmoid_eps: float = 1e-3,
    ):
        super().__init__()
        self.layers = stack_layers(
            lambda: DeformableDecoderLayer(
                dim, num_heads, ffn_dim, dropout, activation, num_levels, num_points
            ),
            num_layers,
        )
        self.ref_point_head = MLP(2 * dim, dim, dim, 2)
        self.norm = nn.LayerNorm(dim)
        self.dim = dim
        self.num_layers = num_layers
        self.look_forward_twice = look_forward_twice
        self.inverse_sigmoid_eps = inverse_sigmoid_eps

    def positional_queries(self, reference: Tensor, valid_ratios: Tensor) -> Tensor:
        """Positional queries of anchors, as every layer computes them.

        Args:
            reference: (B, Q, 4) anchors (cx, cy, w, h) in [0, 1].
            valid_ratios: (B, Lv, 2) valid fraction of every level.

        Returns:
            (B, Q, D).
        """
        return self._positional_queries(scale_reference_to_levels(reference, valid_ratios))

    def _positional_queries(self, scaled: Tensor) -> Tensor:
        """(B, Q, D) positional queries of anchors already scaled to the levels (B, Q, Lv, 4)."""
        return self.ref_point_head(coordinate_sine_embedding(scaled[:, :, 0], self.dim // 2))

    def forward(
        self,
        *,
        content: Tensor,
        pos: Tensor | None,
        reference: Tensor,
        memory: Tensor,
        memory_mask: Tensor,
        spatial_shapes: Tensor,
        level_start_index: Tensor,
        valid_ratios: Tensor,
        self_attn_mask: Tensor | None = None,
        return_attention: bool = False,
        box_refiner: nn.ModuleList | None = None,
        **unused,
    ) -> DecoderRawOutput:
        """
        Args:
            content: (B, Q, D) content queries; pos must be None (derived from the anchors).
            reference: (B, Q, 4) anchors in [0, 1].
            memory: (B, S, D); memory_mask (B, S) bool; spatial_shapes (Lv, 2);
                level_start_index (Lv,); valid_ratios (B, Lv, 2).
            self_attn_mask: (Q, Q) bool, True = blocked.
            box_refiner: per-layer box heads; without them the anchors stay fixed.

        Returns:
            :class:`DecoderRawOutput` whose ``hidden_states`` are normalised by ``norm`` and
            whose ``references[i]`` is the anchor layer ``i``'s box is an offset to: the input
            anchor for layer 0, then the previous layer's refined anchor (with its gradient under
            look-forward-twice; equal in value to layer ``i``'s detached input anchor).
        """
        if reference is None or reference.shape[-1] != 4:
            raise ValueError("DinoDecoder needs QueryGroup.reference of shape (B, Q, 4)")
        if pos is not None:
            raise ValueError(
                "DinoDecoder derives positional queries from the anchors; QueryGroup.pos must "
                "be None"
            )
        recorder, tgt = DecoderRecorder(return_attention), content
        box_reference = reference
        for index, layer in enumerate(self.layers):
            scaled = scale_reference_to_levels(reference, valid_ratios)
            tgt, self_w, cross_w = layer(
                tgt,
                self._positional_queries(scaled),
                scaled,
                memory,
                memory_mask,
                spatial_shapes,
                level_start_index,
                self_attn_mask,
                return_attention,
            )
            recorder.record(self.norm(tgt), self_w, cross_w, box_reference)
            if box_refiner is not None:
                delta = box_refiner[index](tgt)
                refined = (delta + inverse_sigmoid(reference, self.inverse_sigmoid_eps)).sigmoid()
                reference = refined.detach()
                box_reference = refined if self.look_forward_twice else reference
            else:
                box_reference = reference
        return recorder.output()
