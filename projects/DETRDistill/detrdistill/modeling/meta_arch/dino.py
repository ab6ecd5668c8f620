"""DINO (Zhang et al., 2023): DETR with improved denoising anchor boxes.

On the shared base: Deformable DETR's multi-scale deformable encoder, two-stage proposals with
mixed query selection, and the :class:`~detrdistill.modeling.transformers.DinoDecoder`
(anchor-driven positional queries, look-forward-twice box refinement).
"""

from __future__ import annotations

import math

from detectron2.modeling import META_ARCH_REGISTRY
from torch import Tensor, nn

from ...layers import MLP
from ..outputs import EncoderOutputs, QueryGroup
from ..transformers import DinoDecoder
from .base import DETRBase
from .proposals import select_proposals

__all__ = ["DINO"]


@META_ARCH_REGISTRY.register()
class DINO(DETRBase):
    """DINO with sigmoid focal classification.

    Mixed query selection: every encoder token proposes a box (``enc_class_embed`` /
    ``enc_bbox_embed`` on ``enc_output_norm(enc_output(memory))``, an offset to the token's box
    prior); the top-Q proposals by their best class score become the anchors (detached), while
    the content queries are a learned table (``tgt_embed``), not the selected features. The
    selected proposals are supervised as the ``*_enc`` losses with the real class labels.

    Contrastive denoising: ``denoising=`` a
    :class:`~detrdistill.modeling.denoising.DenoisingQueries` with ``contrastive=True`` (the
    shared denoising group kind): in training, noised positive and negative copies of the
    ground truth are decoded next to the matching queries (``loss_*_dn``).
    """

    positions_from_reference = True
    supports_denoising = True

    def __init__(self, *, num_queries: int = 900, hidden_dim: int = 256, **kwargs):
        """
        Args:
            num_queries, hidden_dim: see :class:`DETRBase`; the decoder must be a
                :class:`~detrdistill.modeling.transformers.DinoDecoder`.
            kwargs: everything else :class:`DETRBase` takes. Defaults: focal loss, box
                refinement, class and box heads shared by all layers (``share_heads=True``, the
                official DINO; detrex's checkpoints have one head per layer: False), 300
                detections per image, no denoising (the configs set ``denoising``).
        """
        kwargs.setdefault("loss_class_type", "focal")
        kwargs.setdefault("refine_boxes", True)
        kwargs.setdefault("share_heads", True)
        kwargs.setdefault("select_box_nums_for_evaluation", 300)
        if kwargs["loss_class_type"] != "focal":
            raise ValueError(
                f"DINO classifies with a sigmoid focal loss; model.loss_class_type must be "
                f"'focal', got {kwargs['loss_class_type']!r}"
            )
        super().__init__(num_queries=num_queries, hidden_dim=hidden_dim, **kwargs)
        if not isinstance(self.decoder, DinoDecoder):
            raise TypeError(
                f"DINO needs a DinoDecoder (model.decoder), got {type(self.decoder).__name__}"
            )
        # boxes are offsets to the anchors, clamped as the decoder clamps them
        self.inverse_sigmoid_eps = self.decoder.inverse_sigmoid_eps
        num_logits = self.class_embed[0].out_features
        self.tgt_embed = nn.Embedding(num_queries, hidden_dim)
        self.enc_output = nn.Linear(hidden_dim, hidden_dim)
        self.enc_output_norm = nn.LayerNorm(hidden_dim)
        self.enc_class_embed = nn.Linear(hidden_dim, num_logits)
        self.enc_bbox_embed = MLP(hidden_dim, hidden_dim, 4, 3)
        nn.init.normal_(self.tgt_embed.weight)
        nn.init.constant_(self.enc_class_embed.bias, -math.log((1 - 0.01) / 0.01))
        nn.init.zeros_(self.enc_bbox_embed.layers[-1].weight)
        nn.init.zeros_(self.enc_bbox_embed.layers[-1].bias)

    def initial_queries(self, encoder: EncoderOutputs):
        """Mixed query selection.

        Returns:
            QueryGroup(content (B, Q, D) = ``tgt_embed``, pos None, reference (B, Q, 4) the
            selected proposal boxes, detached) and the selected proposals
            ``(logits (B, Q, K), boxes (B, Q, 4))`` with their gradients, for the encoder loss.
            Q is ``num_queries`` or the number of memory tokens if that is smaller.
        """
        top_logits, top_boxes = select_proposals(self, encoder)
        batch, k = top_boxes.shape[:2]
        content = self.tgt_embed.weight[:k][None].expand(batch, -1, -1)
        return QueryGroup(content, None, top_boxes.detach()), (top_logits, top_boxes)

    def positional_queries(self, queries: QueryGroup, encoder: EncoderOutputs) -> Tensor:
        """The first decoder layer's positional queries of ``queries`` (from its anchors)."""
        return self.decoder.positional_queries(queries.reference, encoder.valid_ratios)
