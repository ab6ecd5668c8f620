"""KD-DETR: distillation points (the teacher's queries, random boxes) decoded by both models, the
loss on same-index outputs, the variants' box query forms, pairs that cannot share points, and
two training iterations of every packaged KD-DETR config."""

import copy
import math

import pytest
import torch
from detectron2.config import LazyConfig, instantiate
from distill_testing import (
    as_student,
    as_teacher,
    iou_giou,
    make_decoder,
    make_encoder,
    make_inputs,
    make_output,
    random_boxes,
    sigmoid,
    trainable,
)
from omegaconf import OmegaConf
from test_distill_detector import shrink, tiny_batch, tiny_distill_config, train_steps

import detrdistill  # noqa: F401
from detrdistill import model_zoo
from detrdistill.distill import (
    GENERAL_POINTS,
    SPECIFIC_POINTS,
    DistillationDetector,
    GeneralPoints,
    KDDETRDistillation,
    SpecificPoints,
)
from detrdistill.modeling.outputs import DETROutput

SHAPES_CONFIG = "kd_detr/shapes_deformable_tiny.py"
COCO_CONFIGS = [n for n in model_zoo.list_configs() if n.startswith("kd_detr/coco")]
NUM_GENERAL = 5


# ---------------------------------------------------------------------------- hand formulas
def _softmax(values):
    top = max(values)
    exps = [math.exp(v - top) for v in values]
    return [e / sum(exps) for e in exps]


def hand_point_terms(
    s_logits, s_boxes, t_logits, t_boxes, *, temperature, confidence=True, reduction="mean"
):
    """One layer pair's (class, bbox, giou) terms, weights 1 / 5 / 2, from explicit formulas
    over python lists of points: the official code's (Myleswork/KD-DETR ``kd_loss.py``): class
    Σ_i w_i · T² · mean_c KL, boxes Σ_i w_i L_i / Σ_i w_i, w_i = max_c sigmoid(t_ic)."""
    cls = l1 = giou = weights = 0.0
    for s, sb, t, tb in zip(s_logits, s_boxes, t_logits, t_boxes):
        w = max(sigmoid(x) for x in t) if confidence else 1.0
        p = _softmax([x / temperature for x in t])
        q = _softmax([x / temperature for x in s])
        kl = [pc * (math.log(pc) - math.log(qc)) for pc, qc in zip(p, q)]
        kl = sum(kl) / len(kl) if reduction == "mean" else sum(kl)
        cls += w * kl * temperature**2
        l1 += w * sum(abs(a - b) for a, b in zip(sb, tb)) / 4
        giou += w * (1 - iou_giou(sb, tb)[1])
        weights += w
    return {"class": cls, "bbox": 5 * l1 / weights, "giou": 2 * giou / weights}


def _terms(loss, s_logits, s_boxes, t_logits, t_boxes, class_type="focal"):
    """``loss.point_losses`` on python lists of points (batch of one), as floats."""
    tensors = [torch.tensor([v], dtype=torch.float64) for v in (s_logits, s_boxes)]
    tensors += [torch.tensor([v], dtype=torch.float64) for v in (t_logits, t_boxes)]
    return {k: float(v) for k, v in loss.point_losses(*tensors, class_type).items()}


