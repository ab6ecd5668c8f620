"""The main job on the embedded dataset: compression you can see, in about ten minutes.

    python -m detrdistill.demo [--student-iters 500] [--evals 6]

``make demo`` runs this from the repository root, on the CPU. It

1. takes the teacher shipped with the package (the tiny two-stage Deformable DETR, 4.29 M
   parameters, AP 78.4 on ``shapes_val``; ``detrdistill://shipped/...``, sha256 checked) and
   evaluates it: no teacher training;
2. trains three students with 4x fewer GFLOPs (``shapes/deformable_detr_nano.py``) on the same
   ``--student-iters`` schedule and seed: the baseline, DETRDistill
   (``detrdistill/shapes_deformable_nano.py``, all three losses) and D3ETR
   (``d3etr/shapes_deformable_nano.py``, MixMatcher with attention), each evaluated ``--evals``
   times;
3. prints one table (AP, AP50, AP75, % of the teacher's AP, parameters, GFLOPs from fvcore, CPU
   latency per image, speed-up over the teacher) and writes ``results.json``, ``results.md``,
   ``ap_vs_iteration.png`` (AP of the students against the iteration, the teacher's as a line)
   and ``detections.png`` (the validation image where the teacher is most right: ground truth,
   the teacher's and each student's detections, and the teacher-DETRDistill student matched
   pairs).

Every training runs as ``python train_net.py ...`` (the command is printed) and shows
detectron2's own ETA; between stages the demo prints the time left for the whole job.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field

import torch
from detectron2.config import LazyConfig, instantiate
from detectron2.data import DatasetCatalog, MetadataCatalog
from detectron2.data.detection_utils import read_image
from detectron2.structures import BoxMode
from torchvision.ops import box_iou

import detrdistill  # noqa: F401  (registrations)
from detrdistill.checkpoint import load_init_checkpoint
from detrdistill.engine import build_model, do_test
from detrdistill.engine.machine import describe_machine, utc_now
from detrdistill.model_zoo import get_config
from detrdistill.scripts.distill_views import (
    draw_matched_pairs,
    find_matcher,
    match_layer,
    run_teacher_and_student,
)
from detrdistill.scripts.drawing import draw_box, draw_title, grid_figure, save_figure, show_image
from detrdistill.scripts.flops import count_flops, parameter_counts
from detrdistill.scripts.visualize_detections import draw_instances

__all__ = [
    "STUDENTS",
    "Stage",
    "eval_period",
    "format_table",
    "main",
    "read_eval_history",
]

TEACHER_CONFIG = "shapes/deformable_detr_tiny_teacher.py"
TEACHER_WEIGHTS = "detrdistill://shipped/shapes_deformable_detr_tiny_teacher.pth"
# (name, config): the students, all with the nano architecture (4x fewer GFLOPs than the teacher)
STUDENTS = (
    ("baseline", "shapes/deformable_detr_nano.py"),
    ("DETRDistill", "detrdistill/shapes_deformable_nano.py"),
    ("D3ETR", "d3etr/shapes_deformable_nano.py"),
)
# cost of an iteration relative to the baseline student, for the ETA before it is measured
RELATIVE_COST = {"baseline": 1.0, "DETRDistill": 2.2, "D3ETR": 2.4}
SCORE_THRESHOLD = 0.3  # detections and matched pairs drawn in the picture


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
    """The COCO box metrics of every evaluation of a run, from its ``metrics.json``.

    detectron2 logs a periodic evaluation at the last finished iteration's 0-based index and
    the final one at ``max_iter``; both become the number of finished iterations here.

    Returns:
        list of ``{"iteration", "AP", "AP50", "AP75"}`` (iterations finished), in order.

    Raises:
        FileNotFoundError / ValueError naming the file when it is missing or has no evaluation.
    """
    path = os.path.join(output_dir, "metrics.json")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path} does not exist: did the run in {output_dir} train?")
    history = []
    with open(path) as f:
        for line in f:
            row = json.loads(line)
            if "bbox/AP" in row:
                history.append(
                    {
                        "iteration": min(int(row["iteration"]) + 1, max_iter),
                        **{k: float(row[f"bbox/{k}"]) for k in ("AP", "AP50", "AP75")},
                    }
                )
    if not history:
        raise ValueError(f"{path} has no bbox evaluation")
    return history


class Progress:
    """Time left for the whole demo, from the measured seconds per (relative) iteration."""

    def __init__(self, stages: list[Stage]):
        self.stages = stages
        self.start = time.perf_counter()

    def _units(self, stage: Stage) -> float:
        return stage.iters * RELATIVE_COST.get(stage.name, 1.0)

    def stage_done(self, index: int, seconds: float) -> None:
        stage = self.stages[index]
        seconds_per_unit = seconds / self._units(stage)  # incl. start-up and evaluations
        left = sum(self._units(s) for s in self.stages[index + 1 :]) * seconds_per_unit
        elapsed = time.perf_counter() - self.start
        print(
            f"[demo] {stage.name} done in {seconds / 60:.1f} min; elapsed {elapsed / 60:.1f} min, "
            f"about {left / 60:.1f} min of training left (+ about 1 min of measurements)",
            flush=True,
        )


def run_stage(stage: Stage) -> float:
    """Run one ``train_net.py`` training; returns its wall time in seconds."""
    command = stage.command()
    print("[demo] " + " ".join(command[1:]), flush=True)
    begin = time.perf_counter()
    result = subprocess.run(command, check=False)
    if result.returncode != 0:
        raise RuntimeError(
            f"training {stage.name} failed (exit {result.returncode}); its log is "
            f"{os.path.join(stage.output_dir, 'log.txt')}"
        )
    return time.perf_counter() - begin


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


def eval_period(iters: int, evals: int) -> int:
    """An evaluation period giving at least ``evals`` evaluations in ``iters`` iterations (the
    last one at ``iters``)."""
    return max(1, iters // evals)


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


def plot_ap_curves(histories: dict[str, list[dict]], teacher_ap: float, path: str) -> str:
    """AP against iteration for each student, with the teacher's AP as a dashed line."""
    fig, axes = grid_figure(1, 1, panel_inches=5.0)
    ax = axes[0, 0]
    for name, history in histories.items():
        iters = [h["iteration"] for h in history]
        ax.plot(iters, [h["AP"] for h in history], marker="o", label=name)
    ax.axhline(teacher_ap, color="black", linestyle="--", label=f"teacher ({teacher_ap:.1f})")
    ax.set_xlabel("iteration")
    ax.set_ylabel("box AP (shapes_val)")
    ax.set_title("Students on the same schedule")
    ax.grid(alpha=0.3)
    ax.legend(loc="center left")
    fig.subplots_adjust(left=0.14, right=0.97, top=0.92, bottom=0.1)
    return save_figure(fig, path)


