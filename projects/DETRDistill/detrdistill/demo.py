"""The main job on the embedded dataset: compression you can see, in about ten minutes.

    python -m detrdistill.demo [--pair deformable] [--iters 500] [--evals 6]

``make demo`` (``make demo PAIR=<pair>``) runs this from the repository root, on the CPU. For
one teacher-student pair of :data:`PAIRS` it

1. evaluates the teacher shipped with the package (``detrdistill://shipped/...``, sha256
   checked): no teacher training;
2. trains three students with about 4x fewer GFLOPs on the same ``--iters`` schedule and seed:
   the baseline, DETRDistill (all three losses) and D3ETR (MixMatcher with attention), each
   evaluated ``--evals`` times, each as ``python train_net.py ...`` in a subprocess;
3. prints one table (AP, AP50, AP75, % of the teacher's AP, parameters, GFLOPs from fvcore, CPU
   latency per image, speed-up over the teacher) and writes, under ``--output-dir``,
   ``results.json``, ``results.md`` and four pictures: ``detections.png`` (validation images
   where the teacher is right: ground truth and every model's detections), ``matches.png``
   (the teacher-student pairs of each distilled student's matcher), ``attention.png``
   (cross-attention of matched queries, teacher beside students) and ``ap_vs_iteration.png``.

The terminal shows one progress bar per stage (count, ETA, latest loss) and one line per
evaluation. Each stage's detectron2 log and config go to ``<output-dir>/<stage>/log.txt`` and
``config.yaml`` (a training's console output to ``console.txt``), the measurements' log to
``<output-dir>/log.txt``; their paths are printed.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import sys
import time
import warnings
from dataclasses import dataclass, field

import torch
from detectron2.config import LazyConfig, instantiate
from detectron2.data import DatasetCatalog, MetadataCatalog
from detectron2.evaluation import inference_on_dataset, print_csv_format

import detrdistill  # noqa: F401  (registrations)
from detrdistill.checkpoint import SHIPPED, load_init_checkpoint
from detrdistill.engine import build_model
from detrdistill.engine.machine import describe_machine, utc_now
from detrdistill.engine.train_net_cli import load_config
from detrdistill.model_zoo import get_config, list_configs
from detrdistill.tools.demo_progress import (
    CountingLoader,
    TrainingFailed,
    eval_line,
    eval_row,
    log_to_file,
    run_training,
    stage_bar,
)
from detrdistill.tools.demo_views import (
    draw_attention_figure,
    draw_detections_grid,
    draw_matches_figure,
    network_image,
    pick_images,
    plot_ap_curves,
    student_view,
)
from detrdistill.tools.flops import count_flops, parameter_counts

__all__ = [
    "PAIRS",
    "QUIET_WARNINGS",
    "DemoPair",
    "PairNotAvailable",
    "Stage",
    "eval_period",
    "format_table",
    "main",
    "pythonwarnings",
    "read_eval_history",
]

SHIPPED_PREFIX = "detrdistill://shipped/"
# Warnings that importing detectron2 / fvcore raises with recent torch and that say nothing about
# the demo: filtered by message and category (nothing else is). ``make demo`` sets them as
# PYTHONWARNINGS (:func:`pythonwarnings`), which also covers the import of the package that
# precedes this module and the training subprocesses; :func:`main` sets them in this process.
QUIET_WARNINGS = (("`torch.jit.script` is deprecated", FutureWarning),)
DISTILLED = ("DETRDistill", "D3ETR")  # the students with a teacher (matches, attention)


@dataclass(frozen=True)
class DemoPair:
    """A teacher shipped with the package and the three students the demo trains against it.

    Attributes:
        name: the ``--pair`` value.
        title: what the teacher is, for messages.
        teacher_config: packaged config of the teacher.
        teacher_weights: ``detrdistill://shipped/<file>`` weights of the teacher.
        students: ``(name, packaged config)`` of the baseline, the DETRDistill and the D3ETR
            student, in that order.
    """

    name: str
    title: str
    teacher_config: str
    teacher_weights: str
    students: tuple[tuple[str, str], ...]

    def missing(self) -> list[str]:
        """What the pair needs and this installation lacks (empty when it can run)."""
        shipped = self.teacher_weights.removeprefix(SHIPPED_PREFIX)
        missing = []
        if not self.teacher_weights.startswith(SHIPPED_PREFIX) or shipped not in SHIPPED:
            missing.append(
                f"the shipped weights {self.teacher_weights} (no entry in "
                "detrdistill.checkpoint.SHIPPED)"
            )
        packaged = set(list_configs())
        configs = [self.teacher_config, *(config for _, config in self.students)]
        absent = [config for config in configs if config not in packaged]
        if absent:
            missing.append("the packaged config(s) " + ", ".join(absent))
        return missing


PAIRS: dict[str, DemoPair] = {
    pair.name: pair
    for pair in (
        DemoPair(
            name="deformable",
            title="Deformable DETR (tiny, two-stage)",
            teacher_config="shapes/deformable_detr_tiny_teacher.py",
            teacher_weights=SHIPPED_PREFIX + "shapes_deformable_detr_tiny_teacher.pth",
            students=(
                ("baseline", "shapes/deformable_detr_nano.py"),
                ("DETRDistill", "detrdistill/shapes_deformable_nano.py"),
                ("D3ETR", "d3etr/shapes_deformable_nano.py"),
            ),
        ),
        DemoPair(
            name="conditional",
            title="Conditional DETR (tiny)",
            teacher_config="shapes/conditional_detr_tiny_teacher.py",
            teacher_weights=SHIPPED_PREFIX + "shapes_conditional_detr_tiny_teacher.pth",
            students=(
                ("baseline", "shapes/conditional_detr_nano.py"),
                ("DETRDistill", "detrdistill/shapes_conditional_nano.py"),
                ("D3ETR", "d3etr/shapes_conditional_nano.py"),
            ),
        ),
    )
}
DEFAULT_PAIR = "deformable"
# cost of an iteration relative to the baseline student, for the time left before it is measured
RELATIVE_COST = {"baseline": 1.0, "DETRDistill": 2.2, "D3ETR": 2.4}


def default_output_dir(pair: str) -> str:
    """``./output/demo`` for the default pair, ``./output/demo_<pair>`` for another."""
    return "./output/demo" if pair == DEFAULT_PAIR else f"./output/demo_{pair}"


class PairNotAvailable(LookupError):
    """A ``--pair`` whose teacher or students are not in this installation."""


def resolve_pair(name: str) -> DemoPair:
    """The pair called ``name``, checked to be runnable.

    Raises:
        PairNotAvailable: unknown name, or something it needs is missing (named).
    """
    if name not in PAIRS:
        raise PairNotAvailable(f"unknown pair {name!r}; the pairs are {', '.join(PAIRS)}")
    pair = PAIRS[name]
    missing = pair.missing()
    if missing:
        runnable = [p for p in PAIRS if not PAIRS[p].missing()]
        raise PairNotAvailable(
            f"--pair {name}: the shipped {pair.title} teacher is not available yet: missing "
            + "; ".join(missing)
            + f". Runnable pairs: {', '.join(runnable) or 'none'}."
        )
    return pair


def pythonwarnings() -> str:
    """:data:`QUIET_WARNINGS` in the ``PYTHONWARNINGS`` syntax (``action:message:category``)."""
    return ",".join(f"ignore:{msg}:{cat.__name__}" for msg, cat in QUIET_WARNINGS)


@dataclass
class Stage:
    """One training run of the demo."""

    name: str
    config: str
    output_dir: str
    iters: int
    opts: list[str] = field(default_factory=list)

    def overrides(self) -> list[str]:
        """Every ``key=value`` given to ``train_net.py``."""
        return [f"train.output_dir={self.output_dir}", f"train.max_iter={self.iters}", *self.opts]

    def command(self) -> list[str]:
        return [sys.executable, "train_net.py", "--config-file", self.config, *self.overrides()]


def read_eval_history(output_dir: str, max_iter: int) -> list[dict]:
    """The COCO box metrics of every evaluation of a run, from its ``metrics.json``
    (iterations as in :func:`~detrdistill.tools.demo_progress.eval_row`).

    Returns:
        list of ``{"iteration", "AP", "AP50", "AP75"}`` (iterations finished), in order.

    Raises:
        FileNotFoundError / ValueError naming the file when it is missing or has no evaluation.
    """
    path = os.path.join(output_dir, "metrics.json")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path} does not exist: did the run in {output_dir} train?")
    with open(path) as f:
        history = [row for line in f if (row := eval_row(json.loads(line), max_iter))]
    if not history:
        raise ValueError(f"{path} has no bbox evaluation")
    return history


def eval_period(iters: int, evals: int) -> int:
    """A ``train.eval_period`` giving ``evals`` evaluations, evenly spaced, the last one at
    ``iters`` (detectron2 evaluates at the multiples of the period below ``iters`` and after the
    last iteration); ``evals + 1`` where that is impossible, all ``iters`` when ``evals >=
    iters``."""
    period = max(1, -(-iters // evals))
    if period > 1 and len(range(period, iters, period)) + 1 < evals:
        period = max(1, (iters - 1) // (evals - 1))
    return period


def format_table(rows: list[dict]) -> str:
    """Markdown table of the demo's rows; the first row is the teacher, whose AP and latency
    the "% of teacher AP" and "speed-up" columns divide by."""
    teacher = rows[0]
    lines = [
        "| model | iterations | AP | AP50 | AP75 | % of teacher AP | params (M) | GFLOPs | "
        "CPU latency (ms/img) | speed-up vs teacher |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        share = 100.0 * row["AP"] / teacher["AP"] if teacher["AP"] > 0 else float("nan")
        speed = teacher["latency_ms"] / row["latency_ms"]
        lines.append(
            f"| {row['name']} | {row['iterations']} | {row['AP']:.1f} | {row['AP50']:.1f} | "
            f"{row['AP75']:.1f} | {share:.0f}% | {row['params_m']:.2f} | {row['gflops']:.2f} | "
            f"{row['latency_ms']:.1f} | {speed:.1f}x |"
        )
    return "\n".join(lines)


def load_trained(config: str, checkpoint: str, opts: list[str] = ()) -> torch.nn.Module:
    """A config's model with a checkpoint of it loaded, in eval mode on the CPU."""
    model = build_model(LazyConfig.apply_overrides(get_config(config), list(opts)))
    load_init_checkpoint(model, checkpoint, strict=True)
    return model.eval()