# ---------------------------------------------------------------------------- the loss
def test_point_losses_against_hand_computed_values():
    """Two points, two classes, T = 2. Teacher logits (2, 0) and (-2, -4) give the same
    softmax at T = 2, (0.731, 0.269), against the student's uniform (0.5, 0.5): KL 0.110944
    per point (0.0554720 as the mean over the 2 classes), times T^2 = 4. The teacher's
    confidences sigmoid(2) = 0.880797 and sigmoid(-2) = 0.119203 add up to 1, so the class
    term is 0.221888. Boxes: a box inside one twice its size (L1 0.1, 1 - GIoU 0.75) and two
    disjoint boxes (L1 0.1, 1 - GIoU 4/3)."""
    s_logits, t_logits = [[0.0, 0.0], [0.0, 0.0]], [[2.0, 0.0], [-2.0, -4.0]]
    s_boxes = [[0.5, 0.5, 0.2, 0.2], [0.2, 0.2, 0.2, 0.2]]
    t_boxes = [[0.5, 0.5, 0.4, 0.4], [0.6, 0.2, 0.2, 0.2]]
    loss = KDDETRDistillation(temperature=2.0)
    got = _terms(loss, s_logits, s_boxes, t_logits, t_boxes)
    w0, w1 = sigmoid(2.0), sigmoid(-2.0)
    expected = {
        "class": 0.2218881,
        "bbox": 5 * 0.1,
        "giou": 2 * (w0 * 0.75 + w1 * 4 / 3) / (w0 + w1),
    }
    for key, value in expected.items():
        assert got[key] == pytest.approx(value, rel=1e-6), key
    assert got["giou"] == pytest.approx(1.639070, rel=1e-6)
    # the same from the general hand formula, and its options
    hand = hand_point_terms(s_logits, s_boxes, t_logits, t_boxes, temperature=2.0)
    assert got == pytest.approx(hand, rel=1e-6)  # the loss computes in float32
    summed = _terms(KDDETRDistillation(temperature=2.0, class_reduction="sum"), *_args(s_logits))
    assert summed["class"] == pytest.approx(2 * got["class"], rel=1e-6)  # K = 2
    plain = KDDETRDistillation(temperature=2.0, weight_by_teacher_confidence=False)
    unweighted = _terms(plain, s_logits, s_boxes, t_logits, t_boxes)
    assert unweighted["class"] == pytest.approx(2 * 0.2218881, rel=1e-6)
    assert unweighted["giou"] == pytest.approx(0.75 + 4 / 3, rel=1e-6)


def _args(s_logits):
    return (
        s_logits,
        [[0.5, 0.5, 0.2, 0.2], [0.2, 0.2, 0.2, 0.2]],
        [[2.0, 0.0], [-2.0, -4.0]],
        [[0.5, 0.5, 0.4, 0.4], [0.6, 0.2, 0.2, 0.2]],
    )


def test_random_points_against_the_hand_formula():
    torch.manual_seed(3)
    num_points, classes = 7, 4
    s_logits, t_logits = 3 * torch.randn(2, num_points, classes)
    s_boxes, t_boxes = random_boxes(2, num_points)
    for temperature, reduction, confidence in [(10.0, "mean", True), (1.5, "sum", False)]:
        loss = KDDETRDistillation(
            temperature=temperature,
            class_reduction=reduction,
            weight_by_teacher_confidence=confidence,
        )
        got = _terms(loss, s_logits.tolist(), s_boxes.tolist(), t_logits.tolist(), t_boxes.tolist())
        hand = hand_point_terms(
            s_logits.tolist(),
            s_boxes.tolist(),
            t_logits.tolist(),
            t_boxes.tolist(),
            temperature=temperature,
            confidence=confidence,
            reduction=reduction,
        )
        assert got == pytest.approx(hand, rel=1e-6)


