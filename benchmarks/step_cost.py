"""Cost of one distillation training step against its parts: time and peak memory.

    python benchmarks/step_cost.py                      # embedded-data configs (CPU-sized)
    python benchmarks/step_cost.py --preset coco --device cuda   # R101 -> R50 at COCO shapes

For each distillation config it measures, on one fixed synthetic batch (no data loader):

* ``student_train``: the student alone, forward + backward + optimizer step;
* ``teacher_inference``: the teacher alone, ``no_grad`` forward (``DETRBase.run``);
* ``distill_train``: the full DistillationDetector step (teacher forward, student forward with
  the distillation losses, backward, optimizer step);

and reports ``ratio = distill_train / (student_train + teacher_inference)`` (median times): 1.0
means distillation costs exactly a student step plus a teacher forward; the excess is the
distillation losses (matching, attention maps, the teacher-query group, adapters). Timings are
medians over --iters rounds that run the three in turns (so that drift of the machine
affects them alike), after --warmup unmeasured iterations of each; peak memory comes from
--memory-iters iterations of each part alone. Steps use AdamW and the config's
gradient clipping, like training. Teacher weights do not change the cost, so the teacher is
random by default (--no-allow-random-teacher loads model.teacher_weights).

Presets: ``shapes`` (the packaged embedded-data configs: batch 8, 128x128 images, 4 boxes each)
and ``coco`` (R101 teacher -> R50 student Deformable DETR, 300 queries, 6 decoder layers, 80
classes, batch 2, 800x1333 images, 7 boxes each: packaged COCO distillation configs when there
are any, else the method configs' losses around ``coco/deformable_detr_r101_50ep.py`` (teacher)
and ``coco/deformable_detr_r50_50ep.py`` (student)). --batch-size, --image-size and --num-gt
override a preset; trailing ``key=value`` pairs override every config.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import os
import sys
from dataclasses import dataclass

import torch
from _benchlib import (
    describe_machine,
    measure,
    measure_interleaved,
    resolve_device,
    utc_now,
    write_result,
)
from detectron2.config import LazyConfig, instantiate
from detectron2.structures import Boxes, Instances
from omegaconf import DictConfig, OmegaConf

from detrdistill import model_zoo
from detrdistill.distill.teacher import load_teacher_weights
from detrdistill.engine.train_net_cli import resolve_config_file

__all__ = ["PRESETS", "build_parser", "load_configs", "main", "synthetic_batch"]

METHOD_CONFIGS = (
    "detrdistill/shapes_deformable_tiny.py",
    "d3etr/shapes_deformable_tiny.py",
)
COCO_TEACHER = "coco/deformable_detr_r101_50ep.py"
COCO_STUDENT = "coco/deformable_detr_r50_50ep.py"
PRESETS = {
    "shapes": dict(batch_size=8, image_size=(128, 128), num_gt=4),
    "coco": dict(batch_size=2, image_size=(800, 1333), num_gt=7),
}
RESULTS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")
DEFAULT_OUTPUT = "benchmarks/results/step_cost_{preset}.json"  # relative to the repository


@dataclass
class BenchConfig:
    """A distillation config to measure: its display name, method and the loaded config."""

    name: str
    method: str
    cfg: DictConfig


def build_parser() -> argparse.ArgumentParser:
    """The command line (see the module docstring)."""
    lines = __doc__.splitlines()
    parser = argparse.ArgumentParser(
        description=lines[0],
        epilog="\n".join(lines[1:]),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--preset", choices=sorted(PRESETS), default="shapes")
    parser.add_argument(
        "--configs",
        nargs="+",
        default=None,
        help=f"distillation configs (files or packaged names); default {list(METHOD_CONFIGS)} "
        "(with the coco preset: their losses around the COCO R101/R50 models)",
    )
    parser.add_argument(
        "--iters", type=int, default=20, help="timed rounds (student, teacher, distill in turns)"
    )
    parser.add_argument(
        "--memory-iters", type=int, default=3, help="iterations of each part alone for its memory"
    )
    parser.add_argument("--warmup", type=int, default=2, help="unmeasured iterations first")
    parser.add_argument("--device", default="auto", help="cpu, cuda, cuda:1 or auto")
    parser.add_argument("--batch-size", type=int, default=None, help="images per step")
    parser.add_argument("--image-size", type=int, nargs=2, metavar=("H", "W"), default=None)
    parser.add_argument("--num-gt", type=int, default=None, help="boxes per image")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--amp",
        choices=("none", "bfloat16", "float16"),
        default="none",
        help="mixed precision of every forward pass (float16 adds a GradScaler)",
    )
    parser.add_argument(
        "--allow-random-teacher",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="random teacher weights (default; weights do not change the cost)",
    )
    parser.add_argument(
        "--output", default=None, help="JSON result (default " + DEFAULT_OUTPUT + ")"
    )
    parser.add_argument(
        "opts", nargs=argparse.REMAINDER, default=[], help="config overrides key=value"
    )
    return parser


def _method(name: str) -> str:
    return name.replace("\\", "/").split("/")[-2] if "/" in name else name


# The COCO-shaped pair of the issue: R101 teacher -> R50 student Deformable DETR, one per method.
COCO_PAIR_CONFIGS = (
    "detrdistill/coco_deformable_detr_r101_to_r50_50ep.py",
    "d3etr/coco_deformable_detr_r101_to_r50_50ep.py",
)


def _packaged_coco_configs() -> list[str]:
    available = set(model_zoo.list_configs())
    return [name for name in COCO_PAIR_CONFIGS if name in available]


def load_configs(preset: str, names: list[str] | None, opts: list[str]) -> list[BenchConfig]:
    """The distillation configs to measure, with ``opts`` applied.

    With the ``coco`` preset and no packaged COCO distillation config, each method config's
    ``model.student``/``model.teacher`` are replaced by the COCO R50/R101 Deformable DETR models
    (its losses, weights and layer mapping are kept).
    """
    packaged = _packaged_coco_configs() if preset == "coco" else []
    if names is None:
        names = packaged or list(METHOD_CONFIGS)
    configs = []
    for name in names:
        cfg = LazyConfig.load(resolve_config_file(name))
        if "student" not in cfg.model or "teacher" not in cfg.model:
            raise ValueError(f"{name!r} is not a distillation config (no model.student/teacher)")
        label = name
        if preset == "coco" and name not in packaged:
            cfg.model.student = model_zoo.get_config(COCO_STUDENT).model
            cfg.model.teacher = model_zoo.get_config(COCO_TEACHER).model
            label = f"{name} [teacher {COCO_TEACHER}, student {COCO_STUDENT}]"
        cfg = LazyConfig.apply_overrides(cfg, list(opts))
        configs.append(BenchConfig(label, _method(name), cfg))
    return configs


def synthetic_batch(
    batch_size: int, height: int, width: int, num_gt: int, num_classes: int, seed: int
) -> list[dict]:
    """A fixed training batch: random uint8 images with ``num_gt`` random boxes each."""
    gen = torch.Generator().manual_seed(seed)
    batch = []
    for _ in range(batch_size):
        image = torch.randint(0, 256, (3, height, width), dtype=torch.uint8, generator=gen)
        size = torch.rand(num_gt, 2, generator=gen) * 0.4 + 0.05  # 5-45% of the side
        corner = torch.rand(num_gt, 2, generator=gen) * (1 - size)
        scale = torch.tensor([width, height], dtype=torch.float32)
        boxes = torch.cat([corner * scale, (corner + size) * scale], 1)
        instances = Instances((height, width))
        instances.gt_boxes = Boxes(boxes)
        instances.gt_classes = torch.randint(0, num_classes, (num_gt,), generator=gen)
        batch.append({"image": image, "instances": instances, "height": height, "width": width})
    return batch


def _autocast(device: torch.device, amp: str):
    """Mixed precision around a forward pass: ``amp`` "none", "bfloat16" or "float16"."""
    if amp == "none":
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=getattr(torch, amp))


def _train_step(model, batch, clip_norm: float | None, device=None, amp: str = "none"):
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=1e-4, weight_decay=1e-4)
    scaler = torch.amp.GradScaler(enabled=amp == "float16")

    def step():
        with _autocast(device or torch.device("cpu"), amp):
            losses = model(batch)
        total = scaler.scale(sum(loss.float() for loss in losses.values()))
        optimizer.zero_grad(set_to_none=True)
        total.backward()
        scaler.unscale_(optimizer)
        if clip_norm:
            torch.nn.utils.clip_grad_norm_(params, clip_norm)
        scaler.step(optimizer)
        scaler.update()

    return step


def _teacher_forward(teacher, batch, device=None, amp: str = "none"):
    @torch.no_grad()
    def step():
        with _autocast(device or torch.device("cpu"), amp):
            teacher.run(teacher.preprocess_image(batch))

    return step


def _clip_norm(cfg: DictConfig) -> float | None:
    clip = OmegaConf.select(cfg, "train.clip_grad", default=None) or {}
    return float(clip.get("max_norm")) if clip.get("enabled", False) else None


def describe_detector(node: DictConfig, module: torch.nn.Module) -> dict:
    """Variant, sizes and parameter count of a detector config and instance."""
    return {
        "class": type(module).__name__,
        "backbone_depth": OmegaConf.select(node, "backbone.depth", default=None),
        "hidden_dim": getattr(module, "hidden_dim", None),
        "num_queries": getattr(module, "num_queries", None),
        "encoder_layers": OmegaConf.select(node, "encoder.num_layers", default=None),
        "decoder_layers": module.decoder.num_layers,
        "num_classes": module.num_classes,
        "parameters": sum(p.numel() for p in module.parameters()),
    }


def _release(device: torch.device) -> None:
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


def _memory_fields(result: dict) -> dict:
    keys = ("peak_memory_mib", "peak_memory_delta_mib", "memory_method")
    return {key: result[key] for key in keys}


def run(args: argparse.Namespace, configs: list[BenchConfig]) -> dict:
    """Measure every config; returns the JSON payload."""
    device = resolve_device(args.device)
    settings = dict(PRESETS[args.preset])
    if args.batch_size is not None:
        settings["batch_size"] = args.batch_size
    if args.image_size is not None:
        settings["image_size"] = tuple(args.image_size)
    if args.num_gt is not None:
        settings["num_gt"] = args.num_gt
    torch.manual_seed(args.seed)
    results = []
    for item in configs:
        cfg = item.cfg
        if args.allow_random_teacher:
            cfg.model.teacher_weights = ""
            cfg.model.allow_random_teacher = True
        clip_norm = _clip_norm(cfg)
        height, width = settings["image_size"]
        num_classes = int(OmegaConf.select(cfg, "model.student.num_classes"))
        batch = synthetic_batch(
            settings["batch_size"], height, width, settings["num_gt"], num_classes, args.seed
        )
        print(f"[{item.name}]", flush=True)

        # Each part alone first (warm-up, then its peak memory), then the three timed in turns
        # (--iters rounds) so that drift of the machine affects all of them alike.
        student = instantiate(cfg.model.student).to(device).train()
        student_info = describe_detector(cfg.model.student, student)
        student_step = _train_step(student, batch, clip_norm, device, args.amp)
        student_memory = measure(student_step, args.memory_iters, args.warmup, device)
        teacher = instantiate(cfg.model.teacher)
        if cfg.model.teacher_weights:
            load_teacher_weights(teacher, cfg.model.teacher_weights)
        teacher.requires_grad_(False).to(device).eval()
        teacher_info = describe_detector(cfg.model.teacher, teacher)
        teacher_step = _teacher_forward(teacher, batch, device, args.amp)
        teacher_memory = measure(teacher_step, args.memory_iters, args.warmup, device)
        model = instantiate(cfg.model).to(device).train()
        distill_step = _train_step(model, batch, clip_norm, device, args.amp)
        distill_memory = measure(distill_step, args.memory_iters, args.warmup, device)
        losses = sorted(model.distill_losses)
        timed = measure_interleaved(
            {"student": student_step, "teacher": teacher_step, "distill": distill_step},
            args.iters,
            device,
        )
        student_timing = {**_memory_fields(student_memory), **timed["student"]}
        teacher_timing = {**_memory_fields(teacher_memory), **timed["teacher"]}
        distill_timing = {**_memory_fields(distill_memory), **timed["distill"]}
        del student, teacher, model, student_step, teacher_step, distill_step
        _release(device)
        print(f"  student_train      {student_timing['median_s']:.4f} s", flush=True)
        print(f"  teacher_inference  {teacher_timing['median_s']:.4f} s", flush=True)
        ratio = distill_timing["median_s"] / (
            student_timing["median_s"] + teacher_timing["median_s"]
        )
        print(f"  distill_train      {distill_timing['median_s']:.4f} s  ratio {ratio:.3f}")
        results.append(
            {
                "config": item.name,
                "method": item.method,
                "losses": losses,
                "loss_weights": dict(OmegaConf.to_container(cfg.model.loss_weights)),
                "student": student_info,
                "teacher": teacher_info,
                "student_train": student_timing,
                "teacher_inference": teacher_timing,
                "distill_train": distill_timing,
                "ratio": ratio,
            }
        )
    return {
        "benchmark": "step_cost",
        "date": utc_now(),
        "machine": describe_machine(device),
        "settings": {
            "preset": args.preset,
            "device": str(device),
            "iters": args.iters,
            "memory_iters": args.memory_iters,
            "warmup": args.warmup,
            "batch_size": settings["batch_size"],
            "image_size": list(settings["image_size"]),
            "num_gt": settings["num_gt"],
            "seed": args.seed,
            "amp": args.amp,
            "allow_random_teacher": args.allow_random_teacher,
            "optimizer": "AdamW(lr=1e-4, weight_decay=1e-4) + the config's gradient clipping",
            "opts": list(args.opts or []),
        },
        "ratio_definition": "distill_train.median_s / (student_train.median_s + "
        "teacher_inference.median_s)",
        "results": results,
    }


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and write the JSON result; returns 0."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.iters < 1 or args.memory_iters < 1 or args.warmup < 0:
        parser.error("--iters and --memory-iters must be >= 1 and --warmup >= 0")
    try:
        configs = load_configs(args.preset, args.configs, args.opts or [])
    except (RuntimeError, ValueError, KeyError, FileNotFoundError) as error:
        parser.exit(2, f"{parser.prog}: error: {type(error).__name__}: {error}\n")
    payload = run(args, configs)
    output = args.output or os.path.join(RESULTS_DIR, f"step_cost_{args.preset}.json")
    print(f"wrote {write_result(output, payload)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
