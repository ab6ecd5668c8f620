"""visualize_detections and visualize_distillation on tiny models: PNGs are written, the right
weights are loaded, the matched pairs and attention maps are consistent."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from detectron2.config import LazyConfig, instantiate
from detectron2.structures import Boxes, BoxMode, Instances
from PIL import Image

from detrdistill import model_zoo
from detrdistill.layers import DeformableAttentionWeights, deformable_weights_to_dense
from detrdistill.modeling.outputs import EncoderOutputs
from detrdistill.tools import visualize_detections, visualize_distillation
from detrdistill.tools.demo_views import (
    StudentView,
    attention_rows,
    attention_title,
    draw_attention_figure,
    draw_matches_figure,
    score_detections,
    student_view,
)
from detrdistill.tools.distill_views import (
    MatchedPair,
    attention_heatmap,
    level_map,
    query_cross_attention,
    sampling_points_in_image,
    splat_points,
)
from detrdistill.tools.drawing import draw_box, image_figure, muted
from tests.helpers import tiny_pair_overrides

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
    opts = tiny_pair_overrides()
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


# --- the demo's attention maps and pictures ---------------------------------------------------


def test_splat_points_is_bilinear_and_drops_what_falls_outside():
    points = np.array([[2.5, 1.5], [4.0, 2.5], [0.25, 0.5], [-5.0, 1.0]])
    mass = np.array([1.0, 2.0, 1.0, 3.0])
    heat = splat_points(points, mass, (4, 6))
    expected = np.zeros((4, 6))
    expected[1, 2] = 1.0  # at a pixel centre: all of it there
    expected[2, 3] = expected[2, 4] = 1.0  # between two centres: half each
    expected[0, 0] = 0.75  # a quarter of it left of the image
    assert np.allclose(heat, expected)


def deformable_weights() -> DeformableAttentionWeights:
    """One image, 2 queries, 2 heads, 2 levels, 1 point."""
    locations = torch.zeros(1, 2, 2, 2, 1, 2)
    locations[0, 1, :, 0, 0] = torch.tensor([0.25, 0.5])  # level 0
    locations[0, 1, :, 1, 0] = torch.tensor([0.5, 0.4])  # level 1
    attention = torch.zeros(1, 2, 2, 2, 1)
    attention[0, 1, 0, :, 0] = torch.tensor([0.7, 0.3])
    attention[0, 1, 1, :, 0] = torch.tensor([0.2, 0.8])
    return DeformableAttentionWeights(locations, attention)


def test_sampling_points_in_image_undo_the_valid_ratios():
    ratios = torch.tensor([[[0.5, 1.0], [1.0, 0.8]]])  # (B, Lv, (w, h))
    points, mass = sampling_points_in_image(deformable_weights(), 1, ratios, (20, 40))
    # (0.25 / 0.5 * 40, 0.5 / 1.0 * 20) and (0.5 / 1.0 * 40, 0.4 / 0.8 * 20): the same pixel
    assert np.allclose(points, [[20.0, 10.0]] * 4)
    assert np.allclose(mass, [0.35, 0.15, 0.1, 0.4])  # head, level order; mean over heads


def tiny_encoder(shapes, masks, valid_ratios) -> EncoderOutputs:
    tokens = int(sum(h * w for h, w in shapes))
    shapes = torch.tensor(shapes)
    starts = torch.cat([torch.zeros(1, dtype=torch.long), shapes.prod(1).cumsum(0)[:-1]])
    return EncoderOutputs(
        features=[],
        masks=masks,
        pos=[],
        memory=torch.zeros(1, tokens, 1),
        memory_pos=torch.zeros(1, tokens, 1),
        memory_mask=torch.zeros(1, tokens, dtype=torch.bool),
        spatial_shapes=shapes,
        level_start_index=starts,
        valid_ratios=valid_ratios,
    )


def test_attention_heatmap_deformable_is_the_splat_of_the_sampling_points():
    shapes = [(4, 8), (2, 4)]
    masks = [torch.zeros(1, h, w, dtype=torch.bool) for h, w in shapes]
    encoder = tiny_encoder(shapes, masks, torch.ones(1, 2, 2))
    weights = deformable_weights()
    heat = attention_heatmap(weights, 1, encoder, (20, 40), blur=0)
    # (0.25 * 40, 0.5 * 20) = (10, 10) and (0.5 * 40, 0.4 * 20) = (20, 8): pixel corners, so
    # each point is shared by the 4 pixels around it
    expected = np.zeros((20, 40))
    expected[9:11, 9:11] = (0.35 + 0.1) / 4
    expected[7:9, 19:21] = (0.15 + 0.4) / 4
    assert np.allclose(heat, expected)
    blurred = attention_heatmap(weights, 1, encoder, (20, 40), blur=1.5)
    assert blurred.sum() == pytest.approx(1.0, abs=1e-3)  # far from the edges: nothing lost
    assert np.unravel_index(blurred.argmax(), blurred.shape) in {(8, 19), (8, 20), (7, 19)}


def test_attention_heatmap_dense_stretches_each_level_over_the_image():
    shapes = [(2, 2)]
    encoder = tiny_encoder(shapes, [torch.zeros(1, 2, 2, dtype=torch.bool)], torch.ones(1, 1, 2))
    attention = torch.zeros(1, 3, 2, 4)  # (B, H, Q, S)
    attention[0, :, 1, 1] = 1.0  # query 1 looks at the top-right cell only
    heat = attention_heatmap(attention, 1, encoder, (4, 4), blur=0)
    # bilinear x2: rows (1, .75, .25, 0) x columns (0, .25, .75, 1), as a density (4 px / cell)
    expected = np.outer([1, 0.75, 0.25, 0], [0, 0.25, 0.75, 1]) / 4
    assert np.allclose(heat, expected)
    assert heat.sum() == pytest.approx(1.0)
    with pytest.raises(TypeError, match="unexpected cross-attention entry"):
        attention_heatmap([1.0], 0, encoder, (4, 4))


def test_muted_is_grey_with_less_contrast():
    image = np.array([[[255, 0, 0], [128, 128, 128]]], dtype=np.uint8)
    grey = muted(image, contrast=0.6)
    assert grey.shape == image.shape and (grey == grey[..., :1]).all()
    assert grey[0, 0, 0] == int(128 + 0.6 * (0.299 * 255 - 128))  # 96
    assert grey[0, 1, 0] == 128


def test_draw_box_keeps_labels_at_the_top_edge_inside_the_image():
    fig, ax = image_figure(np.zeros((100, 100, 3), np.uint8))
    draw_box(ax, (10, 1, 50, 40), "red", "at the edge")
    draw_box(ax, (10, 50, 50, 90), "red", "lower down")
    edge, lower = ax.texts
    assert edge.get_va() == "top" and lower.get_va() == "bottom"


def instances(boxes, classes, scores) -> Instances:
    result = Instances((100, 100))
    result.pred_boxes = Boxes(torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4))
    result.pred_classes = torch.tensor(classes, dtype=torch.long)
    result.scores = torch.tensor(scores, dtype=torch.float32)
    return result


def record(boxes, classes) -> dict:
    objects = [
        {"bbox": box, "bbox_mode": BoxMode.XYXY_ABS, "category_id": c}
        for box, c in zip(boxes, classes)
    ]
    return {"file_name": "x.png", "annotations": objects}


def test_score_detections_counts_right_detections_once():
    truth = record([[0, 0, 40, 40], [50, 50, 90, 90]], [0, 1])
    dets = instances(
        [[0, 0, 40, 40], [2, 2, 40, 40], [50, 50, 90, 90], [0, 0, 10, 10]],
        [0, 0, 2, 0],
        [0.9, 0.8, 0.7, 0.6],
    )
    result = score_detections(dets, truth)
    # the duplicate, the wrong class and the IoU < 0.5 box are not right
    assert (result.objects, result.detections, result.right) == (2, 4, 1)
    assert result.overlap == 0.0 and not result.all_right
    good = score_detections(
        instances([[50, 50, 90, 90], [0, 0, 40, 40]], [1, 0], [0.5, 0.9]), truth
    )
    assert good.right == good.detections == good.objects == 2 and good.all_right
    assert score_detections(instances([], [], []), record([], [])).all_right is False


def matched(teacher_query, student_query, score, box) -> MatchedPair:
    return MatchedPair(teacher_query, student_query, 0, score, 1, score / 2, box, box)


def test_attention_rows_and_figures(tmp_path):
    image = np.full((60, 80, 3), 90, np.uint8)
    heat = np.zeros((60, 80))
    heat[20:30, 30:40] = 1.0
    box = [30.0, 20.0, 40.0, 30.0]
    first = StudentView(
        "DETRDistill", "m", (2, 5), [matched(7, 1, 0.9, box), matched(3, 2, 0.8, box)]
    )
    second = StudentView("D3ETR", "m", (2, 5), [matched(3, 4, 0.8, box), matched(9, 5, 0.7, box)])
    for view in (first, second):
        view.teacher_heat = {p.teacher_query: heat for p in view.pairs}
        view.student_heat = {p.student_query: heat for p in view.pairs}
    # teacher query 7 is matched by the first student only
    assert attention_rows([first, second]) == [3]
    assert attention_rows([first]) == [7, 3] and attention_rows([first], count=1) == [7]
    names = ["square", "circle"]
    assert_png(draw_attention_figure(image, [first, second], names, str(tmp_path / "a.png")))
    assert "\ndeformable sampling points weighted by attention" in attention_title([first])
    first.attention = "dense"
    assert "\nattention over the feature-map tokens, mean over heads" in attention_title([first])
    first.attention = "deformable"
    assert_png(draw_matches_figure(image, [first, second], names, str(tmp_path / "m.png")))
    second.pairs = second.pairs[1:]
    with pytest.raises(ValueError, match="nothing to draw"):
        draw_attention_figure(image, [first, second], names, str(tmp_path / "none.png"))


def test_student_view_matches_and_maps_a_distillation_model(monkeypatch):
    from detrdistill.tools import demo_views

    torch.manual_seed(0)
    model = build(DISTILL, distill_opts(random_teacher=True)).eval()
    image = torch.randint(0, 255, (3, 96, 128), dtype=torch.uint8)
    item = {"image": image, "height": 96, "width": 128, "file_name": "x.png"}
    monkeypatch.setattr(demo_views, "SCORE_THRESHOLD", 0.0)  # a random teacher is unsure
    view = student_view("DETRDistill", model, item, heat_pairs=3)
    assert view.layers == (1, 2) and view.matcher.startswith("model.losses.logits.matcher")
    assert view.attention == "deformable"  # DISTILL is a Deformable DETR pair
    assert len(view.pairs) == 30  # every student query matched (30 each side)
    scores = [p.teacher_score for p in view.pairs]
    assert scores == sorted(scores, reverse=True)
    assert list(view.teacher_heat) == [p.teacher_query for p in view.pairs[:3]]
    for heat in (*view.teacher_heat.values(), *view.student_heat.values()):
        assert heat.shape == (96, 128) and heat.min() >= 0
        assert 0.2 < heat.sum() <= 1.0 + 1e-6  # most sampling points fall on the image


class FixedDetector(torch.nn.Module):
    """Returns the same detections for every image."""

    def __init__(self, detections: Instances):
        super().__init__()
        self.detections = detections

    def forward(self, batch):
        return [{"instances": self.detections} for _ in batch]


@pytest.mark.parametrize("teacher_right", [True, False])
def test_detections_grid_titles_say_what_each_model_found(tmp_path, monkeypatch, teacher_right):
    from detrdistill.tools import demo_views

    path = tmp_path / "image.png"
    Image.fromarray(np.full((100, 100, 3), 60, np.uint8)).save(path)
    truth = record([[0, 0, 40, 40], [50, 50, 90, 90]], [0, 1])
    truth["file_name"] = str(path)
    right = instances([[0, 0, 40, 40], [50, 50, 90, 90]], [0, 1], [0.9, 0.8])
    teacher = right if teacher_right else instances([[0, 0, 40, 40]], [0], [0.9])
    student = instances([[50, 50, 90, 90], [5, 60, 30, 95]], [1, 1], [0.5, 0.4])
    figures = []
    monkeypatch.setattr(demo_views, "save_figure", lambda fig, out: figures.append(fig) or out)
    demo_views.draw_detections_grid(
        {"teacher": FixedDetector(teacher), "student": FixedDetector(student)},
        [{"file_name": str(path)}],
        {str(path): truth},
        ["square", "circle"],
        "grid.png",
    )
    (fig,) = figures
    titles = [ax.get_title() for ax in fig.axes]
    found = "found 2/2" if teacher_right else "found 1/2"
    assert titles == ["ground truth: 2 objects", f"teacher: {found}", "student: found 1/2, 1 false"]
    where = "the teacher is right:" if teacher_right else "the teacher is most right:"
    assert where in fig._suptitle.get_text()
