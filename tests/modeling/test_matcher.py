import itertools
import math
import unittest

import scipy.optimize
import torch

from detrdistill.layers import box_cxcywh_to_xyxy, generalized_box_iou
from detrdistill.modeling.matcher import (
    ASSIGNMENT_SOLVERS,
    HungarianMatcher,
    linear_sum_assignment_batch,
)


def random_boxes(n):
    centre = 0.2 + 0.6 * torch.rand(n, 2)
    size = 0.05 + 0.3 * torch.rand(n, 2)
    return torch.cat([centre, size], dim=-1)


def naive_cost(logits, boxes, target, kind, weights=(2.0, 5.0, 2.0)):
    """Pair-by-pair cost, (Q, n)."""
    w_class, w_bbox, w_giou = weights
    cost = torch.zeros(len(logits), len(target["labels"]), dtype=torch.float64)
    for q in range(len(logits)):
        for t, label in enumerate(target["labels"].tolist()):
            if kind == "focal":
                p = torch.sigmoid(logits[q, label]).item()
                c_class = 0.25 * (1 - p) ** 2 * -math.log(p + 1e-8)
                c_class -= 0.75 * p**2 * -math.log(1 - p + 1e-8)
            else:
                c_class = -logits[q].softmax(-1)[label].item()
            l1 = (boxes[q] - target["boxes"][t]).abs().sum().item()
            giou = generalized_box_iou(
                box_cxcywh_to_xyxy(boxes[q : q + 1]), box_cxcywh_to_xyxy(target["boxes"][t : t + 1])
            ).item()
            cost[q, t] = w_class * c_class + w_bbox * l1 - w_giou * giou
    return cost


def brute_force_min(cost):
    num_q, num_t = cost.shape
    if num_t == 0 or num_q == 0:
        return 0.0
    if num_q >= num_t:
        return min(
            sum(cost[q, t].item() for t, q in enumerate(perm))
            for perm in itertools.permutations(range(num_q), num_t)
        )
    return min(
        sum(cost[q, t].item() for q, t in enumerate(perm))
        for perm in itertools.permutations(range(num_t), num_q)
    )


