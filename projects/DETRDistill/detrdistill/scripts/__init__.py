"""User tools, each runnable as ``python -m detrdistill.scripts.<name> --help``.

* :mod:`~detrdistill.scripts.visualize_detections`: draw a detector's (or a distillation
  config's student's / teacher's) detections on one image.
* :mod:`~detrdistill.scripts.visualize_distillation`: teacher vs student boxes, their
  teacher-student matching and the cross-attention of matched queries, for one image.
* :mod:`~detrdistill.scripts.model_stats`: parameters and GFLOPs (fvcore) of a config's
  detector(s).
* :mod:`~detrdistill.scripts.export_student`: the student of a distillation checkpoint as a
  plain detector checkpoint (same command line as :mod:`detrdistill.distill.export`).

Shared helpers: :mod:`~detrdistill.scripts.cli` (arguments, configs, devices),
:mod:`~detrdistill.scripts.loading` (checkpoints, image inputs, class names),
:mod:`~detrdistill.scripts.drawing` (matplotlib figures without pyplot) and
:mod:`~detrdistill.scripts.flops` (fvcore analysis of ``DETRBase.run``).
"""

__all__ = [
    "cli",
    "drawing",
    "export_student",
    "flops",
    "loading",
    "model_stats",
    "visualize_detections",
    "visualize_distillation",
]
