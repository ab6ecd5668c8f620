import unittest

import torch
from torch import nn

from detrdistill.layers import (
    ConditionalCrossAttention,
    ConditionalSelfAttention,
    MultiheadAttention,
    scaled_dot_product_attention_with_weights,
)


def _masks(bsz=2, len_q=5, len_k=7):
    attn_mask = torch.zeros(len_q, len_k, dtype=torch.bool)
    attn_mask[0, :3] = True
    attn_mask[2, 4] = True
    key_padding_mask = torch.zeros(bsz, len_k, dtype=torch.bool)
    key_padding_mask[1, -2:] = True
    return attn_mask, key_padding_mask


class TestMultiheadAttention(unittest.TestCase):
    def setUp(self):
        torch.manual_seed(0)
        self.attn = MultiheadAttention(16, 4).eval()
        self.q, self.k, self.v = torch.randn(2, 5, 16), torch.randn(2, 7, 16), torch.randn(2, 7, 16)

    def test_weights_path_equals_fast_path(self):
        attn_mask, key_padding_mask = _masks()
        for am, kpm in [(None, None), (attn_mask, None), (None, key_padding_mask), _masks()]:
            fast, none = self.attn(self.q, self.k, self.v, am, kpm)
            slow, weights = self.attn(self.q, self.k, self.v, am, kpm, need_weights=True)
            self.assertIsNone(none)
            self.assertEqual(weights.shape, (2, 4, 5, 7))
            torch.testing.assert_close(fast, slow, atol=1e-6, rtol=1e-6)

    def test_masks_block_exactly(self):
        attn_mask, key_padding_mask = _masks()
        _, weights = self.attn(self.q, self.k, self.v, attn_mask, key_padding_mask, True)
        blocked = attn_mask[None, None] | key_padding_mask[:, None, None, :]
        blocked = blocked.expand_as(weights)
        self.assertTrue((weights[blocked] == 0).all())
        self.assertTrue((weights[~blocked] > 0).all())
        torch.testing.assert_close(weights.sum(-1), torch.ones(2, 4, 5))
        # changing a padded key does not change the output of that image
        v2 = self.v.clone()
        v2[1, -1] += 100
        out1, _ = self.attn(self.q, self.k, self.v, key_padding_mask=key_padding_mask)
        out2, _ = self.attn(self.q, self.k, v2, key_padding_mask=key_padding_mask)
        torch.testing.assert_close(out1[1], out2[1])

    def test_fully_blocked_row_is_zero(self):
        attn_mask = torch.zeros(5, 7, dtype=torch.bool)
        attn_mask[3] = True
        q, k, v = torch.randn(1, 2, 5, 4), torch.randn(1, 2, 7, 4), torch.randn(1, 2, 7, 4)
        out, weights = scaled_dot_product_attention_with_weights(q, k, v, attn_mask)
        self.assertTrue((weights[:, :, 3] == 0).all())
        self.assertTrue((out[:, :, 3] == 0).all())

    def test_matches_torch_multihead_attention(self):
        ref = nn.MultiheadAttention(16, 4, batch_first=True).eval()
        with torch.no_grad():
            ref.in_proj_weight.copy_(
                torch.cat(
                    [self.attn.q_proj.weight, self.attn.k_proj.weight, self.attn.v_proj.weight]
                )
            )
            ref.in_proj_bias.copy_(
                torch.cat([self.attn.q_proj.bias, self.attn.k_proj.bias, self.attn.v_proj.bias])
            )
            ref.out_proj.load_state_dict(self.attn.out_proj.state_dict())
        attn_mask, key_padding_mask = _masks()
        expected, expected_w = ref(
            self.q,
            self.k,
            self.v,
            attn_mask=attn_mask,
            key_padding_mask=key_padding_mask,
            average_attn_weights=False,
        )
        out, weights = self.attn(self.q, self.k, self.v, attn_mask, key_padding_mask, True)
        torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(weights, expected_w, atol=1e-6, rtol=1e-5)

    def test_positions_added_to_query_and_key_only(self):
        qp, kp = torch.randn(2, 5, 16), torch.randn(2, 7, 16)
        out, _ = self.attn(self.q, self.k, self.v, query_pos=qp, key_pos=kp)
        expected, _ = self.attn(self.q + qp, self.k + kp, self.v)
        torch.testing.assert_close(out, expected)

    def test_dropout_in_training_only(self):
        attn = MultiheadAttention(16, 4, dropout=0.5)
        attn.load_state_dict(self.attn.state_dict())
        attn.eval()
        eval_out, eval_w = attn(self.q, self.k, self.v, need_weights=True)
        attn.train()
        torch.manual_seed(1)
        train_out, train_w = attn(self.q, self.k, self.v, need_weights=True)
        self.assertFalse(torch.allclose(eval_out, train_out))
        # returned weights are the probabilities before dropout
        torch.testing.assert_close(train_w, eval_w)
        fast_out, _ = attn(self.q, self.k, self.v)
        self.assertFalse(torch.allclose(eval_out, fast_out))

    def test_gradients(self):
        q = self.q.clone().requires_grad_()
        out, weights = self.attn(q, self.k, self.v, need_weights=True)
        (out.sum() + weights[..., 0].sum()).backward()
        self.assertTrue(q.grad.abs().sum() > 0)
        self.assertTrue(self.attn.q_proj.weight.grad.abs().sum() > 0)


