"""Matplotlib drawing helpers for the visualisation tools.

Figures are built with ``matplotlib.figure.Figure`` and saved through the Agg canvas, so no
pyplot state or display backend is touched (and OpenCV, which detectron2's ``Visualizer``
needs, is not required).
"""

from __future__ import annotations

import os

import numpy as np
from matplotlib import colormaps
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

__all__ = [
    "TEACHER_COLOR",
    "STUDENT_COLOR",
    "class_color",
    "draw_box",
    "draw_link",
    "draw_title",
    "grid_figure",
    "draw_tag",
    "image_figure",
    "muted",
    "overlay_heatmap",
    "save_figure",
    "show_image",
]

TEACHER_COLOR = "#1f77b4"  # blue
STUDENT_COLOR = "#ff7f0e"  # orange
_PALETTE = colormaps["tab10"].colors
LABEL_ROOM = 0.08  # share of the image height a box label takes (drawn inside a box above it)


def class_color(index: int):
    """A distinct colour per class index (tab10, cycling)."""
    return _PALETTE[int(index) % len(_PALETTE)]


def image_figure(image: np.ndarray, max_inches: float = 12.0, dpi: int = 100):
    """A figure with one borderless axes showing ``image`` ((H, W, 3) uint8 RGB).

    Args:
        image: the picture.
        max_inches: longest side of the figure at most (small images are shown at 6 inches).
        dpi: resolution of the saved PNG.

    Returns:
        ``(figure, axes)``; the axes use pixel coordinates of the image (y down).
    """
    height, width = image.shape[:2]
    # native resolution where it fits, small images enlarged so that labels stay legible
    longest = min(max(max(height, width) / dpi, 6.0), max_inches)
    scale = longest / max(height, width)
    fig = Figure(figsize=(width * scale, height * scale), dpi=dpi)
    ax = fig.add_axes((0, 0, 1, 1))
    show_image(ax, image)
    return fig, ax


def grid_figure(rows: int, cols: int, panel_inches: float = 4.0, dpi: int = 100):
    """A ``rows`` x ``cols`` grid of axes; returns ``(figure, axes)`` with a 2-D axes array."""
    fig = Figure(figsize=(cols * panel_inches, rows * panel_inches), dpi=dpi)
    axes = np.asarray(fig.subplots(rows, cols, squeeze=False))
    fig.subplots_adjust(left=0.02, right=0.98, top=0.94, bottom=0.02, wspace=0.05, hspace=0.15)
    return fig, axes


def show_image(ax: Axes, image: np.ndarray) -> None:
    """Show ``image`` in pixel coordinates without ticks."""
    height, width = image.shape[:2]
    ax.imshow(image, extent=(0, width, height, 0), interpolation="nearest")
    ax.set_xlim(0, width)
    ax.set_ylim(height, 0)
    ax.set_axis_off()


def draw_box(
    ax: Axes,
    box,
    color,
    label: str | None = None,
    linestyle: str = "-",
    linewidth: float = 2.0,
    label_below: bool = False,
) -> None:
    """Draw an absolute ``(x0, y0, x1, y1)`` box with an optional text label at a corner.

    The label sits above the top-left corner (inside the box when that is at the image's top
    edge), or below the bottom-left corner with ``label_below``. Show the image first: the
    axes limits tell where its top is.
    """
    x0, y0, x1, y1 = (float(v) for v in box)
    ax.add_patch(
        Rectangle(
            (x0, y0),
            x1 - x0,
            y1 - y0,
            fill=False,
            edgecolor=color,
            linewidth=linewidth,
            linestyle=linestyle,
        )
    )
    if label:
        # a label above a box at the image's top edge would be cut off: put it inside
        top = min(ax.get_ylim())
        inside = not label_below and y0 - top < LABEL_ROOM * abs(ax.get_ylim()[0] - top)
        ax.text(
            x0,
            y1 if label_below else y0,
            label,
            color="white",
            fontsize=8,
            va="top" if label_below or inside else "bottom",
            ha="left",
            bbox=dict(facecolor=color, alpha=0.8, pad=1, edgecolor="none"),
            clip_on=True,
        )


def draw_tag(ax: Axes, x: float, y: float, text: str, color) -> None:
    """A short label (e.g. a pair number) in a coloured box with its top-left corner at
    ``(x, y)`` in data coordinates."""
    ax.text(
        float(x),
        float(y),
        text,
        color="white",
        fontsize=8,
        fontweight="bold",
        va="top",
        ha="left",
        bbox=dict(facecolor=color, alpha=0.9, pad=1.5, edgecolor="none"),
        clip_on=True,
    )


def muted(image: np.ndarray, contrast: float = 0.6) -> np.ndarray:
    """``image`` ((H, W, 3) uint8 RGB) in grey, with its contrast reduced around mid-grey, so
    that a colour map drawn over it stands out."""
    grey = image[..., :3].astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
    grey = 128.0 + contrast * (grey - 128.0)
    return np.repeat(np.clip(grey, 0, 255).astype(np.uint8)[..., None], 3, axis=2)


def draw_link(ax: Axes, start, end, color="#2ca02c", linewidth: float = 1.5) -> None:
    """A line from point ``start`` to point ``end`` (e.g. between two box centres)."""
    ax.plot(
        [float(start[0]), float(end[0])],
        [float(start[1]), float(end[1])],
        color=color,
        linewidth=linewidth,
        marker="o",
        markersize=3,
    )


def draw_title(ax: Axes, text: str) -> None:
    """White text on a dark box in the top-left corner of an image axes."""
    ax.text(
        0.01,
        0.99,
        text,
        transform=ax.transAxes,
        color="white",
        fontsize=9,
        va="top",
        bbox=dict(facecolor="black", alpha=0.6, pad=2, edgecolor="none"),
    )


def overlay_heatmap(
    ax: Axes,
    heat: np.ndarray,
    width: float,
    height: float,
    alpha: float = 0.55,
    cmap: str = "jet",
    gamma: float = 1.0,
) -> None:
    """Stretch a 2-D map over an image of ``width`` x ``height`` pixels.

    The map is scaled to its maximum, then raised to ``gamma`` (below 1 lifts the low values,
    as ``matplotlib.colors.PowerNorm``); colour (``cmap``) and opacity grow with the result (at
    most ``alpha``), so the picture stays visible where the attention is low.
    """
    peak = float(heat.max()) if heat.size else 0.0
    scaled = np.clip(heat / peak if peak > 0 else np.zeros_like(heat), 0.0, 1.0) ** gamma
    rgba = colormaps[cmap](scaled)
    rgba[..., 3] = alpha * np.sqrt(scaled)
    ax.imshow(rgba, extent=(0, width, height, 0), interpolation="bilinear")
    ax.set_xlim(0, width)
    ax.set_ylim(height, 0)


def save_figure(fig: Figure, path: str) -> str:
    """Write ``fig`` as a PNG (creating the folder); returns ``path``."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    FigureCanvasAgg(fig)
    fig.savefig(path, format="png")
    return path
