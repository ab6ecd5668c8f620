"""Value transforms used by the conversion tables (class rows, column order)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from detectron2.data.datasets.builtin_meta import COCO_CATEGORIES
from torch import Tensor

from .rules import ConversionError, Transform

__all__ = [
    "COCO_CATEGORY_IDS",
    "CocoClassRows",
    "ObjectnessRows",
    "ReorderInputBlocks",
]

#: The 80 COCO category ids (1..90 with gaps), ascending: detectron2's contiguous class i is
#: category ``COCO_CATEGORY_IDS[i]``.
COCO_CATEGORY_IDS: tuple[int, ...] = tuple(
    sorted(c["id"] for c in COCO_CATEGORIES if c.get("isthing", 1))
)
assert len(COCO_CATEGORY_IDS) == 80, "detectron2's COCO category list changed"

#: DETR's no-object logit is the row after the largest category id (91 rows 0..90, then 91).
_DETR_NO_OBJECT_ROW = 91


@dataclass(frozen=True)
class CocoClassRows(Transform):
    """Class-head rows indexed by COCO category id -> detectron2's contiguous 80 classes.

    Official heads have one row per category id 0..90 (91 rows; 92 with DETR's no-object row
    91). The rows of the 80 real ids are kept in ascending order, then DETR's no-object row.
    A head that already has the target's row count (a detrex checkpoint) is kept as it is.

    Attributes:
        with_no_object: the head ends with a no-object row (softmax DETR).
        id_rows: rows of a table indexed by category id, if not 91 (92 with no-object): DINO's
            denoising label embedding has ``dn_labelbook_size + 1`` = 92 rows, the last unused.
    """

    with_no_object: bool = False
    id_rows: int | None = None

    def __call__(self, value: Tensor, target_shape: torch.Size, key: str) -> tuple[Tensor, str]:
        rows = target_shape[0]
        if value.shape[0] == rows:
            return value, ""
        index = list(COCO_CATEGORY_IDS) + ([_DETR_NO_OBJECT_ROW] if self.with_no_object else [])
        by_id = self.id_rows or _DETR_NO_OBJECT_ROW + (1 if self.with_no_object else 0)
        if value.shape[0] != by_id:
            raise ConversionError(
                f"{key}: {value.shape[0]} class rows; expected {by_id} (indexed by COCO "
                f"category id) or {rows} (the model's)"
            )
        if len(index) != rows:
            raise ConversionError(
                f"{key}: the 80 COCO categories give {len(index)} rows but the model built by "
                f"the config has {rows}; convert with model.num_classes=80"
            )
        note = f"kept the rows of the 80 COCO category ids of {value.shape[0]}" + (
            " and the no-object row 91" if self.with_no_object else ""
        )
        return value[index].clone(), note


@dataclass(frozen=True)
class ObjectnessRows(Transform):
    """Two-stage Deformable DETR's proposal head: its row 0 is the class-agnostic objectness
    score (trained with every target labelled 0) that ranks the encoder proposals. It is copied
    to every row, so that this project's ranking by the maximum over classes selects exactly the
    proposals the original ranks first."""

    def __call__(self, value: Tensor, target_shape: torch.Size, key: str) -> tuple[Tensor, str]:
        rows = target_shape[0]
        new = value[:1].expand(rows, *value.shape[1:]).clone()
        return new, f"row 0 (proposal objectness) copied to all {rows} rows"


@dataclass(frozen=True)
class ReorderInputBlocks(Transform):
    """Reorder equal blocks of input columns of a Linear weight (e.g. the sine embeddings of
    (x, y, w, h) fed to two-stage Deformable DETR's ``pos_trans``, which this project orders
    (y, x, w, h)).

    Attributes:
        order: new position -> old block index.
        description: what the blocks are, for the report.
    """

    order: tuple[int, ...] = (1, 0, 2, 3)
    description: str = "input blocks (x, y, w, h) reordered to (y, x, w, h)"

    def __call__(self, value: Tensor, target_shape: torch.Size, key: str) -> tuple[Tensor, str]:
        blocks = len(self.order)
        if value.dim() != 2 or value.shape[1] % blocks:
            raise ConversionError(
                f"{key}: shape {tuple(value.shape)} has no {blocks} equal input blocks"
            )
        chunks = value.chunk(blocks, dim=1)
        return torch.cat([chunks[i] for i in self.order], dim=1), self.description