class TestConditionalAttention(unittest.TestCase):
    def setUp(self):
        torch.manual_seed(0)
        self.x, self.pos = torch.randn(2, 5, 16), torch.randn(2, 5, 16)
        self.mem, self.mem_pos = torch.randn(2, 7, 16), torch.randn(2, 7, 16)
        self.sine = torch.randn(2, 5, 16)

    def test_self_attention_formula(self):
        sa = ConditionalSelfAttention(16, 4).eval()
        attn_mask, _ = _masks(len_k=5)
        out, weights = sa(self.x, query_pos=self.pos, attn_mask=attn_mask, need_weights=True)
        fast, none = sa(self.x, query_pos=self.pos, attn_mask=attn_mask)
        self.assertIsNone(none)
        torch.testing.assert_close(out, fast, atol=1e-6, rtol=1e-6)
        q = sa.query_content_proj(self.x) + sa.query_pos_proj(self.pos)
        k = sa.key_content_proj(self.x) + sa.key_pos_proj(self.pos)
        logits = torch.einsum("bqhd,bkhd->bhqk", q.view(2, 5, 4, 4), k.view(2, 5, 4, 4)) / 2.0
        expected_w = logits.masked_fill(attn_mask, float("-inf")).softmax(-1)
        torch.testing.assert_close(weights, expected_w)
        v = sa.value_proj(self.x).view(2, 5, 4, 4)
        expected = sa.out_proj(torch.einsum("bhqk,bkhd->bqhd", expected_w, v).reshape(2, 5, 16))
        torch.testing.assert_close(out, expected)

    def _expected_cross(self, ca, is_first):
        qc = ca.query_content_proj(self.x)
        kc = ca.key_content_proj(self.mem)
        kp = ca.key_pos_proj(self.mem_pos)
        if is_first:
            qc = qc + ca.query_pos_proj(self.pos)
            kc = kc + kp
        qs = ca.query_pos_sine_proj(self.sine)

        def heads(t):
            return t.view(t.shape[0], t.shape[1], 4, 4)

        # per head: content.content + sine.pos, scaled by 1/sqrt(2 * head_dim)
        logits = torch.einsum("bqhd,bkhd->bhqk", heads(qc), heads(kc))
        logits = logits + torch.einsum("bqhd,bkhd->bhqk", heads(qs), heads(kp))
        weights = (logits / 8**0.5).softmax(-1)
        v = heads(ca.value_proj(self.mem))
        out = torch.einsum("bhqk,bkhd->bqhd", weights, v).reshape(2, 5, 16)
        return ca.out_proj(out), weights

    def test_cross_attention_formula(self):
        ca = ConditionalCrossAttention(16, 4).eval()
        kwargs = dict(key_pos=self.mem_pos, query_sine_embed=self.sine, query_pos=self.pos)
        for is_first in (True, False):
            out, weights = ca(self.x, self.mem, is_first=is_first, need_weights=True, **kwargs)
            fast, _ = ca(self.x, self.mem, is_first=is_first, **kwargs)
            expected, expected_w = self._expected_cross(ca, is_first)
            self.assertEqual(weights.shape, (2, 4, 5, 7))
            torch.testing.assert_close(out, expected)
            torch.testing.assert_close(weights, expected_w)
            torch.testing.assert_close(fast, out, atol=1e-6, rtol=1e-6)
        not_first, _ = ca(self.x, self.mem, **kwargs)
        first, _ = ca(self.x, self.mem, is_first=True, **kwargs)
        self.assertFalse(torch.allclose(first, not_first))
        ca.keep_query_pos = True
        torch.testing.assert_close(ca(self.x, self.mem, **kwargs)[0], first)
        with self.assertRaises(ValueError):
            ca(self.x, self.mem, key_pos=self.mem_pos, query_sine_embed=self.sine, is_first=True)

    def test_cross_attention_padding(self):
        ca = ConditionalCrossAttention(16, 4).eval()
        _, kpm = _masks()
        _, weights = ca(
            self.x,
            self.mem,
            key_pos=self.mem_pos,
            query_sine_embed=self.sine,
            key_padding_mask=kpm,
            need_weights=True,
        )
        self.assertTrue((weights[1, :, :, -2:] == 0).all())
        torch.testing.assert_close(weights.sum(-1), torch.ones(2, 4, 5))


if __name__ == "__main__":
    unittest.main()
