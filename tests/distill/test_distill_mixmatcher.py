import math
import unittest

import torch
from distill_testing import (
    as_student,
    as_teacher,
    brute_force,
    float_leaves,
    grad_norm,
    hand_cost_matrix,
    hand_kl_rows,
    hand_prediction_loss,
    make_decoder,
    make_encoder,
    make_inputs,
    make_output,
    trainable,
)

from detrdistill.distill import (
    AdaptiveMatchingDistillation,
    AttentionDistillation,
    FixedMatchingDistillation,
    PredictionDistillation,
)
from detrdistill.distill.losses.attention import (
    attention_distance,
    cross_attention_distillation,
    self_attention_distillation,
)
from detrdistill.layers import DeformableAttentionWeights, deformable_weights_to_dense

SHAPES = ((3, 4), (2, 2))  # S = 16


def _mse(a, b):
    """Mean squared difference of two equally nested python lists."""
    flat_a, flat_b = torch.tensor(a).flatten().tolist(), torch.tensor(b).flatten().tolist()
    return sum((x - y) ** 2 for x, y in zip(flat_a, flat_b)) / len(flat_a)


def _kl(student_rows, teacher_rows):
    """Hand KL over the last axis of two equally shaped tensors, averaged over rows."""
    keys = student_rows.shape[-1]
    return hand_kl_rows(
        student_rows.detach().reshape(-1, keys).tolist(),
        teacher_rows.detach().reshape(-1, keys).tolist(),
    )


def _restricted(attn, idx):
    """(H, n, n) self-attention of one image restricted to the queries ``idx``."""
    return attn[:, idx][:, :, idx]


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


class TestAttentionDistance(unittest.TestCase):
    def test_kl_hand_value(self):
        s = torch.tensor([[0.5, 0.5, 0.0], [0.2, 0.3, 0.5]])
        t = torch.tensor([[0.9, 0.1, 0.0], [2.0, 1.0, 1.0]])  # rows need not sum to 1
        eps = 1e-6

        def smooth(row):
            row = [x + eps for x in row]
            return [x / sum(row) for x in row]

        expected = 0.0
        for srow, trow in zip(s.tolist(), t.tolist()):
            p, q = smooth(trow), smooth(srow)
            expected += sum(a * math.log(a / b) for a, b in zip(p, q))
        got = attention_distance([(s, t)], s, "kl", eps)
        self.assertAlmostEqual(got.item(), expected / 2, places=6)
        # row 1: 0.9 ln 1.8 + 0.1 ln 0.2 = 0.3681; row 2 (teacher row normalised to
        # 0.5 / 0.25 / 0.25): 0.5 ln 2.5 + 0.25 ln(0.25 / 0.3) + 0.25 ln 0.5 = 0.2393
        self.assertAlmostEqual(expected / 2, (0.3681 + 0.2393) / 2, places=3)
        self.assertAlmostEqual(
            attention_distance([(s, t)], s, "mse").item(), (s - t).pow(2).mean().item(), places=6
        )
        with self.assertRaisesRegex(ValueError, "distance"):
            attention_distance([(s, t)], s, "l1")
        # no part: 0, attached to the anchor's graph
        anchor = torch.rand(3, requires_grad=True)
        empty = attention_distance([], anchor, "kl")
        self.assertEqual(empty.item(), 0.0)
        empty.backward()

    def test_kl_does_not_shrink_with_the_number_of_keys_mse_does(self):
        """A teacher attending to one key against a uniform student: KL ~ log(S) at any size,
        the MSE ~ 1/S."""
        values = {}
        for keys in (10, 10000):
            t = torch.zeros(1, keys)
            t[0, 3] = 1.0
            s = torch.full((1, keys), 1.0 / keys)
            kl = attention_distance([(s, t)], s, "kl").item()
            mse = attention_distance([(s, t)], s, "mse").item()
            self.assertAlmostEqual(kl, _kl(s, t), places=4)
            self.assertAlmostEqual(kl, math.log(keys), delta=0.02 * math.log(keys))
            values[keys] = (kl, mse)
        self.assertGreater(values[10000][0], values[10][0])  # KL grows (log S)
        self.assertLess(values[10000][1], values[10][1] / 500)  # MSE vanishes


