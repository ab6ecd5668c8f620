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

from detrdistill.distill import (
    AdaptiveMatchingDistillation,
    FixedMatchingDistillation,
    PredictionDistillation,
)
from detrdistill.distill.losses.attention import (
    cross_attention_distillation,
    self_attention_distillation,
)
from detrdistill.layers import DeformableAttentionWeights, deformable_weights_to_dense

SHAPES = ((3, 4), (2, 2))  # S = 16


def _mse(a, b):
    """Mean squared difference of two equally nested python lists."""
    flat_a, flat_b = torch.tensor(a).flatten().tolist(), torch.tensor(b).flatten().tolist()
    return sum((x - y) ** 2 for x, y in zip(flat_a, flat_b)) / len(flat_a)


def _deformable(batch, queries, heads, points=2, requires_grad=False):
    levels = len(SHAPES)
    weights = DeformableAttentionWeights(
        0.1 + 0.8 * torch.rand(batch, queries, heads, levels, points, 2),
        torch.rand(batch, queries, heads, levels * points)
        .softmax(-1)
        .view(batch, queries, heads, levels, points),
    )
    if requires_grad:
        weights.sampling_locations.requires_grad_(True)
        weights.attention_weights.requires_grad_(True)
    return weights


class TestAttentionLosses(unittest.TestCase):
    def setUp(self):
        torch.manual_seed(0)
        self.pairs = [(torch.tensor([0, 2]), torch.tensor([1, 0]))]

    def test_self_attention_hand_value(self):
        s = torch.rand(1, 1, 3, 3).softmax(-1)
        t = torch.rand(1, 1, 4, 4).softmax(-1)
        si, ti = [0, 2], [1, 0]
        sl, tl = s[0, 0].tolist(), t[0, 0].tolist()
        expected = _mse([[sl[a][b] for b in si] for a in si], [[tl[a][b] for b in ti] for a in ti])
        got = self_attention_distillation(s, t, self.pairs)
        self.assertAlmostEqual(got.item(), expected, places=6)

    def test_self_attention_head_mismatch_averages_heads(self):
        s = torch.rand(1, 2, 3, 3)
        t = torch.rand(1, 4, 3, 3)
        si, ti = [0, 2], [1, 0]
        s_mean, t_mean = s[0].mean(0).tolist(), t[0].mean(0).tolist()
        expected = _mse(
            [[s_mean[a][b] for b in si] for a in si], [[t_mean[a][b] for b in ti] for a in ti]
        )
        got = self_attention_distillation(s, t, self.pairs)
        self.assertAlmostEqual(got.item(), expected, places=6)

    def test_self_attention_batch_equal_and_unequal_pair_counts(self):
        """Images with as many pairs (one batched gather) and with different counts (a loop)
        give the mean over every compared entry of every image."""
        s = torch.rand(2, 2, 4, 4, requires_grad=True)
        t = torch.rand(2, 2, 5, 5)

        def expected(pairs):
            diff = [
                (s[b][:, si][:, :, si] - t[b][:, ti][:, :, ti]).flatten()
                for b, (si, ti) in enumerate(pairs)
            ]
            return torch.cat(diff).pow(2).mean()

        equal = [
            (torch.tensor([0, 3, 1]), torch.tensor([4, 0, 2])),
            (torch.tensor([2, 0, 1]), torch.tensor([1, 3, 0])),
        ]
        unequal = [equal[0], (torch.tensor([2]), torch.tensor([4]))]
        for pairs in (equal, unequal):
            got = self_attention_distillation(s, t, pairs)
            torch.testing.assert_close(got, expected(pairs))
        got.backward()
        self.assertGreater(s.grad.abs().sum().item(), 0)

    def test_cross_attention_dense_hand_value(self):
        s = torch.rand(1, 2, 3, 5)
        t = torch.rand(1, 2, 2, 5)
        expected = _mse(
            [[s[0, h, q].tolist() for q in (0, 2)] for h in range(2)],
            [[t[0, h, q].tolist() for q in (1, 0)] for h in range(2)],
        )
        got = cross_attention_distillation(s, t, self.pairs)
        self.assertAlmostEqual(got.item(), expected, places=6)

    def test_cross_attention_deformable(self):
        shapes = torch.tensor(SHAPES)
        s = _deformable(2, 3, 2, requires_grad=True)
        t = _deformable(2, 4, 2)
        pairs = self.pairs + [(torch.tensor([1]), torch.tensor([3]))]
        got = cross_attention_distillation(s, t, pairs, shapes, shapes)
        dense_s = deformable_weights_to_dense(s, shapes)
        dense_t = deformable_weights_to_dense(t, shapes)
        diff = torch.cat(
            [(dense_s[b][:, si] - dense_t[b][:, ti]).flatten() for b, (si, ti) in enumerate(pairs)]
        )
        torch.testing.assert_close(got, diff.pow(2).mean())
        torch.testing.assert_close(
            cross_attention_distillation(dense_s, dense_t, pairs), diff.pow(2).mean()
        )
        got.backward()
        self.assertGreater(s.attention_weights.grad.abs().sum().item(), 0)
        self.assertGreater(s.sampling_locations.grad.abs().sum().item(), 0)
        self.assertIsNone(t.attention_weights.grad)
        self.assertAlmostEqual(
            cross_attention_distillation(s, s, [(torch.arange(3),) * 2] * 2, shapes, shapes).item(),
            0.0,
        )

    def test_cross_attention_layout_mismatch(self):
        with self.assertRaisesRegex(ValueError, r"S=12.*S=16"):
            cross_attention_distillation(
                torch.rand(1, 2, 3, 12), torch.rand(1, 2, 3, 16), self.pairs
            )
        with self.assertRaisesRegex(ValueError, r"S=16.*S=20"):
            cross_attention_distillation(
                _deformable(1, 3, 2),
                _deformable(1, 3, 2),
                self.pairs,
                torch.tensor(SHAPES),
                torch.tensor(((4, 4), (2, 2))),
            )


