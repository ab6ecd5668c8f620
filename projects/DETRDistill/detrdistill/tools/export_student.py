"""Export the student of a distillation checkpoint as a plain detector checkpoint.

    python -m detrdistill.tools.export_student output/<run>/model_final.pth student.pth

The same tool as ``python -m detrdistill.distill.export`` (same arguments, output and exit
codes: 2 with the file named when the checkpoint is missing, unreadable or not a distillation
checkpoint), kept here so that every user tool lives in ``detrdistill.tools``.
"""

from __future__ import annotations

import sys

from ..distill.export import export_student, main

__all__ = ["export_student", "main"]


if __name__ == "__main__":
    main(sys.argv[1:])
