import logging
import unittest

import pytest
import torch
from distill_testing import (
    as_student,
    as_teacher,
    brute_force,
    float_leaves,
    grad_norm,
    hand_cost_matrix,
    hand_prediction_loss,
    iou_giou,
    make_decoder,
    make_encoder,
    make_inputs,
    make_output,
    sigmoid,
    soft_bce,
    trainable,
)

from detrdistill.distill import (
    HungarianLogitsDistillation,
    PredictionDistillation,
    TeacherStudentMatcher,
)

LOGITS = [-2.0, -3.0]  # every query of the hand cases: low confidence, equal class costs


def _output(decoder):
    return make_output(decoder, make_encoder())


def _no_gt(num_layers, batch=1):
    """A teacher assignment with no ground truth (no positive) in any layer or image."""
    empty = torch.empty(0, dtype=torch.int64)
    return [[(empty, empty)] * batch for _ in range(num_layers)]


def _gt(query_idx_per_image, num_layers=1):
    """Every layer assigns the given teacher queries of each image to GT 0..n-1."""
    return [
        [(torch.tensor(q, dtype=torch.int64), torch.arange(len(q))) for q in query_idx_per_image]
        for _ in range(num_layers)
    ]


def _row_boxes(xs):
    """(1, 1, n, 4) boxes of width/height 0.2 at y = 0.5 and the given x centres."""
    return torch.tensor([[[[x, 0.5, 0.2, 0.2] for x in xs]]])


def _hand_case(teacher_x, student_x, teacher_logits=None, student_logits=None):
    teacher = make_decoder(layers=1, queries=len(teacher_x), classes=2)
    student = make_decoder(layers=1, queries=len(student_x), classes=2)
    teacher.pred_boxes = _row_boxes(teacher_x)
    student.pred_boxes = _row_boxes(student_x)
    teacher.pred_logits = torch.tensor(teacher_logits or [[LOGITS] * len(teacher_x)])[None]
    student.pred_logits = torch.tensor(student_logits or [[LOGITS] * len(student_x)])[None]
    return as_teacher(_output(teacher)), as_student(_output(student))


def _hand_loss(teacher, student, pairs):
    """Hand value (python floats) of one image's pairs, all with box terms."""
    return hand_prediction_loss(
        student.decoder.pred_logits[0],
        student.decoder.pred_boxes[0],
        teacher.decoder.pred_logits[0],
        teacher.decoder.pred_boxes[0],
        [pairs],
    )


def _pairs_list(image_pairs):
    si, ti = image_pairs
    return sorted(zip(si.tolist(), ti.tolist()))


