import math
import unittest

import torch

from detrdistill.layers import PositionEmbeddingSine, coordinate_sine_embedding

TWO_PI = 2 * math.pi


class TestPositionEmbeddingSine(unittest.TestCase):
    def test_shape_and_known_values(self):
        feats, temperature = 8, 10000
        pe = PositionEmbeddingSine(feats, temperature=temperature, eps=0.0)
        mask = torch.zeros(1, 3, 4, dtype=torch.bool)
        pos = pe(mask)
        self.assertEqual(pos.shape, (1, 2 * feats, 3, 4))
        i, j = 1, 2
        y, x = (i + 1) / 3 * TWO_PI, (j + 1) / 4 * TWO_PI
        freq1 = temperature ** (2 / feats)  # frequency of the second sin/cos pair
        expected_y = [math.sin(y), math.cos(y), math.sin(y / freq1), math.cos(y / freq1)]
        expected_x = [math.sin(x), math.cos(x), math.sin(x / freq1), math.cos(x / freq1)]
        torch.testing.assert_close(pos[0, :4, i, j], torch.tensor(expected_y))
        torch.testing.assert_close(pos[0, feats : feats + 4, i, j], torch.tensor(expected_x))

    def test_padding_is_normalised_away(self):
        pe = PositionEmbeddingSine(16)
        mask = torch.ones(2, 5, 6, dtype=torch.bool)
        mask[0] = False
        mask[1, :2, :3] = False  # image 1 is 2x3, bottom-right padded
        pos = pe(mask)
        small = pe(torch.zeros(1, 2, 3, dtype=torch.bool))
        torch.testing.assert_close(pos[1:, :, :2, :3], small)
        self.assertFalse(torch.allclose(pos[0, :, :2, :3], small[0]))

    def test_offset_and_unnormalised(self):
        mask = torch.zeros(1, 4, 2, dtype=torch.bool)
        pos = PositionEmbeddingSine(2, offset=-0.5, eps=0.0)(mask)
        rows = (torch.arange(4) + 0.5) / 4 * TWO_PI
        torch.testing.assert_close(pos[0, 0, :, 0], rows.sin())
        torch.testing.assert_close(pos[0, 1, :, 0], rows.cos())
        raw = PositionEmbeddingSine(2, normalize=False)(mask)
        torch.testing.assert_close(raw[0, 2, 0, :], torch.tensor([1.0, 2.0]).sin())


class TestCoordinateSineEmbedding(unittest.TestCase):
    def test_points_order_y_then_x(self):
        point = torch.tensor([[0.25, 0.1]])  # (x, y)
        emb = coordinate_sine_embedding(point, num_pos_feats=4, temperature=100)
        self.assertEqual(emb.shape, (1, 8))
        y, x = 0.1 * TWO_PI, 0.25 * TWO_PI
        f1 = 100 ** (2 / 4)
        expected = [
            *(math.sin(y), math.cos(y), math.sin(y / f1), math.cos(y / f1)),
            *(math.sin(x), math.cos(x), math.sin(x / f1), math.cos(x / f1)),
        ]
        torch.testing.assert_close(emb[0], torch.tensor(expected))

    def test_boxes_order_and_shape(self):
        boxes = torch.rand(2, 7, 4)
        emb = coordinate_sine_embedding(boxes)
        self.assertEqual(emb.shape, (2, 7, 512))
        per_coord = [coordinate_sine_embedding(boxes[..., [i, i]])[..., :128] for i in range(4)]
        # order y, x, w, h
        for slot, coord in enumerate([1, 0, 2, 3]):
            torch.testing.assert_close(emb[..., slot * 128 : (slot + 1) * 128], per_coord[coord])
        with self.assertRaises(ValueError):
            coordinate_sine_embedding(torch.rand(3, 3))

    def test_matches_feature_map_encoding(self):
        # a pixel's map encoding equals the point encoding of its normalised coordinate
        mask = torch.zeros(1, 4, 5, dtype=torch.bool)
        pos = PositionEmbeddingSine(32, eps=0.0)(mask)
        point = torch.tensor([3 / 5, 2 / 4])  # x = (j + 1) / W, y = (i + 1) / H at (i, j) = (1, 2)
        torch.testing.assert_close(coordinate_sine_embedding(point, 32), pos[0, :, 1, 2])


if __name__ == "__main__":
    unittest.main()
