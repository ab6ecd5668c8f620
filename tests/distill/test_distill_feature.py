import math
import unittest

import torch
from distill_testing import (
    as_student,
    as_teacher,
    iou_giou,
    make_decoder,
    make_encoder,
    make_inputs,
    make_output,
)
from torch import nn

from detrdistill.distill import TargetAwareFeatureDistillation
from detrdistill.distill.losses.feature import query_quality_scores, target_aware_masks

GT_BOX = [0.5, 0.5, 0.4, 0.4]


def _sync_memory(encoder):
    """Make memory / memory_mask the flattened features / masks."""
    encoder.memory = torch.cat([f.flatten(2).transpose(1, 2) for f in encoder.features], 1)
    encoder.memory_mask = torch.cat([m.flatten(1) for m in encoder.masks], 1)
    return encoder


def _hand_case():
    """1 image, one 2x2 level, 2 channels, right column padding; 1 teacher query, 1 class."""
    t_enc = make_encoder(batch=1, dim=2, shapes=((2, 2),), pad_cols=1)
    t_enc.features[0] = torch.tensor([[[[1.0, 0.0], [1.0, -1.0]], [[0.0, 1.0], [1.0, 0.0]]]])
    _sync_memory(t_enc)
    s_enc = make_encoder(batch=1, dim=2, shapes=((2, 2),), pad_cols=1)
    s_enc.features[0] = torch.tensor([[[[0.5, 2.0], [1.5, 0.0]], [[0.3, -1.0], [0.2, 1.0]]]])
    _sync_memory(s_enc)
    t_dec = make_decoder(layers=1, queries=1, classes=1, dim=2)
    t_dec.pred_logits.zero_()  # p = 0.5
    t_dec.pred_boxes[:] = torch.tensor(GT_BOX)  # IoU with the GT = 1
    t_dec.hidden_states[:] = torch.tensor([2.0, 0.0])
    teacher = as_teacher(make_output(t_dec, t_enc))
    student = as_student(make_output(make_decoder(layers=1, queries=1, classes=1, dim=2), s_enc))
    targets = [{"labels": torch.tensor([0]), "boxes": torch.tensor([GT_BOX])}]
    return make_inputs(teacher, student, targets=targets)


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
        for flag in ("needs_attention", "needs_teacher_queries", "needs_teacher_assignment"):
            self.assertFalse(getattr(same, flag))

    def test_hand_value(self):
        inputs = _hand_case()
        # A = 0.5 * cos(q=[2,0], F): (0,0) [1,0] -> 0.5; (1,0) [1,1] -> 0.5/sqrt2; right column pad
        m = [[1.0, 0.0], [0.5 / math.sqrt(2) / 0.5, 0.0]]
        fs = inputs.student.encoder.features[0][0].detach()
        ft = inputs.teacher.encoder.features[0][0]
        num = sum(
            m[i][j] * sum((fs[c, i, j] - ft[c, i, j]).item() ** 2 for c in range(2))
            for i in range(2)
            for j in range(2)
        )
        den = sum(map(sum, m)) * 2
        loss = TargetAwareFeatureDistillation(student_channels=2, teacher_channels=2, num_levels=1)
        out = loss(inputs)
        self.assertEqual(set(out), {"feature"})
        self.assertAlmostEqual(out["feature"].item(), num / den, places=5)

        official = TargetAwareFeatureDistillation(
            student_channels=2, teacher_channels=2, num_levels=1, official_squared_mask=True
        )
        num_sq = sum(
            (m[i][j] ** 2) * sum((fs[c, i, j] - ft[c, i, j]).item() ** 2 for c in range(2))
            for i in range(2)
            for j in range(2)
        )
        self.assertAlmostEqual(official(inputs)["feature"].item(), num_sq / 8, places=5)

        # the encoder memory gives the same value when it holds the same features
        memory = TargetAwareFeatureDistillation(
            student_channels=2, teacher_channels=2, num_levels=1, feature_source="memory"
        )
        torch.testing.assert_close(memory(inputs)["feature"], out["feature"])

        out["feature"].backward()
        self.assertGreater(inputs.student.encoder.features[0].grad.abs().sum().item(), 0)
        self.assertIsNone(inputs.teacher.encoder.features[0].grad)

    def test_mask_zero_on_padding_and_within_floor_and_one(self):
        torch.manual_seed(0)
        floor = 0.01
        enc = make_encoder(batch=2, dim=4, shapes=((5, 6), (3, 3)), pad_cols=2)
        queries = torch.randn(2, 1, 4)
        scores = torch.rand(2, 1)  # one entry with w <= 1, so A <= 1
        masks = target_aware_masks(queries, scores, enc.features, enc.masks, floor)
        for mask, pad in zip(masks, enc.masks):
            self.assertEqual(mask[pad].abs().sum().item(), 0.0)
            valid = mask[~pad]
            self.assertGreaterEqual(valid.min().item(), floor - 1e-7)
            self.assertLessEqual(valid.max().item(), 1.0 + 1e-6)
            for b in range(2):
                self.assertAlmostEqual(mask[b].max().item(), 1.0, places=6)
            self.assertFalse(mask.requires_grad)

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
        torch.testing.assert_close(scores[0], torch.tensor([0.9, 0.6 * iou, 0.3 * iou]))
        torch.testing.assert_close(scores[1], torch.tensor([0.9, 0.6, 0.3]))  # no GT: w = p

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
        loss = TargetAwareFeatureDistillation(student_channels=4, teacher_channels=4, num_levels=2)
        self.assertEqual(loss(inputs)["feature"].item(), 0.0)

    def test_layers_all_is_mean_last_is_last(self):
        inputs = self._random_inputs()
        kwargs = dict(student_channels=4, teacher_channels=4, num_levels=2, top_k=5)
        dec = inputs.teacher.decoder
        per_layer, per_layer_official = [], []
        for t in range(2):
            single = make_inputs(inputs.teacher, inputs.student, targets=inputs.targets)
            single.teacher = as_teacher(inputs.teacher)
            for name in ("pred_logits", "pred_boxes", "hidden_states"):
                setattr(single.teacher.decoder, name, getattr(dec, name)[t : t + 1])
            per_layer.append(TargetAwareFeatureDistillation(**kwargs)(single)["feature"])
            per_layer_official.append(
                TargetAwareFeatureDistillation(official_squared_mask=True, **kwargs)(single)[
                    "feature"
                ]
            )
        all_layers = TargetAwareFeatureDistillation(**kwargs)(inputs)["feature"]
        torch.testing.assert_close(all_layers, (per_layer[0] + per_layer[1]) / 2)
        last = TargetAwareFeatureDistillation(teacher_layers="last", **kwargs)(inputs)["feature"]
        torch.testing.assert_close(last, per_layer[1])
        official = TargetAwareFeatureDistillation(official_squared_mask=True, **kwargs)(inputs)
        torch.testing.assert_close(
            official["feature"], per_layer_official[0] + per_layer_official[1]
        )

    def test_adapter_receives_gradient(self):
        inputs = self._random_inputs(s_dim=3)
        loss = TargetAwareFeatureDistillation(student_channels=3, teacher_channels=4, num_levels=2)
        loss(inputs)["feature"].backward()
        self.assertGreater(loss.adapters[0].weight.grad.abs().sum().item(), 0)
        self.assertGreater(inputs.student.encoder.features[1].grad.abs().sum().item(), 0)
        self.assertIsNone(inputs.teacher.encoder.features[0].grad)

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
