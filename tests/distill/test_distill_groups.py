"""Named query groups in the distillation wrapper: built only when a loss reads them, run in the
models their builder names (the teacher included), and seen only by the losses that name them."""

import pytest
import torch
from detectron2.config import instantiate
from test_distill_detector import MAIN_CONFIG, tiny_batch, tiny_distill_config

import detrdistill  # noqa: F401
from detrdistill.distill import (
    DistillationDetector,
    DistillationLoss,
    HungarianLogitsDistillation,
    QueryGroupBuilder,
    QueryPriorAssignmentDistillation,
)
from detrdistill.modeling import QueryGroup

NUM_POINTS = 5


class DistillationPoints(QueryGroupBuilder):
    """A KD-DETR-like group: the same fixed points fed to the teacher and the student, each in
    its own width."""

    models = ("student", "teacher")

    def __init__(self, *, teacher_dim, student_dim, models=("student", "teacher")):
        super().__init__()
        self.models = models
        gen = torch.Generator().manual_seed(11)
        self.reference = 0.2 + 0.6 * torch.rand(1, NUM_POINTS, 4, generator=gen)
        self.pos = {
            "teacher": torch.randn(1, NUM_POINTS, teacher_dim, generator=gen),
            "student": torch.randn(1, NUM_POINTS, student_dim, generator=gen),
        }

    def group(self, model):
        pos = self.pos[model]
        return QueryGroup(torch.zeros_like(pos), pos, self.reference)

    def forward(self, context):
        assert context.teacher_output is None  # built before the teacher runs
        return {model: self.group(model) for model in self.models}


class ReadsGroups(DistillationLoss):
    """Records what it is given; a zero loss connected to the named groups."""

    def __init__(self, *names):
        super().__init__()
        self.query_groups = names
        self.seen = None

    def forward(self, inputs):
        self.seen = inputs
        total = sum(self.group_outputs(inputs, n).pred_logits.sum() for n in self.query_groups)
        return {"zero": 0.0 * total}


def _models(tmp_path):
    cfg = tiny_distill_config(MAIN_CONFIG, tmp_path)
    torch.manual_seed(0)
    return instantiate(cfg.model.student), instantiate(cfg.model.teacher)


def _wrapper(student, teacher, losses, **kwargs):
    return DistillationDetector(
        student=student,
        teacher=teacher,
        losses=losses,
        loss_weights=dict.fromkeys(losses, 1.0),
        allow_random_teacher=True,
        **kwargs,
    ).train()


def test_a_group_runs_in_the_teacher_and_the_student(tmp_path):
    student, teacher = _models(tmp_path)
    points = DistillationPoints(teacher_dim=teacher.hidden_dim, student_dim=student.hidden_dim)
    loss = ReadsGroups("points")
    model = _wrapper(student, teacher, {"points": loss}, group_builders={"points": points})
    assert list(model.group_builders) == ["points"] and model.query_adapter is None
    batch = tiny_batch()
    losses = model(batch)
    assert "loss_distill_points_zero" in losses
    seen = loss.seen
    assert list(seen.teacher.groups) == ["points"] and list(seen.student.groups) == ["points"]
    t_group, s_group = seen.teacher.groups["points"], seen.student.groups["points"]
    assert t_group.pred_logits.shape[:3] == (teacher.decoder.num_layers, 2, NUM_POINTS)
    assert s_group.pred_logits.shape[:3] == (student.decoder.num_layers, 2, NUM_POINTS)
    # the teacher's own outputs are those of a plain teacher run, and its group outputs those
    # of the teacher decoding the points directly
    plain = model.run_teacher(batch)
    for name in ("pred_logits", "pred_boxes", "enc_logits"):
        expected = getattr(plain.decoder, name)
        torch.testing.assert_close(getattr(seen.teacher.decoder, name), expected)
    with torch.no_grad():
        direct = teacher.run(
            teacher.preprocess_image(batch), groups={"points": points.group("teacher")}
        )
    torch.testing.assert_close(t_group.pred_logits, direct.groups["points"].pred_logits)
    torch.testing.assert_close(t_group.pred_boxes, direct.groups["points"].pred_boxes)
    # the student decoded its own copy (student width), with gradient
    assert s_group.pred_logits.requires_grad and not t_group.pred_logits.requires_grad


def test_no_group_is_built_or_decoded_when_no_loss_reads_one(tmp_path, monkeypatch):
    student, teacher = _models(tmp_path)
    model = _wrapper(student, teacher, {"logits": HungarianLogitsDistillation()})
    assert len(model.group_builders) == 0 and model.query_adapter is None
    calls = []
    for name, detector in (("student", student), ("teacher", teacher)):
        run = detector.run

        def spy(*args, _run=run, _name=name, **kwargs):
            calls.append((_name, kwargs.get("groups")))
            return _run(*args, **kwargs)

        monkeypatch.setattr(detector, "run", spy)
    model(tiny_batch())
    assert sorted(calls) == [("student", {}), ("teacher", None)]


