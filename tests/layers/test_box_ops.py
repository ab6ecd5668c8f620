import unittest

import torch

from detrdistill.layers import (
    box_cxcywh_to_xyxy,
    box_iou,
    box_xyxy_to_cxcywh,
    generalized_box_iou,
    inverse_sigmoid,
)


class TestBoxOps(unittest.TestCase):
    def test_convert_hand_values(self):
        cxcywh = torch.tensor([[0.5, 0.5, 0.2, 0.4], [0.1, 0.2, 0.0, 0.2]])
        xyxy = torch.tensor([[0.4, 0.3, 0.6, 0.7], [0.1, 0.1, 0.1, 0.3]])
        torch.testing.assert_close(box_cxcywh_to_xyxy(cxcywh), xyxy)
        torch.testing.assert_close(box_xyxy_to_cxcywh(xyxy), cxcywh)

    def test_convert_batched_roundtrip(self):
        boxes = torch.rand(2, 5, 4)
        torch.testing.assert_close(box_xyxy_to_cxcywh(box_cxcywh_to_xyxy(boxes)), boxes)
        self.assertEqual(box_cxcywh_to_xyxy(boxes).shape, (2, 5, 4))

    def test_iou_and_giou_hand_values(self):
        a = torch.tensor([[0.0, 0.0, 2.0, 2.0]])
        b = torch.tensor([[1.0, 1.0, 3.0, 3.0], [0.0, 0.0, 2.0, 2.0], [3.0, 0.0, 4.0, 2.0]])
        iou = box_iou(a, b)
        giou = generalized_box_iou(a, b)
        self.assertEqual(iou.shape, (1, 3))
        # overlap 1, union 7, enclosing 3x3
        torch.testing.assert_close(iou[0, 0], torch.tensor(1 / 7))
        torch.testing.assert_close(giou[0, 0], torch.tensor(1 / 7 - 2 / 9))
        torch.testing.assert_close(giou[0, 1], torch.tensor(1.0))
        # disjoint: union 6, enclosing 4x2 = 8
        torch.testing.assert_close(iou[0, 2], torch.tensor(0.0))
        torch.testing.assert_close(giou[0, 2], torch.tensor(-2 / 8))

    def test_inverse_sigmoid(self):
        x = torch.linspace(0.01, 0.99, 50, dtype=torch.float64)
        torch.testing.assert_close(inverse_sigmoid(x).sigmoid(), x)
        edges = inverse_sigmoid(torch.tensor([0.0, 1.0]))
        self.assertTrue(torch.isfinite(edges).all())
        self.assertLess(edges[0].item(), -10)
        self.assertGreater(edges[1].item(), 10)


if __name__ == "__main__":
    unittest.main()
