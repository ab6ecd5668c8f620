"""Checkpoint files are read with weights-only unpickling plus the harmless types published
checkpoints hold; anything else, and truncated files, fail with messages that say what to do."""

import argparse
import fractions
import pickle

import numpy as np
import pytest
import torch

from detrdistill.checkpoint import (
    CheckpointReadError,
    UnsafeCheckpointError,
    safe_globals_names,
    safe_load,
)
from detrdistill.distill.teacher import _read_state_dict

WEIGHTS = {"class_embed.weight": torch.arange(6.0).view(2, 3)}


def _release(path, legacy=False, **extra):
    """A file shaped like the official releases: weights plus training-script leftovers."""
    payload = {
        "model": WEIGHTS,
        "args": argparse.Namespace(lr=1e-4, backbone="resnet50", dilation=False),
        "epoch": np.int64(49),
        "lr": np.float64(2e-5),
        **extra,
    }
    torch.save(payload, path, _use_new_zipfile_serialization=not legacy)
    return str(path)


@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy"])
def test_namespace_and_numpy_scalars_load_without_unrestricted_unpickling(tmp_path, legacy):
    path = _release(tmp_path / "release.pth", legacy=legacy)
    with pytest.raises(pickle.UnpicklingError):  # what plain weights-only loading does
        torch.load(path, weights_only=True)
    loaded = safe_load(path)
    assert isinstance(loaded["args"], argparse.Namespace) and loaded["args"].lr == 1e-4
    assert loaded["epoch"] == 49 and isinstance(loaded["lr"], np.floating)
    torch.testing.assert_close(loaded["model"]["class_embed.weight"], WEIGHTS["class_embed.weight"])
    # the allowance is scoped to safe_load: torch's global allow-list is left untouched
    with pytest.raises(pickle.UnpicklingError):
        torch.load(path, weights_only=True)


def test_allow_list_is_exactly_namespace_and_numpy_scalars():
    names = safe_globals_names()
    assert "argparse.Namespace" in names
    assert "numpy.core.multiarray.scalar" in names and "numpy.dtype" in names
    assert not any(name.startswith(("builtins.", "os.", "subprocess.")) for name in names)
    assert "numpy.ndarray" not in names


@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy"])
def test_other_types_are_refused_with_the_type_and_the_opt_in(tmp_path, legacy):
    path = _release(tmp_path / "odd.pth", legacy=legacy, ratio=fractions.Fraction(1, 3))
    with pytest.raises(UnsafeCheckpointError) as info:
        safe_load(path)
    message = str(info.value)
    assert "fractions.Fraction" in message and "--allow-unsafe-pickle" in message
    assert info.value.global_names == ["fractions.Fraction"]
    assert "argparse.Namespace" not in message  # allowed types are not blamed
    loaded = safe_load(path, allow_unsafe=True)  # explicit opt-in only
    assert loaded["ratio"] == fractions.Fraction(1, 3)


@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy"])
@pytest.mark.parametrize("keep", [0.5, 0.0])
def test_truncated_files_fail_naming_the_file(tmp_path, legacy, keep):
    path = _release(tmp_path / "full.pth", legacy=legacy)
    data = open(path, "rb").read()
    cut = tmp_path / "cut.pth"
    cut.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(CheckpointReadError, match="cut.pth is not a readable torch checkpoint"):
        safe_load(str(cut))
    with pytest.raises(CheckpointReadError):
        safe_load(str(cut), allow_unsafe=True)


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere.pth"):
        safe_load(str(tmp_path / "nowhere.pth"))


def test_teacher_loader_uses_safe_loading(tmp_path):
    state = _read_state_dict(_release(tmp_path / "release.pth"))
    assert list(state) == ["class_embed.weight"]
    odd = _release(tmp_path / "odd.pth", ratio=fractions.Fraction(2, 3))
    with pytest.raises(RuntimeError, match="model.teacher_weights") as info:
        _read_state_dict(odd)
    assert "fractions.Fraction" in str(info.value) and "detrdistill.convert" in str(info.value)
    cut = tmp_path / "cut.pth"
    cut.write_bytes(open(odd, "rb").read()[:100])
    with pytest.raises(RuntimeError, match="model.teacher_weights.*not a readable"):
        _read_state_dict(str(cut))


TORCH_ADVICE = ("likely succeed", "weights_only=False", "can still be loaded", "two options")


def test_file_cut_inside_a_type_name_is_truncated_not_unsafe(tmp_path):
    path = _release(tmp_path / "release.pth", legacy=True)
    data = open(path, "rb").read()
    cut = tmp_path / "cut.pth"
    cut.write_bytes(data[: data.index(b"argparse\n") + 4])  # ends inside "GLOBAL argparse ..."
    with pytest.raises(CheckpointReadError) as info:
        safe_load(str(cut))
    assert not isinstance(info.value, UnsafeCheckpointError)  # nothing to allow: it is cut
    message = str(info.value)
    assert "cut.pth is not a readable torch checkpoint" in message and "truncated" in message
    assert "--allow-unsafe-pickle" not in message
    assert not any(advice in message for advice in TORCH_ADVICE)


@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy"])
@pytest.mark.parametrize("damage", ["cut", "flipped", "garbage"])
def test_unreadable_file_messages_leave_out_torch_advice(tmp_path, legacy, damage):
    data = open(_release(tmp_path / "release.pth", legacy=legacy), "rb").read()
    if damage == "cut":
        data = data[: len(data) * 2 // 3]
    elif damage == "flipped":  # corrupted bytes inside the pickle
        start = data.index(b"argparse") + 40 if legacy else 200
        data = data[:start] + bytes(b ^ 0x5A for b in data[start : start + 64]) + data[start + 64 :]
    else:
        data = b"hello, this is not a checkpoint at all"
    bad = tmp_path / "bad.pth"
    bad.write_bytes(data)
    with pytest.raises(CheckpointReadError) as info:
        safe_load(str(bad))
    message = str(info.value)
    assert "bad.pth is not a readable torch checkpoint" in message
    assert "Copy or download it again" in message  # what to do
    assert not any(advice in message for advice in TORCH_ADVICE), message
