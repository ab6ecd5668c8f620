"""Export the student of a distillation checkpoint as a plain detector checkpoint.

    python -m detrdistill.distill.export output/<run>/model_final.pth student.pth

The result holds ``{"model": <student state dict>}`` and loads with the student's own config,
without the teacher: ``train_net.py --config-file <student config> --eval-only
train.init_checkpoint=student.pth``. (``train.init_checkpoint`` also takes the distillation
checkpoint itself and loads its ``student.*`` part; the exported file is smaller and holds
nothing else.)
"""

from __future__ import annotations

import argparse
import os
import sys

import torch

from ..checkpoint import CheckpointReadError, safe_load
from ..checkpoint.init_checkpoint import STUDENT_PREFIX, extract_student_state_dict

__all__ = ["STUDENT_PREFIX", "extract_student_state_dict", "export_student", "main"]


def export_student(checkpoint: str, output: str) -> int:
    """Write the student of ``checkpoint`` to ``output``; returns the number of tensors.

    The file is read with :func:`~detrdistill.checkpoint.safe_load`.

    Raises:
        FileNotFoundError: ``checkpoint`` does not exist.
        RuntimeError: it cannot be read (the message says why and what to do).
        ValueError: it is not a distillation checkpoint (no ``student.*`` keys).
    """
    if not os.path.isfile(checkpoint):
        raise FileNotFoundError(f"distillation checkpoint {checkpoint!r} does not exist")
    try:
        data = safe_load(checkpoint)
    except CheckpointReadError as error:
        raise RuntimeError(f"could not read {checkpoint!r}: {error}") from error
    state = data["model"] if isinstance(data, dict) and "model" in data else data
    if not isinstance(state, dict):
        raise ValueError(f"{checkpoint!r} holds a {type(state).__name__}, not a state dict")
    student = extract_student_state_dict(state)
    os.makedirs(os.path.dirname(os.path.abspath(output)), exist_ok=True)
    torch.save({"model": student, "__author__": "detrdistill.distill.export"}, output)
    return len(student)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", help="checkpoint written by a distillation run")
    parser.add_argument("output", help="where to write the student checkpoint (.pth)")
    args = parser.parse_args(argv)
    try:
        count = export_student(args.checkpoint, args.output)
    except (FileNotFoundError, RuntimeError, ValueError) as error:
        parser.exit(2, f"export: error: {error}\n")
    print(f"wrote {count} student tensors to {args.output}")


if __name__ == "__main__":
    main(sys.argv[1:])