@torch.no_grad()
def latency_per_image(model: torch.nn.Module, inputs: list[dict], warmup: int = 3) -> float:
    """Median seconds of ``model([input])`` (preprocessing to boxes) over ``inputs``."""
    for item in inputs[:warmup]:
        model([item])
    times = []
    for item in inputs:
        begin = time.perf_counter()
        model([item])
        times.append(time.perf_counter() - begin)
    return statistics.median(times)


class Screen:
    """What the demo prints: to the terminal stream it was started with."""

    def __init__(self, stream):
        self.stream = stream

    def say(self, text: str = "") -> None:
        print(text, file=self.stream, flush=True)

    def files(self, stage_dir: str, console: bool = False) -> None:
        names = ["log.txt", "config.yaml"] + (["console.txt"] if console else [])
        self.say("      " + "  ".join(os.path.join(stage_dir, n) for n in names))


@torch.no_grad()
def evaluate_teacher(pair: DemoPair, opts: list[str], stage_dir: str, screen: Screen):
    """Evaluate the shipped teacher in this process; its log and config go to ``stage_dir``.

    Returns:
        ``(teacher model, test config, {"AP", "AP50", "AP75", ...})``.
    """
    cfg = load_config(pair.teacher_config, opts)
    cfg.train.output_dir = stage_dir
    os.makedirs(stage_dir, exist_ok=True)
    LazyConfig.save(cfg, os.path.join(stage_dir, "config.yaml"))
    with log_to_file(os.path.join(stage_dir, "log.txt")):
        model = build_model(cfg)
        load_init_checkpoint(model, pair.teacher_weights, strict=True)
        model.eval()
        loader = instantiate(cfg.dataloader.test)
        evaluator = instantiate(cfg.dataloader.evaluator)
        with stage_bar("teacher", len(loader), screen.stream, unit="img") as bar:
            results = inference_on_dataset(model, CountingLoader(loader, bar), evaluator)
        print_csv_format(results)
    return model, cfg, results["bbox"]


