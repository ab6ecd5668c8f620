"""Share of D3ETR's attention terms in the total distillation loss, small and COCO-sized maps.

    python benchmarks/attention_share.py --teacher-weights <shapes teacher model_final.pth>

The attention terms act only if they are a visible part of the distillation loss. This measures
``(self_attn + cross_attn) / (all loss_distill_* terms)`` of a D3ETR config (default
``d3etr/shapes_deformable_tiny.py``, adaptive + fixed matching) with the trained embedded-data
teacher:

* ``shapes``: on the embedded data (batch 8, 128x128), at the student's initialisation and after
  ``--iters`` (100) training iterations of the config's optimizer (mean over ``--batches``
  batches each time);
* ``coco_shaped``: the same teacher and student on a COCO-shaped forward: the batch's images
  resized to 800x1333 and 300 queries for both (the two-stage models select their queries from
  the encoder, so the query count is free), at initialisation and after the same iterations.

Trailing ``key=value`` pairs override the config (e.g. to compare attention weights or the
``distance="mse"`` option). Writes ``benchmarks/results/attention_share.json`` (with the machine).
"""

from __future__ import annotations

import argparse
import copy
import os
import sys
import time

import torch
from detectron2.config import LazyConfig, instantiate
from torch.nn import functional as F

sys.path.insert(0, os.path.dirname(__file__))
from _benchlib import write_result  # noqa: E402

import detrdistill  # noqa: E402,F401
from detrdistill import model_zoo  # noqa: E402
from detrdistill.engine.machine import describe_machine, utc_now  # noqa: E402

ATTENTION_KEYS = ("self_attn", "cross_attn")


def shares(losses: dict[str, torch.Tensor]) -> dict[str, float]:
    """Attention share of the distillation terms of one loss dict."""
    distill = {k: float(v) for k, v in losses.items() if k.startswith("loss_distill_")}
    attention = sum(v for k, v in distill.items() if k.endswith(ATTENTION_KEYS))
    total = sum(distill.values())
    return {"attention": attention, "distill_total": total, "share": attention / total}


def mean_shares(items: list[dict[str, float]]) -> dict[str, float]:
    keys = items[0].keys()
    return {k: sum(i[k] for i in items) / len(items) for k in keys}


def resize_batch(batch: list[dict], height: int, width: int) -> list[dict]:
    """The batch's images and boxes resized to (height, width) (a COCO-shaped input)."""
    resized = []
    for record in batch:
        image = record["image"].float()[None]
        _, h, w = record["image"].shape
        image = F.interpolate(image, size=(height, width), mode="bilinear", align_corners=False)
        new = dict(record, image=image[0].round().clamp(0, 255).to(torch.uint8))
        new["height"], new["width"] = height, width
        instances = copy.deepcopy(record["instances"])
        boxes = instances.gt_boxes.tensor
        boxes *= torch.tensor([width / w, height / h, width / w, height / h])
        instances._image_size = (height, width)
        new["instances"] = instances
        resized.append(new)
    return resized


def loss_dicts(model, batches: list[list[dict]]) -> list[dict[str, float]]:
    with torch.no_grad():
        return [shares(model(batch)) for batch in batches]


def main() -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default="d3etr/shapes_deformable_tiny.py")
    parser.add_argument("--teacher-weights", required=True)
    parser.add_argument("--iters", type=int, default=100)
    parser.add_argument("--batches", type=int, default=3)
    parser.add_argument("--coco-batch", type=int, default=2)
    parser.add_argument("--coco-queries", type=int, default=300)
    parser.add_argument("--out", default="benchmarks/results/attention_share.json")
    parser.add_argument("opts", nargs="*")
    args = parser.parse_args()

    cfg = model_zoo.get_config(args.config)
    cfg = LazyConfig.apply_overrides(cfg, args.opts)
    cfg.model.teacher_weights = args.teacher_weights
    cfg.dataloader.train.num_workers = 0
    torch.manual_seed(cfg.train.seed)
    model = instantiate(cfg.model)
    model.train()
    loader = iter(instantiate(cfg.dataloader.train))
    probe = [next(loader) for _ in range(args.batches)]
    coco = [resize_batch(b[: args.coco_batch], 800, 1333) for b in probe[:1]]

    coco_model = instantiate(copy.deepcopy(cfg.model))  # same teacher weights
    results = {"config": args.config, "overrides": args.opts, "teacher": args.teacher_weights}

    def coco_shares(trained_student_state):
        coco_model.student.load_state_dict(trained_student_state)
        coco_model.group_builders = model.group_builders  # the trained teacher-query adapter
        for m in (coco_model.student, coco_model.teacher):
            m.num_queries = args.coco_queries
        coco_model.train()
        start = time.perf_counter()
        out = mean_shares(loss_dicts(coco_model, coco))
        out["seconds"] = time.perf_counter() - start
        return out

    results["shapes_init"] = mean_shares(loss_dicts(model, probe))
    results["coco_shaped_init"] = coco_shares(model.student.state_dict())
    cfg.optimizer.params.model = model
    optimizer = instantiate(cfg.optimizer)
    for _ in range(args.iters):
        losses = model(next(loader))
        optimizer.zero_grad()
        sum(losses.values()).backward()
        optimizer.step()
    results[f"shapes_after_{args.iters}"] = mean_shares(loss_dicts(model, probe))
    results[f"coco_shaped_after_{args.iters}"] = coco_shares(model.student.state_dict())
    results["coco_shape"] = {"image": [800, 1333], "queries": args.coco_queries}
    settings = {"iters": args.iters, "batches": args.batches, "coco_batch": args.coco_batch}
    payload = {
        "benchmark": "attention_share",
        "date": utc_now(),
        "machine": describe_machine(),
        "settings": settings,
        "results": results,
    }
    print(write_result(args.out, payload))
    for key, value in results.items():
        print(key, value)
    return payload


if __name__ == "__main__":
    main()
