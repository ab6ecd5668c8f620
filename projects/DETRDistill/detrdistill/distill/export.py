"""Export the student of a distillation checkpoint as a plain detector checkpoint.

    python -m detrdistill.distill.export output/<run>/model_final.pth student.pth

The result holds ``{"model": <student state dict>}`` and loads with the student's own config,
without the teacher: ``train_net.py --config-file <student config> --eval-only
train.init_checkpoint=student.pth``.
"""

from __future__ import annotations

import argparse
import os
import sys

import torch

__all__ = ["extract_student_state_dict", "export_student", "main"]

STUDENT_PREFIX = "student."


def extract_student_state_dict(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The ``student.*`` entries of a DistillationDetector state dict, prefix removed.

    Raises:
        ValueError: when no key starts with ``student.`` (not a distillation checkpoint).
    """
    state = {key.removeprefix("module."): value for key, value in state.items()}
    student = {
        key[len(STUDENT_PREFIX) :]: value
        for key, value in state.items()
        if key.startswith(STUDENT_PREFIX)
    }
    if not student:
        raise ValueError(
            "no 'student.*' keys found: this is not a checkpoint of a DistillationDetector "
            f"(first keys: {list(state)[:3]})"
        )
    return student


def export_student(checkpoint: str, output: str) -> int:
    """Write the student of ``checkpoint`` to ``output``; returns the number of tensors."""
    if not os.path.isfile(checkpoint):
        raise FileNotFoundError(f"distillation checkpoint {checkpoint!r} does not exist")
    try:
        data = torch.load(checkpoint, map_location="cpu", weights_only=True)
    except Exception as error:
        raise RuntimeError(
            f"could not read {checkpoint!r}: {type(error).__name__}: {error}"
        ) from error
    state = data["model"] if isinstance(data, dict) and "model" in data else data
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