def test_each_point_counts_by_the_teachers_confidence():
    """The class term is the confidence-weighted sum of the points' terms; the box terms their
    confidence-weighted mean; a point the teacher gives confidence ~0 does not count at all."""
    torch.manual_seed(0)
    s_logits, t_logits = 2 * torch.randn(2, 3, 5)
    t_logits[2] = -40.0  # confidence sigmoid(-40) ~ 4e-18
    s_boxes, t_boxes = random_boxes(2, 3)
    loss = KDDETRDistillation()
    unweighted = KDDETRDistillation(weight_by_teacher_confidence=False)
    conf = t_logits.sigmoid().amax(-1)
    alone = [
        _terms(unweighted, *(x[i : i + 1].tolist() for x in (s_logits, s_boxes, t_logits, t_boxes)))
        for i in range(3)
    ]
    got = _terms(loss, *(x.tolist() for x in (s_logits, s_boxes, t_logits, t_boxes)))
    assert got["class"] == pytest.approx(sum(w * a["class"] for w, a in zip(conf, alone)))
    for key in ("bbox", "giou"):
        mean = sum(w * a[key] for w, a in zip(conf, alone)) / conf.sum()
        assert got[key] == pytest.approx(float(mean), rel=1e-6)
    # moving the student's prediction of the unconfident point changes nothing ...
    moved_logits, moved_boxes = s_logits.clone(), s_boxes.clone()
    moved_logits[2] += 5.0
    moved_boxes[2] = torch.tensor([0.9, 0.1, 0.05, 0.05])
    args = (moved_logits, moved_boxes, t_logits, t_boxes)
    assert _terms(loss, *(x.tolist() for x in args)) == pytest.approx(got, rel=1e-9)
    # ... unless the points are not weighted
    assert _terms(unweighted, *(x.tolist() for x in args)) != pytest.approx(
        _terms(unweighted, *(x.tolist() for x in (s_logits, s_boxes, t_logits, t_boxes)))
    )


def _point_outputs(layers_s=3, layers_t=2, points=4, batch=2, classes=3):
    torch.manual_seed(1)
    student_general = make_decoder(layers_s, batch, points, classes)
    student_specific = make_decoder(layers_s, batch, 6, classes)
    teacher_general = make_decoder(layers_t, batch, points, classes)
    teacher_own = make_decoder(layers_t, batch, 6, classes)
    encoder = make_encoder(batch)
    student = make_output(make_decoder(layers_s, batch, 5, classes), encoder)
    student.groups = {SPECIFIC_POINTS: student_specific, GENERAL_POINTS: student_general}
    teacher = make_output(teacher_own, encoder)
    teacher.groups = {GENERAL_POINTS: teacher_general}
    return student, teacher


def _hand_layers(student, teacher, pairs):
    total = {}
    for s, t in pairs:
        terms = hand_point_terms(
            student.pred_logits[s].flatten(0, 1).tolist(),
            student.pred_boxes[s].flatten(0, 1).tolist(),
            teacher.pred_logits[t].flatten(0, 1).tolist(),
            teacher.pred_boxes[t].flatten(0, 1).tolist(),
            temperature=10.0,
        )
        for key, value in terms.items():
            total[key] = total.get(key, 0.0) + value
    return total


@pytest.mark.parametrize("teacher_layer", ["last", "mapped"])
def test_every_student_layer_learns_from_the_chosen_teacher_layer(teacher_layer):
    """General points against the teacher's outputs on the same points, specific points against
    the teacher's own outputs; every student layer against the teacher's last layer (official)
    or its mapped layer; summed over the layers. The teacher gets no gradient."""
    student, teacher = _point_outputs()
    pairs = [(0, 0), (1, 1), (2, 1)]
    student, teacher = as_student(student), trainable(teacher)
    inputs = make_inputs(teacher, student, layer_pairs=pairs)
    loss = KDDETRDistillation(teacher_layer=teacher_layer)
    assert set(loss.query_groups) == {SPECIFIC_POINTS, GENERAL_POINTS}
    got = loss(inputs)
    used = [(s, 1) for s in (0, 1, 2)] if teacher_layer == "last" else pairs
    for point_set, s_out, t_out in [
        ("specific", student.groups[SPECIFIC_POINTS], teacher.decoder),
        ("general", student.groups[GENERAL_POINTS], teacher.groups[GENERAL_POINTS]),
    ]:
        hand = _hand_layers(s_out, t_out, used)
        for key, value in hand.items():
            assert got[f"{point_set}_{key}"].item() == pytest.approx(value, rel=1e-5)
    sum(got.values()).backward()
    assert student.groups[GENERAL_POINTS].pred_logits.grad.abs().sum() > 0
    assert student.groups[SPECIFIC_POINTS].pred_boxes.grad.abs().sum() > 0
    assert student.decoder.pred_logits.grad is None  # the detection queries are not involved
    assert teacher.decoder.pred_logits.grad is None
    assert teacher.groups[GENERAL_POINTS].pred_boxes.grad is None


