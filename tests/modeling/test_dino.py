"""DINO's own parts: token box priors, mixed query selection, look-forward-twice box refinement
and the checks on its inputs."""

import math

import pytest
import torch
from test_detectors import CONFIGS, HIDDEN, make_batch

from detrdistill.layers import coordinate_sine_embedding, inverse_sigmoid
from detrdistill.modeling import QueryGroup
from detrdistill.modeling.meta_arch.proposals import encoder_proposals, top_proposals
from detrdistill.modeling.outputs import EncoderOutputs


def tiny_dino(**options):
    from detectron2.config import LazyConfig, instantiate

    cfg = LazyConfig.load(str(CONFIGS / "common/models/dino.py"))
    model = cfg.model
    model.backbone.update(depth=18, width=8, norm="BN", freeze_at=0)
    model.update(hidden_dim=HIDDEN, num_queries=9, num_classes=5)
    model.encoder.update(num_layers=1, num_heads=4, ffn_dim=64, num_levels=3)
    model.decoder.update(num_layers=3, num_heads=4, ffn_dim=64)
    model.neck.num_extra_levels = 0
    model.position_embedding.num_pos_feats = HIDDEN // 2
    decoder_options = {k: options.pop(k) for k in list(options) if k == "look_forward_twice"}
    model.decoder.update(decoder_options)
    model.update(options)
    torch.manual_seed(0)
    return instantiate(model)


def _encoder(shapes, mask):
    spatial = torch.tensor(shapes)
    starts = torch.cat([spatial.new_zeros(1), spatial.prod(1).cumsum(0)[:-1]])
    batch, tokens = mask.shape
    empty = torch.zeros(batch, tokens, 1)
    return EncoderOutputs([], [], [], empty, empty, mask, spatial, starts, torch.ones(batch, 2, 2))


def _logit(p):
    return math.log(p / (1 - p))


def test_token_proposals_are_cell_centres_of_the_valid_extent():
    # level 0: 2x2; level 1: 1x60 (its first and last centres leave (0.01, 0.99))
    shapes = [(2, 2), (1, 60)]
    mask = torch.zeros(2, 64, dtype=torch.bool)
    mask[1, [1, 3]] = True  # image 1: right column of level 0 is padding
    proposals, valid = encoder_proposals(_encoder(shapes, mask))
    assert proposals.shape == (2, 64, 4) and valid.shape == (2, 64, 1)
    # image 0, level 0, token (row 1, col 0): centre (0.25, 0.75), side 0.05
    expected = torch.tensor([_logit(0.25), _logit(0.75), _logit(0.05), _logit(0.05)])
    torch.testing.assert_close(proposals[0, 2], expected)
    # image 1: one valid column, so its centre is x = 0.5 / 1
    expected = torch.tensor([_logit(0.5), _logit(0.25), _logit(0.05), _logit(0.05)])
    torch.testing.assert_close(proposals[1, 0], expected)
    assert not valid[1, 1] and torch.isinf(proposals[1, 1]).all()
    # level 1 (side 0.1): x = 0.5/60 < 0.01 and 59.5/60 > 0.99 are invalid, 1.5/60 is not
    assert not valid[0, 4] and not valid[0, 63] and valid[0, 5]
    expected = torch.tensor([_logit(1.5 / 60), _logit(0.5), _logit(0.1), _logit(0.1)])
    torch.testing.assert_close(proposals[0, 5], expected)
    assert int(valid.sum()) == 2 * 62 - 2


def test_invalid_tokens_rank_last():
    scores = torch.tensor([[5.0, 1.0, 3.0, 2.0]])
    valid = torch.tensor([[False, True, True, True]])
    assert top_proposals(scores, valid, 3).tolist() == [[2, 3, 1]]


