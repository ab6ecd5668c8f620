import math
import unittest
from types import SimpleNamespace

import torch
from torchvision.ops import sigmoid_focal_loss as tv_sigmoid_focal_loss

from detrdistill.modeling.criterion import SetCriterion, sigmoid_focal_loss
from detrdistill.modeling.matcher import HungarianMatcher

WEIGHTS = {"loss_class": 2.0, "loss_bbox": 5.0, "loss_giou": 2.0}


def _sig(x):
    return 1 / (1 + math.exp(-x))


def focal_pos(x):
    return 0.25 * (1 - _sig(x)) ** 2 * -math.log(_sig(x))


def focal_neg(x):
    return 0.75 * _sig(x) ** 2 * -math.log(1 - _sig(x))


class _NoMatcher:
    def __call__(self, *args):
        raise AssertionError("matcher must not run when indices are given")


def _outputs(logits, boxes, **extra):
    return SimpleNamespace(pred_logits=logits, pred_boxes=boxes, **extra)


class TestSigmoidFocalLoss(unittest.TestCase):
    def test_hand_values_and_torchvision(self):
        x = torch.tensor([0.0, 0.0, 1.5, -2.0])
        t = torch.tensor([1.0, 0.0, 1.0, 0.0])
        loss = sigmoid_focal_loss(x, t)
        expected = [focal_pos(0.0), focal_neg(0.0), focal_pos(1.5), focal_neg(-2.0)]
        torch.testing.assert_close(loss, torch.tensor(expected))
        self.assertAlmostEqual(loss[0].item(), 0.25 * 0.25 * math.log(2), places=6)
        x = torch.randn(4, 5)
        t = (torch.rand(4, 5) > 0.5).float()
        torch.testing.assert_close(
            sigmoid_focal_loss(x, t, reduction="sum"), tv_sigmoid_focal_loss(x, t, reduction="sum")
        )
        soft = sigmoid_focal_loss(x, torch.full_like(x, 0.3), alpha=-1, gamma=0, reduction="mean")
        torch.testing.assert_close(
            soft,
            torch.nn.functional.binary_cross_entropy_with_logits(x, torch.full_like(x, 0.3)),
        )


