import math
import unittest

import torch
from distill_testing import (
    as_student,
    as_teacher,
    float_leaves,
    grad_norm,
    iou_giou,
    make_decoder,
    make_encoder,
    make_inputs,
    make_output,
    sigmoid,
    trainable,
)
from torch import nn

from detrdistill.distill import TargetAwareFeatureDistillation
from detrdistill.distill.losses.feature import (
    official_mask,
    paper_mask_weight,
    query_quality_scores,
)

GT_BOX = [0.5, 0.5, 0.4, 0.4]


def _sync_memory(encoder):
    """Make memory / memory_mask the flattened features / masks."""
    encoder.memory = torch.cat([f.flatten(2).transpose(1, 2) for f in encoder.features], 1)
    encoder.memory_mask = torch.cat([m.flatten(1) for m in encoder.masks], 1)
    return encoder


OTHER_BOX = [0.6, 0.5, 0.4, 0.4]  # IoU with GT_BOX: 0.12 / 0.2 = 0.6
# teacher feature (2 channels, 2x2) per position (h, w), and the student's
F_T = {(0, 0): [1.0, 0.0], (0, 1): [0.0, 1.0], (1, 0): [1.0, 1.0], (1, 1): [-1.0, 0.0]}
F_S = {(0, 0): [0.5, 0.3], (0, 1): [2.0, -1.0], (1, 0): [1.5, 0.2], (1, 1): [0.0, 1.0]}
QUERIES = [[2.0, 0.0], [1.0, -1.0]]  # teacher decoder states of its 2 queries
CONF = [0.5, sigmoid(1.0)]  # their (single-class) confidences
IOU = [1.0, 0.6]


def _feature(values):
    """(1, 2, 2, 2) feature from a {(h, w): [c0, c1]} dict."""
    return torch.tensor(
        [[[values[(h, w)][c] for w in range(2)] for h in range(2)] for c in range(2)]
    )[None]


def _hand_case():
    """1 image, one 2x2 level (right column padding), 2 channels; 2 teacher queries, 1 class."""
    t_enc = make_encoder(batch=1, dim=2, shapes=((2, 2),), pad_cols=1)
    t_enc.features[0] = _feature(F_T)
    _sync_memory(t_enc)
    s_enc = make_encoder(batch=1, dim=2, shapes=((2, 2),), pad_cols=1)
    s_enc.features[0] = _feature(F_S)
    _sync_memory(s_enc)
    t_dec = make_decoder(layers=1, queries=2, classes=1, dim=2)
    t_dec.pred_logits[:] = torch.tensor([[0.0], [1.0]])
    t_dec.pred_boxes[:] = torch.tensor([GT_BOX, OTHER_BOX])
    t_dec.hidden_states[:] = torch.tensor(QUERIES)
    teacher = as_teacher(make_output(t_dec, t_enc))
    student = as_student(make_output(make_decoder(layers=1, queries=2, classes=1, dim=2), s_enc))
    targets = [{"labels": torch.tensor([0]), "boxes": torch.tensor([GT_BOX])}]
    return make_inputs(teacher, student, targets=targets)


def _dot(a, b):
    return sum(x * y for x, y in zip(a, b))


def _error(h, w):
    return sum((s - t) ** 2 for s, t in zip(F_S[(h, w)], F_T[(h, w)]))


POSITIONS = [(h, w) for h in range(2) for w in range(2)]


def _hand_paper(gamma):
    """Eq. 9: sum_i q_i / (M d H W) sum_hw psi_i(h, w)^2 e(h, w), psi_i = <F_T(h, w), Q_i>,
    q_i = c_i^gamma IoU_i^(1 - gamma); M = 2, d = 2, H = W = 2."""
    total = 0.0
    for query, conf, iou in zip(QUERIES, CONF, IOU):
        q = conf**gamma * iou ** (1 - gamma)
        total += q / (2 * 2 * 2 * 2) * sum(_dot(F_T[p], query) ** 2 * _error(*p) for p in POSITIONS)
    return total