class TestHungarianLogitsDistillation(unittest.TestCase):
    def test_defaults_flags_and_errors(self):
        loss = HungarianLogitsDistillation()
        self.assertEqual(
            (loss.mode, loss.positives, loss.negative_match, loss.clamp_teacher_boxes),
            ("split", "teacher_assignment", "full", True),
        )
        self.assertEqual(loss.layer_reduction, "sum")
        self.assertEqual(loss.matcher.class_cost_reduction, "sum")
        self.assertEqual(loss.prediction.class_loss, "bce")
        self.assertFalse(loss.needs_attention)
        self.assertEqual(loss.query_groups, ())
        self.assertTrue(loss.needs_teacher_assignment)
        self.assertEqual(loss.writes_shared, ("logits_pairs",))
        self.assertEqual(loss.reads_shared, ())
        self.assertFalse(HungarianLogitsDistillation(mode="joint").needs_teacher_assignment)
        self.assertFalse(HungarianLogitsDistillation(positives="score").needs_teacher_assignment)
        for kwargs in (
            {"mode": "official"},
            {"positives": "gt"},
            {"negative_match": "class"},
            {"layer_reduction": "max"},
        ):
            with self.assertRaises(ValueError, msg=kwargs):
                HungarianLogitsDistillation(**kwargs)
        teacher, student = _hand_case([0.4], [0.5])
        with self.assertRaisesRegex(ValueError, "teacher_gt_indices"):
            loss(make_inputs(teacher, student))

    def test_identical_is_zero(self):
        torch.manual_seed(0)
        base = _output(make_decoder(layers=2, batch=2, queries=4, classes=3))
        gt = _gt([[1, 3], [0]], num_layers=2)
        inputs = make_inputs(as_teacher(base), as_student(base), teacher_gt_indices=gt)
        for mode in ("split", "joint"):
            loss = HungarianLogitsDistillation(
                mode=mode, prediction=PredictionDistillation(class_loss="binary_kl")
            )
            out = loss(inputs)
            self.assertEqual(set(out), {"class", "bbox", "giou"})
            for key, value in out.items():
                self.assertAlmostEqual(value.item(), 0.0, places=4, msg=f"{mode} {key}")
            for layer in inputs.shared["logits_pairs"]:
                for si, ti in layer:
                    self.assertEqual(_pairs_list((si, ti)), [(i, i) for i in range(4)])

    def test_split_teacher_assignment_positives_first_and_all_pairs_get_boxes(self):
        """Teacher query 0 is the teacher's own GT-assigned query, but unconfident (p < 0.5):
        the score rule finds no positive at all, the teacher assignment still matches it first.

        Box costs decide (equal class costs). Teacher x = 0.40 / 0.60 / 0.85, student x =
        0.55 / 0.20 / 0.88. Positives first: t0 takes its nearest student s0 (0.15 away), then
        t1, t2 share s1, s2. One joint match (no positive) pairs s0-t1, s1-t0, s2-t2 instead.
        """
        teacher, student = _hand_case([0.40, 0.60, 0.85], [0.55, 0.20, 0.88])
        gt = _gt([[0]])
        split = HungarianLogitsDistillation()
        inputs = make_inputs(teacher, student, teacher_gt_indices=gt)
        out = split(inputs)
        ((image_pairs,),) = inputs.shared["logits_pairs"]
        si, ti = image_pairs
        self.assertEqual((si[0].item(), ti[0].item()), (0, 0))  # the positive comes first
        self.assertEqual(_pairs_list(image_pairs), [(0, 0), (1, 1), (2, 2)])
        expected = _hand_loss(teacher, student, [(0, 0), (1, 1), (2, 2)])
        for key in out:
            self.assertAlmostEqual(out[key].item(), expected[key], places=5, msg=key)
        # by hand: L1 only in x
        self.assertAlmostEqual(out["bbox"].item(), 5 * (0.15 + 0.40 + 0.03) / 3, places=5)
        per_pair = sum(soft_bce(sigmoid(x), x) for x in LOGITS)  # same logits everywhere
        self.assertAlmostEqual(out["class"].item(), per_pair, places=5)
        # every pair, negatives included, carries the box terms
        (out["bbox"] + out["giou"]).backward()
        grad = inputs.student.decoder.pred_boxes.grad[0, 0]
        self.assertTrue((grad.abs().sum(-1) > 0).all(), grad)

        score = HungarianLogitsDistillation(positives="score", positive_threshold=0.5)
        self.assertFalse(score.needs_teacher_assignment)
        score_inputs = make_inputs(teacher, as_student(student))
        score_out = score(score_inputs)
        self.assertEqual(
            _pairs_list(score_inputs.shared["logits_pairs"][0][0]), [(0, 1), (1, 0), (2, 2)]
        )
        self.assertAlmostEqual(score_out["bbox"].item(), 5 * (0.05 + 0.20 + 0.03) / 3, places=5)
        joint = HungarianLogitsDistillation(mode="joint")
        joint_inputs = make_inputs(teacher, as_student(student))
        joint(joint_inputs)
        self.assertEqual(
            _pairs_list(joint_inputs.shared["logits_pairs"][0][0]), [(0, 1), (1, 0), (2, 2)]
        )

    def test_positive_masks(self):
        teacher, student = _hand_case(
            [0.4, 0.6, 0.8], [0.4, 0.6, 0.8], teacher_logits=[[[1.0, -3.0], LOGITS, [-3, 0.5]]]
        )
        inputs = make_inputs(teacher, student, teacher_gt_indices=_gt([[2]]))
        probs = teacher.decoder.pred_logits[0].sigmoid()
        mask = HungarianLogitsDistillation().positive_mask(inputs, probs, [0])
        self.assertEqual(mask.tolist(), [[False, False, True]])
        score = HungarianLogitsDistillation(positives="score", positive_threshold=0.6)
        # p = sigmoid(1) = 0.73 (query 0) and sigmoid(0.5) = 0.62 (query 2)
        self.assertEqual(score.positive_mask(inputs, probs, [0]).tolist(), [[True, False, True]])

    def test_positives_are_matched_among_themselves_first(self):
        """Two positives (t0, t1) and one negative (t2). The positives take the two students
        nearest to them (s0, s1) even though the negative would fit s1 better."""
        teacher, student = _hand_case([0.30, 0.50, 0.62], [0.30, 0.60, 0.90])
        inputs = make_inputs(teacher, student, teacher_gt_indices=_gt([[0, 1]]))
        out = HungarianLogitsDistillation()(inputs)
        pairs = _pairs_list(inputs.shared["logits_pairs"][0][0])
        self.assertEqual(pairs, [(0, 0), (1, 1), (2, 2)])
        self.assertAlmostEqual(out["bbox"].item(), 5 * (0.0 + 0.10 + 0.28) / 3, places=5)
        joint_inputs = make_inputs(teacher, as_student(student))
        HungarianLogitsDistillation(mode="joint")(joint_inputs)
        self.assertNotEqual(_pairs_list(joint_inputs.shared["logits_pairs"][0][0]), pairs)

    def test_negative_match_box_ignores_the_class_cost(self):
        # classes say s0 <-> t1 and s1 <-> t0, boxes s0 <-> t0 and s1 <-> t1; no positives
        teacher, student = _hand_case(
            [0.31, 0.69],
            [0.30, 0.70],
            teacher_logits=[[[-4.6, 4.6], [4.6, -4.6]]],
            student_logits=[[[3.0, -3.0], [-3.0, 3.0]]],
        )
        for negative_match, expected in (("full", [(0, 1), (1, 0)]), ("box", [(0, 0), (1, 1)])):
            inputs = make_inputs(as_teacher(teacher), student, teacher_gt_indices=_no_gt(1))
            loss = HungarianLogitsDistillation(negative_match=negative_match)
            out = loss(inputs)
            pairs = _pairs_list(inputs.shared["logits_pairs"][0][0])
            self.assertEqual(pairs, expected, msg=negative_match)
            hand = _hand_loss(teacher, student, expected)
            for key in out:
                self.assertAlmostEqual(out[key].item(), hand[key], places=4, msg=key)

    def test_clamp_teacher_boxes(self):
        teacher, student = _hand_case([0.95], [0.9])
        teacher.decoder.pred_boxes[..., 2] = 0.3  # xyxy (0.8, 0.4, 1.1, 0.6): outside the image
        # clipped: (0.8, 0.4, 1.0, 0.6) -> cxcywh (0.9, 0.5, 0.2, 0.2), the student's box
        inputs = make_inputs(teacher, student, teacher_gt_indices=_gt([[0]]))
        clamped = HungarianLogitsDistillation()(inputs)
        self.assertAlmostEqual(clamped["bbox"].item(), 0.0, places=4)
        self.assertAlmostEqual(clamped["giou"].item(), 0.0, places=4)
        raw = HungarianLogitsDistillation(clamp_teacher_boxes=False)(inputs)
        self.assertAlmostEqual(raw["bbox"].item(), 5 * (0.05 + 0.1), places=5)
        _, giou = iou_giou([0.9, 0.5, 0.2, 0.2], [0.95, 0.5, 0.3, 0.2])
        self.assertAlmostEqual(raw["giou"].item(), 2 * (1 - giou), places=5)

    def _random_case(self, seed):
        torch.manual_seed(seed)
        teacher = as_teacher(_output(make_decoder(layers=3, batch=2, queries=2, classes=2)))
        student = as_student(_output(make_decoder(layers=2, batch=2, queries=5, classes=2)))
        return teacher, student

    def test_more_student_queries_against_brute_force(self):
        """5 student and 2 teacher queries, 2 images, 2 layer pairs: the pairs are the
        brute-force optimum of the hand cost (positives first in split mode), the values the
        hand formulas summed over layer pairs."""
        teacher, student = self._random_case(1)
        layer_pairs = [(0, 1), (1, 2)]
        gt = [_gt([[1], []])[0]] * 3  # image 0: teacher query 1 is positive; image 1: none
        for mode in ("joint", "split"):
            student.decoder.pred_logits.grad = student.decoder.pred_boxes.grad = None
            inputs = make_inputs(teacher, student, layer_pairs=layer_pairs, teacher_gt_indices=gt)
            out = HungarianLogitsDistillation(mode=mode)(inputs)
            expected = dict.fromkeys(out, 0.0)
            touched = torch.zeros(2, 2, 5, dtype=torch.bool)
            for p, (s, t) in enumerate(layer_pairs):
                hand_pairs = []
                for b in range(2):
                    args = [
                        x[b]
                        for x in (
                            student.decoder.pred_logits[s],
                            student.decoder.pred_boxes[s],
                            teacher.decoder.pred_logits[t],
                            teacher.decoder.pred_boxes[t],
                        )
                    ]
                    cost = hand_cost_matrix(*args)
                    positives = [1] if (mode == "split" and b == 0) else []
                    negatives = [j for j in range(2) if j not in positives]
                    _, first = (
                        brute_force(cost, list(range(5)), positives) if positives else (0, [])
                    )
                    free = [i for i in range(5) if i not in {i for i, _ in first}]
                    _, rest = brute_force(cost, free, negatives)
                    hand_pairs.append(first + rest)
                    for i, _ in first + rest:
                        touched[s, b, i] = True
                found = [_pairs_list(x) for x in inputs.shared["logits_pairs"][p]]
                self.assertEqual(found, [sorted(x) for x in hand_pairs], msg=(mode, s, t))
                layer = hand_prediction_loss(
                    student.decoder.pred_logits[s],
                    student.decoder.pred_boxes[s],
                    teacher.decoder.pred_logits[t],
                    teacher.decoder.pred_boxes[t],
                    hand_pairs,
                )
                for k in expected:
                    expected[k] += layer[k]  # layer pairs are summed
            for k in out:
                self.assertAlmostEqual(out[k].item(), expected[k], places=4, msg=(mode, k))
            sum(out.values()).backward()
            grad = student.decoder.pred_logits.grad.abs().sum(-1)
            self.assertEqual(grad[~touched].sum().item(), 0.0)  # unmatched queries: no term
            self.assertTrue((grad[touched] > 0).all())

    def test_layer_reduction_mean_divides_by_the_number_of_layer_pairs(self):
        teacher, student = self._random_case(2)
        inputs = make_inputs(teacher, student, layer_pairs=[(0, 1), (1, 2)])
        for mode in ("joint", "split"):
            inputs.teacher_gt_indices = _gt([[0], [1]], num_layers=3)
            summed = HungarianLogitsDistillation(mode=mode)(inputs)
            mean = HungarianLogitsDistillation(mode=mode, layer_reduction="mean")(inputs)
            for key in summed:
                self.assertGreater(summed[key].item(), 0)
                torch.testing.assert_close(summed[key], 2 * mean[key])

    def test_no_gradient_reaches_a_trainable_teacher(self):
        torch.manual_seed(3)
        teacher = trainable(_output(make_decoder(layers=2, batch=2, queries=3, classes=2)))
        student = as_student(_output(make_decoder(layers=2, batch=2, queries=4, classes=2)))
        for mode in ("split", "joint"):
            inputs = make_inputs(teacher, student, teacher_gt_indices=_gt([[0], [2]], 2))
            out = HungarianLogitsDistillation(
                mode=mode, matcher=TeacherStudentMatcher(class_cost_reduction="mean")
            )(inputs)
            sum(out.values()).backward()
            self.assertEqual(grad_norm(float_leaves(teacher)), 0.0, msg=mode)
            self.assertGreater(grad_norm([student.decoder.pred_logits]), 0)
            self.assertGreater(grad_norm([student.decoder.pred_boxes]), 0)


def test_empty_positives_warn_after_patience(caplog):
    """A score threshold no teacher prediction reaches leaves the positives empty: the loss
    warns once the streak reaches ``empty_term_patience``, not before."""
    teacher, student = _hand_case([0.4, 0.6], [0.4, 0.6])
    loss = HungarianLogitsDistillation(
        positives="score", positive_threshold=0.99, empty_term_patience=3
    )
    inputs = make_inputs(teacher, student)
    with caplog.at_level(logging.WARNING, logger="detrdistill"):
        for _ in range(2):
            loss(inputs)
        assert not caplog.records
        loss(inputs)
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 1
    assert "HungarianLogitsDistillation" in messages[0] and "'positives'" in messages[0]
    assert "3 consecutive" in messages[0]
    # teacher-assignment positives exist: no warning
    caplog.clear()
    other = HungarianLogitsDistillation(empty_term_patience=1)
    with caplog.at_level(logging.WARNING, logger="detrdistill"):
        other(make_inputs(teacher, student, teacher_gt_indices=_gt([[1]])))
    assert not caplog.records


if __name__ == "__main__":
    pytest.main([__file__])
