"""Draw a detector's detections (boxes, class names, scores) on one image as a PNG.

    python -m detrdistill.tools.visualize_detections \\
        --config-file shapes/deformable_detr_tiny.py \\
        --checkpoint output/shapes/deformable_detr_tiny/model_final.pth \\
        --input image.png --output detections.png --score-threshold 0.3

The image is resized as the config's test mapper does (``dataloader.test.mapper``) and the
detections are drawn at the original size. With a distillation config the student's detections
are drawn, or the teacher's with ``--teacher``; ``--checkpoint`` is then either a distillation
run's checkpoint (its ``student.*``/``teacher.*`` part is used) or a plain checkpoint of the
drawn detector. A distillation checkpoint given with a plain detector config loads its student.
Trailing ``key=value`` pairs override config values.
"""

from __future__ import annotations

import os
import sys

import numpy as np
import torch
from detectron2.structures import Instances
from matplotlib.figure import Figure

from .cli import (
    add_config_argument,
    add_device_argument,
    add_opts_argument,
    build_module,
    is_distillation_config,
    load_config,
    new_parser,
    require_file,
    resolve_device,
)
from .drawing import class_color, draw_box, draw_title, image_figure, save_figure
from .loading import (
    class_names,
    image_input,
    is_distillation_state,
    load_weights,
    read_state_dict,
    strip_prefix,
)

__all__ = ["build_parser", "draw_detections", "draw_instances", "main"]


def build_parser():
    """The command line (see the module docstring)."""
    lines = __doc__.splitlines()
    parser = new_parser("visualize_detections", lines[0], epilog="\n".join(lines[1:]))
    add_config_argument(parser, "; a distillation config draws its student (or --teacher)")
    parser.add_argument(
        "--checkpoint",
        required=True,
        metavar="PTH",
        help="model weights (.pth): a detector's or a distillation run's checkpoint",
    )
    parser.add_argument(
        "--input", required=True, metavar="IMAGE", help="image file to run the detector on"
    )
    parser.add_argument(
        "--output",
        default=None,
        metavar="PNG",
        help="PNG to write (default: <input name>_detections.png in the current folder)",
    )
    parser.add_argument(
        "--score-threshold",
        type=float,
        default=0.3,
        metavar="S",
        help="draw detections scoring at least this",
    )
    parser.add_argument(
        "--teacher",
        action="store_true",
        help="with a distillation config: draw the teacher's detections instead of the student's",
    )
    add_device_argument(parser)
    add_opts_argument(parser)
    return parser


def draw_instances(ax, instances: Instances, names: list[str]) -> None:
    """Draw every box of ``instances`` (absolute XYXY ``pred_boxes``, ``scores``,
    ``pred_classes``) on an image axes, labelled with class name and score."""
    order = instances.scores.argsort(descending=True) if len(instances) else []
    for index in order:
        label = int(instances.pred_classes[index])
        name = names[label] if 0 <= label < len(names) else f"class {label}"
        score = float(instances.scores[index])
        box = instances.pred_boxes.tensor[index].tolist()
        draw_box(ax, box, class_color(label), f"{name} {score:.2f}")


def draw_detections(
    image: np.ndarray, instances: Instances, names: list[str], title: str | None = None
) -> Figure:
    """A figure of ``image`` ((H, W, 3) RGB) with every box of ``instances`` labelled.

    Args:
        image: the picture the boxes refer to.
        instances: ``pred_boxes`` (absolute XYXY in ``image``), ``scores``, ``pred_classes``.
        names: class names indexed by ``pred_classes``.
        title: optional text in the top-left corner.
    """
    fig, ax = image_figure(image)
    draw_instances(ax, instances, names)
    if title:
        draw_title(ax, title)
    return fig


def _default_output(input_path: str, teacher: bool) -> str:
    stem = os.path.splitext(os.path.basename(input_path))[0]
    return f"{stem}_{'teacher_' if teacher else ''}detections.png"


def main(argv: list[str] | None = None) -> int:
    """Run the tool; returns 0 (errors exit with code 2)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    require_file(parser, args.input, "input image")
    state = read_state_dict(parser, args.checkpoint)
    cfg = load_config(parser, args.config_file, args.opts)

    if is_distillation_config(cfg):
        part = "teacher" if args.teacher else "student"
        node, what = cfg.model[part], f"model.{part} of {args.config_file}"
        if is_distillation_state(state):
            state = strip_prefix(state, f"{part}.")
    else:
        if args.teacher:
            parser.error(f"--teacher needs a distillation config; {args.config_file!r} is not one")
        node, what = cfg.model, f"the model of {args.config_file}"
        if is_distillation_state(state):
            print(f"note: {args.checkpoint} is a distillation checkpoint; loading its student")
            state = strip_prefix(state, "student.")

    record, original = image_input(parser, cfg, args.input, node.get("input_format", "RGB"))
    device = resolve_device(parser, args.device)
    model = build_module(parser, node, what)
    load_weights(parser, model, state, args.checkpoint, what)
    model.to(device).eval()
    with torch.no_grad():
        instances = model([record])[0]["instances"].to("cpu")
    kept = instances[instances.scores >= args.score_threshold]

    names = class_names(cfg, getattr(model, "num_classes", 0))
    who = "teacher" if args.teacher else ("student" if is_distillation_config(cfg) else "model")
    title = f"{who}: {len(kept)} detections, score >= {args.score_threshold:g}"
    output = args.output or _default_output(args.input, args.teacher)
    save_figure(draw_detections(original, kept, names, title), output)
    print(
        f"{who}: {len(kept)} of {len(instances)} detections (score >= "
        f"{args.score_threshold:g}) drawn to {output}"
    )
    for index in kept.scores.argsort(descending=True).tolist():
        label = int(kept.pred_classes[index])
        box = ", ".join(f"{v:.1f}" for v in kept.pred_boxes.tensor[index].tolist())
        print(f"  {names[label]:<16} {float(kept.scores[index]):.3f}  [{box}]")
    return 0


if __name__ == "__main__":
    sys.exit(main())