def test_one_point_set_alone_and_bad_settings():
    student, teacher = _point_outputs()
    inputs = make_inputs(as_teacher(teacher), as_student(student))
    general_only = KDDETRDistillation(specific_group=None)
    assert general_only.query_groups == (GENERAL_POINTS,)
    assert set(general_only(inputs)) == {"general_class", "general_bbox", "general_giou"}
    with pytest.raises(ValueError, match="specific_group or general_group"):
        KDDETRDistillation(specific_group=None, general_group=None)
    with pytest.raises(ValueError, match="teacher_layer"):
        KDDETRDistillation(teacher_layer="first")
    with pytest.raises(ValueError, match="temperature"):
        KDDETRDistillation(temperature=0)
    # a specific group that is not the teacher's queries
    student.groups[SPECIFIC_POINTS] = make_decoder(3, 2, 4, 3)
    with pytest.raises(ValueError, match="must be the same in both"):
        KDDETRDistillation()(make_inputs(as_teacher(teacher), as_student(student)))
    # general points the teacher did not decode
    teacher.groups = {}
    with pytest.raises(ValueError, match="teacher decoded no group"):
        general_only(make_inputs(as_teacher(teacher), as_student(student)))


# ---------------------------------------------------------------------------- the points
def test_sampling_distributions_and_a_fresh_draw_every_step():
    uniform = GeneralPoints(num_points=50, distribution="uniform")
    official = GeneralPoints(num_points=50, distribution="sigmoid_normal")
    torch.manual_seed(5)
    expected = torch.rand(1, 50, 4)
    torch.manual_seed(5)
    torch.testing.assert_close(uniform.sample(torch.device("cpu")), expected)
    torch.manual_seed(5)
    expected = torch.nn.Embedding(50, 4).weight.detach().sigmoid()  # the official draw
    torch.manual_seed(5)
    torch.testing.assert_close(official.sample(torch.device("cpu")), expected[None])
    assert not torch.equal(uniform.sample("cpu"), uniform.sample("cpu"))
    with pytest.raises(ValueError, match="distribution"):
        GeneralPoints(distribution="gaussian")
    with pytest.raises(ValueError, match="num_points"):
        GeneralPoints(num_points=0)


def _kd_model(tmp_path, teacher_cfg=None, student_update=None, builders=None):
    cfg = tiny_distill_config(SHAPES_CONFIG, tmp_path)
    cfg.model.group_builders.kd_general_points.num_points = NUM_GENERAL
    if teacher_cfg is not None:
        cfg.model.teacher = teacher_cfg
    if student_update:
        cfg.model.student.update(student_update)
    if builders is not None:
        cfg.model.group_builders = builders
    torch.manual_seed(0)
    return instantiate(cfg.model).train()


def _tiny(name, **update):
    model = model_zoo.get_config(name).model
    shrink(model, hidden=48, dec_layers=3, queries=8)
    model.update(update)
    return model


def test_points_reach_both_models_with_identical_coordinates(tmp_path):
    model = _kd_model(tmp_path)  # two-stage Deformable DETR teacher (48 wide) and student (32)
    batch = tiny_batch()
    targets = model.student.prepare_targets(batch)
    teacher_out, student_out = model.run_models(batch, targets)
    general_s = student_out.group_queries[GENERAL_POINTS]
    general_t = teacher_out.group_queries[GENERAL_POINTS]
    assert general_s.reference.shape == (1, NUM_GENERAL, 4)
    torch.testing.assert_close(general_s.reference, general_t.reference, rtol=0, atol=0)
    assert general_s.content.shape[-1] == 32 and general_t.content.shape[-1] == 48
    # the specific points are the teacher's own (per-image proposal) boxes; only the student
    # decodes them, the teacher's own outputs are their targets
    specific = student_out.group_queries[SPECIFIC_POINTS]
    torch.testing.assert_close(specific.reference, teacher_out.queries.reference, rtol=0, atol=0)
    assert SPECIFIC_POINTS not in teacher_out.groups
    assert student_out.groups[SPECIFIC_POINTS].pred_logits.shape[2] == 8  # teacher's queries
    assert student_out.groups[GENERAL_POINTS].pred_logits.shape[2] == NUM_GENERAL
    # a new draw at the next step
    _, again = model.run_models(batch, targets)
    assert not torch.equal(again.group_queries[GENERAL_POINTS].reference, general_s.reference)


