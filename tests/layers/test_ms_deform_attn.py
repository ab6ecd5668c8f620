import math
import unittest

import torch

from detrdistill.layers import (
    DeformableAttentionWeights,
    MultiScaleDeformableAttention,
    deformable_weights_to_dense,
    multi_scale_deformable_attention,
)

SHAPES = torch.tensor([[3, 4], [2, 2]])
NUM_VALUES = 3 * 4 + 2 * 2


def naive_deformable_attention(value, spatial_shapes, locations, weights):
    """Per-point bilinear sampling with loops; pixel (i, j) centre at ((j+.5)/W, (i+.5)/H)."""
    bsz, _, heads, head_dim = value.shape
    _, num_queries, _, levels, points, _ = locations.shape
    out = torch.zeros(bsz, num_queries, heads, head_dim, dtype=value.dtype)
    starts = [0]
    for h, w in spatial_shapes.tolist():
        starts.append(starts[-1] + h * w)
    for b in range(bsz):
        for q in range(num_queries):
            for m in range(heads):
                for lvl in range(levels):
                    h, w = spatial_shapes[lvl].tolist()
                    for p in range(points):
                        x = locations[b, q, m, lvl, p, 0].item() * w - 0.5
                        y = locations[b, q, m, lvl, p, 1].item() * h - 0.5
                        x0, y0 = math.floor(x), math.floor(y)
                        sample = torch.zeros(head_dim, dtype=value.dtype)
                        for xi in (x0, x0 + 1):
                            for yi in (y0, y0 + 1):
                                if 0 <= xi < w and 0 <= yi < h:
                                    bilinear = (1 - abs(x - xi)) * (1 - abs(y - yi))
                                    sample += bilinear * value[b, starts[lvl] + yi * w + xi, m]
                        out[b, q, m] += weights[b, q, m, lvl, p] * sample
    return out.flatten(2)


def random_inputs(bsz=2, num_queries=3, heads=2, head_dim=3, points=2, low=-0.1, high=1.1):
    value = torch.randn(bsz, NUM_VALUES, heads, head_dim, dtype=torch.float64)
    locations = torch.rand(bsz, num_queries, heads, 2, points, 2, dtype=torch.float64)
    locations = low + (high - low) * locations
    weights = torch.rand(bsz, num_queries, heads, 2, points, dtype=torch.float64)
    weights = weights / weights.sum((-1, -2), keepdim=True)
    return value, locations, weights


class TestMultiScaleDeformableAttentionFunction(unittest.TestCase):
    def test_matches_naive_reference(self):
        torch.manual_seed(0)
        value, locations, weights = random_inputs()
        out = multi_scale_deformable_attention(value, SHAPES, locations, weights)
        self.assertEqual(out.shape, (2, 3, 6))
        expected = naive_deformable_attention(value, SHAPES, locations, weights)
        torch.testing.assert_close(out, expected)

    def test_pixel_centre_reads_the_pixel(self):
        value = torch.arange(NUM_VALUES, dtype=torch.float32).view(1, NUM_VALUES, 1, 1)
        # level 0 pixel (i=2, j=1) and level 1 pixel (i=0, j=1)
        locations = torch.tensor([[[[[[1.5 / 4, 2.5 / 3]], [[1.5 / 2, 0.5 / 2]]]]]])
        weights = torch.tensor([[[[[0.25], [0.75]]]]])
        out = multi_scale_deformable_attention(value, SHAPES, locations, weights)
        torch.testing.assert_close(out, torch.tensor([[[0.25 * 9 + 0.75 * 13]]]))


