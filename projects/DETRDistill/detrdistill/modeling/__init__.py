"""Detectors of the DETR family and their building blocks."""

from . import meta_arch, transformers
from .backbone import build_resnet_backbone, resnet_output_shapes
from .denoising import DENOISING, DenoisingGroup, DenoisingQueries
from .meta_arch import DABDETR, DETR, DINO, ConditionalDETR, DeformableDETR, DETRBase
from .neck import InputProjection
from .outputs import DecoderOutputs, DETROutput, EncoderOutputs, QueryGroup