def _outputs(deformable, layers=2, queries=4, extra_queries=None):
    kwargs = {"deformable": (SHAPES, 2)} if deformable else {"tokens": 16}
    encoder = make_encoder(batch=2, dim=4, shapes=SHAPES)
    extra = None
    if extra_queries is not None:
        extra = make_decoder(layers=layers, batch=2, queries=extra_queries, classes=3, **kwargs)
    decoder = make_decoder(layers=layers, batch=2, queries=queries, classes=3, **kwargs)
    return make_output(decoder, encoder, extra)


class TestAdaptiveMatchingDistillation(unittest.TestCase):
    def test_flags(self):
        self.assertFalse(AdaptiveMatchingDistillation().needs_attention)
        self.assertTrue(AdaptiveMatchingDistillation(self_attn_weight=1.0).needs_attention)
        self.assertTrue(AdaptiveMatchingDistillation(cross_attn_weight=1.0).needs_attention)
        self.assertFalse(AdaptiveMatchingDistillation.needs_teacher_queries)
        self.assertFalse(AdaptiveMatchingDistillation.needs_teacher_assignment)
        self.assertTrue(FixedMatchingDistillation.needs_teacher_queries)
        self.assertFalse(FixedMatchingDistillation.needs_teacher_assignment)

    def test_identical_is_zero(self):
        for deformable in (False, True):
            torch.manual_seed(1)
            base = _outputs(deformable)
            inputs = make_inputs(as_teacher(base), as_student(base))
            loss = AdaptiveMatchingDistillation(self_attn_weight=10.0, cross_attn_weight=10.0)
            out = loss(inputs)
            self.assertEqual(set(out), {"class", "bbox", "giou", "self_attn", "cross_attn"})
            for key, value in out.items():
                self.assertAlmostEqual(value.item(), 0.0, places=4, msg=f"{deformable} {key}")
            self.assertEqual(set(AdaptiveMatchingDistillation()(inputs)), {"class", "bbox", "giou"})

    def test_matches_then_distills(self):
        for deformable in (False, True):
            torch.manual_seed(2)
            teacher = as_teacher(_outputs(deformable, layers=3, queries=3))
            student = as_student(_outputs(deformable, layers=2, queries=4))
            layer_pairs = [(0, 1), (1, 2)]
            inputs = make_inputs(teacher, student, layer_pairs=layer_pairs)
            loss = AdaptiveMatchingDistillation(self_attn_weight=2.0, cross_attn_weight=3.0)
            out = loss(inputs)
            expected = dict.fromkeys(out, 0.0)
            shapes = torch.tensor(SHAPES)
            for s, t in layer_pairs:
                pairs = loss.matcher(
                    student.decoder.pred_logits[s],
                    student.decoder.pred_boxes[s],
                    teacher.decoder.pred_logits[t].sigmoid(),
                    teacher.decoder.pred_boxes[t],
                    "focal",
                )
                pred = loss.prediction.forward_pairs(
                    student.decoder.pred_logits[s],
                    student.decoder.pred_boxes[s],
                    teacher.decoder.pred_logits[t],
                    teacher.decoder.pred_boxes[t],
                    pairs,
                    "focal",
                    "focal",
                )
                pred["self_attn"] = 2.0 * self_attention_distillation(
                    student.decoder.self_attn[s], teacher.decoder.self_attn[t], pairs
                )
                pred["cross_attn"] = 3.0 * cross_attention_distillation(
                    student.decoder.cross_attn[s],
                    teacher.decoder.cross_attn[t],
                    pairs,
                    shapes,
                    shapes,
                )
                for key in expected:
                    expected[key] += pred[key].item() / 2
            for key in out:
                self.assertAlmostEqual(out[key].item(), expected[key], places=5, msg=key)
            sum(out.values()).backward()
            grads = student.decoder.self_attn[0].grad
            self.assertGreater(grads.abs().sum().item(), 0)
            cross = student.decoder.cross_attn[1]
            cross = cross.attention_weights if deformable else cross
            self.assertGreater(cross.grad.abs().sum().item(), 0)
            self.assertIsNone(teacher.decoder.self_attn[1].grad)

    def test_missing_attention_is_a_clear_error(self):
        base = _outputs(False)
        base.decoder.self_attn = None
        inputs = make_inputs(as_teacher(base), as_student(base))
        with self.assertRaisesRegex(ValueError, "return_attention"):
            AdaptiveMatchingDistillation(self_attn_weight=1.0)(inputs)


