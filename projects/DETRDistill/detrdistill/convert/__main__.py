"""Command line of the checkpoint converter: ``python -m detrdistill.convert --help``."""

from __future__ import annotations

import argparse
import json
import os
import sys

from ..checkpoint import CheckpointReadError
from .converter import convert_checkpoint, save_converted
from .rules import ConversionError
from .rulesets import RULE_SETS, SOURCES

__all__ = ["build_parser", "main"]

_EPILOG = """\
tables (variant, source):
{tables}

examples:
  # official Deformable DETR R50 -> the R50 teacher config's checkpoint
  python -m detrdistill.convert --config teachers/deformable_detr_r50.py \\
      r50_deformable_detr-checkpoint.pth detrdistill://deformable_detr_r50_coco.pth
  # a detrex model-zoo file; config overrides go after the paths
  python -m detrdistill.convert --config coco/deformable_detr_r50_50ep.py \\
      deformable_detr_with_box_refinement_50ep.pth out.pth model.with_box_refine=True

The variant comes from the config's model; the layout is read from the keys (--source auto).
A report (mapped / dropped / created keys) is printed and written next to the output as
<output>.report.json. Nothing is written when a key is unknown, a shape does not fit or a key
of the model is left without a value.
"""


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (also used to render ``--help``)."""
    tables = "\n".join(
        f"  {variant:17s} {source:9s} {rule_set.description}"
        for (variant, source), rule_set in RULE_SETS.items()
    )
    parser = argparse.ArgumentParser(
        prog="python -m detrdistill.convert",
        description="Convert a published DETR / Conditional DETR / DAB-DETR / Deformable DETR / "
        "DINO checkpoint (official release or detrex model zoo) into a checkpoint of this "
        "project's detector built by --config, with no missing or unexpected keys.",
        epilog=_EPILOG.format(tables=tables),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("input", help="the published checkpoint (.pth)")
    parser.add_argument(
        "output", help="where to write the converted checkpoint (path or detrdistill://NAME)"
    )
    parser.add_argument(
        "opts",
        nargs="*",
        metavar="KEY=VALUE",
        help="config overrides (e.g. model.with_box_refine=True)",
    )
    parser.add_argument(
        "--config",
        required=True,
        help="detector config whose model receives the weights: a file or a packaged name "
        "(teachers/dab_detr_r101.py, coco/detr_r50_50ep.py, ...)",
    )
    parser.add_argument(
        "--source",
        choices=("auto", *SOURCES),
        default="auto",
        help="layout of the input (default: read from its keys)",
    )
    parser.add_argument(
        "--report", default=None, help="JSON report path (default: <output>.report.json)"
    )
    parser.add_argument(
        "--allow-unsafe-pickle",
        action="store_true",
        help="read the input with unrestricted unpickling; only for files from a trusted "
        "source that hold types safe loading refuses (the error names them)",
    )
    parser.add_argument("--dry-run", action="store_true", help="convert and report, write nothing")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the converter; returns the process exit code (0 success, 1 conversion refused)."""
    args = build_parser().parse_intermixed_args(argv)
    try:
        state, report, info = convert_checkpoint(
            args.input,
            args.config,
            source=args.source,
            overrides=args.opts,
            allow_unsafe=args.allow_unsafe_pickle,
        )
    except (ConversionError, CheckpointReadError, FileNotFoundError) as error:
        print(f"conversion refused: {error}", file=sys.stderr)
        return 1
    print(report.summary())
    if args.dry_run:
        return 0
    save_converted(state, info, args.output)
    report_path = args.report
    if report_path is None and "://" not in args.output:
        report_path = os.path.splitext(args.output)[0] + ".report.json"
    if report_path:
        with open(report_path, "w") as handle:
            json.dump({**info, **report.to_dict()}, handle, indent=1)
    print(f"wrote {args.output}" + (f" and {report_path}" if report_path else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