def _confident(instances):
    return instances[instances.scores >= SCORE_THRESHOLD]


@torch.no_grad()
def teacher_recall(teacher: torch.nn.Module, item: dict, record: dict) -> float:
    """Share of an image's ground-truth boxes the teacher finds (a detection of the same class
    with score >= SCORE_THRESHOLD and IoU >= 0.5)."""
    instances = _confident(teacher([item])[0]["instances"].to("cpu"))
    objects = record["annotations"]
    if not objects:
        return 0.0
    gt = torch.tensor(
        [BoxMode.convert(o["bbox"], o["bbox_mode"], BoxMode.XYXY_ABS) for o in objects],
        dtype=torch.float32,
    )
    labels = torch.tensor([o["category_id"] for o in objects])
    if len(instances) == 0:
        return 0.0
    iou = box_iou(gt, instances.pred_boxes.tensor)  # (G, D)
    same = labels[:, None] == instances.pred_classes[None, :]
    return float(((iou >= 0.5) & same).any(1).float().mean())


def pick_picture_image(teacher: torch.nn.Module, inputs: list[dict], records: dict) -> dict:
    """The validation image to draw: the one where the teacher is most right (recall, then the
    number of objects), among the first 20 with at least 3 objects."""
    candidates = [x for x in inputs[:20] if len(records[x["file_name"]]["annotations"]) >= 3]
    candidates = candidates or inputs[:1]

    def score(item):
        record = records[item["file_name"]]
        return teacher_recall(teacher, item, record), len(record["annotations"])

    return max(candidates, key=score)


def draw_demo_picture(
    models: dict[str, torch.nn.Module], distill_model, item: dict, record: dict, names, path: str
) -> str:
    """One validation image: ground truth, each model's detections, and matched pairs.

    Args:
        models: name -> detector (eval mode), drawn in order in panels 2-5.
        distill_model: the DETRDistill ``DistillationDetector`` (teacher + student).
        item: the test mapper's input dict of the image.
        record: the image's dataset dict (``annotations``).
        names: class names.
        path: PNG to write.
    """
    image = read_image(item["file_name"], format="RGB")
    fig, axes = grid_figure(2, 3, panel_inches=4.0)
    panels = list(axes.flat)
    show_image(panels[0], image)
    for obj in record["annotations"]:
        box = BoxMode.convert(obj["bbox"], obj["bbox_mode"], BoxMode.XYXY_ABS)
        draw_box(panels[0], box, "#404040", names[obj["category_id"]])
    draw_title(panels[0], "ground truth")
    with torch.no_grad():
        for ax, (name, model) in zip(panels[1:5], models.items()):
            show_image(ax, image)
            instances = _confident(model([item])[0]["instances"].to("cpu"))
            draw_instances(ax, instances, names)
            draw_title(ax, f"{name}: {len(instances)} boxes >= {SCORE_THRESHOLD}")
        teacher_out, student_out = run_teacher_and_student(distill_model, [item])
        matcher, _ = find_matcher(distill_model)
        last_s = student_out.decoder.num_layers - 1
        last_t = teacher_out.decoder.num_layers - 1
        pairs = match_layer(distill_model, teacher_out, student_out, last_s, last_t, matcher)
    pairs = [p for p in pairs if p.teacher_score >= SCORE_THRESHOLD]
    show_image(panels[5], image)
    draw_matched_pairs(panels[5], pairs, names)
    draw_title(panels[5], f"teacher (T) - DETRDistill student (S): {len(pairs)} pairs")
    return save_figure(fig, path)