def test_mixed_query_selection():
    """Anchors: the top-Q valid proposals by their best class score, detached; content: the
    learned table, the same for every image."""
    model = tiny_dino().train()
    images = model.preprocess_image(make_batch())
    out = model.run(images)
    queries, decoded = out.queries, out.decoder
    for image in range(2):
        assert torch.equal(queries.content[image], model.tgt_embed.weight)
    assert queries.pos is None
    assert not queries.reference.requires_grad and decoded.enc_boxes.requires_grad
    assert torch.equal(queries.reference, decoded.enc_boxes.detach())
    # recompute every token's score and check the selection is the top-Q of the valid ones
    proposals, valid = encoder_proposals(out.encoder)
    memory = out.encoder.memory.masked_fill(~valid, 0.0)
    scores = model.enc_class_embed(model.enc_output_norm(model.enc_output(memory))).max(-1).values
    scores = scores.masked_fill(~valid[..., 0], float("-inf"))
    best = scores.sort(dim=1, descending=True).values[:, : model.num_queries]
    torch.testing.assert_close(decoded.enc_logits.max(-1).values, best)
    assert torch.isfinite(best).all()
    # the anchors are the selected proposals: box head offset + token prior
    top = scores.topk(model.num_queries, dim=1).indices
    memory = model.enc_output_norm(model.enc_output(memory))
    coords = (model.enc_bbox_embed(memory) + proposals).sigmoid()
    chosen = torch.gather(coords, 1, top[..., None].expand(-1, -1, 4))
    torch.testing.assert_close(queries.reference, chosen.detach())


