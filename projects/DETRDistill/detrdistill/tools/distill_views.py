"""What :mod:`~detrdistill.tools.visualize_distillation` computes and draws.

Kept apart from the command line so that it can be reused from a notebook: run a
:class:`~detrdistill.distill.DistillationDetector` on one batch with attention maps, match a
student decoder layer to its teacher layer, turn cross-attention (dense or deformable) into
per-query maps on one feature level, and draw the two figures.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from matplotlib.figure import Figure
from scipy.ndimage import gaussian_filter
from torch import Tensor, nn
from torch.nn import functional as F

from ..distill.matching import TeacherStudentMatcher, class_probabilities
from ..layers import DeformableAttentionWeights, box_cxcywh_to_xyxy, deformable_weights_to_dense
from ..modeling.outputs import DETROutput, EncoderOutputs
from .drawing import (
    STUDENT_COLOR,
    TEACHER_COLOR,
    draw_box,
    draw_link,
    draw_title,
    grid_figure,
    image_figure,
    overlay_heatmap,
    show_image,
)

__all__ = [
    "MatchedPair",
    "attention_heatmap",
    "draw_attention",
    "draw_matched_pairs",
    "draw_matches",
    "find_matcher",
    "level_map",
    "match_layer",
    "query_cross_attention",
    "run_teacher_and_student",
    "sampling_points_in_image",
    "splat_points",
]


@torch.no_grad()
def run_teacher_and_student(model: nn.Module, batch: list[dict]) -> tuple[DETROutput, DETROutput]:
    """Teacher and student outputs of one batch, both with attention maps, through the same
    ``DistillationDetector.run_models`` as training (the query groups the config's losses read,
    e.g. the teacher's adapted queries as ``groups["teacher_queries"]``; no training groups).
    """
    return model.run_models(batch, None, return_attention=True)


def find_matcher(model: nn.Module) -> tuple[TeacherStudentMatcher, str]:
    """The teacher-student matcher of the config's losses (logits / adaptive), else a default.

    Returns:
        ``(matcher, source)`` where ``source`` names where it came from.
    """
    for name, loss in model.distill_losses.items():
        matcher = getattr(loss, "matcher", None)
        if isinstance(matcher, TeacherStudentMatcher):
            return matcher, f"model.losses.{name}.matcher"
    return TeacherStudentMatcher(), "default TeacherStudentMatcher()"


@dataclass
class MatchedPair:
    """One teacher-student matched pair of one image, in the resized image frame (pixels)."""

    teacher_query: int
    student_query: int
    teacher_class: int
    teacher_score: float
    student_class: int
    student_score: float
    teacher_box: list[float]
    student_box: list[float]


def _scores(logits: Tensor, class_type: str) -> tuple[Tensor, Tensor]:
    return class_probabilities(logits.float(), class_type).max(-1)


@torch.no_grad()
def match_layer(
    model: nn.Module,
    teacher: DETROutput,
    student: DETROutput,
    student_layer: int,
    teacher_layer: int,
    matcher: TeacherStudentMatcher,
) -> list[MatchedPair]:
    """Match the first image's student predictions of one layer to the teacher's.

    All teacher predictions take part (one joint match, as D3ETR's adaptive matching and
    DETRDistill's ``mode="joint"``).

    Returns:
        the pairs, best teacher score first.
    """
    t_logits = teacher.decoder.pred_logits[teacher_layer][:1]
    t_boxes = teacher.decoder.pred_boxes[teacher_layer][:1]
    s_logits = student.decoder.pred_logits[student_layer][:1]
    s_boxes = student.decoder.pred_boxes[student_layer][:1]
    t_probs = class_probabilities(t_logits.float(), model.teacher.loss_class_type)
    s_idx, t_idx = matcher(s_logits, s_boxes, t_probs, t_boxes, model.student.loss_class_type)[0]
    t_score, t_label = t_probs[0].max(-1)
    s_score, s_label = _scores(s_logits[0], model.student.loss_class_type)
    height, width = student.image_sizes[0]
    scale = torch.tensor([width, height, width, height], dtype=torch.float32)
    t_xyxy = box_cxcywh_to_xyxy(t_boxes[0].float().cpu()) * scale
    s_xyxy = box_cxcywh_to_xyxy(s_boxes[0].float().cpu()) * scale
    pairs = [
        MatchedPair(
            teacher_query=int(t),
            student_query=int(s),
            teacher_class=int(t_label[t]),
            teacher_score=float(t_score[t]),
            student_class=int(s_label[s]),
            student_score=float(s_score[s]),
            teacher_box=[round(v, 2) for v in t_xyxy[t].tolist()],
            student_box=[round(v, 2) for v in s_xyxy[s].tolist()],
        )
        for s, t in zip(s_idx.tolist(), t_idx.tolist())
    ]
    return sorted(pairs, key=lambda p: -p.teacher_score)


def query_cross_attention(layer_attention, queries: list[int], spatial_shapes: Tensor) -> Tensor:
    """Head-averaged cross-attention of some queries of the first image over the memory.

    Args:
        layer_attention: one decoder layer's ``cross_attn`` entry: dense (B, H, Q, S) or
            :class:`~detrdistill.layers.DeformableAttentionWeights` (turned dense with
            :func:`~detrdistill.layers.deformable_weights_to_dense`, only for ``queries``).
        queries: query indices.
        spatial_shapes: (Lv, 2) level sizes of the memory.

    Returns:
        Tensor of shape (len(queries), S), float32 on the CPU.
    """
    index = torch.as_tensor(queries, dtype=torch.long)
    if isinstance(layer_attention, DeformableAttentionWeights):
        locations = layer_attention.sampling_locations[:1]
        weights = layer_attention.attention_weights[:1]
        sliced = DeformableAttentionWeights(
            locations[:, index.to(locations.device)], weights[:, index.to(weights.device)]
        )
        dense = deformable_weights_to_dense(sliced, spatial_shapes)
    elif isinstance(layer_attention, Tensor):
        dense = layer_attention[:1, :, index.to(layer_attention.device)]
    else:
        raise TypeError(f"unexpected cross-attention entry {type(layer_attention).__name__}")
    return dense[0].float().mean(0).cpu()


def level_map(weights: Tensor, encoder: EncoderOutputs, level: int) -> np.ndarray:
    """One feature level of a flattened (S,) attention map, padding cropped off (first image).

    Returns:
        (valid Hl, valid Wl) float array.
    """
    height, width = (int(v) for v in encoder.spatial_shapes[level].tolist())
    start = int(encoder.level_start_index[level])
    grid = weights[start : start + height * width].view(height, width)
    pad = encoder.masks[level][0].cpu()
    rows = max(int((~pad[:, 0]).sum()), 1)
    cols = max(int((~pad[0, :]).sum()), 1)
    return grid[:rows, :cols].numpy()


def sampling_points_in_image(
    weights: DeformableAttentionWeights,
    query: int,
    valid_ratios: Tensor,
    image_size: tuple[int, int],
) -> tuple[np.ndarray, np.ndarray]:
    """Where one query of the first image samples, in pixels of the (unpadded) image.

    Sampling locations are normalised to each padded feature level, whose valid part is
    ``valid_ratios`` of it (the decoder scales its reference points by these ratios); dividing
    by them maps the valid part onto the image.

    Args:
        weights: sampling locations (B, Q, H, Lv, P, 2) and attention weights (B, Q, H, Lv, P).
        query: query index.
        valid_ratios: (B, Lv, 2) valid ``(w, h)`` fraction of each level.
        image_size: ``(h, w)`` of the image the boxes refer to.

    Returns:
        ``(points, mass)``: (H * Lv * P, 2) ``(x, y)`` pixel coordinates (pixel ``(i, j)``
        spans ``[j, j + 1) x [i, i + 1)``) and (H * Lv * P,) attention weights divided by the
        number of heads (they sum to 1: the head-averaged attention).
    """
    height, width = image_size
    locations = weights.sampling_locations[0, query].float().cpu()  # (H, Lv, P, 2)
    attention = weights.attention_weights[0, query].float().cpu()  # (H, Lv, P)
    ratios = valid_ratios[0].float().cpu()[None, :, None, :]  # (1, Lv, 1, 2)
    scale = torch.tensor([width, height], dtype=torch.float32)
    points = locations / ratios * scale
    mass = attention / attention.shape[0]
    return points.reshape(-1, 2).numpy(), mass.reshape(-1).numpy()


def splat_points(points: np.ndarray, mass: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Spread each point's mass bilinearly over the 4 pixels around it.

    Args:
        points: (N, 2) ``(x, y)`` pixel coordinates; pixel ``(i, j)`` has its centre at
            ``(j + 0.5, i + 0.5)``.
        mass: (N,) weights.
        size: ``(h, w)`` of the map.

    Returns:
        (h, w) float array; the share of a point that falls outside the map is dropped.
    """
    height, width = size
    heat = np.zeros((height, width), dtype=np.float64)
    x = np.asarray(points[:, 0], dtype=np.float64) - 0.5
    y = np.asarray(points[:, 1], dtype=np.float64) - 0.5
    x0, y0 = np.floor(x), np.floor(y)
    fx, fy = x - x0, y - y0
    for dx, wx in ((0, 1 - fx), (1, fx)):
        for dy, wy in ((0, 1 - fy), (1, fy)):
            cols, rows = (x0 + dx).astype(np.int64), (y0 + dy).astype(np.int64)
            inside = (cols >= 0) & (cols < width) & (rows >= 0) & (rows < height)
            np.add.at(heat, (rows[inside], cols[inside]), (mass * wx * wy)[inside])
    return heat


def _dense_heatmap(
    attention: Tensor, query: int, encoder: EncoderOutputs, image_size: tuple[int, int]
) -> np.ndarray:
    """Dense (B, H, Q, S) attention of one query: each level's valid part stretched over the
    image (bilinear) as a density, i.e. keeping the level's share of the attention."""
    height, width = image_size
    weights = attention[0, :, query].float().mean(0).cpu()  # (S,)
    heat = np.zeros((height, width), dtype=np.float64)
    for level in range(len(encoder.spatial_shapes)):
        grid = torch.from_numpy(level_map(weights, encoder, level)).float()
        cells = grid.shape[0] * grid.shape[1]
        stretched = F.interpolate(
            grid[None, None], size=(height, width), mode="bilinear", align_corners=False
        )[0, 0]
        heat += stretched.double().numpy() * cells / (height * width)
    return heat


def attention_heatmap(
    layer_attention,
    query: int,
    encoder: EncoderOutputs,
    image_size: tuple[int, int],
    blur: float = 1.0,
) -> np.ndarray:
    """One query's head-averaged cross-attention as a map over the image (first image).

    Deformable attention: every sampling point of every head and level, weighted by its
    attention, splatted (:func:`splat_points`) at its place in the image
    (:func:`sampling_points_in_image`), then blurred with a Gaussian of ``blur`` pixels so that
    single points stay visible. Dense attention (B, H, Q, S): every level's map stretched over
    the image and summed.

    Args:
        layer_attention: one decoder layer's ``cross_attn`` entry.
        query: query index.
        encoder: the same forward pass's encoder outputs (levels, padding, valid ratios).
        image_size: ``(h, w)`` of the unpadded image.
        blur: Gaussian sigma in pixels (0: none).

    Returns:
        (h, w) float array, summing to (at most) 1 before blurring.
    """
    if isinstance(layer_attention, DeformableAttentionWeights):
        points, mass = sampling_points_in_image(
            layer_attention, query, encoder.valid_ratios, image_size
        )
        heat = splat_points(points, mass, image_size)
    elif isinstance(layer_attention, Tensor):
        heat = _dense_heatmap(layer_attention, query, encoder, image_size)
    else:
        raise TypeError(f"unexpected cross-attention entry {type(layer_attention).__name__}")
    return gaussian_filter(heat, blur, mode="constant") if blur > 0 else heat


def _label(names: list[str], index: int, score: float) -> str:
    name = names[index] if 0 <= index < len(names) else f"class {index}"
    return f"{name} {score:.2f}"


def _centre(box: list[float]) -> tuple[float, float]:
    return (box[0] + box[2]) / 2, (box[1] + box[3]) / 2


def draw_matched_pairs(ax, pairs: list[MatchedPair], names: list[str]) -> None:
    """On an image axes: teacher boxes (blue, solid), student boxes (orange, dashed) and a line
    between the centres of each matched pair."""
    for pair in pairs:
        draw_box(
            ax,
            pair.teacher_box,
            TEACHER_COLOR,
            "T " + _label(names, pair.teacher_class, pair.teacher_score),
        )
        draw_box(
            ax,
            pair.student_box,
            STUDENT_COLOR,
            "S " + _label(names, pair.student_class, pair.student_score),
            linestyle="--",
            label_below=True,
        )
        draw_link(ax, _centre(pair.teacher_box), _centre(pair.student_box))


def draw_matches(
    image: np.ndarray, pairs: list[MatchedPair], names: list[str], title: str
) -> Figure:
    """A figure of ``image`` with :func:`draw_matched_pairs` and a title."""
    fig, ax = image_figure(image)
    draw_matched_pairs(ax, pairs, names)
    draw_title(ax, title)
    return fig


def draw_attention(
    image: np.ndarray,
    pairs: list[MatchedPair],
    teacher_maps: list[np.ndarray],
    student_maps: list[np.ndarray],
    names: list[str],
    layers: tuple[int, int],
    level: int,
) -> Figure:
    """One row per pair: the teacher query's and the student query's cross-attention maps.

    Args:
        image: (h, w, 3) RGB in the resized frame the boxes refer to.
        pairs: the matched pairs shown.
        teacher_maps, student_maps: per pair, a 2-D map covering the whole image.
        names: class names.
        layers: ``(student layer, teacher layer)``.
        level: feature level of the maps (for the titles).
    """
    height, width = image.shape[:2]
    fig, axes = grid_figure(len(pairs), 2)
    student_layer, teacher_layer = layers
    for row, pair in enumerate(pairs):
        panels = (
            (
                teacher_maps[row],
                pair.teacher_box,
                TEACHER_COLOR,
                f"teacher L{teacher_layer} q{pair.teacher_query}: "
                + _label(names, pair.teacher_class, pair.teacher_score),
            ),
            (
                student_maps[row],
                pair.student_box,
                STUDENT_COLOR,
                f"student L{student_layer} q{pair.student_query}: "
                + _label(names, pair.student_class, pair.student_score),
            ),
        )
        for col, (heat, box, color, text) in enumerate(panels):
            ax = axes[row, col]
            show_image(ax, image)
            overlay_heatmap(ax, heat, width, height)
            draw_box(ax, box, color)
            ax.set_title(text, fontsize=9)
    fig.suptitle(f"cross-attention (mean over heads), feature level {level}", fontsize=10)
    return fig
