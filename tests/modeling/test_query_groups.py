"""Named query groups decoded next to a detector's own queries: the mask, no leakage into the own
outputs or between groups, per-group outputs, for every variant."""

import pytest
import torch
from test_detectors import (
    CLASSES,
    DEC_LAYERS,
    HEADS,
    HIDDEN,
    QUERIES,
    VARIANTS,
    make_batch,
    tiny_model,
)

from detrdistill.modeling import QueryGroup
from detrdistill.modeling.meta_arch import query_group_mask


def test_query_group_mask_by_hand():
    # 2 own queries, then groups of 1, 3 (sees the own queries) and 2 queries
    mask = query_group_mask(2, [1, 3, 2], [False, True, False])
    o, x = False, True  # o = may attend, x = blocked
    expected = torch.tensor(
        [
            # own own g1  g2  g2  g2  g3  g3   <- keys
            [o, o, x, x, x, x, x, x],  # own
            [o, o, x, x, x, x, x, x],  # own
            [x, x, o, x, x, x, x, x],  # g1
            [o, o, x, o, o, o, x, x],  # g2 (sees own)
            [o, o, x, o, o, o, x, x],  # g2
            [o, o, x, o, o, o, x, x],  # g2
            [x, x, x, x, x, x, o, o],  # g3
            [x, x, x, x, x, x, o, o],  # g3
        ]
    )
    assert torch.equal(mask, expected)
    assert torch.equal(query_group_mask(3, []), torch.zeros(3, 3, dtype=torch.bool))
    assert torch.equal(query_group_mask(1, [0, 2]), query_group_mask(1, [2]))
    with pytest.raises(ValueError, match="sees_own"):
        query_group_mask(2, [1, 1], [True])


def _perturbed(own: QueryGroup, count: int, seed: int, **flags) -> QueryGroup:
    """``count`` queries near the model's own first ones: a foreign group of valid fields."""
    gen = torch.Generator().manual_seed(seed)

    def perturb(t, is_reference=False):
        if t is None:
            return None
        noise = torch.randn(t[:, :count].shape, generator=gen)
        if is_reference:
            return (t[:, :count] + 0.05 * noise).clamp(0.05, 0.95)
        return t[:, :count] + noise

    return QueryGroup(perturb(own.content), perturb(own.pos), perturb(own.reference, True), **flags)


def _assert_same(a, b, names=("pred_logits", "pred_boxes", "hidden_states", "references")):
    for name in names:
        if getattr(a, name) is None:
            assert getattr(b, name) is None, name
            continue
        torch.testing.assert_close(getattr(a, name), getattr(b, name), atol=1e-5, rtol=0)


