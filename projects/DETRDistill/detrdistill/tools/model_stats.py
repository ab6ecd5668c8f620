"""Print the parameters and GFLOPs of a config's detector (teacher and student for distillation).

    python -m detrdistill.tools.model_stats --config-file coco/deformable_detr_r50_50ep.py
    python -m detrdistill.tools.model_stats \\
        --config-file detrdistill/shapes_deformable_tiny.py --json stats.json

Parameters: total, trainable and per top-level module (shared tensors counted once). GFLOPs:
fvcore's FlopCountAnalysis of ``DETRBase.run`` on one dummy image in eval mode (one multiply-add
= one flop); operators fvcore cannot count are listed. --input-size defaults to the config's
test-time resize (its shortest edge, 4:3 landscape, capped at its max size). Weights are not
loaded (they change neither count): distillation configs are built with a random teacher.
Trailing ``key=value`` pairs override config values.
"""

from __future__ import annotations

import json
import os
import sys

from .cli import (
    add_config_argument,
    add_device_argument,
    add_opts_argument,
    build_module,
    is_distillation_config,
    load_config,
    new_parser,
    resolve_device,
    without_teacher_weights,
)
from .flops import count_flops, parameter_counts
from .loading import test_resize

__all__ = ["build_parser", "default_input_size", "main", "model_stats"]

FALLBACK_SHORT_EDGE = 800


def build_parser():
    """The command line (see the module docstring)."""
    lines = __doc__.splitlines()
    parser = new_parser("model_stats", lines[0], epilog="\n".join(lines[1:]))
    add_config_argument(parser)
    parser.add_argument(
        "--input-size",
        type=int,
        nargs=2,
        metavar=("H", "W"),
        default=None,
        help="dummy image size for the FLOP count (default: from the config's test resize)",
    )
    parser.add_argument("--json", default=None, metavar="FILE", help="also write the stats here")
    parser.add_argument("--no-flops", action="store_true", help="count parameters only")
    add_device_argument(parser)
    add_opts_argument(parser)
    return parser


def default_input_size(resize: tuple[int, int] | None) -> tuple[int, int]:
    """(H, W): the test resize's shortest edge and a 4:3 landscape width within its max size."""
    short, longest = resize if resize is not None else (FALLBACK_SHORT_EDGE, 1333)
    width = round(short * 4 / 3)
    if width > longest:
        short, width = round(short * longest / width), longest
    return short, width


def model_stats(detectors: dict, input_size: tuple[int, int] | None, device) -> dict:
    """Parameter counts (and FLOPs unless ``input_size`` is None) of named detectors.

    Returns:
        name -> ``{"class", "parameters": {...}, "flops": {...} or None}``.
    """
    stats = {}
    for name, detector in detectors.items():
        entry = {"class": type(detector).__name__, "parameters": parameter_counts(detector)}
        entry["flops"] = None
        if input_size is not None:
            report = count_flops(detector, *input_size, device=device)
            entry["flops"] = {
                "gflops": report.gflops,
                "total": report.total,
                "by_module_gflops": {k: v / 1e9 for k, v in report.by_module.items()},
                "input_shape": list(report.input_shape),
                "unsupported_ops": dict(report.unsupported.most_common()),
                "unsupported_summary": report.unsupported_summary(),
            }
        stats[name] = entry
    return stats


def _print_parameters(counts: dict, indent: str = "  ") -> None:
    print(f"{indent}parameters: {counts['total']:,} total, {counts['trainable']:,} trainable")
    for child, numbers in counts["by_module"].items():
        frozen = numbers["total"] - numbers["trainable"]
        note = f"  ({frozen:,} frozen)" if frozen else ""
        print(f"{indent}  {child:<24} {numbers['total']:>14,}{note}")


def _print_entry(name: str, entry: dict) -> None:
    print(f"[{name}] {entry['class']}")
    _print_parameters(entry["parameters"])
    flops = entry["flops"]
    if flops is None:
        return
    shape = "x".join(str(v) for v in flops["input_shape"])
    print(f"  GFLOPs: {flops['gflops']:.3f} (fvcore, DETRBase.run on a {shape} input)")
    for child, value in flops["by_module_gflops"].items():
        if value:
            print(f"    {child:<24} {value:>10.3f}")
    print(f"  not counted (no fvcore handle): {flops['unsupported_summary']}")


def main(argv: list[str] | None = None) -> int:
    """Run the tool; returns 0 (errors exit with code 2)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.input_size is not None and min(args.input_size) < 1:
        parser.error(f"--input-size must be positive, got {args.input_size}")
    cfg = load_config(parser, args.config_file, args.opts)
    distillation = is_distillation_config(cfg)
    if distillation:
        without_teacher_weights(cfg)
    device = resolve_device(parser, args.device)
    model = build_module(parser, cfg.model, f"the model of {args.config_file}").to(device)
    model.eval()
    detectors = (
        {"student": model.student, "teacher": model.teacher} if distillation else {"model": model}
    )
    input_size = None
    if not args.no_flops:
        input_size = tuple(args.input_size or default_input_size(test_resize(parser, cfg)))
    result = {
        "config": args.config_file,
        "opts": list(args.opts or []),
        "device": str(device),
        "input_size": list(input_size) if input_size else None,
        "models": model_stats(detectors, input_size, device),
    }
    if distillation:
        result["distillation_detector"] = {"parameters": parameter_counts(model)}

    print(f"config: {args.config_file}" + (" (distillation)" if distillation else ""))
    for name, entry in result["models"].items():
        _print_entry(name, entry)
    if distillation:
        print("[distillation detector] the whole wrapper (teacher frozen)")
        _print_parameters(result["distillation_detector"]["parameters"])
    if args.json:
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
