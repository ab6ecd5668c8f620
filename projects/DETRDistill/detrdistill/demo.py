"""The main job on the embedded dataset: a teacher, three students, one table, two pictures.

    python -m detrdistill.demo [--teacher-iters 800] [--student-iters 300] [--eval-every 150]

``make demo`` runs this from the repository root, on the CPU. It

1. trains the teacher (the tiny two-stage Deformable DETR, ``--teacher-iters`` iterations), or
   reuses the one in ``<output>/teacher`` when its config and the package's code are unchanged
   (a hash of both is kept next to the checkpoint);
2. trains three students on the same ``--student-iters`` schedule and seed: the baseline
   (``shapes/deformable_detr_tiny.py``), DETRDistill (``detrdistill/shapes_deformable_tiny.py``,
   all three losses) and D3ETR (``d3etr/shapes_deformable_tiny.py``, MixMatcher with attention),
   each evaluated every ``--eval-every`` iterations;
3. prints one table (AP, AP50, AP75, parameters, GFLOPs from fvcore, CPU latency per image) and
   writes ``results.json``, ``results.md``, ``ap_vs_iteration.png`` (AP of the students against
   the iteration) and ``detections.png`` (one validation image: ground truth, the teacher's and
   each student's detections, and the teacher-DETRDistill student matched pairs).

Every training runs as ``python train_net.py ...`` (the command is printed) and shows
detectron2's own ETA; between stages the demo prints the time left for the whole job.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field

import torch
from detectron2.checkpoint import DetectionCheckpointer
from detectron2.config import LazyConfig, instantiate
from detectron2.data import DatasetCatalog, MetadataCatalog
from detectron2.data.detection_utils import read_image
from detectron2.structures import BoxMode
from omegaconf import OmegaConf

import detrdistill  # noqa: F401  (registrations)
from detrdistill.engine import build_model
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
    "format_table",
    "is_cached",
    "main",
    "read_eval_history",
    "teacher_cache_key",
]

TEACHER_CONFIG = "shapes/deformable_detr_tiny.py"
# (name, config): the students, all with the tiny architecture of TEACHER_CONFIG
STUDENTS = (
    ("baseline", "shapes/deformable_detr_tiny.py"),
    ("DETRDistill", "detrdistill/shapes_deformable_tiny.py"),
    ("D3ETR", "d3etr/shapes_deformable_tiny.py"),
)
# cost of an iteration relative to the baseline student, for the ETA before it is measured
RELATIVE_COST = {"teacher": 1.0, "baseline": 1.0, "DETRDistill": 1.5, "D3ETR": 1.7}
CACHE_KEY_FILE = "demo_cache_key.txt"
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


def _package_sources() -> list[str]:
    """Every ``.py`` file of the package but this one (which does not change the teacher)."""
    root = os.path.dirname(os.path.abspath(detrdistill.__file__))
    files = []
    for folder, _, names in os.walk(root):
        files += [os.path.join(folder, n) for n in names if n.endswith(".py")]
    return sorted(f for f in files if os.path.abspath(f) != os.path.abspath(__file__))


def teacher_cache_key(stage: Stage) -> str:
    """sha256 of the teacher's full config (after overrides) and of every ``.py`` file of the
    package but the demo itself (code and packaged configs), plus the torch version."""
    cfg = LazyConfig.apply_overrides(get_config(stage.config), stage.overrides())
    digest = hashlib.sha256()
    digest.update(OmegaConf.to_yaml(cfg).encode())
    digest.update(torch.__version__.encode())
    root = os.path.dirname(os.path.abspath(detrdistill.__file__))
    for path in _package_sources():
        digest.update(os.path.relpath(path, root).encode())
        with open(path, "rb") as f:
            digest.update(f.read())
    return digest.hexdigest()


def is_cached(checkpoint: str, key_file: str, key: str) -> bool:
    """Whether ``checkpoint`` exists and ``key_file`` holds ``key`` (same config and code)."""
    if not (os.path.isfile(checkpoint) and os.path.isfile(key_file)):
        return False
    with open(key_file) as f:
        return f.read().strip() == key


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
    DetectionCheckpointer(model).load(checkpoint)
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


def format_table(rows: list[dict]) -> str:
    """Markdown table of the demo's rows (name, AP, AP50, AP75, params, GFLOPs, latency)."""
    lines = [
        "| model | iterations | AP | AP50 | AP75 | params (M) | GFLOPs | CPU latency (ms/img) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        lines.append(
            f"| {row['name']} | {row['iterations']} | {row['AP']:.1f} | {row['AP50']:.1f} | "
            f"{row['AP75']:.1f} | {row['params_m']:.2f} | {row['gflops']:.2f} | "
            f"{row['latency_ms']:.1f} |"
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
    ax.legend(loc="lower right")
    fig.subplots_adjust(left=0.14, right=0.97, top=0.92, bottom=0.1)
    return save_figure(fig, path)


def _confident(instances):
    return instances[instances.scores >= SCORE_THRESHOLD]


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
    parser.add_argument("--teacher-iters", type=int, default=800)
    parser.add_argument("--student-iters", type=int, default=300)
    parser.add_argument("--eval-every", type=int, default=150, help="student evaluations")
    parser.add_argument("--output-dir", default="./output/demo")
    parser.add_argument("--retrain-teacher", action="store_true", help="ignore a cached teacher")
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
    if min(args.teacher_iters, args.student_iters, args.eval_every, args.latency_images) < 1:
        parser.error("iteration counts, --eval-every and --latency-images must be >= 1")
    if not os.path.isfile("train_net.py"):
        parser.error("run the demo from the repository root (it calls ./train_net.py)")
    out = args.output_dir
    teacher_dir = os.path.join(out, "teacher")
    teacher_ckpt = os.path.join(teacher_dir, "model_final.pth")
    teacher_opts = ["train.eval_period=0", *args.opts]
    teacher = Stage("teacher", TEACHER_CONFIG, teacher_dir, args.teacher_iters, teacher_opts)
    student_opts = [f"train.eval_period={args.eval_every}", "train.seed=0", *args.opts]
    students = [
        Stage(
            name,
            config,
            os.path.join(out, name.lower()),
            args.student_iters,
            student_opts
            + ([f"model.teacher_weights={teacher_ckpt}"] if name != "baseline" else []),
        )
        for name, config in STUDENTS
    ]

    key = teacher_cache_key(teacher)
    key_file = os.path.join(teacher_dir, CACHE_KEY_FILE)
    cached = not args.retrain_teacher and is_cached(teacher_ckpt, key_file, key)
    stages = students if cached else [teacher, *students]
    progress = Progress(stages)
    if cached:
        print(f"[demo] reusing the teacher in {teacher_dir} (config and code unchanged)")
    for index, stage in enumerate(stages):
        seconds = run_stage(stage)
        if stage is teacher:
            with open(key_file, "w") as f:
                f.write(key + "\n")
        progress.stage_done(index, seconds)

    print("[demo] measuring parameters, FLOPs and latency; drawing the pictures", flush=True)
    histories = {s.name: read_eval_history(s.output_dir, s.iters) for s in students}
    teacher_eval = read_eval_history(teacher_dir, args.teacher_iters)[-1]
    models = {"teacher": load_trained(TEACHER_CONFIG, teacher_ckpt, args.opts)}
    for stage in students:
        model_opts = [o for o in stage.opts if o.startswith(("model.", "train.device"))]
        checkpoint = os.path.join(stage.output_dir, "model_final.pth")
        models[stage.name] = load_trained(stage.config, checkpoint, model_opts)
    distill_model = models["DETRDistill"]
    detectors = {name: getattr(m, "student", m) for name, m in models.items()}

    test_cfg = LazyConfig.apply_overrides(get_config(TEACHER_CONFIG), list(args.opts))
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
                "iterations": args.teacher_iters if name == "teacher" else args.student_iters,
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
    item = max(inputs[:20], key=lambda x: len(records[x["file_name"]]["annotations"]))
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
        "teacher_cached": cached,
        "teacher_iters": args.teacher_iters,
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
        f"total {elapsed / 60:.1f} min{' (teacher reused)' if cached else ''}"
    )
    print(f"wrote {plot}, {picture}, {os.path.join(out, 'results.json')}")
    return result


if __name__ == "__main__":
    main(sys.argv[1:])