class TestAttentionLosses(unittest.TestCase):
    def setUp(self):
        torch.manual_seed(0)
        self.pairs = [(torch.tensor([0, 2]), torch.tensor([1, 0]))]

    def test_self_attention_hand_value(self):
        s = torch.rand(1, 1, 3, 3).softmax(-1)
        t = torch.rand(1, 1, 4, 4).softmax(-1)
        si, ti = [0, 2], [1, 0]
        sl, tl = s[0, 0].tolist(), t[0, 0].tolist()
        s_rows = [[sl[a][b] for b in si] for a in si]
        t_rows = [[tl[a][b] for b in ti] for a in ti]
        got = self_attention_distillation(s, t, self.pairs, distance="mse")
        self.assertAlmostEqual(got.item(), _mse(s_rows, t_rows), places=6)
        kl = self_attention_distillation(s, t, self.pairs)  # default: KL
        self.assertAlmostEqual(kl.item(), hand_kl_rows(s_rows, t_rows), places=6)

    def test_self_attention_head_mismatch_averages_heads(self):
        s = torch.rand(1, 2, 3, 3)
        t = torch.rand(1, 4, 3, 3)
        si, ti = [0, 2], [1, 0]
        s_mean, t_mean = s[0].mean(0).tolist(), t[0].mean(0).tolist()
        s_rows = [[s_mean[a][b] for b in si] for a in si]
        t_rows = [[t_mean[a][b] for b in ti] for a in ti]
        got = self_attention_distillation(s, t, self.pairs, distance="mse")
        self.assertAlmostEqual(got.item(), _mse(s_rows, t_rows), places=6)
        kl = self_attention_distillation(s, t, self.pairs, distance="kl")
        self.assertAlmostEqual(kl.item(), hand_kl_rows(s_rows, t_rows), places=6)

    def test_self_attention_batch_equal_and_unequal_pair_counts(self):
        """Images with as many pairs (one batched gather) and with different counts (a loop)
        average over every compared row / entry of every image."""
        s = torch.rand(2, 2, 4, 4, requires_grad=True)
        t = torch.rand(2, 2, 5, 5)

        def restricted(pairs):
            s_parts = [_restricted(s[b], si) for b, (si, _) in enumerate(pairs)]
            t_parts = [_restricted(t[b], ti) for b, (_, ti) in enumerate(pairs)]
            return s_parts, t_parts

        equal = [
            (torch.tensor([0, 3, 1]), torch.tensor([4, 0, 2])),
            (torch.tensor([2, 0, 1]), torch.tensor([1, 3, 0])),
        ]
        unequal = [equal[0], (torch.tensor([2]), torch.tensor([4]))]
        for pairs in (equal, unequal):
            s_parts, t_parts = restricted(pairs)
            mse = torch.cat([(a - b).flatten() for a, b in zip(s_parts, t_parts)]).pow(2).mean()
            got = self_attention_distillation(s, t, pairs, distance="mse")
            torch.testing.assert_close(got, mse)
            rows = sum(a.shape[0] * a.shape[1] for a in s_parts)
            kl = sum(_kl(a, b) * a.shape[0] * a.shape[1] for a, b in zip(s_parts, t_parts))
            got = self_attention_distillation(s, t, pairs)
            self.assertAlmostEqual(got.item(), kl / rows, places=5)
        got.backward()
        self.assertGreater(s.grad.abs().sum().item(), 0)

    def test_cross_attention_dense_hand_value(self):
        s = torch.rand(1, 2, 3, 5)
        t = torch.rand(1, 2, 2, 5)
        s_rows = [[s[0, h, q].tolist() for q in (0, 2)] for h in range(2)]
        t_rows = [[t[0, h, q].tolist() for q in (1, 0)] for h in range(2)]
        got = cross_attention_distillation(s, t, self.pairs, distance="mse")
        self.assertAlmostEqual(got.item(), _mse(s_rows, t_rows), places=6)
        kl = cross_attention_distillation(s, t, self.pairs)
        flat = [r for rows in s_rows for r in rows], [r for rows in t_rows for r in rows]
        self.assertAlmostEqual(kl.item(), hand_kl_rows(*flat), places=6)

    def test_cross_attention_all_queries_scope(self):
        """The port's scope: each image's map summed over ALL its queries, whatever the pairs."""
        s = torch.rand(2, 2, 3, 5)
        t = torch.rand(2, 2, 4, 5)
        pairs = [(torch.tensor([0]), torch.tensor([1]))] * 2
        s_rows = [s[b, h].sum(0).tolist() for h in range(2) for b in range(2)]
        t_rows = [t[b, h].sum(0).tolist() for h in range(2) for b in range(2)]
        got = cross_attention_distillation(s, t, pairs, scope="all_queries", distance="mse")
        self.assertAlmostEqual(got.item(), _mse(s_rows, t_rows), places=5)
        got = cross_attention_distillation(s, t, pairs, scope="all_queries")
        self.assertAlmostEqual(got.item(), hand_kl_rows(s_rows, t_rows), places=5)
        with self.assertRaisesRegex(ValueError, "scope"):
            cross_attention_distillation(s, t, pairs, scope="some")

    def test_cross_attention_deformable(self):
        shapes = torch.tensor(SHAPES)
        s = _deformable(2, 3, 2, requires_grad=True)
        t = _deformable(2, 4, 2, requires_grad=True)  # a trainable teacher gets no gradient
        pairs = self.pairs + [(torch.tensor([1]), torch.tensor([3]))]
        for half_pixel in (True, False):
            dense_s = deformable_weights_to_dense(s, shapes, half_pixel)
            dense_t = deformable_weights_to_dense(t, shapes, half_pixel)
            s_rows = torch.cat([dense_s[b][:, si] for b, (si, _) in enumerate(pairs)], 1)
            t_rows = torch.cat([dense_t[b][:, ti] for b, (_, ti) in enumerate(pairs)], 1)
            got = cross_attention_distillation(
                s, t, pairs, shapes, shapes, distance="mse", half_pixel=half_pixel
            )
            torch.testing.assert_close(got, (s_rows - t_rows).pow(2).mean())
            got = cross_attention_distillation(s, t, pairs, shapes, shapes, half_pixel=half_pixel)
            self.assertAlmostEqual(got.item(), _kl(s_rows, t_rows), places=5)
            torch.testing.assert_close(
                cross_attention_distillation(dense_s, dense_t, pairs), got, rtol=1e-5, atol=1e-6
            )
        default = cross_attention_distillation(s, t, pairs, shapes, shapes)
        shifted = cross_attention_distillation(s, t, pairs, shapes, shapes, half_pixel=False)
        self.assertGreater(abs(default.item() - shifted.item()), 1e-4)  # default: half pixel
        default.backward()
        self.assertGreater(s.attention_weights.grad.abs().sum().item(), 0)
        self.assertGreater(s.sampling_locations.grad.abs().sum().item(), 0)
        self.assertIsNone(t.attention_weights.grad)
        self.assertIsNone(t.sampling_locations.grad)
        same = [(torch.arange(3),) * 2] * 2
        for distance in ("kl", "mse"):
            zero = cross_attention_distillation(s, s, same, shapes, shapes, distance=distance)
            self.assertAlmostEqual(zero.item(), 0.0, places=6)

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

    def test_attention_module_defaults_and_errors(self):
        module = AttentionDistillation()
        self.assertEqual(
            (module.distance, module.cross_attn_scope, module.half_pixel), ("kl", "matched", True)
        )
        self.assertFalse(module.enabled)
        self.assertTrue(AttentionDistillation(cross_attn_weight=0.5).enabled)
        with self.assertRaises(ValueError):
            AttentionDistillation(distance="l2")
        with self.assertRaises(ValueError):
            AttentionDistillation(cross_attn_scope="image")


