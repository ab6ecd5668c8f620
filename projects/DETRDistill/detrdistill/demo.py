"""The main job on the embedded dataset: train a detector, evaluate it, print the AP table.

    python -m detrdistill.demo [--config shapes/deformable_detr_tiny.py] [--max-iter N] [opts]

``make demo`` runs this. It trains the tiny two-stage Deformable DETR on the embedded shapes set
on the CPU (about 10 minutes on 2 cores), evaluates it on the validation split and prints the
COCO AP table. The trained model (``<output>/model_final.pth``) is the teacher of the
distillation demos.
"""

from __future__ import annotations

import argparse
import sys
import time

import detrdistill  # noqa: F401  (registrations)
from detrdistill.engine import argument_parser, do_train, setup

__all__ = ["main", "format_results"]

DEFAULT_CONFIG = "shapes/deformable_detr_tiny.py"


def format_results(name: str, bbox: dict[str, float], seconds: float) -> str:
    """A one-row markdown table of COCO box metrics."""
    keys = ("AP", "AP50", "AP75", "APs", "APm")
    header = "| model | " + " | ".join(keys) + " | train time |"
    rule = "|" + "---|" * (len(keys) + 2)
    row = f"| {name} | " + " | ".join(f"{bbox.get(k, float('nan')):.1f}" for k in keys)
    return "\n".join([header, rule, row + f" | {seconds / 60:.1f} min |"])


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=DEFAULT_CONFIG, help="config file or packaged name")
    parser.add_argument("--max-iter", type=int, default=None, help="override train.max_iter")
    parser.add_argument("--output-dir", default="./output/demo/teacher")
    parser.add_argument("opts", nargs=argparse.REMAINDER, help="key=value config overrides")
    args = parser.parse_args(argv)

    opts = [f"train.output_dir={args.output_dir}", "train.eval_period=0", *args.opts]
    if args.max_iter is not None:
        opts.append(f"train.max_iter={args.max_iter}")
    train_args = argument_parser().parse_args(["--config-file", args.config, *opts])
    cfg = setup(train_args)
    start = time.perf_counter()
    trainer = do_train(cfg, resume=False)  # evaluates once after the last iteration
    seconds = time.perf_counter() - start
    latest = trainer.storage.latest()
    results = {
        key.split("/", 1)[1]: value for key, (value, _) in latest.items() if key.startswith("bbox/")
    }
    print("\nDETRDistill demo: detector trained on the embedded shapes dataset (val split)\n")
    print(format_results(args.config, results, seconds))
    return results


if __name__ == "__main__":
    main(sys.argv[1:])