def test_the_points_never_leak_into_the_detection_queries(tmp_path, monkeypatch):
    """The student's own outputs and detection losses are those of a run without points, and
    inference decodes no point at all."""
    model = _kd_model(tmp_path)
    student = model.student
    assert all(m.p == 0 for m in student.modules() if isinstance(m, torch.nn.Dropout))
    batch = tiny_batch()
    targets = student.prepare_targets(batch)
    torch.manual_seed(1)
    with torch.no_grad():
        teacher_out, student_out = model.run_models(batch, targets)
        alone = student.run(student.preprocess_image(batch))
        plain_teacher = model.run_teacher(batch)
    for name in ("pred_logits", "pred_boxes", "hidden_states", "enc_logits", "enc_boxes"):
        own, ref = getattr(student_out.decoder, name), getattr(alone.decoder, name)
        torch.testing.assert_close(own, ref, atol=1e-5, rtol=0)
        own, ref = getattr(teacher_out.decoder, name), getattr(plain_teacher.decoder, name)
        torch.testing.assert_close(own, ref, atol=1e-5, rtol=0)
    assert student_out.decoder.pred_logits.shape[2] == student.num_queries
    losses = model(batch)
    with torch.no_grad():
        expected, _ = student.compute_losses(student.run(student.preprocess_image(batch)), targets)
    for key, value in expected.items():
        torch.testing.assert_close(losses[key], value, atol=1e-5, rtol=0)
    assert {k for k in losses if "distill" in k} == {
        f"loss_distill_kd_detr_{s}_{c}"
        for s in ("specific", "general")
        for c in ("class", "bbox", "giou")
    }
    # inference: the student alone, without groups (the cost of a plain student)
    calls = []
    run = student.run

    def spy(*args, **kwargs):
        calls.append(kwargs.get("groups"))
        return run(*args, **kwargs)

    monkeypatch.setattr(student, "run", spy)
    monkeypatch.setattr(model.teacher, "run", lambda *a, **k: pytest.fail("teacher ran"))
    model.eval()
    model(tiny_batch())
    assert calls == [None]


def test_a_dab_teacher_shares_its_anchors_with_a_single_stage_student(tmp_path):
    """Heterogeneous pair: DAB-DETR teacher (4-d anchors, zero content), single-stage
    Deformable DETR student ((x, y) reference points): the student decodes the same boxes'
    centres, with their sine embedding as positional queries."""
    teacher = _tiny("shapes/dab_detr_tiny.py")
    model = _kd_model(
        tmp_path,
        teacher_cfg=teacher,
        student_update=dict(as_two_stage=False, with_box_refine=False),
    )
    batch = tiny_batch()
    teacher_out, student_out = model.run_models(batch, model.student.prepare_targets(batch))
    general_t = teacher_out.group_queries[GENERAL_POINTS]
    general_s = student_out.group_queries[GENERAL_POINTS]
    assert general_t.pos is None and torch.all(general_t.content == 0)
    torch.testing.assert_close(general_s.reference, general_t.reference[..., :2], rtol=0, atol=0)
    specific = student_out.group_queries[SPECIFIC_POINTS]
    torch.testing.assert_close(
        specific.reference, teacher_out.queries.reference[..., :2], rtol=0, atol=0
    )
    anchors = model.teacher.anchor_box_embed.weight.sigmoid()[..., :2]
    torch.testing.assert_close(specific.reference[0], anchors)  # the teacher's learned anchors
    train_steps(model, 2)