class TestMultiScaleDeformableAttentionModule(unittest.TestCase):
    def setUp(self):
        torch.manual_seed(0)
        self.attn = MultiScaleDeformableAttention(16, num_heads=4, num_levels=2, num_points=3)
        self.attn.eval()
        self.query = torch.randn(2, 5, 16)
        self.value = torch.randn(2, NUM_VALUES, 16)
        self.start = torch.tensor([0, 12])

    def test_init_locations_points(self):
        ref = torch.rand(2, 5, 2, 2)
        _, w = self.attn(self.query, ref, self.value, SHAPES, self.start, need_weights=True)
        self.assertEqual(w.sampling_locations.shape, (2, 5, 4, 2, 3, 2))
        self.assertEqual(w.attention_weights.shape, (2, 5, 4, 2, 3))
        torch.testing.assert_close(w.attention_weights, torch.full_like(w.attention_weights, 1 / 6))
        # head 1 of 4 points along +y (theta = pi/2), point p at p+1 pixels of each level
        for lvl, (h, _) in enumerate(SHAPES.tolist()):
            for p in range(3):
                shift = torch.tensor([0.0, (p + 1) / h])
                loc = w.sampling_locations[:, :, 1, lvl, p]
                torch.testing.assert_close(loc, ref[:, :, lvl] + shift, atol=1e-6, rtol=0)
        # head 0 points along +x
        torch.testing.assert_close(
            w.sampling_locations[:, :, 0, 0, 1], ref[:, :, 0] + torch.tensor([2 / 4, 0.0])
        )

    def test_init_locations_boxes(self):
        ref = torch.rand(2, 5, 2, 4)
        _, w = self.attn(self.query, ref, self.value, SHAPES, need_weights=True)
        # head 0, point 2: bias (3, 0) -> offset 3 / P * w * 0.5 along x
        expected = ref[:, :, :, :2].clone()
        expected[..., 0] += 3 / 3 * ref[:, :, :, 2] * 0.5
        torch.testing.assert_close(w.sampling_locations[:, :, 0, :, 2], expected)

    def test_output_consistent_with_function_and_no_weights_by_default(self):
        self.attn.sampling_offsets.weight.data.normal_(0, 0.1)
        self.attn.attention_weights.weight.data.normal_(0, 0.5)
        ref = torch.rand(2, 5, 2, 2)
        out, none = self.attn(self.query, ref, self.value, SHAPES)
        self.assertIsNone(none)
        out2, w = self.attn(self.query, ref, self.value, SHAPES, need_weights=True)
        torch.testing.assert_close(out, out2)
        value = self.attn.value_proj(self.value).view(2, NUM_VALUES, 4, 4)
        sampled = multi_scale_deformable_attention(
            value, SHAPES, w.sampling_locations, w.attention_weights
        )
        torch.testing.assert_close(out, self.attn.output_proj(sampled))
        torch.testing.assert_close(w.attention_weights.sum((-1, -2)), torch.ones(2, 5, 4))

    def test_value_padding_mask(self):
        ref = torch.rand(2, 5, 2, 2)
        mask = torch.zeros(2, NUM_VALUES, dtype=torch.bool)
        mask[1, 8:12] = True
        value2 = self.value.clone()
        value2[1, 8:12] = 1000.0
        out1, _ = self.attn(self.query, ref, self.value, SHAPES, value_padding_mask=mask)
        out2, _ = self.attn(self.query, ref, value2, SHAPES, value_padding_mask=mask)
        torch.testing.assert_close(out1, out2)
        value2[0, 8:12] = 1000.0
        out3, _ = self.attn(self.query, ref, value2, SHAPES, value_padding_mask=mask)
        self.assertFalse(torch.allclose(out1[0], out3[0]))

    def test_query_pos_and_gradients(self):
        pos = torch.randn(2, 5, 16)
        ref = torch.rand(2, 5, 2, 4)
        out, _ = self.attn(self.query, ref, self.value, SHAPES, query_pos=pos)
        expected, _ = self.attn(self.query + pos, ref, self.value, SHAPES)
        torch.testing.assert_close(out, expected)
        self.attn.train()
        query = self.query.clone().requires_grad_()
        out, _ = self.attn(query, ref, self.value, SHAPES)
        out.square().sum().backward()
        for name in ("sampling_offsets", "attention_weights", "value_proj", "output_proj"):
            grad = getattr(self.attn, name).weight.grad
            self.assertTrue(grad is not None and grad.abs().sum() > 0, name)