def _outputs(deformable, layers=2, queries=4, teacher_group_queries=None):
    kwargs = {"deformable": (SHAPES, 2)} if deformable else {"tokens": 16}
    encoder = make_encoder(batch=2, dim=4, shapes=SHAPES)
    group = None
    if teacher_group_queries is not None:
        group = make_decoder(
            layers=layers, batch=2, queries=teacher_group_queries, classes=3, **kwargs
        )
    decoder = make_decoder(layers=layers, batch=2, queries=queries, classes=3, **kwargs)
    return make_output(decoder, encoder, group)


def _dense(cross, deformable):
    return deformable_weights_to_dense(cross, torch.tensor(SHAPES)) if deformable else cross


def _hand_attention(s_self, t_self, s_cross, t_cross, pairs, deformable):
    """KL of the self-attention restricted to the pairs (one row per head and query) and of
    the matched queries' cross-attention rows, by hand."""
    s_parts = [_restricted(s_self[b], si) for b, (si, _) in enumerate(pairs)]
    t_parts = [_restricted(t_self[b], ti) for b, (_, ti) in enumerate(pairs)]
    rows = sum(a.shape[0] * a.shape[1] for a in s_parts)
    self_kl = sum(_kl(a, b) * a.shape[0] * a.shape[1] for a, b in zip(s_parts, t_parts)) / rows
    s_dense, t_dense = _dense(s_cross, deformable), _dense(t_cross, deformable)
    s_rows = torch.cat([s_dense[b][:, si] for b, (si, _) in enumerate(pairs)], 1)
    t_rows = torch.cat([t_dense[b][:, ti] for b, (_, ti) in enumerate(pairs)], 1)
    return self_kl, _kl(s_rows, t_rows)


