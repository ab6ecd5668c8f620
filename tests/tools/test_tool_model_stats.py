"""model_stats: parameter counts equal sum(p.numel()), FLOPs are positive and add up."""

from __future__ import annotations

import json

import pytest
import torch
from detectron2.config import LazyConfig, instantiate

from detrdistill import model_zoo
from detrdistill.tools import model_stats
from detrdistill.tools.flops import count_flops, parameter_counts, sdpa_flop_jit
from tests.helpers import tiny_pair_overrides

DETECTOR = "shapes/deformable_detr_tiny.py"
DISTILL = "detrdistill/shapes_deformable_tiny.py"
DETECTOR_OPTS = [
    "model.backbone.width=8",
    "model.hidden_dim=32",
    "model.position_embedding.num_pos_feats=16",
    "model.encoder.num_layers=1",
    "model.decoder.num_layers=2",
]
DISTILL_OPTS = tiny_pair_overrides()


def build(name, opts):
    cfg = LazyConfig.apply_overrides(model_zoo.get_config(name), opts)
    return instantiate(cfg.model)


def numel(module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_detector_stats_match_the_model(tmp_path, capsys):
    out = tmp_path / "stats.json"
    argv = ["--config-file", DETECTOR, "--json", str(out), "--input-size", "64", "96"]
    assert model_stats.main([*argv, "--device", "cpu", *DETECTOR_OPTS]) == 0
    printed = capsys.readouterr().out
    stats = json.loads(out.read_text())
    model = build(DETECTOR, DETECTOR_OPTS)
    entry = stats["models"]["model"]
    assert entry["class"] == "DeformableDETR"
    assert entry["parameters"]["total"] == numel(model)
    assert entry["parameters"]["trainable"] == numel(model)
    for name, child in model.named_children():
        assert entry["parameters"]["by_module"][name]["total"] == numel(child)
    flops = entry["flops"]
    assert flops["input_shape"] == [1, 3, 64, 96] and stats["input_size"] == [64, 96]
    assert flops["gflops"] > 0
    assert flops["by_module_gflops"]["backbone"] > 0 and flops["by_module_gflops"]["encoder"] > 0
    # children plus the detector's own ops ("(own)") add up to the total
    assert sum(flops["by_module_gflops"].values()) == pytest.approx(flops["gflops"], rel=1e-6)
    assert f"{numel(model):,} total" in printed and "GFLOPs" in printed


def test_distillation_stats_cover_teacher_and_student(tmp_path):
    out = tmp_path / "stats.json"
    argv = ["--config-file", DISTILL, "--json", str(out), "--device", "cpu", *DISTILL_OPTS]
    assert model_stats.main(argv) == 0
    stats = json.loads(out.read_text())
    model = build(
        DISTILL, [*DISTILL_OPTS, "model.allow_random_teacher=True", "model.teacher_weights="]
    )
    student, teacher = stats["models"]["student"], stats["models"]["teacher"]
    assert student["parameters"]["total"] == numel(model.student)
    assert teacher["parameters"]["total"] == numel(model.teacher)
    assert teacher["parameters"]["trainable"] == 0  # frozen inside the wrapper
    assert teacher["flops"]["gflops"] > student["flops"]["gflops"] > 0
    # default input: the test resize (shortest edge 128), 4:3 landscape within max size 256
    assert stats["input_size"] == [128, 171]
    wrapper = stats["distillation_detector"]["parameters"]
    assert wrapper["total"] == numel(model)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert wrapper["trainable"] == trainable < wrapper["total"]


def test_no_flops_and_default_input_size(capsys):
    assert model_stats.main(["--config-file", DETECTOR, "--no-flops", *DETECTOR_OPTS]) == 0
    assert "GFLOPs" not in capsys.readouterr().out
    assert model_stats.default_input_size((800, 1333)) == (800, 1067)
    assert model_stats.default_input_size((128, 150)) == (112, 150)
    assert model_stats.default_input_size(None) == (800, 1067)


def test_parameter_counts_count_shared_tensors_once():
    head = torch.nn.Linear(4, 3)
    model = torch.nn.Module()
    model.heads = torch.nn.ModuleList([head, head])  # one head shared by two layers
    model.other = torch.nn.Linear(3, 2)
    model.other.requires_grad_(False)
    model.scale = torch.nn.Parameter(torch.ones(5))
    counts = parameter_counts(model)
    assert counts["total"] == 15 + 8 + 5 == numel(model)
    assert counts["trainable"] == 15 + 5
    assert counts["by_module"]["heads"] == {"total": 15, "trainable": 15}
    assert counts["by_module"]["(own)"] == {"total": 5, "trainable": 5}


def test_sdpa_is_counted():
    class Attention(torch.nn.Module):
        def forward(self, q, k, v):
            return torch.nn.functional.scaled_dot_product_attention(q, k, v)

    q, k, v = torch.rand(2, 4, 10, 8), torch.rand(2, 4, 12, 8), torch.rand(2, 4, 12, 6)
    from fvcore.nn import FlopCountAnalysis

    analysis = FlopCountAnalysis(Attention(), (q, k, v))
    analysis.set_op_handle("aten::scaled_dot_product_attention", sdpa_flop_jit)
    analysis.unsupported_ops_warnings(False)
    assert analysis.total() == 2 * 4 * 10 * 12 * (8 + 6)


def test_count_flops_restores_training_mode():
    model = build(DETECTOR, DETECTOR_OPTS).train()
    report = count_flops(model, 32, 48)
    assert model.training and report.total > 0 and report.input_shape == (1, 3, 32, 48)
