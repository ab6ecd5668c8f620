import logging
import math
import unittest

import torch
from distill_testing import (
    as_student,
    as_teacher,
    float_leaves,
    grad_norm,
    iou_giou,
    make_decoder,
    make_encoder,
    make_inputs,
    make_output,
    sigmoid,
    trainable,
)

from detrdistill.distill import QueryPriorAssignmentDistillation
from detrdistill.modeling.criterion import SetCriterion
from detrdistill.modeling.matcher import HungarianMatcher

GT = [0.5, 0.5, 0.3, 0.3]


def _criterion():
    return SetCriterion(
        num_classes=2,
        matcher=HungarianMatcher(cost_class=2.0, cost_bbox=5.0, cost_giou=2.0),
        weight_dict={"loss_class": 2.0, "loss_bbox": 5.0, "loss_giou": 2.0},
        loss_class_type="focal",
    )


def _hand_losses(extra, matched_query_per_layer, label=0):
    """The student criterion's weighted losses (class 2 / L1 5 / GIoU 2, focal alpha 0.25,
    gamma 2, one GT box so num_boxes = 1) of the extra group when layer l assigns query
    ``matched_query_per_layer[l]`` to the GT, by hand."""
    losses = {}
    num_layers = len(matched_query_per_layer)
    for layer, matched in enumerate(matched_query_per_layer):
        suffix = "" if layer == num_layers - 1 else f"_{layer}"
        focal = 0.0
        for q, row in enumerate(extra.pred_logits[layer, 0].tolist()):
            for c, x in enumerate(row):
                t = 1.0 if (q == matched and c == label) else 0.0
                p = sigmoid(x)
                ce = -(t * math.log(p) + (1 - t) * math.log(1 - p))
                p_t = p * t + (1 - p) * (1 - t)
                focal += (0.25 * t + 0.75 * (1 - t)) * (1 - p_t) ** 2 * ce
        box = extra.pred_boxes[layer, 0, matched].tolist()
        losses["class" + suffix] = 2.0 * focal
        losses["bbox" + suffix] = 5.0 * sum(abs(a - b) for a, b in zip(box, GT))
        losses["giou" + suffix] = 2.0 * (1 - iou_giou(box, GT)[1])
    return losses


def _teacher_indices(num_layers):
    """Teacher layer t assigns teacher query (t % 3) to the single GT box."""
    return [[(torch.tensor([t % 3]), torch.tensor([0]))] for t in range(num_layers)]


