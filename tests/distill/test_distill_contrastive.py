import unittest

import torch
from distill_testing import (
    as_student,
    as_teacher,
    brute_force,
    float_leaves,
    grad_norm,
    hand_cost_matrix,
    make_decoder,
    make_encoder,
    make_inputs,
    make_output,
    trainable,
)
from torch import nn

from detrdistill.distill import QueryContrastiveDistillation
from detrdistill.distill.losses.contrastive import ContrastiveProjection


def _project(module, states):
    """The official projection written out: Linear, then Linear - BatchNorm (batch statistics,
    training mode) - ReLU - Linear, then L2-normalised rows."""
    first, bn, last = module.encoder[0], module.encoder[1], module.encoder[3]
    h = states @ module.proj.weight.t() + module.proj.bias
    h = h @ first.weight.t() + first.bias
    mean, var = h.mean(0), h.var(0, unbiased=False)
    h = (h - mean) / torch.sqrt(var + bn.eps) * bn.weight + bn.bias
    h = h.clamp(min=0) @ last.weight.t() + last.bias
    return h / h.norm(dim=1, keepdim=True)


def _cross_entropy_rows(logits):
    """Mean over rows i of -logits[i, i] + log sum_j exp(logits[i, j])."""
    return (-logits.diagonal() + logits.exp().sum(1).log()).mean()


def _hand_info_nce(loss, student_states, teacher_states):
    """InfoNCE of the official code: teacher rows, logits = z_T z_S^T / temperature."""
    with torch.no_grad():
        z_s = _project(loss.student_proj, student_states)
        z_t = _project(loss.teacher_proj, teacher_states)
    return _cross_entropy_rows(z_t @ z_s.t() / loss.temperature).item(), z_s, z_t


def _case(seed, s_dim=5, t_dim=6, batch=2, s_queries=4, t_queries=3, layers=2):
    torch.manual_seed(seed)
    teacher = make_output(
        make_decoder(layers=layers, batch=batch, queries=t_queries, dim=t_dim), make_encoder()
    )
    student = make_output(
        make_decoder(layers=layers, batch=batch, queries=s_queries, dim=s_dim), make_encoder()
    )
    return teacher, student


def _gather(states, pairs, side):
    return torch.cat([states[b, p[side]] for b, p in enumerate(pairs)])


