"""Distilling DINO: DINO teachers for Deformable DETR students (their positional queries come
from the anchors), Deformable teachers for DINO students (which take anchors and content only),
and the COCO DINO R50 -> R18 pairs, two iterations each on CPU."""

import math

import pytest
import torch
from detectron2.config import instantiate
from test_distill_detector import MAIN_CONFIG, shrink, tiny_batch, tiny_distill_config, train_steps

from detrdistill import model_zoo
from detrdistill.layers import coordinate_sine_embedding


def _dino_teacher(cfg):
    teacher = model_zoo.get_config("shapes/dino_tiny.py").model
    shrink(teacher, hidden=48, dec_layers=3, queries=8)
    cfg.model.teacher = teacher


def _assert_trains(model, steps=2):
    train_steps(model, steps)
    model.train()
    from detectron2.utils.events import EventStorage

    with EventStorage():
        losses = model(tiny_batch(5))
    assert all(math.isfinite(v.item()) for v in losses.values())
    for name in model.distill_losses:
        assert any(k.startswith(f"loss_distill_{name}_") for k in losses), name
    return losses


@pytest.mark.parametrize("two_stage", [True, False], ids=["two_stage", "single_stage"])
def test_dino_teacher_distils_into_a_deformable_student(tmp_path, two_stage):
    """The DINO teacher's queries reach the student with the positional queries of the
    teacher's first decoder layer (ref_point_head of the anchors' sine embedding in the first
    level's padded frame), adapted to the student's width; a single-stage student turns them
    into reference points with its own head."""
    cfg = tiny_distill_config(MAIN_CONFIG, tmp_path)
    _dino_teacher(cfg)
    if not two_stage:
        cfg.model.student.update(as_two_stage=False, with_box_refine=False)
    torch.manual_seed(0)
    model = instantiate(cfg.model).train()
    assert model.teacher_query_reference == ("teacher" if two_stage else "student_head")
    teacher_out = model.run_teacher(tiny_batch())
    group = model.teacher_query_group(teacher_out.queries, teacher_out.encoder)
    anchors = teacher_out.queries.reference
    ratios = teacher_out.encoder.valid_ratios[:, 0]
    with torch.no_grad():
        sine = coordinate_sine_embedding(anchors * torch.cat([ratios, ratios], -1)[:, None], 24)
        expected = model.query_adapter.pos(model.teacher.decoder.ref_point_head(sine))
    torch.testing.assert_close(group.pos, expected)
    assert group.content.shape == (2, 8, 32)
    if two_stage:
        torch.testing.assert_close(group.reference, anchors)
    else:
        torch.testing.assert_close(group.reference, model.student.reference_from_pos(group.pos))
    with pytest.raises(ValueError, match="teacher_encoder"):
        model.teacher_query_group(teacher_out.queries)
    _assert_trains(model)


def test_deformable_teacher_distils_into_a_dino_student(tmp_path):
    """The shapes pair config: the teacher's content and anchors enter the DINO decoder, its
    positional queries do not (DINO derives them from the anchors), and the student's own
    outputs are unchanged by the group."""
    cfg = tiny_distill_config("detrdistill/shapes_dino_tiny.py", tmp_path)
    torch.manual_seed(0)
    model = instantiate(cfg.model).train()
    batch = tiny_batch()
    teacher_out = model.run_teacher(batch)
    assert teacher_out.queries.pos is not None
    group = model.teacher_query_group(teacher_out.queries, teacher_out.encoder)
    assert group.pos is None and group.reference.shape == (2, 8, 4)
    student = model.student
    images = student.preprocess_image(batch)
    with torch.no_grad():
        both = student.run(images, groups={"teacher_queries": group})
        alone = student.run(images)
    torch.testing.assert_close(both.decoder.pred_boxes, alone.decoder.pred_boxes, atol=1e-5, rtol=0)
    assert both.groups["teacher_queries"].pred_logits.shape[2] == 8
    _assert_trains(model)


@pytest.mark.parametrize(
    "name", ["detrdistill/coco_dino_r50_to_r18_12ep.py", "d3etr/coco_dino_r50_to_r18_12ep.py"]
)
def test_coco_dino_pair_distils_two_iterations(name):
    cfg = model_zoo.get_config(name)
    assert cfg.model.teacher._target_.__name__ == cfg.model.student._target_.__name__ == "DINO"
    assert cfg.model.teacher.backbone.depth == 50 and cfg.model.student.backbone.depth == 18
    shrink(cfg.model.student, hidden=32, dec_layers=2, queries=6)
    shrink(cfg.model.teacher, hidden=48, dec_layers=3, queries=8)
    cfg.model.update(teacher_weights="", allow_random_teacher=True)
    for loss in cfg.model.losses.values():
        if "top_k" in loss:
            loss.top_k = 10
    torch.manual_seed(0)
    model = instantiate(cfg.model)
    _assert_trains(model)


@pytest.mark.parametrize("method", ["detrdistill", "d3etr"])
def test_denoising_queries_never_reach_a_distillation_term(tmp_path, method):
    """A DINO student trains with its contrastive denoising group (loss_*_dn), but every
    distillation term sees only its own queries and the teacher-query group: outputs and
    attention maps cut to them."""
    from detectron2.utils.events import EventStorage

    from detrdistill.modeling import DENOISING

    cfg = tiny_distill_config(f"{method}/shapes_dino_tiny.py", tmp_path)
    torch.manual_seed(0)
    model = instantiate(cfg.model).train()
    assert model.student.denoising is not None and model.student.denoising.contrastive
    seen = []
    for module in model.distill_losses.values():
        original = module.forward
        module.forward = lambda inputs, call=original: (seen.append(inputs), call(inputs))[1]
    with EventStorage():
        losses = model(tiny_batch())
    assert {"loss_class_dn", "loss_bbox_dn", "loss_giou_dn_0"} <= set(losses)
    assert len(seen) == len(model.distill_losses)
    queries = model.student.num_queries
    for inputs in seen:
        student = inputs.student
        assert DENOISING not in student.groups and DENOISING not in student.group_queries
        assert set(student.groups) <= {"teacher_queries"}
        assert student.decoder.pred_logits.shape[2] == queries
        if student.decoder.self_attn is not None:
            assert student.decoder.self_attn[0].shape[-2:] == (queries, queries)
    sum(losses.values()).backward()
    assert model.student.denoising.label_embed.weight.grad.abs().sum() > 0
