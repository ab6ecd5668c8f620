"""User tools, each runnable as ``python -m detrdistill.tools.<name> --help``.

* :mod:`~detrdistill.tools.visualize_detections`: draw a detector's (or a distillation
  config's student's / teacher's) detections on one image.
* :mod:`~detrdistill.tools.visualize_distillation`: teacher vs student boxes, their
  teacher-student matching and the cross-attention of matched queries, for one image.
* :mod:`~detrdistill.tools.model_stats`: parameters and GFLOPs (fvcore) of a config's
  detector(s).
* :mod:`~detrdistill.tools.export_student`: the student of a distillation checkpoint as a
  plain detector checkpoint (same command line as :mod:`detrdistill.distill.export`).

Shared helpers: :mod:`~detrdistill.tools.cli` (the tools' arguments, configs, devices),
:mod:`~detrdistill.tools.loading` (checkpoints, image inputs, class names),
:mod:`~detrdistill.tools.drawing` (matplotlib figures without pyplot),
:mod:`~detrdistill.tools.flops` (fvcore analysis of ``DETRBase.run``) and
:mod:`~detrdistill.tools.distill_views` (what ``visualize_distillation`` computes and draws).
The demo (:mod:`detrdistill.demo`) draws with :mod:`~detrdistill.tools.demo_views` and reports
progress with :mod:`~detrdistill.tools.demo_progress`.

(``train_net.py``'s own command line is :mod:`detrdistill.engine.train_net_cli`.)
"""

__all__ = [
    "cli",
    "demo_progress",
    "demo_views",
    "distill_views",
    "drawing",
    "export_student",
    "flops",
    "loading",
    "model_stats",
    "visualize_detections",
    "visualize_distillation",
]
