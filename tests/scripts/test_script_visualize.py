"""visualize_detections and visualize_distillation on tiny models: PNGs are written, the right
weights are loaded, the matched pairs and attention maps are consistent."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from detectron2.config import LazyConfig, instantiate
from PIL import Image

from detrdistill import model_zoo
from detrdistill.layers import DeformableAttentionWeights, deformable_weights_to_dense
from detrdistill.modeling.outputs import EncoderOutputs
from detrdistill.scripts import visualize_detections, visualize_distillation
from detrdistill.scripts.distill_views import level_map, query_cross_attention

DETECTOR = "shapes/deformable_detr_tiny.py"
DISTILL = "detrdistill/shapes_deformable_tiny.py"
D3ETR = "d3etr/shapes_deformable_tiny.py"
DETECTOR_OPTS = [
    "model.backbone.width=8",
    "model.hidden_dim=32",
    "model.position_embedding.num_pos_feats=16",
    "model.encoder.num_layers=1",
    "model.decoder.num_layers=2",
]


def distill_opts(random_teacher: bool = False) -> list[str]:
    opts = []
    for part, hidden, layers in (("student", 32, 2), ("teacher", 48, 3)):
        opts += [
            f"model.{part}.backbone.width=8",
            f"model.{part}.hidden_dim={hidden}",
            f"model.{part}.position_embedding.num_pos_feats={hidden // 2}",
            f"model.{part}.encoder.num_layers=1",
            f"model.{part}.decoder.num_layers={layers}",
        ]
    if random_teacher:
        opts += ["model.allow_random_teacher=True", "model.teacher_weights="]
    return opts


def build(name: str, opts: list[str]):
    cfg = LazyConfig.apply_overrides(model_zoo.get_config(name), opts)
    return instantiate(cfg.model)


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    root = tmp_path_factory.mktemp("visualize")
    pixels = np.full((90, 120, 3), 30, np.uint8)
    pixels[20:60, 30:80] = (210, 60, 60)
    Image.fromarray(pixels).save(root / "scene.png")
    torch.manual_seed(0)
    detector = build(DETECTOR, DETECTOR_OPTS)
    torch.save({"model": detector.state_dict()}, root / "detector.pth")
    distill = build(DISTILL, distill_opts(random_teacher=True))
    torch.save({"model": distill.state_dict(), "iteration": 1}, root / "distill.pth")
    return {
        "root": root,
        "image": str(root / "scene.png"),
        "detector": str(root / "detector.pth"),
        "distill": str(root / "distill.pth"),
    }


def assert_png(path) -> None:
    with Image.open(path) as image:
        image.verify()
    with Image.open(path) as image:
        assert image.format == "PNG"
        assert min(image.size) >= 100
        assert np.asarray(image.convert("L")).std() > 0  # not a blank canvas


def test_visualize_detections_draws_a_detector(assets, tmp_path, capsys):
    output = tmp_path / "det.png"
    code = visualize_detections.main(
        [
            "--config-file",
            DETECTOR,
            "--checkpoint",
            assets["detector"],
            "--input",
            assets["image"],
            "--output",
            str(output),
            "--score-threshold",
            "0",
            "--device",
            "cpu",
            *DETECTOR_OPTS,
        ]
    )
    captured = capsys.readouterr()
    assert code == 0
    assert "missing keys" not in captured.err and "unexpected keys" not in captured.err
    assert_png(output)
    # 30 queries x 5 classes, the best 100 kept; every one drawn at threshold 0
    assert captured.out.startswith("model: 100 of 100 detections")
    boxes = [line for line in captured.out.splitlines() if line.startswith("  ")]
    assert len(boxes) == 100
    # drawn at the original size (120 x 90), not the test-resized one
    coords = [float(v) for line in boxes for v in line.split("[")[1].rstrip("]").split(",")]
    assert max(coords) <= 120.0 + 1e-3


def test_visualize_detections_threshold_filters(assets, tmp_path, capsys):
    output = tmp_path / "none.png"
    argv = ["--config-file", DETECTOR, "--checkpoint", assets["detector"]]
    argv += ["--input", assets["image"], "--output", str(output), "--score-threshold", "1.01"]
    assert visualize_detections.main([*argv, "--device", "cpu", *DETECTOR_OPTS]) == 0
    assert "0 of 100 detections" in capsys.readouterr().out
    assert_png(output)


@pytest.mark.parametrize("teacher", [False, True])
def test_visualize_detections_student_or_teacher_of_a_distillation_run(
    assets, tmp_path, capsys, teacher
):
    output = tmp_path / "distill.png"
    argv = ["--config-file", DISTILL, "--checkpoint", assets["distill"], "--input", assets["image"]]
    argv += ["--output", str(output), "--score-threshold", "0", "--device", "cpu"]
    if teacher:
        argv.append("--teacher")
    assert visualize_detections.main([*argv, *distill_opts()]) == 0
    captured = capsys.readouterr()
    # every weight of the drawn detector came from its part of the distillation checkpoint
    assert "missing keys" not in captured.err and "unexpected keys" not in captured.err
    assert captured.out.startswith("teacher: " if teacher else "student: ")
    assert_png(output)


def test_visualize_distillation_writes_matches_attention_and_summary(assets, tmp_path, capsys):
    out = tmp_path / "vis"
    code = visualize_distillation.main(
        [
            "--config-file",
            DISTILL,
            "--checkpoint",
            assets["distill"],
            "--input",
            assets["image"],
            "--output-dir",
            str(out),
            "--score-threshold",
            "0",
            "--num-pairs",
            "7",
            "--num-queries",
            "2",
            "--device",
            "cpu",
            *distill_opts(),
        ]
    )
    assert code == 0
    assert "missing keys" not in capsys.readouterr().err
    assert_png(out / "scene_matches.png")
    assert_png(out / "scene_attention.png")
    summary = json.loads((out / "scene_summary.json").read_text())
    assert (summary["student_layer"], summary["teacher_layer"]) == (1, 2)  # last_aligned 2 vs 3
    assert summary["matcher"].startswith("model.losses.logits.matcher")
    pairs = summary["pairs_drawn"]
    assert len(pairs) == 7 and summary["attention_pairs"] == 2
    # one-to-one, best teacher score first, box centres inside the resized image
    assert len({p["teacher_query"] for p in pairs}) == len({p["student_query"] for p in pairs}) == 7
    scores = [p["teacher_score"] for p in pairs]
    assert scores == sorted(scores, reverse=True)
    height, width = summary["image_size"]
    assert (height, width) == (128, 171)  # shortest edge 128, as the test mapper resizes
    for pair in pairs:
        for box in (pair["teacher_box"], pair["student_box"]):
            assert box[0] <= box[2] and box[1] <= box[3]
            assert 0 <= (box[0] + box[2]) / 2 <= width and 0 <= (box[1] + box[3]) / 2 <= height


def test_visualize_distillation_d3etr_random_pair_and_layer_choice(assets, tmp_path, capsys):
    out = tmp_path / "d3etr"
    argv = ["--config-file", D3ETR, "--input", assets["image"], "--output-dir", str(out)]
    argv += ["--layer", "0", "--level", "2", "--device", "cpu"]
    assert visualize_distillation.main([*argv, *distill_opts(random_teacher=True)]) == 0
    assert "randomly initialised" in capsys.readouterr().out
    summary = json.loads((out / "scene_summary.json").read_text())
    assert (summary["student_layer"], summary["teacher_layer"]) == (0, 1)
    assert summary["matcher"].startswith("model.losses.adaptive.matcher")
    assert summary["attention_level"] == 2
    assert_png(out / "scene_attention.png")

    with pytest.raises(SystemExit) as info:
        visualize_distillation.main(
            [*argv[:-4], "--layer", "5", *distill_opts(random_teacher=True)]
        )
    assert info.value.code == 2 and "--layer 5" in capsys.readouterr().err


def test_query_cross_attention_dense_and_deformable():
    torch.manual_seed(0)
    shapes = torch.tensor([[4, 6], [2, 3]])
    tokens = int((shapes[:, 0] * shapes[:, 1]).sum())
    dense = torch.rand(2, 4, 5, tokens).softmax(-1)  # (B, H, Q, S)
    maps = query_cross_attention(dense, [3, 1], shapes)
    assert torch.allclose(maps, dense[0, :, [3, 1]].mean(0))

    weights = DeformableAttentionWeights(
        0.1 + 0.8 * torch.rand(2, 5, 4, 2, 3, 2),
        torch.rand(2, 5, 4, 2 * 3).softmax(-1).view(2, 5, 4, 2, 3),
    )
    maps = query_cross_attention(weights, [4, 0], shapes)
    expected = deformable_weights_to_dense(weights, shapes)[0, :, [4, 0]].mean(0)
    assert maps.shape == (2, tokens)
    assert torch.allclose(maps, expected, atol=1e-6)


def test_level_map_crops_padding():
    shapes = torch.tensor([[4, 6], [2, 3]])
    masks = [torch.zeros(1, 4, 6, dtype=torch.bool), torch.zeros(1, 2, 3, dtype=torch.bool)]
    masks[0][:, 3:, :] = True  # last row padded
    masks[0][:, :, 4:] = True  # last two columns padded
    encoder = EncoderOutputs(
        features=[],
        masks=masks,
        pos=[],
        memory=torch.zeros(1, 30, 1),
        memory_pos=torch.zeros(1, 30, 1),
        memory_mask=torch.zeros(1, 30, dtype=torch.bool),
        spatial_shapes=shapes,
        level_start_index=torch.tensor([0, 24]),
        valid_ratios=torch.ones(1, 2, 2),
    )
    flat = torch.arange(30, dtype=torch.float32)
    first = level_map(flat, encoder, 0)
    assert first.shape == (3, 4)
    assert np.array_equal(first, np.arange(24).reshape(4, 6)[:3, :4])
    second = level_map(flat, encoder, 1)
    assert np.array_equal(second, np.arange(24, 30).reshape(2, 3))
