"""Show one image through a distillation config's teacher and student.

    python -m detrdistill.tools.visualize_distillation \\
        --config-file detrdistill/shapes_deformable_tiny.py \\
        --checkpoint output/detrdistill/shapes_deformable_tiny/model_final.pth \\
        --input image.png --output-dir vis/ --layer -1

Writes to --output-dir (file names start with the input's name):

* ``<name>_matches.png``: teacher boxes (blue) and student boxes (orange, dashed) of one decoder
  layer pair, with a line between each teacher-student matched pair. The matcher is the one of
  the config's logits / adaptive-matching loss (a default TeacherStudentMatcher otherwise); all
  teacher predictions are matched, and the pairs whose teacher score reaches --score-threshold
  are drawn (at most --num-pairs; the best ones when none reaches it).
* ``<name>_attention.png``: for the best --num-queries pairs, the teacher query's and the
  student query's cross-attention (mean over heads; deformable attention splatted to a dense
  map) on feature level --level.
* ``<name>_summary.json``: layers, matcher and the drawn pairs (queries, classes, scores, boxes).

--layer is a student decoder layer; its teacher layer comes from model.layer_mapping. Without
--checkpoint the teacher is read from model.teacher_weights and the student is random. Trailing
``key=value`` pairs override config values, e.g. ``model.allow_random_teacher=True
model.teacher_weights=`` to look at an untrained pair.
"""

from __future__ import annotations

import json
import os
import sys

import numpy as np

from .cli import (
    add_config_argument,
    add_device_argument,
    add_opts_argument,
    build_module,
    fail,
    is_distillation_config,
    load_config,
    new_parser,
    require_file,
    resolve_device,
    without_teacher_weights,
)
from .distill_views import (
    draw_attention,
    draw_matches,
    find_matcher,
    level_map,
    match_layer,
    query_cross_attention,
    run_teacher_and_student,
)
from .drawing import save_figure
from .loading import class_names, image_input, is_distillation_state, load_weights, read_state_dict

__all__ = ["build_parser", "main", "pick_layers"]


def build_parser():
    """The command line (see the module docstring)."""
    lines = __doc__.splitlines()
    parser = new_parser("visualize_distillation", lines[0], epilog="\n".join(lines[1:]))
    add_config_argument(parser, "; must be a distillation config")
    parser.add_argument(
        "--checkpoint",
        default=None,
        metavar="PTH",
        help="checkpoint of a distillation run (student and teacher)",
    )
    parser.add_argument("--input", required=True, metavar="IMAGE", help="image file")
    parser.add_argument(
        "--output-dir", required=True, metavar="DIR", help="folder for the PNGs and summary"
    )
    parser.add_argument(
        "--layer", type=int, default=-1, help="student decoder layer (negative: from the end)"
    )
    parser.add_argument(
        "--level", type=int, default=0, help="feature level of the attention maps (0: finest)"
    )
    parser.add_argument(
        "--score-threshold", type=float, default=0.3, help="teacher score of the pairs drawn"
    )
    parser.add_argument("--num-pairs", type=int, default=20, help="most matched pairs drawn")
    parser.add_argument(
        "--num-queries", type=int, default=3, help="matched pairs whose attention is drawn"
    )
    add_device_argument(parser)
    add_opts_argument(parser)
    return parser


def pick_layers(parser, model, layer: int) -> tuple[int, int]:
    """``(student layer, teacher layer)`` for a (possibly negative) student layer index."""
    num_layers = model.student.decoder.num_layers
    if not -num_layers <= layer < num_layers:
        parser.error(f"--layer {layer} is out of range: the student has {num_layers} layers")
    student_layer = layer % num_layers
    for s, t in model.layer_pairs:
        if s == student_layer:
            return student_layer, t
    fail(
        parser,
        f"student layer {student_layer} has no teacher layer in model.layer_mapping "
        f"(pairs: {model.layer_pairs})",
    )


def _select(pairs, threshold: float, most: int):
    confident = [p for p in pairs if p.teacher_score >= threshold][:most]
    return (confident, True) if confident else (pairs[:most], False)


def _build_model(parser, args, cfg, state):
    """The DistillationDetector of ``cfg`` with the checkpoint loaded, in eval mode."""
    what = f"the model of {args.config_file}"
    if state is not None and any(key.startswith("teacher.") for key in state):
        without_teacher_weights(cfg)  # the teacher comes from the checkpoint
    model = build_module(parser, cfg.model, what)
    if state is not None:
        load_weights(parser, model, state, args.checkpoint, what)
    else:
        print("note: no --checkpoint: the student is randomly initialised")
    return model.to(resolve_device(parser, args.device)).eval()


