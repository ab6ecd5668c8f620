"""DistillationDetector construction options and the query adapter (unit level, tiny models)."""

import logging

import pytest
import torch
from detectron2.config import instantiate
from test_distill_detector import MAIN_CONFIG, tiny_batch, tiny_distill_config

import detrdistill  # noqa: F401
from detrdistill.distill import (
    DistillationDetector,
    HungarianLogitsDistillation,
    QueryAdapter,
    QueryContrastiveDistillation,
    QueryPriorAssignmentDistillation,
)
from detrdistill.modeling.outputs import QueryGroup


def test_query_adapter_starts_as_a_rectangular_identity():
    narrow = QueryAdapter(teacher_dim=8, student_dim=4)
    queries = QueryGroup(torch.randn(2, 5, 8), torch.randn(2, 5, 8), torch.rand(2, 5, 2))
    out = narrow(queries)
    # D_t = 8 -> D_s = 4 keeps the first 4 channels, exactly
    torch.testing.assert_close(out.content, queries.content[..., :4], rtol=0, atol=0)
    torch.testing.assert_close(out.pos, queries.pos[..., :4], rtol=0, atol=0)
    assert out.reference is queries.reference or torch.equal(out.reference, queries.reference)
    wide = QueryAdapter(teacher_dim=4, student_dim=6)
    small = QueryGroup(torch.randn(1, 3, 4), None, None)
    out = wide(small)
    # D_t = 4 -> D_s = 6: the 4 channels, then zeros
    torch.testing.assert_close(out.content[..., :4], small.content, rtol=0, atol=0)
    assert out.content[..., 4:].abs().sum() == 0 and out.pos is None
    same = QueryAdapter(teacher_dim=4, student_dim=4)
    assert len(list(same.parameters())) == 0 and same(small).content is not None
    with pytest.raises(ValueError, match="teacher_dim=8"):
        narrow(small)
    # the adapter is trainable, the teacher's queries are not
    trainable = QueryGroup(torch.randn(1, 3, 8, requires_grad=True), None, None)
    narrow(trainable).content.sum().backward()
    assert trainable.content.grad is None
    assert narrow.content.weight.grad is not None


def _single_stage(cfg, part):
    getattr(cfg.model, part).update(as_two_stage=False, with_box_refine=False)


def test_teacher_query_reference_student_head_uses_the_students_reference_head(tmp_path):
    cfg = tiny_distill_config(MAIN_CONFIG, tmp_path)
    _single_stage(cfg, "student")
    _single_stage(cfg, "teacher")
    torch.manual_seed(0)
    model = instantiate(cfg.model).train()
    assert model.teacher_query_reference == "student_head"  # auto, single-stage student
    teacher_queries = model.run_teacher(tiny_batch()).queries
    assert teacher_queries.reference.shape[-1] == 2
    group = model.teacher_query_group(teacher_queries)
    # by hand: the adapter (48 -> 32 linear) on the teacher's positional queries, then the
    # student's own reference head, reference_points + sigmoid
    adapter, head = model.query_adapter.pos, model.student.reference_points
    pos = teacher_queries.pos @ adapter.weight.t() + adapter.bias
    expected = torch.sigmoid(pos @ head.weight.t() + head.bias)
    torch.testing.assert_close(group.reference, expected)
    assert not torch.allclose(group.reference, teacher_queries.reference, atol=1e-3)
    assert group.content.shape[-1] == 32 and group.pos.shape[-1] == 32

    cfg.model.teacher_query_reference = "teacher"
    torch.manual_seed(0)
    keep = instantiate(cfg.model).train()
    assert keep.teacher_query_reference == "teacher"
    kept = keep.teacher_query_group(keep.run_teacher(tiny_batch()).queries)
    torch.testing.assert_close(kept.reference, teacher_queries.reference)
    # both train
    for wrapper in (model, keep):
        losses = wrapper(tiny_batch())
        assert any(k.startswith("loss_distill_query_prior_") for k in losses)
        assert all(torch.isfinite(v) for v in losses.values())


def test_teacher_query_reference_options_on_a_two_stage_student(tmp_path):
    cfg = tiny_distill_config(MAIN_CONFIG, tmp_path)  # two-stage student and teacher
    torch.manual_seed(0)
    assert instantiate(cfg.model).teacher_query_reference == "teacher"  # auto
    cfg.model.teacher_query_reference = "student_head"
    with pytest.raises(ValueError, match="student_head"):
        instantiate(cfg.model)
    cfg.model.teacher_query_reference = "anchors"
    with pytest.raises(ValueError, match="teacher_query_reference"):
        instantiate(cfg.model)


def test_input_format_mismatch_is_an_error(tmp_path):
    cfg = tiny_distill_config(MAIN_CONFIG, tmp_path)
    cfg.model.teacher.input_format = "BGR"
    cfg.model.student.input_format = "RGB"
    with pytest.raises(ValueError, match="BGR.*RGB"):
        instantiate(cfg.model)


def test_allow_random_teacher_warns_loudly(tmp_path, caplog):
    cfg = tiny_distill_config(MAIN_CONFIG, tmp_path)
    with caplog.at_level(logging.WARNING, logger="detrdistill"):
        instantiate(cfg.model)
    messages = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert any("RANDOMLY INITIALISED" in m for m in messages), messages


def test_losses_run_writers_first(tmp_path):
    cfg = tiny_distill_config(MAIN_CONFIG, tmp_path)
    torch.manual_seed(0)
    student, teacher = instantiate(cfg.model.student), instantiate(cfg.model.teacher)

    def build(losses):
        return DistillationDetector(
            student=student,
            teacher=teacher,
            losses=losses,
            loss_weights=dict.fromkeys(losses, 1.0),
            allow_random_teacher=True,
        )

    contrastive = QueryContrastiveDistillation(student_dim=32, teacher_dim=48, proj_dim=8)
    model = build(
        {
            "contrastive": contrastive,
            "query_prior": QueryPriorAssignmentDistillation(),
            "logits": HungarianLogitsDistillation(),
        }
    )
    # the reader of "logits_pairs" runs after its writer; the others keep the config order
    assert list(model.distill_losses) == ["query_prior", "logits", "contrastive"]
    losses = model.train()(tiny_batch())
    assert "loss_distill_contrastive_contrastive" in losses
    with pytest.raises(ValueError, match="logits_pairs"):
        build({"contrastive": contrastive})
    own = QueryContrastiveDistillation(student_dim=32, teacher_dim=48, proj_dim=8, pairs_from="own")
    assert list(build({"contrastive": own}).distill_losses) == ["contrastive"]


@pytest.mark.parametrize("method", ["detrdistill", "d3etr"])
def test_no_gradient_reaches_a_trainable_teacher_through_the_wrapper(tmp_path, method):
    """Even with every teacher parameter made trainable, a training step leaves them without
    gradient (the teacher runs without autograd), while the student and adapters get one."""
    cfg = tiny_distill_config(f"{method}/shapes_deformable_tiny.py", tmp_path)
    torch.manual_seed(0)
    model = instantiate(cfg.model).train()
    for param in model.teacher.parameters():
        param.requires_grad_(True)
    losses = model(tiny_batch())
    assert any(k.startswith("loss_distill_") for k in losses)
    sum(losses.values()).backward()
    teacher_grads = [p.grad for p in model.teacher.parameters()]
    assert all(g is None or g.abs().sum() == 0 for g in teacher_grads)
    assert sum(p.grad.abs().sum().item() for p in model.student.parameters() if p.grad is not None)
    assert model.query_adapter.content.weight.grad is not None
