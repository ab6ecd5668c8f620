"""Transformer encoders and decoders of the DETR variants."""

from .common import FFN, DecoderRawOutput
from .conditional_transformer import ConditionalDecoder, DabDecoder
from .deformable_transformer import DeformableDecoder, DeformableEncoder
from .detr_transformer import DetrDecoder, DetrEncoder
from .dino_transformer import DinoDecoder

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