class TestDeformableWeightsToDense(unittest.TestCase):
    def test_interior_points_sum_to_one_and_reproduce_output(self):
        torch.manual_seed(0)
        # at least half a pixel of the finest level (W=2 -> 0.25) inside
        value, locations, weights = random_inputs(low=0.26, high=0.74)
        dense = deformable_weights_to_dense(DeformableAttentionWeights(locations, weights), SHAPES)
        self.assertEqual(dense.shape, (2, 2, 3, NUM_VALUES))
        torch.testing.assert_close(dense.sum(-1), torch.ones(2, 2, 3, dtype=torch.float64))
        self.assertTrue((dense >= 0).all())
        out = torch.einsum("bhqs,bshd->bqhd", dense, value).flatten(2)
        torch.testing.assert_close(
            out, multi_scale_deformable_attention(value, SHAPES, locations, weights)
        )

    def test_outside_mass_dropped(self):
        torch.manual_seed(1)
        value, locations, weights = random_inputs(low=-0.3, high=1.3)
        dense = deformable_weights_to_dense(DeformableAttentionWeights(locations, weights), SHAPES)
        sums = dense.sum(-1)
        self.assertTrue((sums <= 1 + 1e-9).all())
        self.assertTrue((sums < 1 - 1e-3).any())
        out = torch.einsum("bhqs,bshd->bqhd", dense, value).flatten(2)
        torch.testing.assert_close(
            out, multi_scale_deformable_attention(value, SHAPES, locations, weights)
        )
        far = torch.full_like(locations, 5.0)
        zero = deformable_weights_to_dense(DeformableAttentionWeights(far, weights), SHAPES)
        self.assertEqual(zero.abs().sum().item(), 0.0)

    def test_argmax_at_sampled_location(self):
        locations = torch.zeros(1, 1, 1, 2, 1, 2)
        locations[..., 0, 0, :] = torch.tensor([2.5 / 4, 0.5 / 3])  # level 0: centre of (0, 2)
        locations[..., 1, 0, :] = torch.tensor([0.6 / 2, 1.4 / 2])  # level 1: near (1, 0)
        weights = torch.tensor([0.4, 0.6]).view(1, 1, 1, 2, 1)
        dense = deformable_weights_to_dense(DeformableAttentionWeights(locations, weights), SHAPES)
        self.assertEqual(dense.argmax(-1).item(), 12 + 1 * 2 + 0)
        self.assertAlmostEqual(dense[0, 0, 0, 14].item(), 0.6 * 0.9 * 0.9, places=6)
        self.assertAlmostEqual(dense[0, 0, 0, 2].item(), 0.4, places=6)
        self.assertAlmostEqual(dense.sum().item(), 1.0, places=6)
        # a point 0.2 pixel left of the first column keeps 80% of its mass
        locations[..., 1, 0, 0] = 0.3 / 2
        dense = deformable_weights_to_dense(DeformableAttentionWeights(locations, weights), SHAPES)
        self.assertAlmostEqual(dense.sum().item(), 0.4 + 0.6 * 0.8, places=6)

    def test_gradients(self):
        value, locations, weights = random_inputs(low=0.3, high=0.7)
        locations.requires_grad_()
        weights.requires_grad_()
        dense = deformable_weights_to_dense(DeformableAttentionWeights(locations, weights), SHAPES)
        (dense * torch.randn_like(dense)).sum().backward()
        self.assertTrue(weights.grad.abs().sum() > 0)
        self.assertTrue(locations.grad.abs().sum() > 0)


if __name__ == "__main__":
    unittest.main()