def test_first_layer_positional_queries_come_from_the_anchors_in_the_first_level():
    model = tiny_dino().eval()
    with torch.no_grad():
        out = model.run(model.preprocess_image(make_batch()))
        pos = model.positional_queries(out.queries, out.encoder)
        ratios = out.encoder.valid_ratios[:, 0]  # (B, 2) of the first level
        scaled = out.queries.reference * torch.cat([ratios, ratios], -1)[:, None]
        sine = coordinate_sine_embedding(scaled, HIDDEN // 2)
        expected = model.decoder.ref_point_head(sine)
    assert (ratios[1] < 1).any()  # the second image is padded
    torch.testing.assert_close(pos, expected)


def _grad_norm(output, parameters):
    grads = torch.autograd.grad(output, list(parameters), retain_graph=True, allow_unused=True)
    return sum(0.0 if g is None else float(g.abs().sum()) for g in grads)


@pytest.mark.parametrize("look_forward_twice", [True, False])
def test_look_forward_twice_trains_the_previous_layers_refinement(look_forward_twice):
    """Layer 1's box is an offset to layer 0's refined anchor: with look-forward-twice the box
    loss of layer 1 reaches layer 0's box head through it; layer 1's input anchor is detached in
    both modes, so layer 1's class logits never reach layer 0's box head."""
    model = tiny_dino(share_heads=False, look_forward_twice=look_forward_twice).train()
    out = model.run(model.preprocess_image(make_batch()))
    layer0_box_head = model.bbox_embed[0].parameters()
    box_grad = _grad_norm(out.decoder.pred_boxes[1].sum(), layer0_box_head)
    class_grad = _grad_norm(out.decoder.pred_logits[1].sum(), model.bbox_embed[0].parameters())
    assert class_grad == 0.0
    assert (box_grad > 0.0) == look_forward_twice
    # the forward values do not depend on the mode
    reference = tiny_dino(share_heads=False, look_forward_twice=not look_forward_twice).train()
    with torch.no_grad():
        again = reference.run(reference.preprocess_image(make_batch()))
    torch.testing.assert_close(again.decoder.pred_boxes, out.decoder.pred_boxes.detach())


def test_references_are_the_anchors_refined_by_the_raw_layer_output():
    """references[i + 1] = sigmoid(box_head_i(raw output of layer i) + logit(references[i])),
    with the raw (not the normalised) output, as the official decoder refines its anchors."""
    model = tiny_dino(share_heads=False).eval()
    # the zero-initialised box heads and the identity-like final norm would hide the difference
    for head in model.bbox_embed:
        torch.nn.init.normal_(head.layers[-1].weight, std=0.1)
    torch.nn.init.normal_(model.decoder.norm.weight, 1.0, 0.5)
    torch.nn.init.normal_(model.decoder.norm.bias, 0.0, 0.5)
    raw = []
    hooks = [
        layer.register_forward_hook(lambda m, i, o: raw.append(o[0]))
        for layer in model.decoder.layers
    ]
    with torch.no_grad():
        out = model.run(model.preprocess_image(make_batch()))
        refs = out.decoder.references
        assert torch.equal(refs[0], out.queries.reference)
        for i in range(2):
            expected = (model.bbox_embed[i](raw[i]) + inverse_sigmoid(refs[i], 1e-3)).sigmoid()
            torch.testing.assert_close(refs[i + 1], expected)
            normalised = model.decoder.norm(raw[i])
            torch.testing.assert_close(out.decoder.hidden_states[i], normalised)
            assert not torch.allclose(refs[i + 1], out.decoder.pred_boxes[i], atol=1e-3)
    for hook in hooks:
        hook.remove()


def test_dino_rejects_a_positional_query_and_a_foreign_decoder():
    model = tiny_dino().eval()
    images = model.preprocess_image(make_batch())
    with torch.no_grad():
        own = model.run(images).queries
    group = QueryGroup(own.content, torch.zeros_like(own.content), own.reference)
    with pytest.raises(ValueError, match="pos"):
        with torch.no_grad():
            model.run(images, groups={"foreign": group})
    with pytest.raises(ValueError, match="must be 'focal'"):
        tiny_dino(loss_class_type="softmax")
    from detectron2.config import LazyConfig, instantiate

    cfg = LazyConfig.load(str(CONFIGS / "common/models/dino.py"))
    cfg.model.decoder = LazyConfig.load(
        str(CONFIGS / "common/models/deformable_detr.py")
    ).model.decoder
    with pytest.raises(TypeError, match="model.decoder"):
        with torch.device("meta"):
            instantiate(cfg.model)


def test_contrastive_denoising_group_of_the_config():
    """The packaged model trains with DINO's contrastive denoising: G = 100 // M groups of M
    positives and M negatives (M = most boxes in an image), decoded next to the matching queries
    without changing them, supervised as loss_*_dn; inference builds no group."""
    from detectron2.utils.events import EventStorage

    from detrdistill.modeling import DENOISING

    model = tiny_dino().train()
    assert model.denoising.contrastive and model.denoising.num_dn_queries == 100
    batch = make_batch()  # 2 boxes per image: M = 2, G = 50, 50 * (2 + 2) queries
    images = model.preprocess_image(batch)
    targets = model.prepare_targets(batch)
    torch.manual_seed(3)
    groups = model.training_groups(targets)
    group = groups[DENOISING]
    assert group.num_blocks == 50 and group.num_queries == 200 and group.sees_own_queries
    assert group.pos is None and group.reference.shape == (2, 200, 4)
    with torch.no_grad():
        with_dn = model.run(images, groups=groups)
        plain = model.run(images)
    torch.testing.assert_close(with_dn.decoder.pred_boxes, plain.decoder.pred_boxes)
    torch.testing.assert_close(with_dn.decoder.enc_logits, plain.decoder.enc_logits)
    assert with_dn.groups[DENOISING].pred_logits.shape == (3, 2, 200, 5)
    # the group's first-layer boxes are offsets to its own noised anchors (look-forward-twice
    # and the anchor-driven positional queries apply to it like to the matching queries)
    assert torch.equal(with_dn.groups[DENOISING].references[0], group.reference)
    with EventStorage():
        losses = model(batch)
    assert {"loss_class_dn", "loss_bbox_dn", "loss_giou_dn", "loss_giou_dn_1"} <= set(losses)
    model.eval()
    assert model.training_groups(targets) == {}
