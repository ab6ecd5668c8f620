import math
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

from detrdistill.distill import QueryContrastiveDistillation


class TestQueryContrastiveDistillation(unittest.TestCase):
    def test_info_nce_hand_value(self):
        torch.manual_seed(0)
        loss = QueryContrastiveDistillation(
            student_dim=3, teacher_dim=2, proj_dim=4, temperature=0.5
        )
        student = torch.randn(3, 3, requires_grad=True)
        teacher = torch.randn(3, 2)
        got = loss.info_nce(student, teacher)
        with torch.no_grad():
            z_s = loss.student_proj(student)
            z_t = loss.teacher_proj(teacher)
        z_s = [[v / math.sqrt(sum(x * x for x in row)) for v in row] for row in z_s.tolist()]
        z_t = [[v / math.sqrt(sum(x * x for x in row)) for v in row] for row in z_t.tolist()]
        expected = 0.0
        for i in range(3):
            logits = [sum(a * b for a, b in zip(z_s[i], z_t[j])) / 0.5 for j in range(3)]
            expected += -logits[i] + math.log(sum(math.exp(v) for v in logits))
        self.assertAlmostEqual(got.item(), expected / 3, places=5)
        got.backward()
        self.assertGreater(student.grad.abs().sum().item(), 0)
        self.assertGreater(loss.teacher_proj.layers[0].weight.grad.abs().sum().item(), 0)

    def test_forward_uses_matched_states(self):
        torch.manual_seed(1)
        teacher = as_teacher(
            make_output(make_decoder(layers=2, batch=2, queries=3, dim=6), make_encoder())
        )
        student = as_student(
            make_output(make_decoder(layers=2, batch=2, queries=4, dim=5), make_encoder())
        )
        inputs = make_inputs(teacher, student, layer_pairs=[(0, 0), (1, 1)])
        loss = QueryContrastiveDistillation(student_dim=5, teacher_dim=6, proj_dim=8)
        for flag in ("needs_attention", "needs_teacher_queries", "needs_teacher_assignment"):
            self.assertFalse(getattr(loss, flag))
        out = loss(inputs)
        self.assertEqual(set(out), {"contrastive"})
        expected = 0.0
        for layer in range(2):
            pairs = loss.matcher(
                student.decoder.pred_logits[layer],
                student.decoder.pred_boxes[layer],
                teacher.decoder.pred_logits[layer].sigmoid(),
                teacher.decoder.pred_boxes[layer],
                "focal",
            )
            s_states = torch.cat(
                [student.decoder.hidden_states[layer][b, si] for b, (si, _) in enumerate(pairs)]
            )
            t_states = torch.cat(
                [teacher.decoder.hidden_states[layer][b, ti] for b, (_, ti) in enumerate(pairs)]
            )
            self.assertEqual(len(s_states), 6)  # 3 matches per image, across the batch
            expected += loss.info_nce(s_states, t_states).item() / 2
        self.assertAlmostEqual(out["contrastive"].item(), expected, places=5)
        out["contrastive"].backward()
        grad = student.decoder.hidden_states.grad
        self.assertGreater(grad.abs().sum().item(), 0)
        self.assertIsNone(teacher.decoder.hidden_states.grad)


if __name__ == "__main__":
    unittest.main()