class TestAdaptiveMatchingDistillation(unittest.TestCase):
    def test_flags_and_attention_argument(self):
        self.assertFalse(AdaptiveMatchingDistillation().needs_attention)
        self.assertTrue(AdaptiveMatchingDistillation(self_attn_weight=1.0).needs_attention)
        self.assertTrue(AdaptiveMatchingDistillation(cross_attn_weight=1.0).needs_attention)
        self.assertEqual(AdaptiveMatchingDistillation.query_groups, ())
        self.assertFalse(AdaptiveMatchingDistillation.needs_teacher_assignment)
        self.assertEqual(FixedMatchingDistillation.query_groups, ("teacher_queries",))
        self.assertFalse(FixedMatchingDistillation.needs_teacher_assignment)
        self.assertEqual(AdaptiveMatchingDistillation().layer_reduction, "sum")
        self.assertEqual(FixedMatchingDistillation().layer_reduction, "sum")
        attention = AttentionDistillation(self_attn_weight=2.0, distance="mse")
        for cls in (AdaptiveMatchingDistillation, FixedMatchingDistillation):
            loss = cls(attention=attention)
            self.assertIs(loss.attention, attention)
            self.assertTrue(loss.needs_attention)
            with self.assertRaisesRegex(ValueError, "not both"):
                cls(attention=attention, cross_attn_weight=1.0)
            built = cls(self_attn_weight=1.0, cross_attn_weight=3.0).attention
            self.assertEqual((built.self_attn_weight, built.cross_attn_weight), (1.0, 3.0))
            self.assertEqual(built.distance, "kl")

    def test_identical_is_zero(self):
        for deformable in (False, True):
            torch.manual_seed(1)
            base = _outputs(deformable)
            inputs = make_inputs(as_teacher(base), as_student(base))
            loss = AdaptiveMatchingDistillation(
                prediction=PredictionDistillation(class_loss="binary_kl"),
                self_attn_weight=10.0,
                cross_attn_weight=10.0,
            )
            out = loss(inputs)
            self.assertEqual(set(out), {"class", "bbox", "giou", "self_attn", "cross_attn"})
            for key, value in out.items():
                self.assertAlmostEqual(value.item(), 0.0, places=4, msg=f"{deformable} {key}")
            self.assertEqual(set(AdaptiveMatchingDistillation()(inputs)), {"class", "bbox", "giou"})

    def test_matches_then_distills(self):
        """Pairs: brute-force optimum of the hand cost; values: the hand formulas (soft BCE,
        L1, GIoU, per-row KL), summed over the layer pairs."""
        for deformable in (False, True):
            torch.manual_seed(2)
            teacher = as_teacher(_outputs(deformable, layers=3, queries=3))
            student = as_student(_outputs(deformable, layers=2, queries=4))
            layer_pairs = [(0, 1), (1, 2)]
            inputs = make_inputs(teacher, student, layer_pairs=layer_pairs)
            loss = AdaptiveMatchingDistillation(self_attn_weight=2.0, cross_attn_weight=3.0)
            out = loss(inputs)
            expected = dict.fromkeys(out, 0.0)
            sdec, tdec = student.decoder, teacher.decoder
            for s, t in layer_pairs:
                pairs = []
                for b in range(2):
                    cost = hand_cost_matrix(
                        sdec.pred_logits[s, b],
                        sdec.pred_boxes[s, b],
                        tdec.pred_logits[t, b],
                        tdec.pred_boxes[t, b],
                    )
                    _, best = brute_force(cost, list(range(4)), list(range(3)))
                    pairs.append(best)
                layer = hand_prediction_loss(
                    sdec.pred_logits[s],
                    sdec.pred_boxes[s],
                    tdec.pred_logits[t],
                    tdec.pred_boxes[t],
                    pairs,
                )
                index_pairs = [
                    (torch.tensor([i for i, _ in p]), torch.tensor([j for _, j in p]))
                    for p in pairs
                ]
                self_kl, cross_kl = _hand_attention(
                    sdec.self_attn[s],
                    tdec.self_attn[t],
                    sdec.cross_attn[s],
                    tdec.cross_attn[t],
                    index_pairs,
                    deformable,
                )
                layer["self_attn"], layer["cross_attn"] = 2.0 * self_kl, 3.0 * cross_kl
                for key in expected:
                    expected[key] += layer[key]
            for key in out:
                self.assertAlmostEqual(out[key].item(), expected[key], places=4, msg=key)
            sum(out.values()).backward()
            self.assertGreater(sdec.self_attn[0].grad.abs().sum().item(), 0)
            cross = sdec.cross_attn[1]
            cross = cross.attention_weights if deformable else cross
            self.assertGreater(cross.grad.abs().sum().item(), 0)

    def test_layer_reduction_mean(self):
        torch.manual_seed(5)
        teacher = as_teacher(_outputs(False, layers=3, queries=3))
        student = as_student(_outputs(False, layers=2, queries=4, teacher_group_queries=3))
        inputs = make_inputs(teacher, student, layer_pairs=[(0, 1), (1, 2)])
        for cls in (AdaptiveMatchingDistillation, FixedMatchingDistillation):
            kwargs = dict(self_attn_weight=1.0, cross_attn_weight=1.0)
            summed = cls(**kwargs)(inputs)
            mean = cls(layer_reduction="mean", **kwargs)(inputs)
            self.assertEqual(set(summed), {"class", "bbox", "giou", "self_attn", "cross_attn"})
            for key in summed:
                self.assertGreater(summed[key].item(), 0)
                torch.testing.assert_close(summed[key], 2 * mean[key])

    def test_no_gradient_reaches_a_trainable_teacher(self):
        for deformable in (False, True):
            torch.manual_seed(6)
            teacher = trainable(_outputs(deformable, layers=2, queries=3))
            student = as_student(_outputs(deformable, layers=2, queries=4, teacher_group_queries=3))
            for cls in (AdaptiveMatchingDistillation, FixedMatchingDistillation):
                loss = cls(self_attn_weight=1.0, cross_attn_weight=1.0)
                sum(loss(make_inputs(teacher, student)).values()).backward()
                self.assertEqual(grad_norm(float_leaves(teacher)), 0.0, msg=(deformable, cls))
                self.assertGreater(grad_norm(float_leaves(student)), 0)

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
            teacher = trainable(_outputs(deformable, layers=2, queries=3))
            student = as_student(_outputs(deformable, layers=2, queries=5, teacher_group_queries=3))
            inputs = make_inputs(teacher, student)
            loss = FixedMatchingDistillation(
                prediction=PredictionDistillation(class_weight=2.0),
                self_attn_weight=1.5,
                cross_attn_weight=0.5,
            )
            out = loss(inputs)
            identity = [[(i, i) for i in range(3)]] * 2
            expected = dict.fromkeys(out, 0.0)
            group, tdec = student.groups["teacher_queries"], teacher.decoder
            for layer in range(2):
                pred = hand_prediction_loss(
                    group.pred_logits[layer],
                    group.pred_boxes[layer],
                    tdec.pred_logits[layer],
                    tdec.pred_boxes[layer],
                    identity,
                    weights=(2, 5, 2),
                )
                # the teacher-query group's whole (Qt x Qt) block against the teacher's
                pred["self_attn"] = 1.5 * _kl(group.self_attn[layer], tdec.self_attn[layer])
                s_dense = _dense(group.cross_attn[layer], deformable)
                t_dense = _dense(tdec.cross_attn[layer], deformable)
                pred["cross_attn"] = 0.5 * _kl(s_dense, t_dense)
                for key in expected:
                    expected[key] += pred[key]
            for key in out:
                self.assertAlmostEqual(out[key].item(), expected[key], places=4, msg=key)
            sum(out.values()).backward()
            self.assertGreater(group.pred_logits.grad.abs().sum().item(), 0)
            self.assertIsNone(student.decoder.pred_logits.grad)  # own queries untouched
            self.assertEqual(grad_norm(float_leaves(teacher)), 0.0)

    def test_identical_is_zero_and_errors(self):
        torch.manual_seed(4)
        teacher = as_teacher(_outputs(False, queries=3))
        student = as_student(_outputs(False, queries=5, teacher_group_queries=3))
        student.groups["teacher_queries"] = as_student(teacher.decoder)
        loss = FixedMatchingDistillation(
            prediction=PredictionDistillation(class_loss="binary_kl"),
            self_attn_weight=1.0,
            cross_attn_weight=1.0,
        )
        for key, value in loss(make_inputs(teacher, student)).items():
            self.assertAlmostEqual(value.item(), 0.0, places=4, msg=key)
        student.groups["teacher_queries"] = as_student(_outputs(False, queries=4).decoder)
        with self.assertRaisesRegex(ValueError, "4 queries but the teacher has 3"):
            loss(make_inputs(teacher, student))
        student.groups = {}
        with self.assertRaisesRegex(ValueError, "'teacher_queries'"):
            loss(make_inputs(teacher, student))


if __name__ == "__main__":
    unittest.main()
