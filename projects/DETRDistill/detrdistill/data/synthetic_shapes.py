"""Deterministic synthetic "shapes" detection dataset (COCO json + PNG images).

The set is small enough to train a DETR on a CPU in minutes and hard enough not to be trivial:

* square RGB images (default 128x128) with 1-6 objects of 5 classes (``circle``, ``square``,
  ``triangle`` in 4 orientations, ``ring`` of varying thickness, ``cross``) and box sides of
  13-61 px;
* each object has a flat random colour (with a mild horizontal shading) that contrasts with the
  local background; objects may overlap but every earlier object keeps at least half of its
  pixels visible; boxes are the tight *amodal* boxes of the full shapes;
* the background is a smooth bicubic 4x4 colour field, low-frequency noise blotches, 6-17 clutter
  items (thin lines, small dots, arcs) and Gaussian pixel noise (sigma 6).

Every image is drawn from its own random stream ``SeedSequence([seed, index])``, so a set is a
pure function of ``(seed, num_images, image_size)`` and a smaller set is a prefix of a larger set
with the same seed.

On disk a split lives in ``<root>/<split>_n<num_images>_seed<seed>_<image_size>px/`` with
``annotations.json`` (COCO instances format, category ids 1..5) and ``images/000001.png`` ...
:func:`ensure_shapes_split` creates it atomically (temporary folder + rename, guarded by a file
lock), so several processes (e.g. DDP ranks) may ask for the same split at once.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

try:  # POSIX only; elsewhere the atomic rename alone keeps generation safe.
    import fcntl
except ImportError:  # pragma: no cover - non-POSIX platforms
    fcntl = None

__all__ = [
    "SHAPES_CLASSES",
    "SHAPES_VERSION",
    "SHAPES_CACHE_ENV",
    "default_shapes_root",
    "shapes_split_dir",
    "render_shapes_image",
    "generate_shapes_split",
    "ensure_shapes_split",
]

logger = logging.getLogger(__name__)

SHAPES_CLASSES: tuple[str, ...] = ("circle", "square", "triangle", "ring", "cross")
"""Class names; COCO category id ``i + 1`` is ``SHAPES_CLASSES[i]``."""

SHAPES_VERSION = 1
"""Generator version; part of the default cache folder name (``shapes_v1``)."""

SHAPES_CACHE_ENV = "DETRDISTILL_CACHE"
"""Environment variable naming the cache base folder (default ``~/.cache/detrdistill``)."""

ANNOTATION_FILE = "annotations.json"
IMAGE_DIR = "images"

_MIN_SIDE, _MAX_SIDE = 13, 61
_MIN_OBJECTS, _MAX_OBJECTS = 1, 6
_MIN_CLUTTER, _MAX_CLUTTER = 6, 17
_NOISE_SIGMA = 6.0
_MIN_VISIBLE_FRACTION = 0.5
_MIN_COLOUR_DISTANCE = 90.0
_PLACEMENT_TRIES = 30
_COLOUR_TRIES = 20


def default_shapes_root() -> Path:
    """Return the default cache folder of the shapes dataset.

    Returns:
        ``$DETRDISTILL_CACHE/shapes_v1`` when the environment variable is set and not empty,
        else ``~/.cache/detrdistill/shapes_v1``.
    """
    base = os.environ.get(SHAPES_CACHE_ENV, "")
    base_path = Path(base).expanduser() if base else Path.home() / ".cache" / "detrdistill"
    return (base_path / f"shapes_v{SHAPES_VERSION}").absolute()


def shapes_split_dir(
    root: str | os.PathLike, split: str, num_images: int, seed: int, image_size: int = 128
) -> Path:
    """Return the folder that holds one generated split (it may not exist yet).

    Args:
        root: cache root, e.g. :func:`default_shapes_root`.
        split: split label (``"train"``, ``"val"``, ...); only names the folder.
        num_images: number of images.
        seed: generator seed.
        image_size: side of the square images in pixels.

    Returns:
        ``<root>/<split>_n<num_images>_seed<seed>_<image_size>px`` as an absolute path.
    """
    _check_split_args(split, num_images, seed, image_size)
    name = f"{split}_n{num_images}_seed{seed}_{image_size}px"
    return (Path(root).expanduser() / name).absolute()


def _check_split_args(split: str, num_images: int, seed: int, image_size: int) -> None:
    if (
        not isinstance(split, str)
        or not split
        or any(c in split for c in "/\\ ")
        or split[0] == "."
    ):
        raise ValueError(
            f"split must be a plain non-empty name without '/', '\\' or spaces, got {split!r}"
        )
    for key, value, low in (("num_images", num_images, 1), ("seed", seed, 0)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
            raise ValueError(f"{key} must be an integer >= {low}, got {value!r}")
    if isinstance(image_size, bool) or not isinstance(image_size, (int, np.integer)):
        raise ValueError(f"image_size must be an integer, got {image_size!r}")
    if image_size < 2 * _MAX_SIDE:
        raise ValueError(
            f"image_size must be >= {2 * _MAX_SIDE} so that objects of up to {_MAX_SIDE} px fit, "
            f"got {image_size}"
        )


# --------------------------------------------------------------------------------------------
# Rendering
# --------------------------------------------------------------------------------------------


def _shape_mask(cls: int, side: int, rng: np.random.Generator) -> np.ndarray:
    """Rasterise one shape of class ``cls`` into a ``(side, side)`` bool mask."""
    centres = (np.arange(side, dtype=np.float32) + 0.5) / side - 0.5  # in (-0.5, 0.5)
    y, x = centres[:, None], centres[None, :]
    name = SHAPES_CLASSES[cls]
    if name == "circle":
        mask = x * x + y * y <= 0.25
    elif name == "square":
        mask = np.ones((side, side), dtype=bool)
    elif name == "triangle":
        orientation = int(rng.integers(4))  # apex up, right, down, left
        along, across = [(-y, x), (x, y), (y, x), (-x, y)][orientation]
        # apex at along = 0.5, base at along = -0.5; half width grows from 0 to 0.5
        mask = np.abs(across) <= (0.5 - along) / 2.0
    elif name == "ring":
        # thickness relative to the radius, at least 2 px
        rel = rng.uniform(max(0.2, 4.0 / side), 0.6)
        r2 = x * x + y * y
        mask = (r2 <= 0.25) & (r2 >= (0.5 * (1.0 - rel)) ** 2)
    elif name == "cross":
        half_arm = rng.uniform(0.12, 0.2)
        mask = (np.abs(x) <= half_arm) | (np.abs(y) <= half_arm)
    else:  # pragma: no cover - guarded by SHAPES_CLASSES
        raise AssertionError(name)
    return np.broadcast_to(mask, (side, side)).copy()


def _background(rng: np.random.Generator, size: int) -> Image.Image:
    """Smooth colour field + low-frequency blotches + clutter, as an RGB PIL image."""
    field = rng.uniform(25.0, 230.0, size=(4, 4, 3)).astype(np.uint8)
    img = np.asarray(Image.fromarray(field, "RGB").resize((size, size), Image.BICUBIC))
    blotch = Image.fromarray(rng.standard_normal((8, 8)).astype(np.float32), "F")
    blotch = np.asarray(blotch.resize((size, size), Image.BICUBIC))
    img = img.astype(np.float32) + (rng.uniform(10.0, 30.0) * blotch)[:, :, None]
    canvas = Image.fromarray(np.clip(img, 0, 255).astype(np.uint8), "RGB")

    draw = ImageDraw.Draw(canvas)
    for _ in range(int(rng.integers(_MIN_CLUTTER, _MAX_CLUTTER + 1))):
        colour = tuple(int(c) for c in rng.integers(0, 256, size=3))
        kind = int(rng.integers(3))
        cx, cy = rng.uniform(0, size, size=2)
        if kind == 0:  # thin line
            length, angle = rng.uniform(10, 60), rng.uniform(0, np.pi)
            dx, dy = 0.5 * length * np.cos(angle), 0.5 * length * np.sin(angle)
            draw.line([(cx - dx, cy - dy), (cx + dx, cy + dy)], fill=colour, width=1)
        elif kind == 1:  # dot of 1-4 px
            d = int(rng.integers(1, 5))
            x0, y0 = int(cx), int(cy)
            draw.ellipse([x0, y0, x0 + d - 1, y0 + d - 1], fill=colour)
        else:  # small arc
            r = rng.uniform(4, 15)
            start = rng.uniform(0, 360)
            draw.arc([cx - r, cy - r, cx + r, cy + r], start, start + rng.uniform(60, 200), colour)
    return canvas


def render_shapes_image(
    rng: np.random.Generator, image_size: int = 128, return_masks: bool = False
) -> tuple[np.ndarray, list[dict]]:
    """Render one synthetic image and its objects.

    Args:
        rng: the random stream of this image (consumed).
        image_size: side S of the square image in pixels (>= 122).
        return_masks: also return each object's full (amodal) mask; does not change the
            random stream, so the image is the same either way.

    Returns:
        image: ``(S, S, 3)`` uint8 RGB array.
        objects: one dict per object in painting order with ``category`` (int in [0, 5)),
            ``bbox`` (tight amodal box, XYWH absolute pixels, list of 4 floats) and ``area``
            (pixel count of the full shape); with ``return_masks`` also ``mask``, an
            ``(S, S)`` bool array of the full shape.
    """
    size = image_size
    canvas = np.asarray(_background(rng, size), dtype=np.float32).copy()  # (S, S, 3)
    owner = np.full((size, size), -1, dtype=np.int16)  # index of the visible object per pixel
    areas: list[int] = []
    visible: list[int] = []
    objects: list[dict] = []

    for _ in range(int(rng.integers(_MIN_OBJECTS, _MAX_OBJECTS + 1))):
        cls = int(rng.integers(len(SHAPES_CLASSES)))
        side = int(rng.integers(_MIN_SIDE, _MAX_SIDE + 1))
        mask = _shape_mask(cls, side, rng)
        placed = None
        for _try in range(_PLACEMENT_TRIES):
            x0, y0 = (int(v) for v in rng.integers(0, size - side + 1, size=2))
            covered = owner[y0 : y0 + side, x0 : x0 + side][mask]
            if len(objects):
                lost = np.bincount(covered[covered >= 0], minlength=len(objects))
                left = np.asarray(visible) - lost
                if np.any(left < _MIN_VISIBLE_FRACTION * np.asarray(areas)):
                    continue
                visible = left.tolist()
            placed = (x0, y0)
            break
        if placed is None:  # the image is too crowded for this object: leave it out
            continue
        x0, y0 = placed

        region = canvas[y0 : y0 + side, x0 : x0 + side]
        local_bg = region[mask].mean(axis=0)
        best, best_dist = None, -1.0
        for _try in range(_COLOUR_TRIES):
            colour = rng.uniform(0.0, 255.0, size=3)
            dist = float(np.linalg.norm(colour - local_bg))
            if dist > best_dist:
                best, best_dist = colour, dist
            if dist >= _MIN_COLOUR_DISTANCE:
                break
        shading = 1.0 + rng.uniform(-0.25, 0.25) * np.linspace(-0.5, 0.5, side, dtype=np.float32)
        painted = best[None, None, :] * shading[None, :, None]  # (1, side, 3)
        region[mask] = np.broadcast_to(painted, (side, side, 3))[mask]
        owner[y0 : y0 + side, x0 : x0 + side][mask] = len(objects)

        rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
        bx, by = x0 + int(cols[0]), y0 + int(rows[0])
        bw, bh = int(cols[-1] - cols[0] + 1), int(rows[-1] - rows[0] + 1)
        area = int(mask.sum())
        areas.append(area)
        visible.append(area)
        objects.append(
            {"category": cls, "bbox": [float(bx), float(by), float(bw), float(bh)], "area": area}
        )
        if return_masks:
            full = np.zeros((size, size), dtype=bool)
            full[y0 : y0 + side, x0 : x0 + side] = mask
            objects[-1]["mask"] = full

    canvas += _NOISE_SIGMA * rng.standard_normal(canvas.shape, dtype=np.float32)
    image = np.clip(np.rint(canvas), 0, 255).astype(np.uint8)
    return image, objects


# --------------------------------------------------------------------------------------------
# Writing a split
# --------------------------------------------------------------------------------------------


def generate_shapes_split(
    out_dir: str | os.PathLike,
    num_images: int,
    seed: int,
    image_size: int = 128,
    split: str = "train",
) -> Path:
    """Render a split and write it as COCO json + PNG images into ``out_dir``.

    Not atomic by itself: use :func:`ensure_shapes_split` for the cache.

    Args:
        out_dir: target folder (created; existing files of the same names are overwritten).
        num_images: number of images N.
        seed: generator seed; image ``i`` uses ``SeedSequence([seed, i])``.
        image_size: side of the square images.
        split: label stored in the json ``info``.

    Returns:
        Path of the written ``annotations.json``.
    """
    _check_split_args(split, num_images, seed, image_size)
    out = Path(out_dir)
    (out / IMAGE_DIR).mkdir(parents=True, exist_ok=True)
    images, annotations = [], []
    for index in range(num_images):
        rng = np.random.default_rng(np.random.SeedSequence([seed, index]))
        pixels, objects = render_shapes_image(rng, image_size)
        image_id = index + 1
        file_name = f"{image_id:06d}.png"
        Image.fromarray(pixels, "RGB").save(out / IMAGE_DIR / file_name, compress_level=1)
        images.append(
            {"id": image_id, "file_name": file_name, "height": image_size, "width": image_size}
        )
        for obj in objects:
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": image_id,
                    "category_id": obj["category"] + 1,
                    "bbox": obj["bbox"],
                    "area": float(obj["area"]),
                    "iscrowd": 0,
                }
            )
    coco = {
        "info": {
            "description": "DETRDistill synthetic shapes",
            "version": str(SHAPES_VERSION),
            "split": split,
            "num_images": num_images,
            "seed": int(seed),
            "image_size": image_size,
        },
        "images": images,
        "annotations": annotations,
        "categories": [
            {"id": i + 1, "name": name, "supercategory": "shape"}
            for i, name in enumerate(SHAPES_CLASSES)
        ],
    }
    json_path = out / ANNOTATION_FILE
    with open(json_path, "w") as f:
        json.dump(coco, f)
    return json_path


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    """Exclusive advisory lock on ``path`` (no-op where ``fcntl`` is missing)."""
    if fcntl is None:  # pragma: no cover - non-POSIX platforms
        yield
        return
    with open(path, "a") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _is_complete(split_dir: Path) -> bool:
    return (split_dir / ANNOTATION_FILE).is_file() and (split_dir / IMAGE_DIR).is_dir()


def ensure_shapes_split(
    root: str | os.PathLike,
    split: str,
    num_images: int,
    seed: int,
    image_size: int = 128,
) -> tuple[Path, Path]:
    """Return a generated split, generating it first if the cache lacks it.

    Generation writes into a temporary folder next to the target and renames it into place, under
    an exclusive file lock, so concurrent callers never see a half-written split and the work is
    done once.

    Args:
        root: cache root folder (created if missing).
        split: split label (names the folder).
        num_images: number of images.
        seed: generator seed.
        image_size: side of the square images.

    Returns:
        ``(json_file, image_root)`` of the split.

    Raises:
        RuntimeError: the target folder exists but is incomplete (not made by this function).
    """
    target = shapes_split_dir(root, split, num_images, seed, image_size)
    result = (target / ANNOTATION_FILE, target / IMAGE_DIR)
    if _is_complete(target):
        return result
    if target.exists():
        raise RuntimeError(
            f"Shapes cache folder '{target}' exists but has no {ANNOTATION_FILE} or "
            f"{IMAGE_DIR}/; it was not written by this generator. Delete it to regenerate."
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    with _file_lock(target.parent / f".{target.name}.lock"):
        if _is_complete(target):  # another process finished while we waited
            return result
        start = time.perf_counter()
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
        try:
            generate_shapes_split(tmp, num_images, seed, image_size, split)
            try:
                os.rename(tmp, target)
            except OSError:
                if not _is_complete(target):  # not a lost race: a real error
                    raise
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
        logger.info(
            "Generated %d synthetic shapes images (seed %d) in %s in %.1f s",
            num_images,
            seed,
            target,
            time.perf_counter() - start,
        )
    return result