class TestFixedMatchingDistillation(unittest.TestCase):
    def test_index_pairing(self):
        for deformable in (False, True):
            torch.manual_seed(3)
            teacher = as_teacher(_outputs(deformable, layers=2, queries=3))
            student = as_student(_outputs(deformable, layers=2, queries=5, extra_queries=3))
            inputs = make_inputs(teacher, student)
            loss = FixedMatchingDistillation(
                prediction=PredictionDistillation(class_weight=2.0),
                self_attn_weight=1.5,
                cross_attn_weight=0.5,
            )
            out = loss(inputs)
            identity = [(torch.arange(3), torch.arange(3))] * 2
            shapes = torch.tensor(SHAPES)
            expected = dict.fromkeys(out, 0.0)
            extra, tdec = student.extra, teacher.decoder
            for layer in range(2):
                pred = loss.prediction.forward_pairs(
                    extra.pred_logits[layer],
                    extra.pred_boxes[layer],
                    tdec.pred_logits[layer],
                    tdec.pred_boxes[layer],
                    identity,
                    "focal",
                    "focal",
                )
                pred["self_attn"] = 1.5 * (
                    (extra.self_attn[layer] - tdec.self_attn[layer]).pow(2).mean()
                )
                pred["cross_attn"] = 0.5 * cross_attention_distillation(
                    extra.cross_attn[layer], tdec.cross_attn[layer], identity, shapes, shapes
                )
                for key in expected:
                    expected[key] += pred[key].item() / 2
            for key in out:
                self.assertAlmostEqual(out[key].item(), expected[key], places=5, msg=key)
            sum(out.values()).backward()
            self.assertGreater(extra.pred_logits.grad.abs().sum().item(), 0)
            self.assertIsNone(student.decoder.pred_logits.grad)  # own queries untouched
            self.assertIsNone(tdec.pred_logits.grad)

    def test_identical_is_zero_and_errors(self):
        torch.manual_seed(4)
        teacher = as_teacher(_outputs(False, queries=3))
        student = as_student(_outputs(False, queries=5, extra_queries=3))
        student.extra = as_student(teacher.decoder)
        loss = FixedMatchingDistillation(self_attn_weight=1.0, cross_attn_weight=1.0)
        for key, value in loss(make_inputs(teacher, student)).items():
            self.assertAlmostEqual(value.item(), 0.0, places=4, msg=key)
        student.extra = None
        with self.assertRaisesRegex(ValueError, "extra"):
            loss(make_inputs(teacher, student))


if __name__ == "__main__":
    unittest.main()