def test_a_single_stage_teacher_shares_its_queries_through_the_adapter(tmp_path):
    teacher = _tiny("shapes/deformable_detr_tiny.py", as_two_stage=False, with_box_refine=False)
    builders = dict(
        kd_specific_points=LazyConfig.load(
            model_zoo.get_config_file("common/distill_losses.py")
        ).kd_detr_specific_queries,
        kd_general_points=GeneralPoints(num_points=NUM_GENERAL),
    )
    model = _kd_model(
        tmp_path,
        teacher_cfg=teacher,
        student_update=dict(as_two_stage=False, with_box_refine=False),
        builders=builders,
    )
    adapter = model.group_builders[SPECIFIC_POINTS].adapter
    assert (adapter.teacher_dim, adapter.student_dim) == (48, 32)
    batch = tiny_batch()
    teacher_out, student_out = model.run_models(batch, model.student.prepare_targets(batch))
    specific = student_out.group_queries[SPECIFIC_POINTS]
    torch.testing.assert_close(specific.reference, teacher_out.queries.reference, rtol=0, atol=0)
    torch.testing.assert_close(specific.pos, adapter.pos(teacher_out.queries.pos))
    losses = model(batch)
    sum(losses.values()).backward()
    assert adapter.pos.weight.grad.abs().sum() > 0


def test_pairs_that_cannot_share_points_fail_clearly(tmp_path):
    detr = _tiny("shapes/detr_tiny.py")
    with pytest.raises(ValueError, match=r"points: the teacher \(DETR\) has no query form"):
        _kd_model(tmp_path, teacher_cfg=detr)
    single_stage = _tiny(
        "shapes/deformable_detr_tiny.py", as_two_stage=False, with_box_refine=False
    )
    with pytest.raises(ValueError, match=r'form="boxes": the teacher .* not boxes'):
        _kd_model(tmp_path, teacher_cfg=single_stage)
    # a DAB student cannot decode a single-stage teacher's queries (no positional queries)
    cfg = tiny_distill_config(SHAPES_CONFIG, tmp_path)
    student = model_zoo.get_config("shapes/dab_detr_tiny.py").model
    shrink(student, hidden=32, dec_layers=2, queries=6)
    cfg.model.update(student=student, teacher=single_stage)
    cfg.model.group_builders.kd_specific_points = SpecificPoints(
        form="queries", teacher_dim=48, student_dim=32
    )
    with pytest.raises(ValueError, match="different query forms"):
        instantiate(cfg.model)
    with pytest.raises(ValueError, match="teacher_dim and student_dim"):
        SpecificPoints(form="queries")


def test_default_builders_follow_the_teachers_query_form(tmp_path):
    cfg = tiny_distill_config(SHAPES_CONFIG, tmp_path)
    single_stage = _tiny(
        "shapes/deformable_detr_tiny.py", as_two_stage=False, with_box_refine=False
    )
    single_stage_student = copy.deepcopy(cfg.model.student)
    single_stage_student.update(as_two_stage=False, with_box_refine=False)
    for student_cfg, teacher_cfg, form in [
        (cfg.model.student, cfg.model.teacher, "boxes"),
        (single_stage_student, single_stage, "queries"),
    ]:
        model = DistillationDetector(
            student=instantiate(student_cfg),
            teacher=instantiate(teacher_cfg),
            losses={"kd_detr": KDDETRDistillation()},
            loss_weights={"kd_detr": 1.0},
            allow_random_teacher=True,
        )
        assert model.group_builders[SPECIFIC_POINTS].form == form
        general = model.group_builders[GENERAL_POINTS]
        assert (general.num_points, general.distribution) == (300, "uniform")