def build_parser() -> argparse.ArgumentParser:
    lines = __doc__.splitlines()
    parser = argparse.ArgumentParser(
        prog="python -m detrdistill.demo",
        description=lines[0],
        epilog="\n".join(lines[1:]),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--student-iters", type=int, default=500)
    parser.add_argument("--evals", type=int, default=6, help="evaluations of each student")
    parser.add_argument("--output-dir", default="./output/demo")
    parser.add_argument(
        "--latency-images", type=int, default=40, help="validation images timed per model"
    )
    parser.add_argument(
        "opts", nargs=argparse.REMAINDER, help="key=value overrides for every run (e.g. data)"
    )
    return parser


def main(argv: list[str] | None = None) -> dict:
    parser = build_parser()
    args = parser.parse_args(argv)
    if min(args.student_iters, args.evals, args.latency_images) < 1:
        parser.error("--student-iters, --evals and --latency-images must be >= 1")
    if not os.path.isfile("train_net.py"):
        parser.error("run the demo from the repository root (it calls ./train_net.py)")
    out = args.output_dir
    period = eval_period(args.student_iters, args.evals)
    student_opts = [f"train.eval_period={period}", "train.seed=0", *args.opts]
    students = [
        Stage(
            name,
            config,
            os.path.join(out, name.lower()),
            args.student_iters,
            student_opts
            + ([f"model.teacher_weights={TEACHER_WEIGHTS}"] if name != "baseline" else []),
        )
        for name, config in STUDENTS
    ]
    progress = Progress(students)
    print(f"[demo] teacher: {TEACHER_WEIGHTS} (shipped, no training)", flush=True)
    for index, stage in enumerate(students):
        progress.stage_done(index, run_stage(stage))

    print("[demo] measuring parameters, FLOPs and latency; drawing the pictures", flush=True)
    histories = {s.name: read_eval_history(s.output_dir, s.iters) for s in students}
    test_cfg = LazyConfig.apply_overrides(get_config(TEACHER_CONFIG), list(args.opts))
    models = {"teacher": load_trained(TEACHER_CONFIG, TEACHER_WEIGHTS, args.opts)}
    teacher_eval = do_test(test_cfg, models["teacher"])["bbox"]
    for stage in students:
        model_opts = [o for o in stage.opts if o.startswith(("model.", "train.device"))]
        checkpoint = os.path.join(stage.output_dir, "model_final.pth")
        models[stage.name] = load_trained(stage.config, checkpoint, model_opts)
    distill_model = models["DETRDistill"]
    detectors = {name: getattr(m, "student", m) for name, m in models.items()}

    test_loader = instantiate(test_cfg.dataloader.test)
    inputs = []
    for batch in test_loader:
        inputs += batch
        if len(inputs) >= args.latency_images:
            break
    height, width = inputs[0]["image"].shape[-2:]
    rows = []
    for name, detector in detectors.items():
        final = teacher_eval if name == "teacher" else histories[name][-1]
        rows.append(
            {
                "name": name,
                "iterations": 4000 if name == "teacher" else args.student_iters,
                "AP": final["AP"],
                "AP50": final["AP50"],
                "AP75": final["AP75"],
                "params_m": parameter_counts(detector)["total"] / 1e6,
                "gflops": count_flops(detector, int(height), int(width)).gflops,
                "latency_ms": 1e3 * latency_per_image(detector, inputs),
            }
        )
    dataset = test_cfg.dataloader.test.dataset.name
    names = MetadataCatalog.get(dataset).thing_classes
    records = {r["file_name"]: r for r in DatasetCatalog.get(dataset)}
    item = pick_picture_image(detectors["teacher"], inputs, records)
    picture = draw_demo_picture(
        detectors,
        distill_model,
        item,
        records[item["file_name"]],
        names,
        os.path.join(out, "detections.png"),
    )
    plot = plot_ap_curves(histories, teacher_eval["AP"], os.path.join(out, "ap_vs_iteration.png"))

    table = format_table(rows)
    elapsed = time.perf_counter() - progress.start
    result = {
        "date": utc_now(),
        "machine": describe_machine(),
        "rows": rows,
        "histories": histories,
        "teacher": TEACHER_WEIGHTS,
        "student_iters": args.student_iters,
        "seconds": elapsed,
        "latency_input": [int(height), int(width)],
    }
    with open(os.path.join(out, "results.json"), "w") as f:
        json.dump(result, f, indent=2)
    with open(os.path.join(out, "results.md"), "w") as f:
        f.write(table + "\n")
    print("\nDETRDistill demo on the embedded shapes dataset (shapes_val, 200 images)\n")
    print(table)
    print(
        f"\nlatency: batch 1, {int(height)}x{int(width)}, {torch.get_num_threads()} CPU threads; "
        f"total {elapsed / 60:.1f} min"
    )
    print(f"wrote {plot}, {picture}, {os.path.join(out, 'results.json')}")
    return result


if __name__ == "__main__":
    main(sys.argv[1:])
