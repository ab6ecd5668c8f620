"""Transformer encoders and decoders of the DETR variants."""

from .conditional_transformer import ConditionalDecoder, DabDecoder
from .decoder_output import DecoderRawOutput
from .deformable_transformer import DeformableDecoder, DeformableEncoder
from .detr_transformer import DetrDecoder, DetrEncoder
from .dino_transformer import DinoDecoder
from .layer_blocks import FFN

__all__ = [
    "FFN",
    "DecoderRawOutput",
    "DetrEncoder",
    "DetrDecoder",
    "DeformableEncoder",
    "DeformableDecoder",
    "ConditionalDecoder",
    "DabDecoder",
    "DinoDecoder",
]
