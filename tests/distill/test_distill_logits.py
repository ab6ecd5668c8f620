import unittest

import torch
from distill_testing import (
    as_student,
    as_teacher,
    make_decoder,
    make_encoder,
    make_inputs,
    make_output,
    student_leaves,
)

from detrdistill.distill import (
    HungarianLogitsDistillation,
    PredictionDistillation,
    TeacherStudentMatcher,
)


def _output(decoder):
    return make_output(decoder, make_encoder())


class TestHungarianLogitsDistillation(unittest.TestCase):
    def test_flags_and_errors(self):
        loss = HungarianLogitsDistillation()
        self.assertFalse(loss.needs_attention)
        self.assertFalse(loss.needs_teacher_queries)
        self.assertFalse(loss.needs_teacher_assignment)
        with self.assertRaises(ValueError):
            HungarianLogitsDistillation(mode="official")

    def test_identical_is_zero(self):
        torch.manual_seed(0)
        base = _output(make_decoder(layers=2, batch=2, queries=4, classes=3))
        inputs = make_inputs(as_teacher(base), as_student(base))
        for mode in ("split", "joint"):
            out = HungarianLogitsDistillation(mode=mode)(inputs)
            self.assertEqual(set(out), {"class", "bbox", "giou"})
            for key, value in out.items():
                self.assertAlmostEqual(value.item(), 0.0, places=4, msg=f"{mode} {key}")

    def _split_case(self):
        # one confident teacher prediction (query 0) and two background ones
        teacher = make_decoder(layers=1, queries=3, classes=2)
        teacher.pred_logits[0, 0] = torch.tensor([[3.0, -3.0], [-4.0, -3.0], [-3.0, -5.0]])
        teacher.pred_boxes[0, 0] = torch.tensor(
            [[0.5, 0.5, 0.2, 0.2], [0.2, 0.2, 0.1, 0.1], [0.8, 0.8, 0.1, 0.2]]
        )
        student = make_decoder(layers=1, queries=3, classes=2)
        student.pred_logits[0, 0] = torch.tensor([[-2.0, -2.5], [2.0, -2.0], [-3.0, -4.0]])
        student.pred_boxes[0, 0] = torch.tensor(
            [[0.3, 0.3, 0.3, 0.2], [0.45, 0.55, 0.25, 0.2], [0.6, 0.7, 0.2, 0.1]]
        )
        return make_inputs(as_teacher(_output(teacher)), as_student(_output(student)))

    def test_split_negatives_get_no_box_term(self):
        inputs = self._split_case()
        loss = HungarianLogitsDistillation(mode="split")
        pairs, box_mask = loss.match(
            inputs.student.decoder.pred_logits[0],
            inputs.student.decoder.pred_boxes[0],
            inputs.teacher.decoder.pred_logits[0],
            inputs.teacher.decoder.pred_boxes[0],
            "focal",
            "focal",
        )
        self.assertEqual(box_mask.tolist(), [[True, False, False]])
        si, ti = pairs[0]
        # the positive goes to student query 1 (class + box), the rest are matched on class
        self.assertEqual((si[0].item(), ti[0].item()), (1, 0))
        self.assertEqual(sorted(zip(si.tolist(), ti.tolist())), [(0, 1), (1, 0), (2, 2)])
        out = loss(inputs)
        s_box = inputs.student.decoder.pred_boxes[0, 0, 1]
        t_box = inputs.teacher.decoder.pred_boxes[0, 0, 0]
        self.assertAlmostEqual(out["bbox"].item(), 5.0 * (s_box - t_box).abs().sum().item(), 5)
        # class covers all 3 pairs
        expected = PredictionDistillation().forward_pairs(
            inputs.student.decoder.pred_logits[0],
            inputs.student.decoder.pred_boxes[0],
            inputs.teacher.decoder.pred_logits[0],
            inputs.teacher.decoder.pred_boxes[0],
            pairs,
            "focal",
            "focal",
        )
        torch.testing.assert_close(out["class"], expected["class"])
        # only student query 1 gets box gradients
        out["bbox"].backward()
        grad = inputs.student.decoder.pred_boxes.grad[0, 0]
        self.assertGreater(grad[1].abs().sum().item(), 0)
        self.assertEqual(grad[[0, 2]].abs().sum().item(), 0.0)

    def test_joint_distills_boxes_of_all_pairs(self):
        inputs = self._split_case()
        loss = HungarianLogitsDistillation(mode="joint")
        out = loss(inputs)
        pairs = loss.matcher(
            inputs.student.decoder.pred_logits[0],
            inputs.student.decoder.pred_boxes[0],
            inputs.teacher.decoder.pred_logits[0].sigmoid(),
            inputs.teacher.decoder.pred_boxes[0],
            "focal",
        )
        si, ti = pairs[0]
        self.assertEqual(len(si), 3)
        diff = (
            inputs.student.decoder.pred_boxes[0, 0, si]
            - inputs.teacher.decoder.pred_boxes[0, 0, ti]
        )
        self.assertAlmostEqual(out["bbox"].item(), 5.0 * diff.abs().sum().item() / 3, places=5)
        out["bbox"].backward()
        grad = inputs.student.decoder.pred_boxes.grad[0, 0]
        self.assertTrue((grad.abs().sum(-1) > 0).all())

    def test_more_student_queries_and_layer_average(self):
        torch.manual_seed(1)
        teacher = as_teacher(_output(make_decoder(layers=3, batch=2, queries=2, classes=2)))
        student = as_student(_output(make_decoder(layers=2, batch=2, queries=5, classes=2)))
        layer_pairs = [(0, 1), (1, 2)]
        inputs = make_inputs(teacher, student, layer_pairs=layer_pairs)
        for mode in ("joint", "split"):
            student.decoder.pred_logits.grad = student.decoder.pred_boxes.grad = None
            loss = HungarianLogitsDistillation(mode=mode)
            out = loss(inputs)
            expected = {k: 0.0 for k in out}
            touched = torch.zeros(2, 2, 5, dtype=torch.bool)
            for s, t in layer_pairs:
                layer = (
                    student.decoder.pred_logits[s],
                    student.decoder.pred_boxes[s],
                    teacher.decoder.pred_logits[t],
                    teacher.decoder.pred_boxes[t],
                )
                pairs, box_mask = loss.match(*layer, "focal", "focal")
                for b, (si, _) in enumerate(pairs):
                    self.assertEqual(len(si), 2)
                    touched[s, b, si] = True
                per_layer = loss.prediction.forward_pairs(
                    *layer, pairs, "focal", "focal", box_mask=box_mask
                )
                for k in expected:
                    expected[k] += per_layer[k].item() / 2
            for k in out:
                self.assertAlmostEqual(out[k].item(), expected[k], places=5)
            sum(out.values()).backward()
            grad = student.decoder.pred_logits.grad.abs().sum(-1)
            self.assertEqual(grad[~touched].sum().item(), 0.0)  # unmatched queries: no term
            self.assertTrue((grad[touched] > 0).all())

    def test_gradients_only_reach_the_student(self):
        torch.manual_seed(2)
        base = _output(make_decoder(layers=2, batch=1, queries=3, classes=2))
        teacher = as_teacher(base)
        student = as_student(_output(make_decoder(layers=2, batch=1, queries=3, classes=2)))
        matcher = TeacherStudentMatcher(class_cost_reduction="sum")
        out = HungarianLogitsDistillation(matcher=matcher, mode="joint")(
            make_inputs(teacher, student)
        )
        sum(out.values()).backward()
        self.assertTrue(any(t.grad is not None for t in student_leaves(student)))
        self.assertFalse(teacher.decoder.pred_logits.requires_grad)
        self.assertIsNone(teacher.decoder.pred_logits.grad)


if __name__ == "__main__":
    unittest.main()