class TestQueryPriorAssignmentDistillation(unittest.TestCase):
    def setUp(self):
        torch.manual_seed(0)
        extra = make_decoder(layers=2, batch=1, queries=3, classes=2)
        # query 0 sits on the GT: the student's own matching picks it in every layer
        extra.pred_boxes[:, 0, 0] = torch.tensor(GT)
        extra.pred_boxes[:, 0, 1] = torch.tensor([0.2, 0.2, 0.1, 0.1])
        extra.pred_boxes[:, 0, 2] = torch.tensor([0.8, 0.8, 0.1, 0.1])
        extra.pred_logits[:, 0, 0] = torch.tensor([3.0, -3.0])
        student = make_output(make_decoder(layers=2, queries=5, classes=2), make_encoder(), extra)
        teacher = make_output(make_decoder(layers=4, queries=3, classes=2), make_encoder())
        self.student, self.teacher = as_student(student), as_teacher(teacher)
        self.targets = [{"labels": torch.tensor([0]), "boxes": torch.tensor([GT])}]
        self.criterion = _criterion()

    def _inputs(self, layer_pairs):
        return make_inputs(
            self.teacher,
            self.student,
            targets=self.targets,
            layer_pairs=layer_pairs,
            teacher_gt_indices=_teacher_indices(4),
            student_criterion=self.criterion,
        )

    def test_flags(self):
        teacher_mode = QueryPriorAssignmentDistillation()
        self.assertEqual(teacher_mode.query_groups, ("teacher_queries",))
        self.assertTrue(teacher_mode.needs_teacher_assignment)
        self.assertFalse(teacher_mode.needs_attention)
        self.assertFalse(
            QueryPriorAssignmentDistillation(assignment="student").needs_teacher_assignment
        )
        with self.assertRaises(ValueError):
            QueryPriorAssignmentDistillation(assignment="gt")

    def test_teacher_assignment_is_used(self):
        inputs = self._inputs([(0, 1), (1, 3)])
        out = QueryPriorAssignmentDistillation(assignment="teacher")(inputs)
        self.assertEqual(set(out), {"class", "bbox", "giou", "class_0", "bbox_0", "giou_0"})
        # student layer 0 <- teacher layer 1 (query 1), student layer 1 <- teacher layer 3
        # (query 0, which sits on the GT)
        expected = _hand_losses(self.student.groups["teacher_queries"], [1, 0])
        for key in out:
            self.assertAlmostEqual(out[key].item(), expected[key], places=5, msg=key)
        # query 1 = (0.2, 0.2, 0.1, 0.1) vs GT (0.5, 0.5, 0.3, 0.3): L1 0.3 + 0.3 + 0.2 + 0.2
        self.assertAlmostEqual(out["bbox_0"].item(), 5.0, places=5)
        self.assertAlmostEqual(out["bbox"].item(), 0.0, places=6)

        student_mode = QueryPriorAssignmentDistillation(assignment="student")(inputs)
        # the student's own matching picks query 0 (on the GT, confident) in both layers
        own = _hand_losses(self.student.groups["teacher_queries"], [0, 0])
        for key in own:
            self.assertAlmostEqual(student_mode[key].item(), own[key], places=5, msg=key)
        self.assertGreater(out["bbox_0"].item(), student_mode["bbox_0"].item() + 1)

        sum(out.values()).backward()
        self.assertGreater(
            self.student.groups["teacher_queries"].pred_boxes.grad.abs().sum().item(), 0
        )

    def test_no_gradient_reaches_a_trainable_teacher(self):
        self.teacher = trainable(self.teacher)
        for assignment in ("teacher", "student"):
            out = QueryPriorAssignmentDistillation(assignment=assignment)(
                self._inputs([(0, 1), (1, 3)])
            )
            sum(out.values()).backward()
            self.assertEqual(grad_norm(float_leaves(self.teacher)), 0.0)
            self.assertGreater(grad_norm([self.student.groups["teacher_queries"].pred_logits]), 0)

    def test_no_ground_truth_warns_after_patience(self):
        self.targets = [{"labels": torch.zeros(0, dtype=torch.long), "boxes": torch.zeros(0, 4)}]
        loss = QueryPriorAssignmentDistillation(assignment="student", empty_term_patience=2)
        logger = "detrdistill.distill.losses.base"
        loss(self._inputs([(0, 1), (1, 3)]))
        with self.assertLogs(logger, level=logging.WARNING) as logs:
            loss(self._inputs([(0, 1), (1, 3)]))
        self.assertEqual(len(logs.records), 1)
        self.assertIn("'ground truth'", logs.records[0].getMessage())

    def test_student_layers_missing_from_pairs_use_last_aligned(self):
        inputs = self._inputs([(1, 2)])
        out = QueryPriorAssignmentDistillation()(inputs)
        # student layer 0 of 2 -> last_aligned teacher layer round(1 * 4 / 2) - 1 = 1 (query 1);
        # student layer 1 -> teacher layer 2 (query 2)
        expected = _hand_losses(self.student.groups["teacher_queries"], [1, 2])
        for key, value in expected.items():
            self.assertAlmostEqual(out[key].item(), value, places=5, msg=key)

    def test_errors(self):
        inputs = self._inputs([(0, 0), (1, 1)])
        inputs.teacher_gt_indices = None
        with self.assertRaisesRegex(ValueError, "teacher_gt_indices"):
            QueryPriorAssignmentDistillation()(inputs)
        inputs = self._inputs([(0, 0), (1, 1)])
        inputs.student.groups = {}
        with self.assertRaisesRegex(ValueError, "'teacher_queries'"):
            QueryPriorAssignmentDistillation(assignment="student")(inputs)


if __name__ == "__main__":
    unittest.main()