@pytest.mark.parametrize(
    "name, update",
    [
        ("shapes/dab_detr_tiny.py", {}),
        ("shapes/deformable_detr_tiny.py", {}),  # two-stage
        ("shapes/deformable_detr_tiny.py", dict(as_two_stage=False)),
        ("shapes/conditional_detr_tiny.py", {}),
    ],
)
def test_each_variant_turns_boxes_into_its_own_query_form(name, update):
    """Boxes become queries of the model's own form (decodable next to its own queries); for
    the box-query variants the model's own queries are exactly its boxes' queries, so a
    teacher's own outputs are its outputs on its own boxes (the specific points' targets)."""
    cfg = _tiny(name, **update)
    torch.manual_seed(0)
    model = instantiate(cfg).eval()
    assert model.has_box_queries
    images = model.preprocess_image(tiny_batch())
    with torch.no_grad():
        encoder = model.encode(images)
        own, _ = model.initial_queries(encoder)
        boxes = random_boxes(1, 3)
        points = model.queries_from_boxes(boxes)
        out = model.run(images, groups={"points": points})
    assert (points.pos is None) == (own.pos is None)
    assert points.reference.shape[-1] == own.reference.shape[-1]
    torch.testing.assert_close(points.reference, boxes[..., : own.reference.shape[-1]])
    assert out.groups["points"].pred_boxes.shape[:3] == (3, 2, 3)
    if own.reference.shape[-1] == 4:  # DAB-DETR, two-stage Deformable DETR
        again = model.queries_from_boxes(own.reference)
        torch.testing.assert_close(again.content, own.content)
        if own.pos is not None:
            torch.testing.assert_close(again.pos, own.pos)


def test_a_detector_without_references_has_no_box_queries():
    model = instantiate(_tiny("shapes/detr_tiny.py"))
    assert not model.has_box_queries
    with pytest.raises(NotImplementedError, match="no query form for boxes"):
        model.queries_from_boxes(random_boxes(1, 2))


# ---------------------------------------------------------------------------- configs
def test_the_official_preset_differs_only_in_the_general_points():
    library = LazyConfig.load(model_zoo.get_config_file("common/distill_losses.py"))
    default, official = library.kd_detr_points, library.kd_detr_official_points
    assert default.kd_general_points.distribution == "uniform"
    assert official.kd_general_points.distribution == "sigmoid_normal"
    changed = copy.deepcopy(official)
    changed.kd_general_points.distribution = "uniform"
    assert OmegaConf.to_container(changed) == OmegaConf.to_container(default)
    loss = library.kd_detr_losses.kd_detr
    assert (loss.class_weight, loss.bbox_weight, loss.giou_weight) == (1.0, 5.0, 2.0)
    assert (loss.temperature, loss.teacher_layer) == (10.0, "last")
    points = model_zoo.get_config("kd_detr/coco_dab_detr_r50_to_r18_50ep_official.py").model
    assert points.group_builders.kd_general_points.distribution == "sigmoid_normal"


@pytest.mark.parametrize("name", COCO_CONFIGS)
def test_every_coco_kd_detr_config_trains_two_iterations(name):
    """The COCO pairs at tiny size (their variants, options and point builders kept), two
    optimizer steps on CPU."""
    cfg = model_zoo.get_config(name)
    shrink(cfg.model.student, hidden=32, dec_layers=2, queries=6)
    shrink(cfg.model.teacher, hidden=48, dec_layers=3, queries=8)
    cfg.model.update(teacher_weights="", allow_random_teacher=True)
    cfg.model.group_builders.kd_general_points.num_points = NUM_GENERAL
    torch.manual_seed(0)
    model = instantiate(cfg.model)
    before = copy.deepcopy(model.student.state_dict())
    losses = model(tiny_batch())
    assert {k for k in losses if k.startswith("loss_distill_kd_detr_")} == {
        f"loss_distill_kd_detr_{s}_{c}"
        for s in ("specific", "general")
        for c in ("class", "bbox", "giou")
    }
    train_steps(model, 2)
    assert any(not torch.equal(before[k], v) for k, v in model.student.state_dict().items())
    assert isinstance(model.run_teacher(tiny_batch()), DETROutput)
