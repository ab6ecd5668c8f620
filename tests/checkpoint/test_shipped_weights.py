"""The teachers shipped in the package: provenance, hash check, and their recorded AP."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from detectron2.utils.file_io import PathManager

import detrdistill.checkpoint.shipped as shipped_module
import train_net
from detrdistill.checkpoint import SHIPPED, shipped_path
from detrdistill.engine import argument_parser


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_shipped_file_is_a_small_fp16_state_dict(name):
    path = shipped_path(name)  # also checks the hash
    state = torch.load(path, map_location="cpu", weights_only=True)
    floats = [v for v in state.values() if v.is_floating_point()]
    assert floats and all(v.dtype == torch.float16 for v in floats)
    assert PathManager.get_local_path(f"detrdistill://shipped/{name}") == path


def test_a_replaced_file_is_refused(tmp_path, monkeypatch):
    name = sorted(SHIPPED)[0]
    shutil.copy(shipped_path(name), tmp_path / name)
    with open(tmp_path / name, "ab") as handle:
        handle.write(b"\0")
    monkeypatch.setattr(shipped_module, "weights_dir", lambda: tmp_path)
    with pytest.raises(ValueError, match="sha256"):
        shipped_path(name)
    with pytest.raises(KeyError, match="not a shipped file"):
        shipped_path("no_such_teacher.pth")


def test_shipped_files_are_read_only():
    with pytest.raises(PermissionError):
        PathManager.open(f"detrdistill://shipped/{sorted(SHIPPED)[0]}", "wb")


@pytest.mark.parametrize("name", sorted(n for n, r in SHIPPED.items() if r.is_backbone))
def test_shipped_backbone_holds_only_backbone_weights_of_its_source(name):
    state = torch.load(shipped_path(name), map_location="cpu", weights_only=True)
    assert state and all(key.startswith("backbone.") for key in state)
    source = SHIPPED[name].backbone_of
    if source:
        detector = torch.load(shipped_path(source), map_location="cpu", weights_only=True)
        cut = {k: v for k, v in detector.items() if k.startswith("backbone.")}
        assert cut.keys() == state.keys()
        assert all(torch.equal(cut[k], state[k]) for k in state)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(n for n, r in SHIPPED.items() if not r.is_backbone))
def test_shipped_teacher_reaches_its_recorded_ap(name, tmp_path):
    """Evaluate the shipped weights on shapes_val through train_net.py --eval-only."""
    record = SHIPPED[name]
    args = argument_parser().parse_args(
        [
            "--config-file",
            record.config,
            "--eval-only",
            f"train.init_checkpoint=detrdistill://shipped/{name}",
            f"train.output_dir={tmp_path}",
            "dataloader.test.num_workers=0",
        ]
    )
    results = train_net.main(args)
    bbox = results["bbox"]
    assert abs(bbox["AP"] - record.ap) <= 0.5, json.dumps(bbox)
    assert abs(bbox["AP50"] - record.ap50) <= 0.5, json.dumps(bbox)