class TestHungarianMatcher(unittest.TestCase):
    def _check(self, kind, num_queries, sizes, num_classes=3):
        logits = torch.randn(len(sizes), num_queries, num_classes)
        boxes = random_boxes(len(sizes) * num_queries).view(len(sizes), num_queries, 4)
        targets = [
            {"labels": torch.randint(0, num_classes - 1, (n,)), "boxes": random_boxes(n)}
            for n in sizes
        ]
        matcher = HungarianMatcher(2.0, 5.0, 2.0, class_cost_type=kind)
        indices = matcher(logits, boxes, targets)
        costs = matcher.cost_matrices(logits, boxes, targets)
        self.assertEqual(len(indices), len(sizes))
        for b, (n, (src, tgt)) in enumerate(zip(sizes, indices)):
            naive = naive_cost(logits[b], boxes[b], targets[b], kind)
            torch.testing.assert_close(costs[b].double(), naive, atol=1e-5, rtol=1e-5)
            self.assertEqual(src.dtype, torch.int64)
            self.assertEqual(tgt.dtype, torch.int64)
            self.assertEqual(src.device.type, "cpu")
            self.assertEqual(len(src), min(n, num_queries))
            self.assertTrue((src[1:] > src[:-1]).all(), "sorted, one target per query")
            self.assertEqual(len(set(tgt.tolist())), len(tgt))
            total = naive[src, tgt].sum().item()
            self.assertAlmostEqual(total, brute_force_min(naive), places=4)

    def test_brute_force_focal(self):
        torch.manual_seed(0)
        for _ in range(3):
            self._check("focal", 5, [3, 0, 5, 1])

    def test_brute_force_softmax(self):
        torch.manual_seed(1)
        for _ in range(3):
            self._check("softmax", 5, [2, 4, 0, 5])

    def test_more_targets_than_queries(self):
        torch.manual_seed(2)
        self._check("focal", 3, [5, 4])
        self._check("softmax", 3, [5, 0])

    def test_all_empty(self):
        matcher = HungarianMatcher(class_cost_type="softmax")
        empty = {"labels": torch.zeros(0, dtype=torch.int64), "boxes": torch.zeros(0, 4)}
        indices = matcher(torch.randn(2, 4, 3), torch.rand(2, 4, 4), [empty, dict(empty)])
        for src, tgt in indices:
            self.assertEqual(src.shape, (0,))
            self.assertEqual(tgt.shape, (0,))
            self.assertEqual(src.dtype, torch.int64)

    def test_obvious_match(self):
        boxes = torch.tensor([[[0.2, 0.2, 0.1, 0.1], [0.7, 0.7, 0.2, 0.2], [0.5, 0.5, 0.3, 0.3]]])
        targets = [{"labels": torch.tensor([1, 0]), "boxes": boxes[0, [2, 0]] + 0.01}]
        src, tgt = HungarianMatcher(class_cost_type="focal")(torch.zeros(1, 3, 2), boxes, targets)[
            0
        ]
        self.assertEqual(src.tolist(), [0, 2])
        self.assertEqual(tgt.tolist(), [1, 0])

    def test_non_finite_cost_raises(self):
        cost = torch.rand(3, 2)
        cost[1, 0] = float("nan")
        with self.assertRaisesRegex(ValueError, "NaN or infinite"):
            linear_sum_assignment_batch([torch.rand(2, 2), cost])
        with self.assertRaisesRegex(ValueError, "NaN or infinite"):
            linear_sum_assignment_batch([torch.tensor([[float("inf")]])])
        boxes = torch.rand(1, 2, 4)
        boxes[0, 0, 0] = float("nan")
        target = [{"labels": torch.tensor([0]), "boxes": torch.rand(1, 4)}]
        with self.assertRaises(ValueError):
            HungarianMatcher(class_cost_type="focal")(torch.randn(1, 2, 2), boxes, target)

    def test_solver_batch(self):
        cost = torch.tensor([[4.0, 1.0, 3.0], [2.0, 0.0, 5.0], [3.0, 2.0, 2.0]])
        (rows, cols), (er, ec) = linear_sum_assignment_batch([cost, torch.zeros(4, 0)])
        self.assertEqual(rows.tolist(), [0, 1, 2])
        self.assertEqual(cols.tolist(), [1, 0, 2])
        self.assertEqual((er.numel(), ec.numel()), (0, 0))

    def test_match_layers_equals_matching_each_layer(self):
        """All layers in one solver call give each layer's own assignment (random costs, so
        the optimum is unique)."""
        gen = torch.Generator().manual_seed(1)
        logits = torch.randn(3, 2, 9, 4, generator=gen)
        boxes = random_boxes(3 * 2 * 9).view(3, 2, 9, 4)
        targets = [
            {"labels": torch.tensor([0, 2, 1]), "boxes": random_boxes(3)},
            {"labels": torch.tensor([3]), "boxes": random_boxes(1)},
        ]
        matcher = HungarianMatcher(2.0, 5.0, 2.0, class_cost_type="focal")
        together = matcher.match_layers(logits, boxes, targets)
        self.assertEqual(len(together), 3)
        for layer in range(3):
            alone = matcher(logits[layer], boxes[layer], targets)
            for (r1, c1), (r2, c2) in zip(together[layer], alone):
                self.assertEqual((r1.tolist(), c1.tolist()), (r2.tolist(), c2.tolist()))

    def test_solvers_reach_scipy_optimum(self):
        """Every solver, on mixed shapes (square, tall, wide, 1x1, empty) in one call, returns
        complete one-to-one assignments whose total equals SciPy's optimum, in input order."""
        gen = torch.Generator().manual_seed(3)
        shapes = [(40, 40), (40, 7), (6, 30), (40, 40), (1, 1), (40, 7), (3, 0), (40, 40)]
        costs = [torch.rand(*shape, generator=gen) * 10 - 3 for shape in shapes]
        # a DETR-like cost with near ties: many queries on the same box
        costs.append(torch.rand(40, 1, generator=gen).repeat(1, 5))
        for solver in ASSIGNMENT_SOLVERS:
            for threads in (1, 2):
                with self.subTest(solver=solver, threads=threads):
                    solved = linear_sum_assignment_batch(costs, solver=solver, num_threads=threads)
                    self.assertEqual(len(solved), len(costs))
                    for cost, (rows, cols) in zip(costs, solved):
                        self.assertEqual(len(rows), min(cost.shape))
                        self.assertEqual(len(set(rows.tolist())), len(rows))
                        self.assertEqual(len(set(cols.tolist())), len(cols))
                        self.assertTrue((rows[1:] > rows[:-1]).all())
                        if cost.numel() == 0:
                            continue
                        matrix = cost.double().numpy()
                        ref_r, ref_c = scipy.optimize.linear_sum_assignment(matrix)
                        self.assertAlmostEqual(
                            matrix[rows.numpy(), cols.numpy()].sum(),
                            matrix[ref_r, ref_c].sum(),
                            places=9,
                        )

    def test_unknown_solver_and_non_2d(self):
        with self.assertRaisesRegex(ValueError, "solver must be one of"):
            linear_sum_assignment_batch([torch.rand(2, 2)], solver="munkres")
        with self.assertRaisesRegex(ValueError, "cost matrix 1 must be 2-D"):
            linear_sum_assignment_batch([torch.rand(2, 2), torch.rand(2)])

    def test_non_finite_named_in_group(self):
        """The first non-finite matrix of a same-shaped group is the one named."""
        costs = [torch.rand(3, 3) for _ in range(4)]
        costs[2][0, 1] = float("inf")
        with self.assertRaisesRegex(ValueError, "cost matrix 2 of shape \\(3, 3\\)"):
            linear_sum_assignment_batch(costs)


if __name__ == "__main__":
    unittest.main()