def _stage_dir(out: str, name: str) -> str:
    return os.path.join(out, name.lower())


def build_parser() -> argparse.ArgumentParser:
    lines = __doc__.splitlines()
    parser = argparse.ArgumentParser(
        prog="python -m detrdistill.demo",
        description=lines[0],
        epilog="\n".join(lines[1:]),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--pair",
        default=DEFAULT_PAIR,
        metavar="|".join(PAIRS),
        help=f"teacher and students ({', '.join(PAIRS)}; default {DEFAULT_PAIR})",
    )
    parser.add_argument(
        "--iters",
        "--student-iters",
        dest="iters",
        type=int,
        default=500,
        help="training iterations of each student",
    )
    parser.add_argument("--evals", type=int, default=6, help="evaluations of each student")
    parser.add_argument(
        "--output-dir",
        default=None,
        help="where logs, results and pictures go (default ./output/demo for the default pair, "
        "./output/demo_<pair> for another, so that runs of two pairs do not overwrite each other)",
    )
    parser.add_argument(
        "--latency-images", type=int, default=40, help="validation images timed per model"
    )
    parser.add_argument(
        "--skip-training",
        action="store_true",
        help="reuse the students an earlier run left in --output-dir (model_final.pth, "
        "metrics.json): evaluate the teacher, measure, draw and print the table only",
    )
    parser.add_argument(
        "opts", nargs=argparse.REMAINDER, help="key=value overrides for every run (e.g. data)"
    )
    return parser


