"""Weights shipped inside the package (``detrdistill/weights/``), with their provenance: trained
detectors (the embedded-data teachers) and backbones cut from them (the embedded data's
stand-in for ImageNet initialisation, see the README).

``detrdistill://shipped/<file>`` resolves to ``detrdistill/weights/<file>`` (see
:mod:`~detrdistill.checkpoint.path_handler`); the file's sha256 is checked against
:data:`SHIPPED` every time it is resolved, so a truncated or replaced file stops the run with
both hashes named. The files are fp16 state dicts (half the size; a detector loads them into
its fp32 parameters).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

__all__ = ["SHIPPED", "ShippedWeights", "shipped_path", "verify_shipped", "weights_dir"]

SHIPPED_FOLDER = "shipped/"


@dataclass(frozen=True)
class ShippedWeights:
    """One shipped checkpoint.

    Attributes:
        config: packaged config that builds the model the weights belong to (for a backbone:
            the detector it was trained in).
        sha256: hash of the file.
        train_command: how the weights were trained (and at which commit).
        ap: COCO box AP (and AP50) of a detector's weights on ``shapes_val``, measured with the
            command in ``eval_command``; None for a backbone.
        eval_command: how ``ap`` was measured.
        backbone_of: for a backbone file, the shipped detector file whose ``backbone.*``
            entries it holds (or "" when that detector is not shipped).
    """

    config: str
    sha256: str
    train_command: str
    ap: float | None = None
    ap50: float | None = None
    eval_command: str = ""
    backbone_of: str = ""

    @property
    def is_backbone(self) -> bool:
        return self.ap is None


SHIPPED: dict[str, ShippedWeights] = {
    "shapes_deformable_detr_tiny_teacher.pth": ShippedWeights(
        config="shapes/deformable_detr_tiny_teacher.py",
        sha256="68cf11f67ff1038c53ef2693d7af7009128e45e51636f916a045259d0b85c791",
        ap=78.39,
        ap50=94.95,
        train_command=(
            "OMP_NUM_THREADS=1 python train_net.py --config-file "
            "shapes/deformable_detr_tiny_teacher.py (4,000 iterations, seed 0, commit 5554465, "
            "about 35 min on one core); then model_final.pth's 'model' saved as fp16"
        ),
        eval_command=(
            "python train_net.py --config-file shapes/deformable_detr_tiny_teacher.py "
            "--eval-only train.init_checkpoint=detrdistill://shipped/"
            "shapes_deformable_detr_tiny_teacher.pth"
        ),
    ),
    "shapes_conditional_detr_tiny_teacher.pth": ShippedWeights(
        config="shapes/conditional_detr_tiny_teacher.py",
        sha256="7a592fe53d368895afa5da7fde6a701b5c3d5028e5927e594904084ad1a303b5",
        ap=57.59,
        ap50=83.12,
        train_command=(
            "OMP_NUM_THREADS=1 python train_net.py --config-file "
            "shapes/conditional_detr_tiny_teacher.py dataloader.train.num_workers=1 (4,000 "
            "iterations from shapes_resnet18_w32_backbone.pth, seed 0, the config of commit "
            "e600193, 37 min at 0.55 s/it on a busy 2-core machine); then model_final.pth's "
            "'model' saved as fp16"
        ),
        eval_command=(
            "python train_net.py --config-file shapes/conditional_detr_tiny_teacher.py "
            "--eval-only train.init_checkpoint=detrdistill://shipped/"
            "shapes_conditional_detr_tiny_teacher.pth"
        ),
    ),
    "shapes_resnet18_w32_backbone.pth": ShippedWeights(
        config="shapes/deformable_detr_tiny_teacher.py",
        sha256="9a6f0bbc072fc674cdae95b18e5e461d8fbaaa206c149941fd4b90c068df4cc3",
        train_command=(
            "the backbone.* entries of shapes_deformable_detr_tiny_teacher.pth (ResNet-18 "
            "layout, width 32, trained from scratch inside that Deformable DETR)"
        ),
        backbone_of="shapes_deformable_detr_tiny_teacher.pth",
    ),
    "shapes_resnet18_w16_backbone.pth": ShippedWeights(
        config="shapes/deformable_detr_nano_backbone_source.py",
        sha256="da69680cc8c734c3f20036945d5a063b5ba336228a4bb88a7b90febebc89c635",
        train_command=(
            "OMP_NUM_THREADS=1 python train_net.py --config-file "
            "shapes/deformable_detr_nano_backbone_source.py dataloader.train.num_workers=1 "
            "(4,000 iterations, seed 0, commit abc66b3, 34 min at 0.51 s/it on a busy 2-core "
            "machine; that nano Deformable DETR reached AP 67.8 / AP50 84.0 on shapes_val); "
            "then the backbone.* entries of model_final.pth's 'model' saved as fp16"
        ),
    ),
}


def weights_dir() -> Path:
    """The package's ``weights/`` folder."""
    return Path(__file__).resolve().parent.parent / "weights"


def _sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify_shipped(name: str, path: str) -> None:
    """Check a shipped file's hash.

    Raises:
        FileNotFoundError: the file is missing from the package.
        ValueError: its sha256 differs from the recorded one.
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"shipped weights {name!r} are missing from the package ({path}); reinstall the "
            "project from a complete clone (git lfs is not used: the file is in the repository)"
        )
    actual = _sha256(path)
    expected = SHIPPED[name].sha256
    if actual != expected:
        raise ValueError(
            f"shipped weights {path} have sha256 {actual}, but {expected} is recorded for "
            f"{name!r} (detrdistill.checkpoint.shipped.SHIPPED): the file is corrupt or was "
            "replaced"
        )


def shipped_path(name: str) -> str:
    """Local path of ``detrdistill://shipped/<name>``, hash checked.

    Raises:
        KeyError: ``name`` is not a shipped file (the message lists them).
    """
    if name not in SHIPPED:
        raise KeyError(
            f"detrdistill://{SHIPPED_FOLDER}{name} is not a shipped file; shipped: "
            f"{sorted(SHIPPED)}"
        )
    path = str(weights_dir() / name)
    verify_shipped(name, path)
    return path