class TestSetCriterion(unittest.TestCase):
    def setUp(self):
        # one image, two queries, two classes; query 0 sits on the target
        self.logits = torch.tensor([[[0.0, 1.0], [-1.0, 2.0]]])
        self.boxes = torch.tensor([[[0.5, 0.5, 0.2, 0.2], [0.2, 0.2, 0.1, 0.1]]])
        self.targets = [
            {"labels": torch.tensor([1]), "boxes": torch.tensor([[0.5, 0.5, 0.4, 0.2]])}
        ]
        self.matcher = HungarianMatcher(2.0, 5.0, 2.0, class_cost_type="focal")

    def test_focal_hand_values(self):
        crit = SetCriterion(2, self.matcher, WEIGHTS, "focal")
        losses, indices = crit(_outputs(self.logits[None], self.boxes[None]), self.targets)
        self.assertEqual(set(losses), {"loss_class", "loss_bbox", "loss_giou"})
        expected_class = focal_neg(0.0) + focal_pos(1.0) + focal_neg(-1.0) + focal_neg(2.0)
        self.assertAlmostEqual(losses["loss_class"].item(), 2 * expected_class, places=5)
        self.assertAlmostEqual(losses["loss_bbox"].item(), 5 * 0.2, places=5)
        # pred box inside the target box: IoU = 0.5 = GIoU
        self.assertAlmostEqual(losses["loss_giou"].item(), 2 * 0.5, places=5)
        self.assertEqual(len(indices), 1)
        self.assertEqual(indices[0][0][0].tolist(), [0])
        self.assertEqual(indices[0][0][1].tolist(), [0])

    def test_softmax_hand_values(self):
        logits = torch.tensor([[[1.0, 2.0, 0.5], [0.0, 0.0, 3.0]]])
        crit = SetCriterion(
            2, HungarianMatcher(class_cost_type="softmax"), WEIGHTS, loss_class_type="softmax"
        )
        losses, _ = crit(_outputs(logits[None], self.boxes[None]), self.targets)
        ce0 = -torch.log_softmax(logits[0, 0], -1)[1].item()
        ce1 = -torch.log_softmax(logits[0, 1], -1)[2].item()
        expected = (1.0 * ce0 + 0.1 * ce1) / 1.1
        self.assertAlmostEqual(losses["loss_class"].item(), 2 * expected, places=5)
        self.assertAlmostEqual(losses["loss_bbox"].item(), 5 * 0.2, places=5)

    def test_aux_layers_keys_and_indices(self):
        logits = self.logits[None].repeat(3, 1, 1, 1)
        boxes = self.boxes[None].repeat(3, 1, 1, 1)
        crit = SetCriterion(2, self.matcher, WEIGHTS, "focal")
        losses, indices = crit(
            _outputs(logits, boxes, enc_logits=None, enc_boxes=None), self.targets
        )
        expected_keys = {f"{k}{s}" for k in WEIGHTS for s in ("", "_0", "_1")}
        self.assertEqual(set(losses), expected_keys)
        self.assertEqual(len(indices), 3)
        for k in WEIGHTS:
            torch.testing.assert_close(losses[k + "_0"], losses[k])

    def test_given_indices_override_matching(self):
        crit = SetCriterion(2, _NoMatcher(), WEIGHTS, "focal")
        given = [[(torch.tensor([1]), torch.tensor([0]))]]
        losses, indices = crit(_outputs(self.logits[None], self.boxes[None]), self.targets, given)
        self.assertIs(indices[0], given[0])
        # query 1 is the positive now
        expected_class = focal_neg(0.0) + focal_neg(1.0) + focal_neg(-1.0) + focal_pos(2.0)
        self.assertAlmostEqual(losses["loss_class"].item(), 2 * expected_class, places=5)
        self.assertAlmostEqual(losses["loss_bbox"].item(), 5 * 1.0, places=5)
        with self.assertRaises(ValueError):
            crit(_outputs(self.logits[None], self.boxes[None]), self.targets, given * 2)

    def test_num_boxes_over_batch(self):
        logits = torch.randn(1, 2, 3, 2)
        boxes = torch.rand(1, 2, 3, 4) * 0.5 + 0.25
        targets = [
            {"labels": torch.tensor([0, 1]), "boxes": torch.rand(2, 4) * 0.5 + 0.25},
            {"labels": torch.tensor([1]), "boxes": torch.rand(1, 4) * 0.5 + 0.25},
        ]
        crit = SetCriterion(2, self.matcher, {k: 1.0 for k in WEIGHTS}, "focal")
        losses, indices = crit(_outputs(logits, boxes), targets)
        (i0, j0), (i1, j1) = indices[0]
        src = torch.cat([boxes[0, 0, i0], boxes[0, 1, i1]])
        tgt = torch.cat([targets[0]["boxes"][j0], targets[1]["boxes"][j1]])
        torch.testing.assert_close(losses["loss_bbox"], (src - tgt).abs().sum() / 3)

    def test_empty_targets(self):
        empty = [{"labels": torch.zeros(0, dtype=torch.int64), "boxes": torch.zeros(0, 4)}]
        for kind in ("focal", "softmax"):
            num_logits = 2 if kind == "focal" else 3
            logits = torch.randn(2, 1, 2, num_logits, requires_grad=True)
            boxes = torch.rand(2, 1, 2, 4, requires_grad=True)
            matcher = HungarianMatcher(class_cost_type=kind)
            crit = SetCriterion(2, matcher, WEIGHTS, loss_class_type=kind)
            losses, indices = crit(_outputs(logits, boxes), empty)
            self.assertEqual(indices[0][0][0].numel(), 0)
            self.assertGreater(losses["loss_class"].item(), 0)
            for key in ("loss_bbox", "loss_giou", "loss_bbox_0", "loss_giou_0"):
                self.assertEqual(losses[key].item(), 0.0)
                self.assertTrue(losses[key].requires_grad)
            sum(losses.values()).backward()
            self.assertTrue(logits.grad.abs().sum() > 0)
            self.assertEqual(boxes.grad.abs().sum().item(), 0.0)
        # focal: all negatives, divided by num_boxes clamped to 1
        logits = torch.tensor([[[[0.5, -1.0]]]])
        losses, _ = SetCriterion(2, self.matcher, WEIGHTS, "focal")(
            _outputs(logits, torch.rand(1, 1, 1, 4)), empty
        )
        self.assertAlmostEqual(
            losses["loss_class"].item(), 2 * (focal_neg(0.5) + focal_neg(-1.0)), places=5
        )

    def test_two_stage_proposals(self):
        enc_logits = torch.tensor([[[1.0, -1.0], [0.0, 0.5]]])
        crit = SetCriterion(2, self.matcher, WEIGHTS, "focal", binary_enc_targets=True)
        outputs = _outputs(
            self.logits[None], self.boxes[None], enc_logits=enc_logits, enc_boxes=self.boxes
        )
        losses, indices = crit(outputs, self.targets)
        self.assertEqual(len(indices), 1)
        self.assertIn("loss_giou_enc", losses)
        # class-agnostic: the target is class 0 for the proposal matched to it (query 0)
        expected = focal_pos(1.0) + focal_neg(-1.0) + focal_neg(0.0) + focal_neg(0.5)
        self.assertAlmostEqual(losses["loss_class_enc"].item(), 2 * expected, places=5)
        torch.testing.assert_close(losses["loss_bbox_enc"], losses["loss_bbox"])

    def test_gradients_flow(self):
        logits = torch.randn(2, 2, 4, 3, requires_grad=True)
        raw_boxes = torch.randn(2, 2, 4, 4, requires_grad=True)
        targets = [
            {"labels": torch.tensor([0, 2]), "boxes": torch.rand(2, 4) * 0.5 + 0.25},
            {"labels": torch.tensor([1]), "boxes": torch.rand(1, 4) * 0.5 + 0.25},
        ]
        crit = SetCriterion(3, self.matcher, WEIGHTS, "focal")
        losses, _ = crit(_outputs(logits, raw_boxes.sigmoid()), targets)
        sum(losses.values()).backward()
        for layer in range(2):
            self.assertTrue(logits.grad[layer].abs().sum() > 0)
            self.assertTrue(raw_boxes.grad[layer].abs().sum() > 0)

    def test_class_type_flows_from_the_criterion_to_its_matcher(self):
        """One value decides: an unset matcher takes the criterion's, a contradicting explicit
        one is an error naming both keys, and nothing computes without a class type."""
        matcher = HungarianMatcher()
        SetCriterion(2, matcher, WEIGHTS, loss_class_type="softmax")
        self.assertEqual(matcher.class_cost_type, "softmax")
        with self.assertRaisesRegex(
            ValueError,
            r"model\.criterion\.matcher\.class_cost_type='focal' disagrees with "
            r"model\.criterion\.loss_class_type='softmax'",
        ):
            SetCriterion(2, HungarianMatcher(class_cost_type="focal"), WEIGHTS, "softmax")
        unset = SetCriterion(2, HungarianMatcher(), WEIGHTS)
        outputs = _outputs(self.logits[None], self.boxes[None])
        with self.assertRaisesRegex(RuntimeError, "HungarianMatcher has no class type"):
            unset(outputs, self.targets)
        with self.assertRaisesRegex(RuntimeError, "SetCriterion has no class type"):
            unset(outputs, self.targets, indices=[[(torch.tensor([0]), torch.tensor([0]))]])
        unset.adopt_class_type("focal")
        self.assertEqual((unset.loss_class_type, unset.matcher.class_cost_type), ("focal",) * 2)
        with self.assertRaisesRegex(ValueError, "must be one of"):
            SetCriterion(2, HungarianMatcher(), WEIGHTS, loss_class_type="sigmoid")

    def test_missing_weight_raises(self):
        with self.assertRaises(KeyError):
            SetCriterion(2, self.matcher, {"loss_class": 1.0})


if __name__ == "__main__":
    unittest.main()
