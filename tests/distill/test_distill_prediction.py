import math
import unittest

import torch
from distill_testing import binary_kl, iou_giou, random_boxes, sigmoid, soft_bce

from detrdistill.distill import PredictionDistillation
from detrdistill.distill.losses.prediction import clamp_boxes_to_image


def _l1(a, b):
    return sum(abs(x - y) for x, y in zip(a, b))


class TestPredictionDistillation(unittest.TestCase):
    def setUp(self):
        # 1 image, 2 student / 2 teacher queries, 2 classes; pairs (0 -> 1), (1 -> 0)
        self.s_logits = torch.tensor([[[0.5, -1.0], [2.0, 0.3]]], requires_grad=True)
        self.s_boxes = torch.tensor(
            [[[0.5, 0.5, 0.2, 0.3], [0.3, 0.4, 0.1, 0.1]]], requires_grad=True
        )
        self.t_logits = torch.tensor([[[1.0, -2.0], [-0.5, 1.5]]])
        self.t_boxes = torch.tensor([[[0.32, 0.41, 0.12, 0.1], [0.45, 0.55, 0.25, 0.3]]])
        self.pairs = [(torch.tensor([0, 1]), torch.tensor([1, 0]))]

    def test_focal_hand_values(self):
        loss = PredictionDistillation()
        self.assertEqual(loss.class_loss, "bce")  # default: the plain soft BCE value
        out = loss.forward_pairs(
            self.s_logits, self.s_boxes, self.t_logits, self.t_boxes, self.pairs, "focal", "focal"
        )
        s, t = self.s_logits[0].tolist(), self.t_logits[0].tolist()
        sb, tb = self.s_boxes[0].tolist(), self.t_boxes[0].tolist()
        bce = kl = 0.0
        for i, j in ((0, 1), (1, 0)):
            bce += sum(soft_bce(sigmoid(t[j][c]), s[i][c]) for c in range(2))
            kl += sum(binary_kl(sigmoid(t[j][c]), s[i][c]) for c in range(2))
        l1 = _l1(sb[0], tb[1]) + _l1(sb[1], tb[0])
        giou = (1 - iou_giou(sb[0], tb[1])[1]) + (1 - iou_giou(sb[1], tb[0])[1])
        self.assertAlmostEqual(out["class"].item(), 1.0 * bce / 2, places=5)
        self.assertAlmostEqual(out["bbox"].item(), 5.0 * l1 / 2, places=5)
        self.assertAlmostEqual(out["giou"].item(), 2.0 * giou / 2, places=5)
        self.assertEqual(loss.last_counts, {"class": 2, "bbox": 2, "giou": 2})
        # "binary_kl" subtracts the targets' entropy: smaller value, same gradient
        binary = PredictionDistillation(class_loss="binary_kl").forward_pairs(
            self.s_logits, self.s_boxes, self.t_logits, self.t_boxes, self.pairs, "focal", "focal"
        )
        self.assertAlmostEqual(binary["class"].item(), kl / 2, places=5)
        self.assertGreater(bce - kl, 0.1)
        (grad_bce,) = torch.autograd.grad(out["class"], self.s_logits, retain_graph=True)
        (grad_kl,) = torch.autograd.grad(binary["class"], self.s_logits)
        torch.testing.assert_close(grad_bce, grad_kl)
        sum(out.values()).backward()
        self.assertIsNotNone(self.s_logits.grad)
        self.assertGreater(self.s_boxes.grad.abs().sum().item(), 0)

    def test_no_gradient_reaches_a_trainable_teacher(self):
        t_boxes = self.t_boxes.clone().requires_grad_(True)
        for kind, k in (("focal", 2), ("softmax", 3)):
            for kwargs in ({}, {"weight_by_teacher_confidence": True}):
                t_logits = torch.randn(1, 2, k, requires_grad=True)
                s_logits = torch.randn(1, 2, k, requires_grad=True)
                out = PredictionDistillation(temperature=2.0, **kwargs).forward_pairs(
                    s_logits, self.s_boxes, t_logits, t_boxes, self.pairs, kind, kind
                )
                sum(out.values()).backward()
                self.assertIsNone(t_logits.grad, msg=(kind, kwargs))
                self.assertIsNone(t_boxes.grad, msg=(kind, kwargs))
                self.assertGreater(s_logits.grad.abs().sum().item(), 0)

    def test_clamp_boxes_to_image(self):
        boxes = torch.tensor([[0.9, 0.1, 0.4, 0.4], [0.5, 0.5, 0.2, 0.2]])
        # box 0: xyxy (0.7, -0.1, 1.1, 0.3) -> (0.7, 0, 1, 0.3) -> cxcywh (0.85, 0.15, 0.3, 0.3)
        expected = torch.tensor([[0.85, 0.15, 0.3, 0.3], [0.5, 0.5, 0.2, 0.2]])
        torch.testing.assert_close(clamp_boxes_to_image(boxes), expected)

    def test_softmax_kl_with_temperature(self):
        temp = 2.0
        s_logits = torch.tensor([[[0.5, -1.0, 0.2]]])
        t_logits = torch.tensor([[[1.0, 0.0, -1.0]]])
        boxes = random_boxes(1, 1)
        pairs = [(torch.tensor([0]), torch.tensor([0]))]
        out = PredictionDistillation(temperature=temp).forward_pairs(
            s_logits, boxes, t_logits, boxes, pairs, "softmax", "softmax"
        )

        def softmax(v):
            e = [math.exp(x / temp) for x in v]
            return [x / sum(e) for x in e]

        p, q = softmax(t_logits[0, 0].tolist()), softmax(s_logits[0, 0].tolist())
        kl = sum(a * math.log(a / b) for a, b in zip(p, q)) * temp**2
        self.assertAlmostEqual(out["class"].item(), kl, places=5)
        self.assertAlmostEqual(out["bbox"].item(), 0.0, places=6)
        self.assertAlmostEqual(out["giou"].item(), 0.0, places=4)

    def test_focal_student_softmax_teacher(self):
        s_logits = torch.tensor([[[0.5, -1.0]]])
        t_logits = torch.tensor([[[1.0, 0.0, -1.0]]])
        boxes = random_boxes(1, 1)
        pairs = [(torch.tensor([0]), torch.tensor([0]))]
        out = PredictionDistillation().forward_pairs(
            s_logits, boxes, t_logits, boxes, pairs, "focal", "softmax"
        )
        e = [math.exp(x) for x in t_logits[0, 0].tolist()]
        target = [x / sum(e) for x in e][:2]
        expected = sum(soft_bce(p, x) for p, x in zip(target, s_logits[0, 0].tolist()))
        self.assertAlmostEqual(out["class"].item(), expected, places=5)
        with self.assertRaises(ValueError):
            PredictionDistillation(class_loss="kl")

    def test_softmax_student_focal_teacher_raises(self):
        boxes = random_boxes(1, 1)
        pairs = [(torch.tensor([0]), torch.tensor([0]))]
        with self.assertRaisesRegex(ValueError, "focal teacher"):
            PredictionDistillation().forward_pairs(
                torch.randn(1, 1, 3), boxes, torch.randn(1, 1, 2), boxes, pairs, "softmax", "focal"
            )

    def test_box_mask_and_confidence_weighting(self):
        box_mask = torch.tensor([[False, True]])  # only the pair (0 -> 1) carries box terms
        args = (self.s_logits, self.s_boxes, self.t_logits, self.t_boxes, self.pairs)
        out = PredictionDistillation().forward_pairs(*args, "focal", "focal", box_mask=box_mask)
        sb, tb = self.s_boxes[0].tolist(), self.t_boxes[0].tolist()
        self.assertAlmostEqual(out["bbox"].item(), 5.0 * _l1(sb[0], tb[1]), places=5)
        self.assertAlmostEqual(out["giou"].item(), 2.0 * (1 - iou_giou(sb[0], tb[1])[1]), places=5)
        full = PredictionDistillation().forward_pairs(*args, "focal", "focal")
        torch.testing.assert_close(out["class"], full["class"])  # class keeps every pair

        weighted = PredictionDistillation(weight_by_teacher_confidence=True).forward_pairs(
            *args, "focal", "focal"
        )
        conf = self.t_logits[0].sigmoid().amax(-1).tolist()  # per teacher query
        expected = 5.0 * (conf[1] * _l1(sb[0], tb[1]) + conf[0] * _l1(sb[1], tb[0])) / 2
        self.assertAlmostEqual(weighted["bbox"].item(), expected, places=5)

    def test_identical_is_zero_and_empty_pairs(self):
        logits = torch.randn(2, 3, 4, requires_grad=True)
        boxes = random_boxes(2, 3).requires_grad_(True)
        idx = torch.arange(3)
        args = (logits, boxes, logits.detach(), boxes.detach(), [(idx, idx)] * 2, "focal", "focal")
        out = PredictionDistillation(class_loss="binary_kl").forward_pairs(*args)
        for key, value in out.items():
            self.assertAlmostEqual(value.item(), 0.0, places=4, msg=key)
        # "bce" reports the targets' entropy when the student reproduces the teacher
        probs = logits.detach().sigmoid().flatten().tolist()
        entropy = -sum(p * math.log(p) + (1 - p) * math.log(1 - p) for p in probs)
        bce = PredictionDistillation().forward_pairs(*args)
        self.assertAlmostEqual(bce["class"].item(), entropy / 6, places=4)
        empty = torch.empty(0, dtype=torch.int64)
        loss = PredictionDistillation()
        out = loss.forward_pairs(
            logits, boxes, logits.detach(), boxes.detach(), [(empty, empty)] * 2, "focal", "focal"
        )
        total = sum(out.values())
        self.assertEqual(total.item(), 0.0)
        self.assertEqual(loss.last_counts, {"class": 0, "bbox": 0, "giou": 0})
        total.backward()  # still attached to the student graph


if __name__ == "__main__":
    unittest.main()
