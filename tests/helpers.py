"""Reusable test utilities: a tiny detector, a tiny COCO-format dataset and a tiny LazyConfig.

Everything is CPU-sized (64x48 images, a two-layer conv net) so that ``train_net.py`` runs end
to end in seconds. Import as ``tests.helpers`` (the repository root must be on ``sys.path``;
``tests/engine/conftest.py`` makes sure of it, and ``python train_net.py`` has it as the script
folder). Nothing here depends on the DETR models.

* :class:`TinyDetector` (registered in ``META_ARCH_REGISTRY``): loss dict in training,
  ``[{"instances": Instances}]`` in eval, like the DETR meta-architectures.
* :func:`tiny_batch` / :func:`repeat_batch`: in-memory batches for trainer unit tests.
* :func:`write_tiny_coco` / :func:`register_tiny_coco`: PNGs + COCO json in a folder, registered
  idempotently (safe to call from configs in every process).
* :func:`tiny_config_parts` / :func:`write_tiny_config`: a complete LazyConfig (model, dataloader
  with COCO evaluator, the packaged optimizer/schedule/train defaults) and a ``.py`` file of it
  for ``train_net.py --config-file``.
* :func:`tiny_pair_overrides`: ``key=value`` overrides that shrink both models of a packaged
  distillation config to test size (the only piece here that names DETR config keys).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
from collections.abc import Iterator

import numpy as np
import torch
from detectron2.config import LazyCall as L
from detectron2.config import LazyConfig
from detectron2.data import (
    DatasetCatalog,
    DatasetMapper,
    build_detection_test_loader,
    build_detection_train_loader,
    get_detection_dataset_dicts,
)
from detectron2.data.datasets import register_coco_instances
from detectron2.evaluation import COCOEvaluator
from detectron2.modeling import META_ARCH_REGISTRY
from detectron2.modeling.postprocessing import detector_postprocess
from detectron2.structures import Boxes, ImageList, Instances
from PIL import Image
from torch import nn
from torch.nn import functional as F

from detrdistill import model_zoo

__all__ = [
    "TINY_CLASSES",
    "TinyDetector",
    "register_tiny_coco",
    "repeat_batch",
    "tiny_batch",
    "tiny_config_parts",
    "tiny_pair_overrides",
    "write_tiny_coco",
    "write_tiny_config",
]

TINY_CLASSES = ("square", "bar")


def tiny_pair_overrides(num_queries: int | None = None) -> list[str]:
    """Overrides for a packaged distillation config: an 8-wide backbone, a 32-wide two-layer
    student decoder and a 48-wide three-layer teacher decoder, one encoder layer each (and
    ``num_queries`` queries each, when given)."""
    opts = []
    for part, hidden, layers in (("student", 32, 2), ("teacher", 48, 3)):
        opts += [
            f"model.{part}.backbone.width=8",
            f"model.{part}.hidden_dim={hidden}",
            f"model.{part}.position_embedding.num_pos_feats={hidden // 2}",
            f"model.{part}.encoder.num_layers=1",
            f"model.{part}.decoder.num_layers={layers}",
        ]
        if num_queries is not None:
            opts.append(f"model.{part}.num_queries={num_queries}")
    return opts


class TinyDetector(nn.Module):
    """A tiny set-prediction detector with DETR's input/output contract.

    A stride-4 conv backbone, global average pooling and a linear head predict ``num_queries``
    boxes (normalized cxcywh, sigmoid) and ``num_classes + 1`` logits (last = no object).
    Training matches query i to ground-truth box i (in annotation order); the losses are means
    over the batch, so they do not depend on the order of images in a batch.

    Args:
        num_classes: number of foreground classes.
        num_queries: predictions per image.
        hidden_dim: channels of the backbone output.
    """

    def __init__(self, *, num_classes: int = 2, num_queries: int = 4, hidden_dim: int = 16):
        super().__init__()
        self.num_classes = num_classes
        self.num_queries = num_queries
        self.backbone = nn.Sequential(
            nn.Conv2d(3, 8, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv2d(8, hidden_dim, 3, stride=2, padding=1),
            nn.ReLU(),
        )
        self.norm = nn.GroupNorm(4, hidden_dim)
        self.head = nn.Linear(hidden_dim, num_queries * (4 + num_classes + 1))
        self.register_buffer(
            "pixel_mean", torch.tensor([123.675, 116.28, 103.53]).view(3, 1, 1), False
        )
        self.register_buffer(
            "pixel_std", torch.tensor([58.395, 57.12, 57.375]).view(3, 1, 1), False
        )

    @property
    def device(self) -> torch.device:
        return self.pixel_mean.device

    def forward(self, batched_inputs: list[dict]):
        images = ImageList.from_tensors(
            [
                (x["image"].to(self.device) - self.pixel_mean) / self.pixel_std
                for x in batched_inputs
            ]
        )
        features = self.norm(self.backbone(images.tensor)).mean(dim=(2, 3))
        out = self.head(features).view(len(batched_inputs), self.num_queries, -1)
        boxes, logits = out[..., :4].sigmoid(), out[..., 4:]
        if self.training:
            return self.losses(boxes, logits, batched_inputs)
        return self.inference(boxes, logits, batched_inputs, images.image_sizes)

    def losses(self, boxes, logits, batched_inputs) -> dict[str, torch.Tensor]:
        labels = torch.full(
            logits.shape[:2], self.num_classes, dtype=torch.long, device=self.device
        )
        box_errors = []
        for i, x in enumerate(batched_inputs):
            inst = x["instances"].to(self.device)
            h, w = inst.image_size
            gt = inst.gt_boxes.tensor[: self.num_queries] / torch.tensor(
                [w, h, w, h], device=self.device
            )
            n = len(gt)
            labels[i, :n] = inst.gt_classes[:n]
            gt_cxcywh = torch.cat([(gt[:, :2] + gt[:, 2:]) / 2, gt[:, 2:] - gt[:, :2]], dim=1)
            box_errors.append((boxes[i, :n] - gt_cxcywh).abs().sum(dim=1))
        box_errors = torch.cat(box_errors)
        loss_bbox = box_errors.mean() if len(box_errors) else boxes.sum() * 0.0
        loss_class = F.cross_entropy(logits.flatten(0, 1).float(), labels.flatten())
        return {"loss_class": loss_class, "loss_bbox": loss_bbox.float()}

    def inference(self, boxes, logits, batched_inputs, image_sizes) -> list[dict]:
        scores, classes = logits.float().softmax(-1)[..., : self.num_classes].max(-1)
        results = []
        for i, (x, (h, w)) in enumerate(zip(batched_inputs, image_sizes)):
            cx, cy, bw, bh = boxes[i].float().unbind(-1)
            xyxy = torch.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], dim=-1)
            inst = Instances((h, w))
            inst.pred_boxes = Boxes(xyxy * torch.tensor([w, h, w, h], device=self.device))
            inst.scores = scores[i]
            inst.pred_classes = classes[i]
            results.append(
                {"instances": detector_postprocess(inst, x.get("height", h), x.get("width", w))}
            )
        return results


if "TinyDetector" not in META_ARCH_REGISTRY:
    META_ARCH_REGISTRY.register(TinyDetector)


def tiny_batch(num_images: int = 2, height: int = 32, width: int = 40, seed: int = 0) -> list[dict]:
    """An in-memory training batch (``image`` uint8 CHW, ``instances`` with 1-2 boxes each).

    Args:
        num_images: batch size.
        height, width: image size.
        seed: numpy seed of the pixels and boxes.

    Returns:
        list[dict]: detectron2 training inputs.
    """
    rng = np.random.RandomState(seed)
    batch = []
    for _ in range(num_images):
        image = torch.from_numpy(rng.randint(0, 256, (3, height, width)).astype(np.uint8))
        n = rng.randint(1, 3)
        x0 = rng.uniform(0, width / 2, n)
        y0 = rng.uniform(0, height / 2, n)
        boxes = np.stack(
            [x0, y0, x0 + rng.uniform(4, width / 2, n), y0 + rng.uniform(4, height / 2, n)], 1
        )
        inst = Instances((height, width))
        inst.gt_boxes = Boxes(torch.tensor(boxes, dtype=torch.float32))
        inst.gt_classes = torch.tensor(rng.randint(0, len(TINY_CLASSES), n))
        batch.append({"image": image, "instances": inst, "height": height, "width": width})
    return batch


def repeat_batch(batch: list[dict]) -> Iterator[list[dict]]:
    """An infinite data loader that yields the same batch forever."""
    return itertools.repeat(batch)


def write_tiny_coco(root: str, num_images: int = 4, seed: int = 0) -> tuple[str, str]:
    """Write ``num_images`` 64x48 PNGs with 1-2 coloured rectangles and a COCO json.

    Files that already exist are kept (the content is a pure function of the arguments).

    Args:
        root: output folder.
        num_images: number of images.
        seed: numpy seed.

    Returns:
        tuple[str, str]: ``(json_file, image_root)``.
    """
    image_root = os.path.join(root, "images")
    json_file = os.path.join(root, f"annotations_{num_images}_{seed}.json")
    if os.path.isfile(json_file):
        return json_file, image_root
    os.makedirs(image_root, exist_ok=True)
    rng = np.random.RandomState(seed)
    height, width = 48, 64
    images, annotations = [], []
    for image_id in range(1, num_images + 1):
        pixels = np.full((height, width, 3), 40, dtype=np.uint8)
        for _ in range(rng.randint(1, 3)):
            category = int(rng.randint(1, len(TINY_CLASSES) + 1))
            w = int(rng.randint(10, 24)) if category == 1 else int(rng.randint(24, 40))
            h = w if category == 1 else int(rng.randint(6, 10))
            x, y = int(rng.randint(0, width - w)), int(rng.randint(0, height - h))
            pixels[y : y + h, x : x + w] = (200, 60, 60) if category == 1 else (60, 60, 200)
            annotations.append(
                dict(
                    id=len(annotations) + 1,
                    image_id=image_id,
                    category_id=category,
                    bbox=[x, y, w, h],
                    area=w * h,
                    iscrowd=0,
                )
            )
        file_name = f"{seed}_{image_id:03d}.png"
        Image.fromarray(pixels).save(os.path.join(image_root, file_name))
        images.append(dict(id=image_id, file_name=file_name, height=height, width=width))
    categories = [dict(id=i + 1, name=name) for i, name in enumerate(TINY_CLASSES)]
    tmp = json_file + ".tmp"
    with open(tmp, "w") as f:
        json.dump(dict(images=images, annotations=annotations, categories=categories), f)
    os.replace(tmp, json_file)
    return json_file, image_root


def register_tiny_coco(root: str, num_images: int = 4, seed: int = 0) -> str:
    """Write (if needed) and register the tiny dataset; idempotent, returns its name.

    Meant to be called from configs (``names=L(register_tiny_coco)(root=...)``), so that every
    process of a multi-process run registers it when it builds its data loaders.

    Args:
        root, num_images, seed: see :func:`write_tiny_coco`.

    Returns:
        str: the registered dataset name (unique per folder, size and seed).
    """
    key = hashlib.sha1(os.path.abspath(root).encode()).hexdigest()[:8]
    name = f"tiny_coco_{key}_{num_images}_{seed}"
    if name not in DatasetCatalog.list():
        json_file, image_root = write_tiny_coco(root, num_images, seed)
        register_coco_instances(name, {}, json_file, image_root)
    return name


def tiny_config_parts(
    data_root: str,
    output_dir: str,
    *,
    num_images: int = 4,
    batch_size: int = 2,
    max_iter: int = 4,
    lr: float = 5e-3,
    seed: int = 0,
) -> dict:
    """The top-level nodes of a complete tiny LazyConfig.

    ``optimizer``, ``lr_multiplier`` and ``train`` are the packaged ``common/`` defaults
    (AdamW with DETR param groups, step decay at 80% of ``train.max_iter``, clipping at 0.1)
    with a larger learning rate, CPU, frequent logging and evaluation only at the end.

    Args:
        data_root: folder of the tiny COCO dataset (written on first use).
        output_dir: ``train.output_dir``.
        num_images: images in the dataset (train and test use the same images).
        batch_size: ``dataloader.train.total_batch_size``.
        max_iter: ``train.max_iter``.
        lr: AdamW learning rate.
        seed: ``train.seed``.

    Returns:
        dict: ``model``, ``dataloader``, ``optimizer``, ``lr_multiplier``, ``train`` nodes.
    """
    dataset_name = L(register_tiny_coco)(root=data_root, num_images=num_images)
    dataloader = dict(
        train=L(build_detection_train_loader)(
            dataset=L(get_detection_dataset_dicts)(names=dataset_name),
            mapper=L(DatasetMapper)(is_train=True, augmentations=[], image_format="RGB"),
            total_batch_size=batch_size,
            aspect_ratio_grouping=False,
            num_workers=0,
        ),
        test=L(build_detection_test_loader)(
            dataset=L(get_detection_dataset_dicts)(names=dataset_name, filter_empty=False),
            mapper=L(DatasetMapper)(is_train=False, augmentations=[], image_format="RGB"),
            num_workers=0,
        ),
        evaluator=L(COCOEvaluator)(dataset_name=dataset_name),
    )
    optimizer = LazyConfig.load(model_zoo.get_config_file("common/optim.py")).AdamW
    optimizer.lr = lr
    lr_multiplier = LazyConfig.load(model_zoo.get_config_file("common/schedule.py")).lr_multiplier
    train = LazyConfig.load(model_zoo.get_config_file("common/train.py")).train
    train.update(
        output_dir=output_dir,
        max_iter=max_iter,
        seed=seed,
        log_period=1,
        eval_period=0,
        checkpointer=dict(period=max(max_iter // 2, 1), max_to_keep=10),
    )
    return dict(
        model=L(TinyDetector)(num_classes=len(TINY_CLASSES), num_queries=4),
        dataloader=dataloader,
        optimizer=optimizer,
        lr_multiplier=lr_multiplier,
        train=train,
    )


def write_tiny_config(path: str, data_root: str, output_dir: str, **options) -> str:
    """Write a LazyConfig file that builds :func:`tiny_config_parts` (for ``--config-file``).

    Args:
        path: file to write (``.py``).
        data_root, output_dir, **options: arguments of :func:`tiny_config_parts`.

    Returns:
        str: ``path``.
    """
    kwargs = dict(data_root=str(data_root), output_dir=str(output_dir), **options)
    lines = [
        '"""Tiny end-to-end config written by tests.helpers.write_tiny_config."""',
        "from tests.helpers import tiny_config_parts",
        "",
        f"_parts = tiny_config_parts(**{kwargs!r})",
    ]
    lines += [
        f'{name} = _parts["{name}"]'
        for name in ("model", "dataloader", "optimizer", "lr_multiplier", "train")
    ]
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return str(path)