def _student_stages(pair: DemoPair, args) -> list[Stage]:
    opts = [f"train.eval_period={eval_period(args.iters, args.evals)}", "train.seed=0"]
    opts.append(f"train.log_period={max(1, min(10, args.iters // 50))}")
    stages = []
    for name, config in pair.students:
        teacher = [f"model.teacher_weights={pair.teacher_weights}"] if name != "baseline" else []
        stage_opts = opts + teacher + list(args.opts)
        stages.append(
            Stage(name, config, _stage_dir(args.output_dir, name), args.iters, stage_opts)
        )
    return stages


def _time_left(stages: list[Stage], done: int, seconds: float) -> float:
    """Seconds the stages after ``done`` should take, from the speed of stage ``done``."""
    cost = {s.name: s.iters * RELATIVE_COST.get(s.name, 1.0) for s in stages}
    per_unit = seconds / cost[stages[done].name]
    return per_unit * sum(cost[s.name] for s in stages[done + 1 :])


def train_students(stages: list[Stage], screen: Screen, first_number: int, total: int):
    """Run the student trainings one after the other; returns their evaluation histories."""
    histories = {}
    env = dict(os.environ, PYTHONWARNINGS=pythonwarnings())
    for index, stage in enumerate(stages):
        shutil.rmtree(stage.output_dir, ignore_errors=True)  # metrics.json and log.txt append
        command = stage.command()
        screen.say(f"[{first_number + index}/{total}] {stage.name}: python {' '.join(command[1:])}")
        screen.files(stage.output_dir, console=True)
        begin = time.perf_counter()
        histories[stage.name] = run_training(
            stage.name, command, stage.output_dir, stage.iters, screen.stream, env=env
        )
        seconds = time.perf_counter() - begin
        left = _time_left(stages, index, seconds)
        more = f"; about {left / 60:.1f} min of training left" if left > 0 else ""
        screen.say(f"      {stage.name} done in {seconds / 60:.1f} min{more}")
    return histories


