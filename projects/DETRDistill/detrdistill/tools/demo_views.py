"""The pictures of ``python -m detrdistill.demo``: what they show and how they are drawn.

* :func:`pick_images`: validation images where the teacher is right (every object found, no
  false detection), the least cluttered first.
* :func:`draw_detections_grid`: ground truth and each model's detections on those images, each
  panel titled with how many objects the model found.
* :func:`student_view` + :func:`draw_matches_figure`: the teacher-student pairs each distilled
  student's own matcher forms on the last decoder layer.
* :func:`draw_attention_figure`: for the pairs with the highest teacher scores, the teacher
  query's and each student query's cross-attention over the image
  (:func:`~detrdistill.tools.distill_views.attention_heatmap`), teacher beside students.
* :func:`plot_ap_curves`: AP of the students against the iteration, the teacher's as a line.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from detectron2.data.detection_utils import read_image
from detectron2.structures import BoxMode, Instances
from matplotlib import colormaps
from matplotlib.cm import ScalarMappable
from matplotlib.colors import PowerNorm
from matplotlib.figure import Figure
from torch import nn
from torchvision.ops import box_iou

from .distill_views import (
    MatchedPair,
    attention_heatmap,
    find_matcher,
    match_layer,
    run_teacher_and_student,
)
from .drawing import (
    STUDENT_COLOR,
    TEACHER_COLOR,
    draw_box,
    draw_link,
    draw_tag,
    grid_figure,
    muted,
    overlay_heatmap,
    save_figure,
    show_image,
)
from .visualize_detections import draw_instances

__all__ = [
    "HEATMAP_BLUR",
    "HEATMAP_CMAP",
    "HEATMAP_GAMMA",
    "SCORE_THRESHOLD",
    "Correctness",
    "StudentView",
    "draw_attention_figure",
    "draw_detections_grid",
    "draw_matches_figure",
    "network_image",
    "pick_images",
    "plot_ap_curves",
    "score_detections",
    "student_view",
]

SCORE_THRESHOLD = 0.3  # detections and matched pairs drawn
HEATMAP_CMAP = "jet"
HEATMAP_GAMMA = 0.5  # colour of the attention maps ~ sqrt(share of the maximum)
HEATMAP_BLUR = 0.02  # Gaussian sigma of the attention maps, as a share of the shorter side
_PAIR_COLORS = colormaps["tab10"].colors


@dataclass(frozen=True)
class Correctness:
    """How a detector's confident detections on one image compare with its ground truth.

    A detection is right when it has the class of a not yet matched ground-truth box and IoU
    >= 0.5 with it (detections taken best score first, each matching its best such box).
    """

    objects: int
    detections: int
    right: int
    overlap: float  # largest IoU between two ground-truth boxes (clutter)

    @property
    def all_right(self) -> bool:
        return self.objects > 0 and self.right == self.objects == self.detections


def _ground_truth(record: dict) -> tuple[torch.Tensor, torch.Tensor]:
    objects = record["annotations"]
    boxes = [BoxMode.convert(o["bbox"], o["bbox_mode"], BoxMode.XYXY_ABS) for o in objects]
    return (
        torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4),
        torch.tensor([o["category_id"] for o in objects], dtype=torch.long),
    )


def confident(instances: Instances, threshold: float = SCORE_THRESHOLD) -> Instances:
    """The detections scoring at least ``threshold``."""
    return instances[instances.scores >= threshold]


def score_detections(instances: Instances, record: dict) -> Correctness:
    """Compare detections (``pred_boxes`` absolute XYXY, ``scores``, ``pred_classes``) with the
    ground truth of a dataset dict; see :class:`Correctness`."""
    gt_boxes, gt_labels = _ground_truth(record)
    overlap = 0.0
    if len(gt_boxes) > 1:
        iou = box_iou(gt_boxes, gt_boxes)
        iou.fill_diagonal_(0.0)
        overlap = float(iou.max())
    right = 0
    if len(instances) and len(gt_boxes):
        iou = box_iou(instances.pred_boxes.tensor.float(), gt_boxes)  # (D, G)
        taken = torch.zeros(len(gt_boxes), dtype=torch.bool)
        for index in instances.scores.argsort(descending=True).tolist():
            fits = (iou[index] >= 0.5) & (gt_labels == instances.pred_classes[index]) & ~taken
            if fits.any():
                taken[torch.where(fits, iou[index], -1.0).argmax()] = True
                right += 1
    return Correctness(len(gt_boxes), len(instances), right, overlap)


@torch.no_grad()
def pick_images(
    teacher: nn.Module, inputs: list[dict], records: dict[str, dict], count: int = 2
) -> list[dict]:
    """The ``count`` validation inputs best suited to show what the teacher knows.

    Ranked by: the teacher is all right (:class:`Correctness`), the image has 3-5 objects, the
    ground-truth boxes overlap least, then more objects.

    Args:
        teacher: the teacher detector (eval mode).
        inputs: test-mapper inputs (``file_name``, ``image``, ...).
        records: dataset dicts by ``file_name``.
        count: how many to return.
    """

    def rank(item):
        result = score_detections(
            confident(teacher([item])[0]["instances"].to("cpu")), records[item["file_name"]]
        )
        return (result.all_right, 3 <= result.objects <= 5, -result.overlap, result.objects)

    return sorted(inputs, key=rank, reverse=True)[:count]


def _found_text(result: Correctness) -> str:
    false = result.detections - result.right
    return f"found {result.right}/{result.objects}" + (f", {false} false" if false else "")


@torch.no_grad()
def draw_detections_grid(
    detectors: dict[str, nn.Module],
    items: list[dict],
    records: dict[str, dict],
    names: list[str],
    path: str,
) -> str:
    """One row per image: the ground truth, then each detector's detections scoring >=
    :data:`SCORE_THRESHOLD`, titled with the objects it found (:class:`Correctness`). The
    figure's title says whether the first detector (the teacher) is right on every image.

    Args:
        detectors: name -> detector in eval mode, drawn in this order.
        items: test-mapper inputs of the images.
        records: dataset dicts by ``file_name``.
        names: class names.
        path: PNG to write.
    """
    fig, axes = grid_figure(len(items), 1 + len(detectors), panel_inches=3.2)
    fig.subplots_adjust(left=0.01, right=0.99, top=0.86, bottom=0.01, wspace=0.04, hspace=0.2)
    first_all_right = True  # the first detector (the teacher) on every image
    for row, item in enumerate(items):
        record = records[item["file_name"]]
        image = read_image(item["file_name"], format="RGB")
        show_image(axes[row, 0], image)
        boxes, labels = _ground_truth(record)
        for box, label in zip(boxes.tolist(), labels.tolist()):
            draw_box(axes[row, 0], box, "#303030", names[label])
        axes[row, 0].set_title(f"ground truth: {len(boxes)} objects", fontsize=10)
        for col, (name, model) in enumerate(detectors.items(), start=1):
            instances = confident(model([item])[0]["instances"].to("cpu"))
            result = score_detections(instances, record)
            first_all_right &= col > 1 or result.all_right
            show_image(axes[row, col], image)
            draw_instances(axes[row, col], instances, names)
            axes[row, col].set_title(f"{name}: {_found_text(result)}", fontsize=10)
    first = next(iter(detectors))
    where = f"the {first} is right" if first_all_right else f"the {first} is most right"
    fig.suptitle(
        f"Validation images where {where}: detections with score >= {SCORE_THRESHOLD} (a "
        "detection is right with the class and IoU >= 0.5)",
        fontsize=11,
    )
    return save_figure(fig, path)


@dataclass
class StudentView:
    """A distilled student and its teacher on one image (the resized network input).

    Attributes:
        name: the student's name in the demo.
        matcher: where the matcher comes from and its costs.
        layers: ``(student layer, teacher layer)`` matched (the student's last decoder layer).
        pairs: matched pairs whose teacher score is >= :data:`SCORE_THRESHOLD`, best first.
        teacher_heat / student_heat: cross-attention maps over the image by query index, for
            the first pairs (see :func:`student_view`).
        attention: what the maps show: "deformable" (sampling points weighted by attention) or
            "dense" (attention over the feature-map tokens).
    """

    name: str
    matcher: str
    layers: tuple[int, int]
    pairs: list[MatchedPair]
    attention: str = "deformable"
    teacher_heat: dict[int, np.ndarray] = field(default_factory=dict)
    student_heat: dict[int, np.ndarray] = field(default_factory=dict)


def _teacher_layer(model: nn.Module, student_layer: int, teacher_layers: int) -> int:
    for s, t in model.layer_pairs:
        if s == student_layer:
            return t
    return teacher_layers - 1


@torch.no_grad()
def student_view(name: str, model: nn.Module, item: dict, heat_pairs: int = 6) -> StudentView:
    """Match a distillation model's student to its teacher on one image, with attention maps.

    Args:
        name: the student's name.
        model: a :class:`~detrdistill.distill.DistillationDetector` in eval mode.
        item: one test-mapper input.
        heat_pairs: for this many best pairs, the teacher and student queries' cross-attention
            maps are computed (last layers of the match).
    """
    teacher_out, student_out = run_teacher_and_student(model, [item])
    matcher, source = find_matcher(model)
    student_layer = student_out.decoder.num_layers - 1
    teacher_layer = _teacher_layer(model, student_layer, teacher_out.decoder.num_layers)
    pairs = match_layer(model, teacher_out, student_out, student_layer, teacher_layer, matcher)
    pairs = [p for p in pairs if p.teacher_score >= SCORE_THRESHOLD]
    dense = isinstance(student_out.decoder.cross_attn[student_layer], torch.Tensor)
    view = StudentView(
        name,
        source,
        (student_layer, teacher_layer),
        pairs,
        attention="dense" if dense else "deformable",
    )
    size = tuple(student_out.image_sizes[0])
    blur = HEATMAP_BLUR * min(size)
    for pair in pairs[:heat_pairs]:
        view.teacher_heat[pair.teacher_query] = attention_heatmap(
            teacher_out.decoder.cross_attn[teacher_layer],
            pair.teacher_query,
            teacher_out.encoder,
            size,
            blur,
        )
        view.student_heat[pair.student_query] = attention_heatmap(
            student_out.decoder.cross_attn[student_layer],
            pair.student_query,
            student_out.encoder,
            size,
            blur,
        )
    return view


def network_image(item: dict, input_format: str, size: tuple[int, int]) -> np.ndarray:
    """The resized test input of ``item`` as (h, w, 3) uint8 RGB, cropped to ``size``."""
    image = item["image"].permute(1, 2, 0).numpy()
    if input_format == "BGR":
        image = image[:, :, ::-1]
    height, width = size
    return np.ascontiguousarray(image[:height, :width]).astype(np.uint8)


def _label(names: list[str], index: int, score: float) -> str:
    name = names[index] if 0 <= index < len(names) else f"class {index}"
    return f"{name} {score:.2f}"


def _iou(a: list[float], b: list[float]) -> float:
    return float(box_iou(torch.tensor([a]), torch.tensor([b]))[0, 0])


def _centre(box: list[float]) -> tuple[float, float]:
    return (box[0] + box[2]) / 2, (box[1] + box[3]) / 2


def draw_matches_figure(
    image: np.ndarray, views: list[StudentView], names: list[str], path: str
) -> str:
    """One panel per student: each matched pair in its own colour, the teacher's box solid and
    the student's dashed, numbered; under it the list of pairs (classes, scores, IoU).

    Args:
        image: (h, w, 3) RGB network input the boxes refer to.
        views: the students, from :func:`student_view`.
        names: class names.
        path: PNG to write.
    """
    rows = min(max((len(v.pairs) for v in views), default=1), 8)
    text_inches = 0.2 * rows + 0.1
    fig = Figure(figsize=(4.6 * len(views), 5.2 + text_inches), dpi=100)
    grid = fig.add_gridspec(
        2, len(views), height_ratios=(4.0, text_inches), hspace=0.04, wspace=0.08
    )
    fig.subplots_adjust(left=0.02, right=0.98, top=0.86, bottom=0.01)
    for col, view in enumerate(views):
        ax = fig.add_subplot(grid[0, col])
        show_image(ax, image)
        lines = []
        for number, pair in enumerate(view.pairs, start=1):
            color = _PAIR_COLORS[(number - 1) % len(_PAIR_COLORS)]
            draw_box(ax, pair.teacher_box, color, linewidth=2.0)
            draw_box(ax, pair.student_box, color, linestyle="--", linewidth=1.6)
            draw_link(ax, _centre(pair.teacher_box), _centre(pair.student_box), color=color)
            draw_tag(ax, pair.teacher_box[0], pair.teacher_box[1], str(number), color)
            lines.append(
                (
                    f"{number}  T {_label(names, pair.teacher_class, pair.teacher_score):<14}"
                    f" S {_label(names, pair.student_class, pair.student_score):<14}"
                    f" IoU {_iou(pair.teacher_box, pair.student_box):.2f}",
                    color,
                )
            )
        ax.set_title(
            f"teacher (solid) - {view.name} student (dashed)\n"
            f"{len(view.pairs)} pairs, teacher score >= {SCORE_THRESHOLD}",
            fontsize=10,
        )
        text = fig.add_subplot(grid[1, col])
        text.set_axis_off()
        for row, (line, color) in enumerate(lines[:8]):
            text.text(
                0.0, 1.0 - (row + 0.25) / rows, line, color=color, fontsize=8.5, family="monospace",
                va="top", transform=text.transAxes, fontweight="bold",
            )  # fmt: skip
    fig.suptitle(
        "Teacher-student pairs of each student's distillation matcher (last decoder layer)",
        fontsize=11,
    )
    return save_figure(fig, path)


def attention_rows(views: list[StudentView], count: int = 4) -> list[int]:
    """Teacher queries to draw: matched (with attention maps) for every student, best teacher
    score first, at most ``count``."""
    first = views[0]
    rows = []
    for pair in first.pairs:
        if all(pair.teacher_query in {p.teacher_query for p in v.pairs} for v in views) and all(
            pair.teacher_query in v.teacher_heat for v in views
        ):
            rows.append(pair.teacher_query)
    return rows[:count]


def attention_title(views: list[StudentView]) -> str:
    """The attention figure's title: the layers matched and what the maps show."""
    student_layer, teacher_layer = views[0].layers
    shown = {
        "deformable": "deformable sampling points weighted by attention",
        "dense": "attention over the feature-map tokens",
    }[views[0].attention]
    return (
        f"Cross-attention of matched queries (teacher layer {teacher_layer}, students' layer "
        f"{student_layer})\n{shown}, mean over heads; teacher box blue, student box orange dashed"
    )


def draw_attention_figure(
    image: np.ndarray, views: list[StudentView], names: list[str], path: str, count: int = 4
) -> str:
    """Cross-attention of matched pairs: one row per teacher query (the best teacher scores),
    the teacher's map first, then each student's matched query's map.

    Each map is scaled to its own maximum and drawn with :data:`HEATMAP_CMAP` over the image in
    grey; the teacher's box (blue, solid) is on every panel of the row, each student's box
    (orange, dashed) on its own panel.

    Args:
        image: (h, w, 3) RGB network input the boxes refer to.
        views: the students, from :func:`student_view` (the same teacher and image).
        names: class names.
        path: PNG to write.
        count: rows at most.
    """
    queries = attention_rows(views, count)
    if not queries:
        raise ValueError(
            "no teacher prediction with score >= "
            f"{SCORE_THRESHOLD} is matched to every student: nothing to draw"
        )
    height, width = image.shape[:2]
    background = muted(image)
    fig, axes = grid_figure(len(queries), 1 + len(views), panel_inches=3.0)
    fig.subplots_adjust(left=0.07, right=0.98, top=0.9, bottom=0.07, wspace=0.05, hspace=0.22)
    for row, teacher_query in enumerate(queries):
        pairs = [next(p for p in v.pairs if p.teacher_query == teacher_query) for v in views]
        teacher_box = pairs[0].teacher_box
        panels = [
            (
                views[0].teacher_heat[teacher_query],
                None,
                f"teacher q{teacher_query}: "
                + _label(names, pairs[0].teacher_class, pairs[0].teacher_score),
            )
        ]
        for view, pair in zip(views, pairs):
            panels.append(
                (
                    view.student_heat[pair.student_query],
                    pair.student_box,
                    f"{view.name} q{pair.student_query}: "
                    + _label(names, pair.student_class, pair.student_score),
                )
            )
        for col, (heat, student_box, title) in enumerate(panels):
            ax = axes[row, col]
            show_image(ax, background)
            overlay_heatmap(
                ax, heat, width, height, alpha=0.8, cmap=HEATMAP_CMAP, gamma=HEATMAP_GAMMA
            )
            draw_box(ax, teacher_box, TEACHER_COLOR, linewidth=1.8)
            if student_box is not None:
                draw_box(ax, student_box, STUDENT_COLOR, linestyle="--", linewidth=1.8)
            ax.set_title(title, fontsize=9)
        place = axes[row, 0].get_position()
        fig.text(
            place.x0 - 0.01, (place.y0 + place.y1) / 2, f"pair {row + 1}",
            rotation=90, va="center", ha="right", fontsize=10,
        )  # fmt: skip
    fig.suptitle(
        attention_title(views),
        fontsize=10,
    )
    bar = fig.add_axes((0.3, 0.04, 0.4, 0.012))
    scale = ScalarMappable(norm=PowerNorm(HEATMAP_GAMMA, 0.0, 1.0), cmap=HEATMAP_CMAP)
    fig.colorbar(scale, cax=bar, orientation="horizontal", ticks=(0, 0.1, 0.25, 0.5, 1))
    bar.set_title("attention, share of the panel's maximum", fontsize=8)
    bar.tick_params(labelsize=7)
    return save_figure(fig, path)


def plot_ap_curves(histories: dict[str, list[dict]], teacher_ap: float, path: str) -> str:
    """AP against iteration for each student, with the teacher's AP as a dashed line."""
    fig, axes = grid_figure(1, 1, panel_inches=5.0)
    ax = axes[0, 0]
    for name, history in histories.items():
        iters = [h["iteration"] for h in history]
        ax.plot(iters, [h["AP"] for h in history], marker="o", label=name)
    ax.axhline(teacher_ap, color="black", linestyle="--", label=f"teacher ({teacher_ap:.1f})")
    ax.set_xlabel("iteration")
    ax.set_ylabel("box AP (validation)")
    ax.set_title("Students on the same schedule")
    ax.grid(alpha=0.3)
    ax.legend(loc="center left")
    fig.subplots_adjust(left=0.14, right=0.97, top=0.92, bottom=0.1)
    return save_figure(fig, path)
