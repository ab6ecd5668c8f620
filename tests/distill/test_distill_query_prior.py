import unittest

import torch
from distill_testing import (
    as_student,
    as_teacher,
    make_decoder,
    make_encoder,
    make_inputs,
    make_output,
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

    @staticmethod
    def _renamed(losses):
        return {k.removeprefix("loss_"): v for k, v in losses.items()}

    def test_flags(self):
        teacher_mode = QueryPriorAssignmentDistillation()
        self.assertTrue(teacher_mode.needs_teacher_queries)
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
        tgi = _teacher_indices(4)
        expected, used = self.criterion(self.student.extra, self.targets, indices=[tgi[1], tgi[3]])
        expected = self._renamed(expected)
        self.assertEqual(set(out), {"class", "bbox", "giou", "class_0", "bbox_0", "giou_0"})
        for key in out:
            torch.testing.assert_close(out[key], expected[key])
        self.assertEqual(used[0][0][0].tolist(), [1])  # student layer 0 <- teacher layer 1

        student_mode = QueryPriorAssignmentDistillation(assignment="student")(inputs)
        own, own_indices = self.criterion(self.student.extra, self.targets)
        for key, value in self._renamed(own).items():
            torch.testing.assert_close(student_mode[key], value)
        self.assertEqual(own_indices[0][0][0].tolist(), [0])  # the student matches query 0
        # layer 0: teacher assigns query 1 (far from the GT), the student query 0
        self.assertGreater(out["bbox_0"].item(), student_mode["bbox_0"].item() + 1e-3)
        # layer 1: both use query 0
        torch.testing.assert_close(out["bbox"], student_mode["bbox"])

        sum(out.values()).backward()
        self.assertGreater(self.student.extra.pred_boxes.grad.abs().sum().item(), 0)
        self.assertIsNone(self.teacher.decoder.pred_boxes.grad)

    def test_student_layers_missing_from_pairs_use_last_aligned(self):
        inputs = self._inputs([(1, 2)])
        out = QueryPriorAssignmentDistillation()(inputs)
        tgi = _teacher_indices(4)
        # student layer 0 of 2 -> last_aligned teacher layer round(1 * 4 / 2) - 1 = 1
        expected, _ = self.criterion(self.student.extra, self.targets, indices=[tgi[1], tgi[2]])
        for key, value in self._renamed(expected).items():
            torch.testing.assert_close(out[key], value)

    def test_errors(self):
        inputs = self._inputs([(0, 0), (1, 1)])
        inputs.teacher_gt_indices = None
        with self.assertRaisesRegex(ValueError, "teacher_gt_indices"):
            QueryPriorAssignmentDistillation()(inputs)
        inputs = self._inputs([(0, 0), (1, 1)])
        inputs.student.extra = None
        with self.assertRaisesRegex(ValueError, "extra"):
            QueryPriorAssignmentDistillation(assignment="student")(inputs)


if __name__ == "__main__":
    unittest.main()