def _hand_official():
    """A = sum_i c_i IoU_i cos(Q_i, F_T), M = clamp(A, 0.01) / max, loss = sum M^2 e / (d H W)."""

    def cos(a, b):
        return _dot(a, b) / math.sqrt(_dot(a, a) * _dot(b, b))

    affinity = {
        p: max(sum(c * i * cos(q, F_T[p]) for q, c, i in zip(QUERIES, CONF, IOU)), 0.01)
        for p in POSITIONS
    }
    peak = max(affinity.values())
    return sum((affinity[p] / peak) ** 2 * _error(*p) for p in POSITIONS) / (2 * 2 * 2)


def _hand_iou(a, b):
    return iou_giou(a, b)[0]


def _paper_reference(inputs, top_k, gamma, layers):
    """Eq. 9 written out with loops (plain torch / python), summed over levels and layers."""
    dec, total = inputs.teacher.decoder, 0.0
    for t in layers:
        for b, target in enumerate(inputs.targets):
            probs = dec.pred_logits[t, b].sigmoid()  # (Q, C)
            entries = sorted(
                (
                    (probs[q, c].item(), q)
                    for q in range(probs.shape[0])
                    for c in range(probs.shape[1])
                ),
                reverse=True,
            )[:top_k]
            scores, queries = [], []
            for conf, q in entries:
                box = dec.pred_boxes[t, b, q].tolist()
                iou = max(_hand_iou(box, g) for g in target["boxes"].tolist())
                scores.append(conf**gamma * iou ** (1 - gamma))
                queries.append(dec.hidden_states[t, b, q])
            for fs, ft in zip(inputs.student.encoder.features, inputs.teacher.encoder.features):
                d, h, w = ft.shape[1:]
                err = (fs[b] - ft[b]).pow(2).sum(0)  # (H, W)
                for score, query in zip(scores, queries):
                    psi = (ft[b] * query[:, None, None]).sum(0)  # (H, W)
                    total += score / (len(scores) * d * h * w) * (psi**2 * err).sum().item()
    return total / len(inputs.targets)


