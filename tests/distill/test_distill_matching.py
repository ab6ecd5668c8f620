import unittest

import torch
from distill_testing import brute_force, naive_cost, random_boxes

from detrdistill.distill import TeacherStudentMatcher, class_probabilities


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
            self.assertAlmostEqual(found, brute_force(cost, list(range(qs)), cols)[0], places=4)
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

    def test_defaults(self):
        matcher = TeacherStudentMatcher()
        self.assertEqual(matcher.class_cost_reduction, "sum")
        self.assertFalse(matcher.clamp_student_boxes)
        self.assertEqual((matcher.cost_class, matcher.cost_bbox, matcher.cost_giou), (1, 5, 2))

    def test_student_mask_and_box_only(self):
        # classes say student 0 <-> teacher 1 and student 1 <-> teacher 0; boxes say the opposite
        s_logits = torch.tensor([[[3.0, -3.0], [-3.0, 3.0], [0.0, 0.0]]])
        s_boxes = torch.tensor([[[0.3, 0.3, 0.2, 0.2], [0.7, 0.7, 0.2, 0.2], [0.3, 0.3, 0.2, 0.2]]])
        t_probs = torch.tensor([[[0.01, 0.99], [0.99, 0.01]]])
        t_boxes = torch.tensor([[[0.31, 0.3, 0.2, 0.2], [0.69, 0.7, 0.2, 0.2]]])
        matcher = TeacherStudentMatcher(cost_class=10.0)
        student_mask = torch.tensor([[True, True, False]])  # student 2 (on teacher 0) is out
        ((si, ti),) = matcher(
            s_logits, s_boxes, t_probs, t_boxes, "focal", student_mask=student_mask
        )
        self.assertEqual((si.tolist(), ti.tolist()), ([0, 1], [1, 0]))
        ((si, ti),) = matcher(
            s_logits, s_boxes, t_probs, t_boxes, "focal", student_mask=student_mask, box_only=True
        )
        self.assertEqual((si.tolist(), ti.tolist()), ([0, 1], [0, 1]))
        # the box-only cost is L1 and GIoU alone
        cost = matcher.cost_matrix(s_logits, s_boxes, t_probs, t_boxes, "focal", box_only=True)
        expected = naive_cost(
            s_logits[0, 0].tolist(),
            s_boxes[0, 0].tolist(),
            t_probs[0, 1].tolist(),
            t_boxes[0, 1].tolist(),
            weights=(0.0, 5.0, 2.0),
        )
        self.assertAlmostEqual(cost[0, 0, 1].item(), expected, places=5)

    def test_clamp_student_boxes(self):
        s_far = torch.tensor([[[1.2, 0.5, 0.3, 0.2]]])  # centre outside the image
        t_boxes = torch.tensor([[[0.5, 0.5, 0.2, 0.2]]])
        logits, probs = torch.zeros(1, 1, 2), torch.full((1, 1, 2), 0.5)
        raw = TeacherStudentMatcher(cost_class=0.0, cost_giou=0.0)
        clamped = TeacherStudentMatcher(cost_class=0.0, cost_giou=0.0, clamp_student_boxes=True)
        # L1 on cxcywh: raw |1.2 - 0.5| + |0.3 - 0.2| = 0.8; clipped to [0, 1]: 0.5 + 0.1 = 0.6
        self.assertAlmostEqual(
            raw.cost_matrix(logits, s_far, probs, t_boxes, "focal").item(), 5 * 0.8, places=5
        )
        self.assertAlmostEqual(
            clamped.cost_matrix(logits, s_far, probs, t_boxes, "focal").item(), 5 * 0.6, places=5
        )

    def test_sum_reduction_recovers_a_permuted_teacher_at_80_classes(self):
        """The teacher predicts the student's classes exactly, in another order, with noisy
        boxes of similar objects: the class term must decide. Summed over 80 classes it does;
        averaged (divided by 80) it is drowned by the box noise."""
        torch.manual_seed(0)
        queries, classes = 30, 80
        s_logits = 2 * torch.randn(1, queries, classes) - 2
        centre = 0.4 + 0.2 * torch.rand(1, queries, 2)
        size = 0.2 + 0.05 * torch.rand(1, queries, 2)
        s_boxes = torch.cat([centre, size], -1)
        perm = torch.randperm(queries)  # teacher query j is student query perm[j]
        t_probs = s_logits[:, perm].sigmoid()
        t_boxes = s_boxes[:, perm] + 0.05 * torch.randn(1, queries, 4)
        recovered = {}
        for reduction in ("sum", "mean"):
            ((si, ti),) = TeacherStudentMatcher(class_cost_reduction=reduction)(
                s_logits, s_boxes, t_probs, t_boxes, "focal"
            )
            recovered[reduction] = (perm[ti] == si).float().mean().item()
        ((si, ti),) = TeacherStudentMatcher()(s_logits, s_boxes, t_probs, t_boxes, "focal")
        self.assertEqual((perm[ti] == si).float().mean().item(), recovered["sum"])  # default
        self.assertGreaterEqual(recovered["sum"], 29 / 30)
        self.assertLess(recovered["mean"], 0.8)

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