class TestQueryContrastiveDistillation(unittest.TestCase):
    def test_projection_structure(self):
        proj = ContrastiveProjection(6, 8)
        self.assertEqual((proj.proj.in_features, proj.proj.out_features), (6, 8))
        kinds = [type(m) for m in proj.encoder]
        self.assertEqual(kinds, [nn.Linear, nn.BatchNorm1d, nn.ReLU, nn.Linear])
        self.assertEqual((proj.encoder[0].in_features, proj.encoder[3].out_features), (8, 8))
        out = proj(torch.randn(5, 6))
        torch.testing.assert_close(out.norm(dim=1), torch.ones(5))

    def test_defaults_and_flags(self):
        loss = QueryContrastiveDistillation(student_dim=5, teacher_dim=6)
        self.assertEqual((loss.temperature, loss.pairs_from), (0.07, "logits"))
        self.assertEqual(loss.student_proj.proj.out_features, 512)
        self.assertEqual(loss.reads_shared, ("logits_pairs",))
        self.assertEqual(loss.writes_shared, ())
        self.assertEqual(loss.layer_reduction, "sum")
        own = QueryContrastiveDistillation(student_dim=5, teacher_dim=6, pairs_from="own")
        self.assertEqual(own.reads_shared, ())
        for flag in ("needs_attention", "needs_teacher_assignment"):
            self.assertFalse(getattr(loss, flag))
        self.assertEqual(loss.query_groups, ())
        with self.assertRaises(ValueError):
            QueryContrastiveDistillation(student_dim=5, teacher_dim=6, pairs_from="gt")
        with self.assertRaises(ValueError):
            QueryContrastiveDistillation(student_dim=5, teacher_dim=6, temperature=0.0)

    def test_info_nce_is_teacher_rows_by_hand(self):
        torch.manual_seed(0)
        loss = QueryContrastiveDistillation(
            student_dim=3, teacher_dim=2, proj_dim=4, temperature=0.5
        )
        student = torch.randn(4, 3, requires_grad=True)
        teacher = torch.randn(4, 2, requires_grad=True)
        expected, z_s, z_t = _hand_info_nce(loss, student.detach(), teacher.detach())
        got = loss.info_nce(student, teacher)
        self.assertAlmostEqual(got.item(), expected, places=5)
        # the direction matters here: student rows (z_S z_T^T) give another value
        transposed = _cross_entropy_rows(z_s @ z_t.t() / 0.5).item()
        self.assertGreater(abs(transposed - expected), 1e-2)
        got.backward()
        self.assertGreater(student.grad.abs().sum().item(), 0)
        self.assertIsNone(teacher.grad)  # teacher states are detached
        self.assertGreater(loss.teacher_proj.proj.weight.grad.abs().sum().item(), 0)
        # one pair: no negative, 0 attached to the graph
        single = loss.info_nce(student[:1], teacher[:1])
        self.assertEqual(single.item(), 0.0)
        single.backward()

    def test_reuses_the_logits_assignment(self):
        teacher, student = _case(1)
        teacher, student = as_teacher(teacher), as_student(student)
        inputs = make_inputs(teacher, student, layer_pairs=[(0, 0), (1, 1)])
        loss = QueryContrastiveDistillation(student_dim=5, teacher_dim=6, proj_dim=8)
        with self.assertRaisesRegex(ValueError, "HungarianLogitsDistillation"):
            loss(inputs)
        shared = [
            [
                (torch.tensor([3, 0]), torch.tensor([0, 2])),
                (torch.tensor([1, 2]), torch.tensor([1, 0])),
            ],
            [
                (torch.tensor([0, 1, 2]), torch.tensor([2, 1, 0])),
                (torch.tensor([3]), torch.tensor([1])),
            ],
        ]
        inputs.shared["logits_pairs"] = shared
        out = loss(inputs)
        self.assertEqual(set(out), {"contrastive"})
        expected = 0.0
        for layer, pairs in enumerate(shared):
            s_states = _gather(student.decoder.hidden_states[layer].detach(), pairs, 0)
            t_states = _gather(teacher.decoder.hidden_states[layer], pairs, 1)
            self.assertEqual(len(s_states), 4)  # pairs of both images form one batch
            expected += _hand_info_nce(loss, s_states, t_states)[0]  # layers are summed
        self.assertAlmostEqual(out["contrastive"].item(), expected, places=5)
        mean = QueryContrastiveDistillation(
            student_dim=5, teacher_dim=6, proj_dim=8, layer_reduction="mean"
        )
        mean.load_state_dict(loss.state_dict())
        torch.testing.assert_close(mean(inputs)["contrastive"], out["contrastive"] / 2)
        out["contrastive"].backward()
        grad = student.decoder.hidden_states.grad.abs().sum(-1)  # (L, B, Qs)
        used = torch.zeros_like(grad, dtype=torch.bool)
        for layer, pairs in enumerate(shared):
            for b, (si, _) in enumerate(pairs):
                used[layer, b, si] = True
        self.assertTrue((grad[used] > 0).all())
        self.assertEqual(grad[~used].sum().item(), 0.0)

    def test_own_matching(self):
        teacher, student = _case(2, s_queries=3)
        student.decoder.pred_logits = 0.5 * student.decoder.pred_logits
        teacher, student = as_teacher(teacher), as_student(student)
        inputs = make_inputs(teacher, student, layer_pairs=[(0, 1), (1, 1)])
        loss = QueryContrastiveDistillation(
            student_dim=5, teacher_dim=6, proj_dim=8, pairs_from="own"
        )
        out = loss(inputs)
        expected = 0.0
        for s, t in inputs.layer_pairs:
            pairs = []
            for b in range(2):
                cost = hand_cost_matrix(
                    student.decoder.pred_logits[s, b],
                    student.decoder.pred_boxes[s, b],
                    teacher.decoder.pred_logits[t, b],
                    teacher.decoder.pred_boxes[t, b],
                )
                _, best = brute_force(cost, list(range(3)), list(range(3)))
                pairs.append(([i for i, _ in best], [j for _, j in best]))
            s_states = _gather(student.decoder.hidden_states[s].detach(), pairs, 0)
            t_states = _gather(teacher.decoder.hidden_states[t], pairs, 1)
            expected += _hand_info_nce(loss, s_states, t_states)[0]
        self.assertAlmostEqual(out["contrastive"].item(), expected, places=5)

    def test_no_gradient_reaches_a_trainable_teacher(self):
        teacher, student = _case(3)
        teacher, student = trainable(teacher), as_student(student)
        for pairs_from in ("own", "logits"):
            inputs = make_inputs(teacher, student)
            inputs.shared["logits_pairs"] = [[(torch.tensor([0, 1]), torch.tensor([2, 0]))] * 2] * 2
            loss = QueryContrastiveDistillation(
                student_dim=5, teacher_dim=6, proj_dim=8, pairs_from=pairs_from
            )
            loss(inputs)["contrastive"].backward()
            self.assertEqual(grad_norm(float_leaves(teacher)), 0.0, msg=pairs_from)
            self.assertGreater(grad_norm([student.decoder.hidden_states]), 0)


if __name__ == "__main__":
    unittest.main()