class TestTargetAwareFeatureDistillation(unittest.TestCase):
    def test_flags_and_adapters(self):
        same = TargetAwareFeatureDistillation(student_channels=4, teacher_channels=4, num_levels=2)
        self.assertTrue(all(isinstance(a, nn.Identity) for a in same.adapters))
        self.assertEqual(len(list(same.parameters())), 0)
        diff = TargetAwareFeatureDistillation(
            student_channels=[3, 4], teacher_channels=4, num_levels=2
        )
        self.assertIsInstance(diff.adapters[0], nn.Conv2d)
        self.assertEqual(diff.adapters[0].kernel_size, (1, 1))
        self.assertEqual((diff.adapters[0].in_channels, diff.adapters[0].out_channels), (3, 4))
        self.assertIsInstance(diff.adapters[1], nn.Identity)
        for flag in ("needs_attention", "needs_teacher_assignment"):
            self.assertFalse(getattr(same, flag))
        self.assertEqual(same.query_groups, ())

    def test_defaults(self):
        loss = TargetAwareFeatureDistillation(student_channels=2, teacher_channels=2, num_levels=1)
        self.assertEqual((loss.form, loss.quality_gamma, loss.top_k), ("paper", 0.5, 100))
        self.assertEqual((loss.feature_source, loss.teacher_layers), ("input", "all"))
        self.assertEqual(loss.layer_reduction, "sum")
        for kwargs in ({"form": "squared"}, {"quality_gamma": 1.5}, {"teacher_layers": "first"}):
            with self.assertRaises(ValueError, msg=kwargs):
                TargetAwareFeatureDistillation(
                    student_channels=2, teacher_channels=2, num_levels=1, **kwargs
                )

    def test_paper_form_is_eq9_by_hand(self):
        inputs = _hand_case()
        loss = TargetAwareFeatureDistillation(student_channels=2, teacher_channels=2, num_levels=1)
        out = loss(inputs)
        self.assertEqual(set(out), {"feature"})
        self.assertAlmostEqual(out["feature"].item(), _hand_paper(0.5), places=5)
        for gamma in (0.0, 1.0, 0.3):
            other = TargetAwareFeatureDistillation(
                student_channels=2, teacher_channels=2, num_levels=1, quality_gamma=gamma
            )
            self.assertAlmostEqual(other(inputs)["feature"].item(), _hand_paper(gamma), places=5)
        # the encoder memory gives the same value when it holds the same features
        memory = TargetAwareFeatureDistillation(
            student_channels=2, teacher_channels=2, num_levels=1, feature_source="memory"
        )
        torch.testing.assert_close(memory(inputs)["feature"], out["feature"])
        out["feature"].backward()
        self.assertGreater(inputs.student.encoder.features[0].grad.abs().sum().item(), 0)

    def test_paper_mask_weight_by_hand(self):
        queries = torch.tensor([QUERIES])
        scores = torch.tensor([[0.5, 2.0]])
        weight = paper_mask_weight(queries, scores, _feature(F_T))
        for h, w in POSITIONS:
            psi = [_dot(F_T[(h, w)], q) for q in QUERIES]
            expected = (0.5 * psi[0] ** 2 + 2.0 * psi[1] ** 2) / 2
            self.assertAlmostEqual(weight[0, h, w].item(), expected, places=5)

    def test_official_form_by_hand(self):
        inputs = _hand_case()
        official = TargetAwareFeatureDistillation(
            student_channels=2, teacher_channels=2, num_levels=1, form="official"
        )
        self.assertAlmostEqual(official(inputs)["feature"].item(), _hand_official(), places=5)

    def test_official_mask_floor_and_peak(self):
        torch.manual_seed(0)
        floor = 0.01
        enc = make_encoder(batch=2, dim=4, shapes=((5, 6), (3, 3)), pad_cols=2)
        queries = torch.randn(2, 3, 4, requires_grad=True)
        scores = torch.rand(2, 3)
        for feature in enc.features:
            mask = official_mask(queries, scores, feature, floor)
            self.assertEqual(mask.shape, (2,) + feature.shape[2:])
            # A <= sum_j w_j, so the clamped floor is at least floor / sum_j w_j after scaling
            self.assertGreaterEqual(mask.min().item(), floor / scores.sum(1).max().item() - 1e-7)
            for b in range(2):
                self.assertAlmostEqual(mask[b].max().item(), 1.0, places=6)
            self.assertFalse(mask.requires_grad)
        # one query parallel to the feature at one position: that position is the peak
        feature = torch.rand(1, 2, 2, 2) + 0.1
        query = feature[:, :, 1, 0][:, None]
        mask = official_mask(query, torch.ones(1, 1), feature, floor)
        self.assertAlmostEqual(mask[0, 1, 0].item(), 1.0, places=6)

    def test_query_quality_scores(self):
        probs = torch.tensor([[[0.9, 0.1], [0.3, 0.6]]]).repeat(2, 1, 1)
        boxes = torch.tensor([[GT_BOX, [0.6, 0.5, 0.4, 0.4]]]).repeat(2, 1, 1)
        targets = [
            {"labels": torch.tensor([0]), "boxes": torch.tensor([GT_BOX])},
            {"labels": torch.zeros(0, dtype=torch.long), "boxes": torch.zeros(0, 4)},
        ]
        query_idx, scores = query_quality_scores(probs, boxes, targets, top_k=3)
        self.assertEqual(query_idx.tolist(), [[0, 1, 1], [0, 1, 1]])
        iou = iou_giou([0.6, 0.5, 0.4, 0.4], GT_BOX)[0]
        self.assertAlmostEqual(iou, 0.6, places=6)
        torch.testing.assert_close(scores[0], torch.tensor([0.9, 0.6 * iou, 0.3 * iou]))
        torch.testing.assert_close(scores[1], torch.tensor([0.9, 0.6, 0.3]))  # no GT: w = p
        # Eq. 8: c^gamma IoU^(1 - gamma); no GT: c^gamma
        _, paper = query_quality_scores(probs, boxes, targets, top_k=3, gamma=0.25)
        expected = [0.9**0.25, 0.6**0.25 * iou**0.75, 0.3**0.25 * iou**0.75]
        torch.testing.assert_close(paper[0], torch.tensor(expected))
        torch.testing.assert_close(paper[1], torch.tensor([0.9, 0.6, 0.3]).pow(0.25))

    def _random_inputs(self, s_dim=4, layers=2):
        torch.manual_seed(3)
        shapes = ((4, 5), (2, 3))
        t_enc = make_encoder(batch=2, dim=4, shapes=shapes, pad_cols=1)
        s_enc = make_encoder(batch=2, dim=s_dim, shapes=shapes, pad_cols=1)
        teacher = make_output(make_decoder(layers=layers, batch=2, queries=6, classes=3), t_enc)
        student = make_output(make_decoder(layers=layers, batch=2, queries=6, classes=3), s_enc)
        return make_inputs(as_teacher(teacher), as_student(student))

    def test_identical_is_zero(self):
        inputs = self._random_inputs()
        inputs.student = as_student(inputs.teacher)
        for form in ("paper", "official"):
            loss = TargetAwareFeatureDistillation(
                student_channels=4, teacher_channels=4, num_levels=2, form=form
            )
            self.assertEqual(loss(inputs)["feature"].item(), 0.0)

    def test_random_input_against_the_written_out_formula(self):
        """All teacher layers summed (default), their mean, or the last only; the value is Eq. 9
        computed with loops."""
        inputs = self._random_inputs(layers=3)
        kwargs = dict(student_channels=4, teacher_channels=4, num_levels=2, top_k=5)
        summed = TargetAwareFeatureDistillation(**kwargs)(inputs)["feature"]
        self.assertAlmostEqual(
            summed.item(), _paper_reference(inputs, 5, 0.5, [0, 1, 2]), delta=1e-5 * summed.item()
        )
        mean = TargetAwareFeatureDistillation(layer_reduction="mean", **kwargs)(inputs)
        torch.testing.assert_close(summed, 3 * mean["feature"])
        last = TargetAwareFeatureDistillation(teacher_layers="last", **kwargs)(inputs)["feature"]
        self.assertAlmostEqual(
            last.item(), _paper_reference(inputs, 5, 0.5, [2]), delta=1e-5 * last.item()
        )
        official = TargetAwareFeatureDistillation(form="official", **kwargs)
        official_mean = TargetAwareFeatureDistillation(
            form="official", layer_reduction="mean", **kwargs
        )
        torch.testing.assert_close(
            official(inputs)["feature"], 3 * official_mean(inputs)["feature"]
        )

    def test_no_gradient_reaches_a_trainable_teacher(self):
        inputs = self._random_inputs(s_dim=3)
        inputs.teacher = trainable(inputs.teacher)
        for form in ("paper", "official"):
            loss = TargetAwareFeatureDistillation(
                student_channels=3, teacher_channels=4, num_levels=2, form=form
            )
            loss(inputs)["feature"].backward()
            self.assertEqual(grad_norm(float_leaves(inputs.teacher)), 0.0, msg=form)
            self.assertGreater(grad_norm(inputs.student.encoder.features), 0)

    def test_hidden_size_must_equal_teacher_channels(self):
        inputs = self._random_inputs()
        inputs.teacher.decoder.hidden_states = torch.randn(2, 2, 6, 5)
        loss = TargetAwareFeatureDistillation(student_channels=4, teacher_channels=4, num_levels=2)
        with self.assertRaisesRegex(ValueError, "hidden size 5"):
            loss(inputs)

    def test_adapter_receives_gradient(self):
        inputs = self._random_inputs(s_dim=3)
        loss = TargetAwareFeatureDistillation(student_channels=3, teacher_channels=4, num_levels=2)
        loss(inputs)["feature"].backward()
        self.assertGreater(loss.adapters[0].weight.grad.abs().sum().item(), 0)
        self.assertGreater(inputs.student.encoder.features[1].grad.abs().sum().item(), 0)

    def test_mismatched_levels_and_sizes(self):
        inputs = self._random_inputs()
        inputs.student.encoder.features = inputs.student.encoder.features[:1]
        loss = TargetAwareFeatureDistillation(student_channels=4, teacher_channels=4, num_levels=2)
        with self.assertRaisesRegex(ValueError, r"student has 1.*\(2, 4, 4, 5\).*teacher 2"):
            loss(inputs)
        inputs = self._random_inputs()
        inputs.student.encoder.features[1] = torch.randn(2, 4, 3, 3)
        with self.assertRaisesRegex(ValueError, r"\(2, 4, 3, 3\).*\(2, 4, 2, 3\)"):
            loss(inputs)


if __name__ == "__main__":
    unittest.main()
