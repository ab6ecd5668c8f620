"""Box utilities for DETR-style detectors.

Boxes are ``(cx, cy, w, h)`` ("cxcywh") or ``(x0, y0, x1, y1)`` ("xyxy"); both are usually
normalised to [0, 1] by the image size. The heavy lifting is done by :mod:`torchvision.ops`.
"""

import torch
from torch import Tensor
from torchvision.ops import box_convert
from torchvision.ops import box_iou as _tv_box_iou
from torchvision.ops import generalized_box_iou as _tv_generalized_box_iou

__all__ = [
    "box_cxcywh_to_xyxy",
    "box_xyxy_to_cxcywh",
    "box_iou",
    "generalized_box_iou",
    "inverse_sigmoid",
]


def box_cxcywh_to_xyxy(boxes: Tensor) -> Tensor:
    """Convert boxes from ``(cx, cy, w, h)`` to ``(x0, y0, x1, y1)``.

    Args:
        boxes: Tensor of shape (..., 4).

    Returns:
        Tensor of shape (..., 4).
    """
    return box_convert(boxes, in_fmt="cxcywh", out_fmt="xyxy")


def box_xyxy_to_cxcywh(boxes: Tensor) -> Tensor:
    """Convert boxes from ``(x0, y0, x1, y1)`` to ``(cx, cy, w, h)``.

    Args:
        boxes: Tensor of shape (..., 4).

    Returns:
        Tensor of shape (..., 4).
    """
    return box_convert(boxes, in_fmt="xyxy", out_fmt="cxcywh")


def box_iou(boxes1: Tensor, boxes2: Tensor) -> Tensor:
    """Pairwise IoU of two sets of xyxy boxes.

    Args:
        boxes1: Tensor of shape (N, 4), xyxy.
        boxes2: Tensor of shape (M, 4), xyxy.

    Returns:
        Tensor of shape (N, M).
    """
    return _tv_box_iou(boxes1, boxes2)


def generalized_box_iou(boxes1: Tensor, boxes2: Tensor) -> Tensor:
    """Pairwise generalized IoU (Rezatofighi et al., 2019) of two sets of xyxy boxes.

    Args:
        boxes1: Tensor of shape (N, 4), xyxy with x1 >= x0 and y1 >= y0.
        boxes2: Tensor of shape (M, 4), xyxy.

    Returns:
        Tensor of shape (N, M) with values in [-1, 1].
    """
    return _tv_generalized_box_iou(boxes1, boxes2)


def inverse_sigmoid(x: Tensor, eps: float = 1e-5) -> Tensor:
    """Numerically safe logit, the inverse of :func:`torch.sigmoid`.

    Args:
        x: Tensor of any shape with values in [0, 1].
        eps: Clamp for numerator and denominator so that 0 and 1 map to finite values.

    Returns:
        Tensor of the same shape: ``log(x / (1 - x))``.
    """
    x = x.clamp(min=0, max=1)
    return torch.log(x.clamp(min=eps) / (1 - x).clamp(min=eps))
