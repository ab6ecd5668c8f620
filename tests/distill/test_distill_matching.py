import itertools
import math
import unittest

import torch
from distill_testing import iou_giou, random_boxes

from detrdistill.distill import TeacherStudentMatcher, class_probabilities


def naive_cost(s_logit, s_box, t_prob, t_box, kind, reduction, weights=(1.0, 5.0, 2.0)):
    """One pair's cost from explicit formulas (python floats)."""
    num_classes = len(t_prob)
    if kind == "focal":
        bce = [
            -(p * math.log(1 / (1 + math.exp(-x))) + (1 - p) * math.log(1 - 1 / (1 + math.exp(-x))))
            for x, p in zip(s_logit, t_prob)
        ]
        cls = sum(bce) / (num_classes if reduction == "mean" else 1)
    else:
        norm = math.log(sum(math.exp(x) for x in s_logit))
        cls = -sum(p * (x - norm) for x, p in zip(s_logit, t_prob))
    l1 = sum(abs(a - b) for a, b in zip(s_box, t_box))
    _, giou = iou_giou(s_box, t_box)
    return weights[0] * cls + weights[1] * l1 - weights[2] * giou


def brute_force(cost, rows, cols):
    """Minimum total cost over all injective assignments of the smaller side."""
    best = math.inf
    if len(rows) <= len(cols):
        for perm in itertools.permutations(cols, len(rows)):
            best = min(best, sum(cost[r][c] for r, c in zip(rows, perm)))
    else:
        for perm in itertools.permutations(rows, len(cols)):
            best = min(best, sum(cost[r][c] for r, c in zip(perm, cols)))
    return best


class TestClassProbabilities(unittest.TestCase):
    def test_focal_and_softmax(self):
        logits = torch.tensor([[0.0, 1.0, -1.0]])
        torch.testing.assert_close(class_probabilities(logits, "focal"), logits.sigmoid())
        soft = class_probabilities(logits, "softmax")
        self.assertEqual(soft.shape, (1, 2))
        torch.testing.assert_close(soft, logits.softmax(-1)[:, :2])
        with self.assertRaises(ValueError):
            class_probabilities(logits, "sigmoid")


class TestTeacherStudentMatcher(unittest.TestCase):
    def _check(self, qs, qt, kind, reduction, mask=None):
        torch.manual_seed(qs * 10 + qt)
        classes = 2
        k_s = classes + (kind == "softmax")
        s_logits = torch.randn(2, qs, k_s)
        s_boxes = random_boxes(2, qs)
        t_probs = torch.rand(2, qt, classes)
        t_boxes = random_boxes(2, qt)
        matcher = TeacherStudentMatcher(class_cost_reduction=reduction)
        pairs = matcher(s_logits, s_boxes, t_probs, t_boxes, kind, teacher_mask=mask)
        for b, (si, ti) in enumerate(pairs):
            cost = [
                [
                    naive_cost(
                        s_logits[b, i].tolist(),
                        s_boxes[b, i].tolist(),
                        t_probs[b, j].tolist(),
                        t_boxes[b, j].tolist(),
                        kind,
                        reduction,
                    )
                    for j in range(qt)
                ]
                for i in range(qs)
            ]
            cols = list(range(qt)) if mask is None else mask[b].nonzero()[:, 0].tolist()
            self.assertEqual(len(si), min(qs, len(cols)))
            self.assertTrue(set(ti.tolist()) <= set(cols))
            self.assertEqual(len(set(si.tolist())), len(si))
            self.assertEqual(len(set(ti.tolist())), len(ti))
            self.assertEqual(si.tolist(), sorted(si.tolist()))
            found = sum(cost[i][j] for i, j in zip(si.tolist(), ti.tolist()))
            self.assertAlmostEqual(found, brute_force(cost, list(range(qs)), cols), places=4)
            # the batched cost matrix equals the hand formulas
            full = matcher.cost_matrix(s_logits, s_boxes, t_probs, t_boxes, kind)[b]
            torch.testing.assert_close(
                full.double(), torch.tensor(cost, dtype=torch.float64), atol=1e-4, rtol=1e-4
            )

    def test_square_and_rectangular_against_brute_force(self):
        for qs, qt in ((3, 3), (2, 4), (4, 2)):
            for kind in ("focal", "softmax"):
                for reduction in ("mean", "sum"):
                    with self.subTest(qs=qs, qt=qt, kind=kind, reduction=reduction):
                        self._check(qs, qt, kind, reduction)

    def test_teacher_mask(self):
        mask = torch.tensor([[True, False, True, True], [False, True, False, False]])
        self._check(3, 4, "focal", "mean", mask=mask)

    def test_student_mask_and_class_only(self):
        s_logits = torch.tensor([[[3.0, -3.0], [-3.0, 3.0], [0.0, 0.0]]])
        s_boxes = random_boxes(1, 3)
        t_probs = torch.tensor([[[0.05, 0.95], [0.95, 0.05]]])
        t_boxes = random_boxes(1, 2)
        matcher = TeacherStudentMatcher()
        ((si, ti),) = matcher(
            s_logits,
            s_boxes,
            t_probs,
            t_boxes,
            "focal",
            student_mask=torch.tensor([[True, True, False]]),
            class_only=True,
        )
        self.assertEqual(si.tolist(), [0, 1])
        self.assertEqual(ti.tolist(), [1, 0])

    def test_identical_gives_identity(self):
        torch.manual_seed(0)
        logits = 2 * torch.randn(2, 5, 3)
        boxes = random_boxes(2, 5)
        pairs = TeacherStudentMatcher()(logits, boxes, logits.sigmoid(), boxes, "focal")
        for si, ti in pairs:
            self.assertEqual(si.tolist(), list(range(5)))
            self.assertEqual(ti.tolist(), list(range(5)))

    def test_errors(self):
        with self.assertRaises(ValueError):
            TeacherStudentMatcher(class_cost_reduction="max")
        with self.assertRaisesRegex(ValueError, "foreground classes"):
            TeacherStudentMatcher()(
                torch.randn(1, 2, 3),
                random_boxes(1, 2),
                torch.rand(1, 2, 2),
                random_boxes(1, 2),
                "focal",
            )


if __name__ == "__main__":
    unittest.main()