def test_each_loss_sees_only_the_groups_it_names(tmp_path):
    student, teacher = _models(tmp_path)
    points = DistillationPoints(
        teacher_dim=teacher.hidden_dim, student_dim=student.hidden_dim, models=("student",)
    )
    reads_points = ReadsGroups("points")
    model = _wrapper(
        student,
        teacher,
        {"prior": QueryPriorAssignmentDistillation(), "points": reads_points},
        group_builders={"points": points},
    )
    assert list(model.group_builders) == ["teacher_queries", "points"]
    model(tiny_batch())
    # the inputs carry the groups some loss reads (built once, shared)
    assert set(reads_points.seen.student.groups) == {"teacher_queries", "points"}
    assert reads_points.seen.teacher.groups == {}  # "points" runs in the student only here


def test_builder_declarations_are_checked(tmp_path):
    student, teacher = _models(tmp_path)
    dims = dict(teacher_dim=teacher.hidden_dim, student_dim=student.hidden_dim)
    with pytest.raises(ValueError, match="no loss reads"):
        _wrapper(
            student,
            teacher,
            {"logits": HungarianLogitsDistillation()},
            group_builders={"points": DistillationPoints(**dims)},
        )
    with pytest.raises(KeyError, match="model.group_builders"):
        _wrapper(student, teacher, {"points": ReadsGroups("points")})
    with pytest.raises(ValueError, match="models must be"):
        _wrapper(
            student,
            teacher,
            {"points": ReadsGroups("points")},
            group_builders={"points": DistillationPoints(models=("pupil",), **dims)},
        )

    class FromTeacher(DistillationPoints):
        needs_teacher_output = True

    with pytest.raises(ValueError, match="cannot run in the teacher"):
        _wrapper(
            student,
            teacher,
            {"points": ReadsGroups("points")},
            group_builders={"points": FromTeacher(**dims)},
        )

    class Wrong(DistillationPoints):
        def forward(self, context):
            return {"student": self.group("student")}

    model = _wrapper(
        student,
        teacher,
        {"points": ReadsGroups("points")},
        group_builders={"points": Wrong(**dims)},
    )
    with pytest.raises(ValueError, match="declares models"):
        model(tiny_batch())


def test_checkpoints_with_the_old_adapter_keys_load(tmp_path):
    student, teacher = _models(tmp_path)
    model = _wrapper(student, teacher, {"prior": QueryPriorAssignmentDistillation()})
    state = model.state_dict()
    new = "group_builders.teacher_queries.adapter."
    legacy = {
        k.replace(new, "query_adapter."): v + 1 for k, v in state.items() if k.startswith(new)
    }
    assert legacy and all(k.startswith("query_adapter.") for k in legacy)
    old_state = {k: v for k, v in state.items() if not k.startswith(new)} | legacy
    model.load_state_dict(old_state, strict=True)
    for key, value in legacy.items():
        loaded = model.state_dict()[key.replace("query_adapter.", new)]
        torch.testing.assert_close(loaded, value)
    assert model.query_adapter is model.group_builders["teacher_queries"].adapter


def test_a_denoising_student_keeps_its_groups_away_from_the_losses(tmp_path):
    """A DAB-DETR student with denoising: its denoising losses join the detection losses, the
    distillation losses see the own queries only, and no loss may claim the group's name."""
    from detectron2.config import LazyCall as L
    from test_distill_detector import shrink

    from detrdistill import model_zoo
    from detrdistill.modeling import DENOISING, DenoisingQueries

    cfg = tiny_distill_config(MAIN_CONFIG, tmp_path)
    student_cfg = model_zoo.get_config("shapes/dab_detr_tiny.py").model
    shrink(student_cfg, hidden=32, dec_layers=2, queries=6)
    student_cfg.denoising = L(DenoisingQueries)(
        num_classes=student_cfg.num_classes, hidden_dim=32, num_groups=2, contrastive=True
    )
    torch.manual_seed(0)
    student, teacher = instantiate(student_cfg), instantiate(cfg.model.teacher)
    recorder = ReadsGroups()
    model = _wrapper(
        student, teacher, {"logits": HungarianLogitsDistillation(), "recorder": recorder}
    )
    losses = model(tiny_batch())
    assert {"loss_class_dn", "loss_bbox_dn_0", "loss_distill_logits_class"} <= set(losses)
    assert recorder.seen.student.groups == {} and recorder.seen.student.group_queries == {}
    assert recorder.seen.student.decoder.pred_logits.shape[2] == 6
    sum(losses.values()).backward()
    assert student.denoising.label_embed.weight.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="'denoising'.*rename"):
        _wrapper(
            student,
            teacher,
            {"x": ReadsGroups(DENOISING)},
            group_builders={DENOISING: DistillationPoints(teacher_dim=48, student_dim=32)},
        )