def _reuse_students(stages: list[Stage], parser) -> dict[str, list[dict]]:
    """The evaluation histories of students trained earlier, checked to exist and to have run
    ``--iters`` iterations (exit code 2 otherwise)."""
    histories = {}
    for stage in stages:
        checkpoint = os.path.join(stage.output_dir, "model_final.pth")
        config = os.path.join(stage.output_dir, "config.yaml")
        if not (os.path.isfile(checkpoint) and os.path.isfile(config)):
            parser.error(f"--skip-training: {checkpoint} or {config} does not exist (train first)")
        trained = int(LazyConfig.load(config).train.max_iter)
        if trained != stage.iters:
            parser.error(
                f"--skip-training: {stage.output_dir} trained {trained} iterations, not "
                f"--iters {stage.iters}; pass --iters {trained}"
            )
        histories[stage.name] = read_eval_history(stage.output_dir, stage.iters)
    return histories


def _test_inputs(test_cfg, count: int) -> list[dict]:
    inputs = []
    for batch in instantiate(test_cfg.dataloader.test):
        inputs += batch
        if len(inputs) >= count:
            break
    return inputs[:count]


def measure_and_draw(args, stages: list[Stage], teacher, test_cfg, screen: Screen):
    """Parameters, GFLOPs and latency of every model, and three pictures (the log goes to
    ``<output-dir>/log.txt``).

    Returns:
        ``(rows without AP, {picture name: path}, (h, w) of the timed inputs)``.
    """
    out = args.output_dir
    models = {"teacher": teacher}
    with log_to_file(os.path.join(out, "log.txt")):
        for stage in stages:
            model_opts = [o for o in stage.opts if o.startswith(("model.", "train.device"))]
            checkpoint = os.path.join(stage.output_dir, "model_final.pth")
            models[stage.name] = load_trained(stage.config, checkpoint, model_opts)
        detectors = {name: getattr(m, "student", m) for name, m in models.items()}
        inputs = _test_inputs(test_cfg, args.latency_images)
        height, width = (int(v) for v in inputs[0]["image"].shape[-2:])
        rows = []
        with stage_bar("measure", len(detectors) + 3, screen.stream, unit="steps") as bar:
            for name, detector in detectors.items():
                rows.append(
                    {
                        "name": name,
                        "params_m": parameter_counts(detector)["total"] / 1e6,
                        "gflops": count_flops(detector, height, width).gflops,
                        "latency_ms": 1e3 * latency_per_image(detector, inputs),
                    }
                )
                bar.update()
            dataset = test_cfg.dataloader.test.dataset.name
            names = MetadataCatalog.get(dataset).thing_classes
            records = {r["file_name"]: r for r in DatasetCatalog.get(dataset)}
            items = pick_images(detectors["teacher"], inputs, records, count=2)
            pictures = {
                "detections": draw_detections_grid(
                    detectors, items, records, names, os.path.join(out, "detections.png")
                )
            }
            bar.update()
            views = [student_view(name, models[name], items[0]) for name in DISTILLED]
            input_format = test_cfg.model.get("input_format", "RGB")
            image = network_image(items[0], input_format, tuple(items[0]["image"].shape[-2:]))
            pictures["matches"] = draw_matches_figure(
                image, views, names, os.path.join(out, "matches.png")
            )
            bar.update()
            pictures["attention"] = draw_attention_figure(
                image, views, names, os.path.join(out, "attention.png")
            )
            bar.update()
    return rows, pictures, (height, width)