def _decoder_spy(model):
    """Record what ``model.decode`` gets and returns (the full, unsplit decoder pass)."""
    calls = []
    decode = model.decode

    def spy(queries, encoder, mask, return_attention):
        out = decode(queries, encoder, mask, return_attention)
        calls.append({"queries": queries, "mask": mask, "out": out})
        return out

    model.decode = spy
    return calls


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_groups_leave_own_outputs_and_each_other_unchanged(variant):
    """Training mode (dropout 0 in the tiny models): three groups, one attending to the own
    queries and one made of two blocks, change neither the own outputs nor each other's."""
    model = tiny_model(variant).train()
    images = model.preprocess_image(make_batch())
    torch.manual_seed(1)
    with torch.no_grad():
        plain = model.run(images, return_attention=True)
    own = plain.queries
    groups = {
        "a": _perturbed(own, 3, seed=1),
        "b": _perturbed(own, 4, seed=2, sees_own_queries=True),
        "c": _perturbed(own, 6, seed=3, num_blocks=2),
    }
    calls = _decoder_spy(model)
    torch.manual_seed(1)
    with torch.no_grad():
        both = model.run(images, groups=groups, return_attention=True)
    _assert_same(both.decoder, plain.decoder)
    for a, b in zip(both.decoder.self_attn, plain.decoder.self_attn):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=0)
    if "two_stage" in variant:
        _assert_same(both.decoder, plain.decoder, ("enc_logits", "enc_boxes"))
    assert list(both.groups) == ["a", "b", "c"] and both.group_queries == groups

    # the decoder got the mask of query_group_mask (blocks of "c": 3 + 3), and obeyed it:
    # blocked attention weights are exactly zero, allowed own -> "b" weights are not
    mask = calls[-1]["mask"]
    expected = query_group_mask(QUERIES, [3, 4, 3, 3], [False, True, False, False])
    assert torch.equal(mask, expected)
    for weights in calls[-1]["out"].self_attn:
        assert weights[..., mask].abs().max() == 0
        b_rows = slice(QUERIES + 3, QUERIES + 7)
        assert weights[:, :, b_rows, :QUERIES].sum(-1).min() > 0

    # each group's outputs depend on itself only (and the own queries for "b"): decoded alone
    # it gives the same per-layer outputs
    for name, group in groups.items():
        torch.manual_seed(1)
        with torch.no_grad():
            alone = model.run(images, groups={name: group}, return_attention=True).groups[name]
        _assert_same(both.groups[name], alone)
    # and a two-block group equals its two halves decoded as separate groups
    halves = {
        f"c{i}": QueryGroup(
            groups["c"].content[:, 3 * i : 3 * i + 3],
            None if groups["c"].pos is None else groups["c"].pos[:, 3 * i : 3 * i + 3],
            None if own.reference is None else groups["c"].reference[:, 3 * i : 3 * i + 3],
        )
        for i in range(2)
    }
    with torch.no_grad():
        split = model.run(images, groups=halves).groups
    for i in range(2):
        torch.testing.assert_close(
            both.groups["c"].pred_logits[:, :, 3 * i : 3 * i + 3],
            split[f"c{i}"].pred_logits,
            atol=1e-5,
            rtol=0,
        )


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_per_group_outputs_have_documented_shapes(variant):
    model = tiny_model(variant).eval()
    images = model.preprocess_image(make_batch())
    batch = 2
    with torch.no_grad():
        own = model.run(images).queries
        out = model.run(
            images,
            groups={"x": _perturbed(own, 5, seed=4), "y": _perturbed(own, 2, seed=5)},
            return_attention=True,
        )
    num_logits = CLASSES + 1 if variant == "detr" else CLASSES
    for name, size in (("x", 5), ("y", 2)):
        group = out.groups[name]
        assert group.pred_logits.shape == (DEC_LAYERS, batch, size, num_logits)
        assert group.pred_boxes.shape == (DEC_LAYERS, batch, size, 4)
        assert group.hidden_states.shape == (DEC_LAYERS, batch, size, HIDDEN)
        if variant == "detr":
            assert group.references is None
        else:
            assert group.references.shape[:3] == (DEC_LAYERS, batch, size)
        assert len(group.self_attn) == len(group.cross_attn) == DEC_LAYERS
        assert group.self_attn[0].shape == (batch, HEADS, size, size)
        cross = group.cross_attn[0]
        if variant.startswith(("deformable", "dino")):
            assert cross.attention_weights.shape[:3] == (batch, size, HEADS)
        else:
            assert cross.shape[:3] == (batch, HEADS, size)
        assert group.enc_logits is None and group.enc_boxes is None  # proposals are the own
    assert out.decoder.pred_logits.shape[2] == QUERIES


def test_group_errors_name_the_group():
    model = tiny_model("dab_detr").eval()
    images = model.preprocess_image(make_batch())
    with torch.no_grad():
        own = model.run(images).queries
    narrow = QueryGroup(own.content, None, own.reference[..., :2])
    with pytest.raises(ValueError, match="last dimension 2 in query group 'narrow'"):
        model.run(images, groups={"narrow": narrow})
    with pytest.raises(ValueError, match="3 equal blocks"):
        odd = QueryGroup(own.content[:, :4], None, own.reference[:, :4], num_blocks=3)
        model.run(images, groups={"odd": odd})
