"""Convert published DETR-family checkpoints into this project's detectors.

Table-driven: :mod:`.rulesets` holds one :class:`~.rules.RuleSet` per (variant, source layout)
for DETR, Conditional DETR, DAB-DETR, Deformable DETR and DINO from the official repositories
and from detrex; :mod:`.rules` applies a table, checks every key and shape against the model a
detector config builds, and reports what was mapped, dropped and created. Command line::

    python -m detrdistill.convert --config teachers/deformable_detr_r50.py \\
        r50_deformable_detr-checkpoint.pth detrdistill://deformable_detr_r50_coco.pth

See ``docs/converting_teachers.md``.
"""

from .converter import (
    VARIANT_OF_CLASS,
    convert_checkpoint,
    convert_state_dict,
    detect_layout,
    load_config,
    read_state_dict,
    save_converted,
    target_layout,
    target_shapes,
    variant_of_config,
)
from .rules import ConversionError, ConversionReport, RuleSet
from .rulesets import RULE_SETS, SOURCES, VARIANTS, get_rule_set
from .transforms import COCO_CATEGORY_IDS

__all__ = [
    "COCO_CATEGORY_IDS",
    "RULE_SETS",
    "SOURCES",
    "VARIANTS",
    "VARIANT_OF_CLASS",
    "ConversionError",
    "ConversionReport",
    "RuleSet",
    "convert_checkpoint",
    "convert_state_dict",
    "detect_layout",
    "get_rule_set",
    "load_config",
    "read_state_dict",
    "save_converted",
    "target_layout",
    "target_shapes",
    "variant_of_config",
]