def main(argv: list[str] | None = None) -> dict:
    for message, category in QUIET_WARNINGS:
        warnings.filterwarnings("ignore", message=re.escape(message), category=category)
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.output_dir is None:
        args.output_dir = default_output_dir(args.pair)
    if min(args.iters, args.evals, args.latency_images) < 1:
        parser.error("--iters, --evals and --latency-images must be >= 1")
    try:
        pair = resolve_pair(args.pair)
    except PairNotAvailable as error:
        parser.error(str(error))
    if not args.skip_training and not os.path.isfile("train_net.py"):
        parser.error("run the demo from the repository root (it calls ./train_net.py)")
    screen = Screen(sys.stdout)
    out = args.output_dir
    stages = _student_stages(pair, args)
    reused = _reuse_students(stages, parser) if args.skip_training else None
    total = 1 + len(stages)
    start = time.perf_counter()
    screen.say(
        f"DETRDistill demo, pair {pair.name!r}: the shipped {pair.title} teacher and "
        f"{len(stages)} students ({args.iters} iterations, {args.evals} evaluations each)"
    )
    screen.say(f"logs and configs of every stage: {out}/<stage>/\n")

    teacher_dir = _stage_dir(out, "teacher")
    shutil.rmtree(teacher_dir, ignore_errors=True)
    screen.say(f"[1/{total}] teacher: evaluating {pair.teacher_weights} (no training)")
    screen.files(teacher_dir)
    teacher, test_cfg, teacher_eval = evaluate_teacher(pair, args.opts, teacher_dir, screen)
    screen.say(eval_line("teacher", teacher_eval))

    if reused is not None:
        screen.say(f"--skip-training: reusing the students in {out}")
        histories = reused
    else:
        try:
            histories = train_students(stages, screen, 2, total)
        except TrainingFailed as error:
            screen.say(f"\n{error}")
            raise SystemExit(1) from error

    screen.say(f"measuring parameters, GFLOPs and latency, drawing; log {out}/log.txt")
    rows, pictures, (height, width) = measure_and_draw(args, stages, teacher, test_cfg, screen)
    pictures["ap_vs_iteration"] = plot_ap_curves(
        histories, teacher_eval["AP"], os.path.join(out, "ap_vs_iteration.png")
    )
    teacher_iters = int(get_config(pair.teacher_config).train.max_iter)
    for row in rows:
        final = teacher_eval if row["name"] == "teacher" else histories[row["name"]][-1]
        row["iterations"] = teacher_iters if row["name"] == "teacher" else args.iters
        row.update({key: float(final[key]) for key in ("AP", "AP50", "AP75")})
    rows = [{key: row[key] for key in _ROW_KEYS} for row in rows]

    table = format_table(rows)
    elapsed = time.perf_counter() - start
    result = {
        "date": utc_now(),
        "machine": describe_machine(),
        "pair": pair.name,
        "teacher": pair.teacher_weights,
        "rows": rows,
        "histories": histories,
        "student_iters": args.iters,
        "evals": args.evals,
        "seconds": elapsed,
        "latency_input": [height, width],
        "pictures": pictures,
        "logs": {
            name: {f: os.path.join(_stage_dir(out, name), f) for f in ("log.txt", "config.yaml")}
            for name in ["teacher", *(s.name for s in stages)]
        },
    }
    with open(os.path.join(out, "results.json"), "w") as f:
        json.dump(result, f, indent=2)
    with open(os.path.join(out, "results.md"), "w") as f:
        f.write(table + "\n")
    dataset = test_cfg.dataloader.test.dataset.name
    screen.say(f"\nDETRDistill demo, pair {pair.name!r}, evaluated on {dataset}\n")
    screen.say(table)
    screen.say(
        f"\nlatency: batch 1, {height}x{width}, {torch.get_num_threads()} CPU threads; "
        f"total {elapsed / 60:.1f} min"
    )
    screen.say("pictures: " + ", ".join(pictures.values()))
    screen.say(f"results: {os.path.join(out, 'results.json')}, {os.path.join(out, 'results.md')}")
    return result


_ROW_KEYS = ("name", "iterations", "AP", "AP50", "AP75", "params_m", "gflops", "latency_ms")


if __name__ == "__main__":
    main(sys.argv[1:])