def _attention_maps(teacher, student, shown, layers: tuple[int, int], level: int):
    """Per side, one cross-attention map (valid part of ``level``) per shown pair."""
    student_layer, teacher_layer = layers
    maps = {}
    for side, output, layer in (
        ("teacher", teacher, teacher_layer),
        ("student", student, student_layer),
    ):
        queries = [getattr(pair, f"{side}_query") for pair in shown]
        weights = query_cross_attention(
            output.decoder.cross_attn[layer], queries, output.encoder.spatial_shapes
        )
        maps[side] = [level_map(row, output.encoder, level) for row in weights]
    return maps["teacher"], maps["student"]


def _network_image(record: dict, input_format: str, size: tuple[int, int]) -> np.ndarray:
    """The resized input image as (h, w, 3) RGB."""
    image = record["image"].permute(1, 2, 0).numpy()
    if input_format == "BGR":
        image = image[:, :, ::-1]
    height, width = size
    return np.ascontiguousarray(image[:height, :width])


def main(argv: list[str] | None = None) -> int:
    """Run the tool; returns 0 (errors exit with code 2)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.num_pairs < 1 or args.num_queries < 1:
        parser.error("--num-pairs and --num-queries must be at least 1")
    require_file(parser, args.input, "input image")
    state = read_state_dict(parser, args.checkpoint) if args.checkpoint else None
    cfg = load_config(parser, args.config_file, args.opts)
    if not is_distillation_config(cfg):
        parser.error(
            f"{args.config_file!r} is not a distillation config (no model.student/teacher)"
        )
    if state is not None and not is_distillation_state(state):
        fail(
            parser,
            f"checkpoint {args.checkpoint!r} is not a distillation checkpoint (no 'student.*' "
            "keys); use visualize_detections for a plain detector",
        )
    input_format = cfg.model.student.get("input_format", "RGB")
    record, _ = image_input(parser, cfg, args.input, input_format)
    model = _build_model(parser, args, cfg, state)
    layers = pick_layers(parser, model, args.layer)

    teacher, student = run_teacher_and_student(model, [record])
    num_levels = min(len(teacher.encoder.features), len(student.encoder.features))
    if not 0 <= args.level < num_levels:
        parser.error(f"--level {args.level} is out of range: the models have {num_levels} levels")
    matcher, matcher_source = find_matcher(model)
    pairs = match_layer(model, teacher, student, *layers, matcher)
    drawn, confident = _select(pairs, args.score_threshold, args.num_pairs)
    shown = drawn[: args.num_queries]
    image = _network_image(record, input_format, student.image_sizes[0])
    names = class_names(cfg, model.student.num_classes)

    os.makedirs(args.output_dir, exist_ok=True)
    stem = os.path.splitext(os.path.basename(args.input))[0]
    files = {
        "matches": os.path.join(args.output_dir, f"{stem}_matches.png"),
        "attention": os.path.join(args.output_dir, f"{stem}_attention.png"),
        "summary": os.path.join(args.output_dir, f"{stem}_summary.json"),
    }
    which = (
        f"teacher score >= {args.score_threshold:g}"
        if confident
        else f"best {len(drawn)}, none >= {args.score_threshold:g}"
    )
    title = f"student L{layers[0]} vs teacher L{layers[1]}: {len(drawn)} matched pairs ({which})"
    save_figure(draw_matches(image, drawn, names, title), files["matches"])
    teacher_maps, student_maps = _attention_maps(teacher, student, shown, layers, args.level)
    figure = draw_attention(image, shown, teacher_maps, student_maps, names, layers, args.level)
    save_figure(figure, files["attention"])

    summary = {
        "config": args.config_file,
        "checkpoint": args.checkpoint,
        "input": args.input,
        "image_size": list(student.image_sizes[0]),
        "student_layer": layers[0],
        "teacher_layer": layers[1],
        "layer_pairs": [list(p) for p in model.layer_pairs],
        "matcher": f"{matcher_source}: {matcher.extra_repr()}",
        "attention_level": args.level,
        "pairs_drawn": [vars(p) for p in drawn],
        "attention_pairs": len(shown),
        "files": files,
    }
    with open(files["summary"], "w") as f:
        json.dump(summary, f, indent=2)
    print(f"{title}\nwrote {files['matches']}, {files['attention']}, {files['summary']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
