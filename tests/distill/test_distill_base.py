"""The shared base of the distillation losses: layer reduction and the empty-term warning."""

import logging

import pytest
import torch

from detrdistill.distill import DistillationLoss
from detrdistill.distill.losses.base import EmptyTermMonitor

LOGGER = "detrdistill.distill.losses.base"


def test_defaults_and_declarations():
    loss = DistillationLoss()
    assert loss.layer_reduction == "sum"
    assert loss.empty_terms.patience == 100
    assert (loss.needs_attention, loss.query_groups, loss.needs_teacher_assignment) == (
        False,
        (),
        False,
    )
    assert loss.reads_shared == () and loss.writes_shared == ()
    assert "layer_reduction='sum'" in repr(loss)
    with pytest.raises(ValueError, match="layer_reduction"):
        DistillationLoss(layer_reduction="max")
    with pytest.raises(ValueError, match="empty_term_patience"):
        DistillationLoss(empty_term_patience=-1)


def test_combine_layers_sum_and_mean():
    per_layer = [
        {"a": torch.tensor(1.0), "b": torch.tensor(10.0)},
        {"a": torch.tensor(2.0), "b": torch.tensor(20.0)},
        {"a": torch.tensor(6.0), "b": torch.tensor(30.0)},
    ]
    summed = DistillationLoss().combine_layers(per_layer)
    assert {k: v.item() for k, v in summed.items()} == {"a": 9.0, "b": 60.0}
    mean = DistillationLoss(layer_reduction="mean").combine_layers(per_layer)
    assert {k: v.item() for k, v in mean.items()} == {"a": 3.0, "b": 20.0}
    with pytest.raises(ValueError, match="no decoder layer pair"):
        DistillationLoss().combine_layers([])


def test_empty_term_monitor_warns_after_patience_steps(caplog):
    monitor = EmptyTermMonitor("SomeLoss", patience=3)
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        monitor.update({"bbox": 0, "class": 4})
        monitor.update({"bbox": 0, "class": 4})
        assert not caplog.records  # 2 empty steps < patience
        monitor.update({"bbox": 0, "class": 4})
        assert len(caplog.records) == 1
        message = caplog.records[0].getMessage()
        assert "SomeLoss" in message and "'bbox'" in message and "3 consecutive" in message
        monitor.update({"bbox": 0, "class": 4})  # once per streak
        assert len(caplog.records) == 1
        monitor.update({"bbox": 2, "class": 4})  # a pair resets the streak
        for _ in range(2):
            monitor.update({"bbox": 0, "class": 4})
        assert len(caplog.records) == 1
        monitor.update({"bbox": 0, "class": 4})
        assert len(caplog.records) == 2
    assert monitor.empty_steps == {"bbox": 3, "class": 0}


def test_empty_term_monitor_patience_zero_is_silent(caplog):
    monitor = EmptyTermMonitor("SomeLoss", patience=0)
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        for _ in range(5):
            monitor.update({"bbox": 0})
    assert not caplog.records
