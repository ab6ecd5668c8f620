"""Helpers of the converter tests: synthetic published checkpoints and reference forwards.

Nothing can be downloaded here, so the tests build state dicts with the key names and shapes of
the official releases (facebookresearch/detr, Atten4Vis/ConditionalDETR, IDEA-Research/DAB-DETR,
fundamentalvision/Deformable-DETR) at small sizes, and detrex's layout of the same tensors. The
``reference_*`` functions compute the original architectures' forward passes directly from those
original tensors (functional code written after the official models, using torch's own
``multi_head_attention_forward`` for the packed attention), so a converted model can be checked
against them output by output.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, replace
from pathlib import Path

import torch
from detectron2.config import LazyConfig, instantiate
from detectron2.structures import ImageList
from torch import Tensor
from torch.nn import functional as F

import detrdistill
from detrdistill.convert import COCO_CATEGORY_IDS

CONFIGS = Path(detrdistill.__file__).parent / "configs"
BLOCKS = {18: (2, 2, 2, 2), 50: (3, 4, 6, 3), 101: (3, 4, 23, 3)}


@dataclass(frozen=True)
class Sizes:
    """Model sizes shared by a synthetic checkpoint, its reference and the target model."""

    depth: int = 50
    width: int = 8
    hidden: int = 32
    heads: int = 4
    ffn: int = 64
    enc_layers: int = 2
    dec_layers: int = 3
    queries: int = 7
    levels: int = 4  # Deformable DETR: 3 backbone levels + 1 extra
    points: int = 4
    with_box_refine: bool = False
    two_stage: bool = False
    shared_heads: bool = True  # DINO: one class/box head for all decoder layers (official)

    @property
    def num_heads_out(self) -> int:
        return self.dec_layers + (1 if self.two_stage else 0)


SMALL = Sizes()


# ---------------------------------------------------------------------------------- state dicts
class _Maker:
    """Fills a state dict with random tensors of given shapes (or meta tensors)."""

    def __init__(self, seed: int, device: str = "cpu"):
        self.sd: dict[str, Tensor] = {}
        self.device = device
        self.gen = torch.Generator().manual_seed(seed) if device == "cpu" else None

    def _randn(self, *shape) -> Tensor:
        if self.device == "meta":
            return torch.empty(*shape, device="meta")
        return torch.randn(*shape, generator=self.gen)

    def _rand(self, *shape) -> Tensor:
        if self.device == "meta":
            return torch.empty(*shape, device="meta")
        return torch.rand(*shape, generator=self.gen)

    def conv(self, key, out, inp, k):
        self.sd[key + ".weight"] = self._randn(out, inp, k, k) * (1.0 / (inp * k * k)) ** 0.5

    def conv_bias(self, key, out, inp, k):
        self.conv(key, out, inp, k)
        self.sd[key + ".bias"] = self._randn(out) * 0.1

    def bn(self, key, channels):
        self.sd[key + ".weight"] = 0.5 + 0.5 * self._rand(channels)
        self.sd[key + ".bias"] = self._randn(channels) * 0.1
        self.sd[key + ".running_mean"] = self._randn(channels) * 0.1
        self.sd[key + ".running_var"] = 0.5 + self._rand(channels)

    def linear(self, key, out, inp, scale=1.0):
        self.sd[key + ".weight"] = self._randn(out, inp) * scale / inp**0.5
        self.sd[key + ".bias"] = self._randn(out) * 0.1

    def norm(self, key, channels):
        self.sd[key + ".weight"] = 1.0 + 0.1 * self._randn(channels)
        self.sd[key + ".bias"] = 0.1 * self._randn(channels)

    def mlp(self, key, inp, hidden, out, layers):
        dims = [inp] + [hidden] * (layers - 1) + [out]
        for j in range(layers):
            self.linear(f"{key}.layers.{j}", dims[j + 1], dims[j])

    def packed_attention(self, key, dim):
        self.sd[key + ".in_proj_weight"] = self._randn(3 * dim, dim) / dim**0.5
        self.sd[key + ".in_proj_bias"] = self._randn(3 * dim) * 0.1
        self.linear(key + ".out_proj", dim, dim)

    def tensor(self, key, *shape, scale=1.0):
        self.sd[key] = self._randn(*shape) * scale

    def prelu(self, key):
        self.sd[key] = 0.25 + 0.05 * self._randn(1)


def _torchvision_resnet(make: _Maker, s: Sizes, with_counters=False) -> list[int]:
    """``backbone.0.body.*`` of a torchvision ResNet (frozen BN); returns stage channels."""
    p = "backbone.0.body."
    w = s.width
    make.conv(p + "conv1", w, 3, 7)
    make.bn(p + "bn1", w)
    channels, inp = [], w
    bottleneck = s.depth >= 50
    for stage, blocks in enumerate(BLOCKS[s.depth]):
        planes = w * 2**stage
        out = planes * 4 if bottleneck else planes
        for b in range(blocks):
            q = f"{p}layer{stage + 1}.{b}."
            if bottleneck:
                make.conv(q + "conv1", planes, inp, 1)
                make.bn(q + "bn1", planes)
                make.conv(q + "conv2", planes, planes, 3)
                make.bn(q + "bn2", planes)
                make.conv(q + "conv3", out, planes, 1)
                make.bn(q + "bn3", out)
            else:
                make.conv(q + "conv1", planes, inp, 3)
                make.bn(q + "bn1", planes)
                make.conv(q + "conv2", planes, planes, 3)
                make.bn(q + "bn2", planes)
            if b == 0 and (inp != out or stage > 0):
                make.conv(q + "downsample.0", out, inp, 1)
                make.bn(q + "downsample.1", out)
            inp = out
        channels.append(out)
    if with_counters:
        for key in [k for k in make.sd if k.endswith("running_var")]:
            make.sd[key.replace("running_var", "num_batches_tracked")] = torch.tensor(7)
    return channels


def _detr_encoder(make: _Maker, s: Sizes, prelu=False, query_scale=False):
    for i in range(s.enc_layers):
        p = f"transformer.encoder.layers.{i}."
        make.packed_attention(p + "self_attn", s.hidden)
        make.linear(p + "linear1", s.ffn, s.hidden)
        make.linear(p + "linear2", s.hidden, s.ffn)
        make.norm(p + "norm1", s.hidden)
        make.norm(p + "norm2", s.hidden)
        if prelu:
            make.prelu(p + "activation.weight")
    if query_scale:
        make.mlp("transformer.encoder.query_scale", s.hidden, s.hidden, s.hidden, 2)


def _conditional_decoder(make: _Maker, s: Sizes, prelu=False, dab=False):
    d = s.hidden
    for i in range(s.dec_layers):
        p = f"transformer.decoder.layers.{i}."
        for name in ("sa_qcontent", "sa_qpos", "sa_kcontent", "sa_kpos", "sa_v"):
            make.linear(p + name + "_proj", d, d)
        make.linear(p + "self_attn.out_proj", d, d)
        names = ["ca_qcontent", "ca_kcontent", "ca_kpos", "ca_v", "ca_qpos_sine"]
        if i == 0:
            names.append("ca_qpos")  # removed from later layers by the official decoder
        for name in names:
            make.linear(p + name + "_proj", d, d)
        make.linear(p + "cross_attn.out_proj", d, d)
        make.linear(p + "linear1", s.ffn, d)
        make.linear(p + "linear2", d, s.ffn)
        for k in (1, 2, 3):
            make.norm(p + f"norm{k}", d)
        if prelu:
            make.prelu(p + "activation.weight")
    make.mlp("transformer.decoder.query_scale", d, d, d, 2)
    if dab:
        make.mlp("transformer.decoder.ref_point_head", 2 * d, d, d, 2)
        make.mlp("transformer.decoder.ref_anchor_head", d, d, 2, 2)
    else:
        make.mlp("transformer.decoder.ref_point_head", d, d, 2, 2)
    make.norm("transformer.decoder.norm", d)


def official_state_dict(
    variant: str, s: Sizes = SMALL, seed: int = 0, device: str = "cpu", with_counters=False
) -> dict[str, Tensor]:
    """A state dict with the official release's key names and shapes for ``variant``."""
    make = _Maker(seed, device)
    channels = _torchvision_resnet(make, s, with_counters)
    d = s.hidden
    if variant in ("detr", "conditional_detr", "dab_detr"):
        make.conv_bias("input_proj", d, channels[-1], 1)
        classes = 92 if variant == "detr" else 91
        make.linear("class_embed", classes, d)
        make.mlp("bbox_embed", d, d, 4, 3)
    if variant == "detr":
        make.tensor("query_embed.weight", s.queries, d)
        _detr_encoder(make, s)
        for i in range(s.dec_layers):
            p = f"transformer.decoder.layers.{i}."
            make.packed_attention(p + "self_attn", d)
            make.packed_attention(p + "multihead_attn", d)
            make.linear(p + "linear1", s.ffn, d)
            make.linear(p + "linear2", d, s.ffn)
            for k in (1, 2, 3):
                make.norm(p + f"norm{k}", d)
        make.norm("transformer.decoder.norm", d)
    elif variant == "conditional_detr":
        make.tensor("query_embed.weight", s.queries, d)
        _detr_encoder(make, s)
        _conditional_decoder(make, s)
    elif variant == "dab_detr":
        make.tensor("refpoint_embed.weight", s.queries, 4)
        _detr_encoder(make, s, prelu=True, query_scale=True)
        _conditional_decoder(make, s, prelu=True, dab=True)
        for key in [k for k in make.sd if k.startswith("bbox_embed.")]:
            make.sd["transformer.decoder." + key] = make.sd[key]  # the decoder's alias
    elif variant == "deformable_detr":
        _deformable(make, s, channels[1:])
    elif variant == "dino":
        _dino(make, s, channels[1:])
    else:
        raise ValueError(variant)
    return make.sd


def _deformable_inputs(make: _Maker, s: Sizes, channels: list[int]):
    d = s.hidden
    for level, inp in enumerate(channels):
        make.conv_bias(f"input_proj.{level}.0", d, inp, 1)
        make.norm(f"input_proj.{level}.1", d)
    inp = channels[-1]
    for level in range(len(channels), s.levels):
        make.conv_bias(f"input_proj.{level}.0", d, inp, 3)
        make.norm(f"input_proj.{level}.1", d)
        inp = d
    make.tensor("transformer.level_embed", s.levels, d)


def _deformable_layers(make: _Maker, s: Sizes):
    d, h, lv, pt = s.hidden, s.heads, s.levels, s.points

    def msda(key):
        make.linear(key + ".sampling_offsets", h * lv * pt * 2, d, scale=0.5)
        make.sd[key + ".sampling_offsets.bias"] = make._randn(h * lv * pt * 2)
        make.linear(key + ".attention_weights", h * lv * pt, d)
        make.linear(key + ".value_proj", d, d)
        make.linear(key + ".output_proj", d, d)

    for i in range(s.enc_layers):
        p = f"transformer.encoder.layers.{i}."
        msda(p + "self_attn")
        make.norm(p + "norm1", d)
        make.linear(p + "linear1", s.ffn, d)
        make.linear(p + "linear2", d, s.ffn)
        make.norm(p + "norm2", d)
    for i in range(s.dec_layers):
        p = f"transformer.decoder.layers.{i}."
        msda(p + "cross_attn")
        make.norm(p + "norm1", d)
        make.packed_attention(p + "self_attn", d)
        make.norm(p + "norm2", d)
        make.linear(p + "linear1", s.ffn, d)
        make.linear(p + "linear2", d, s.ffn)
        make.norm(p + "norm3", d)


def _heads(make: _Maker, s: Sizes, count: int, separate: bool):
    """``class_embed.{i}`` (91 rows) / ``bbox_embed.{i}`` for i < count, one tensor per index
    (a head shared by the ModuleList: the same tensors under every index)."""
    for i in range(count):
        if separate or i == 0:
            make.linear(f"class_embed.{i}", 91, s.hidden)
            make.mlp(f"bbox_embed.{i}", s.hidden, s.hidden, 4, 3)
        else:
            for key in [k for k in make.sd if k.startswith(("class_embed.0.", "bbox_embed.0."))]:
                make.sd[key.replace(".0.", f".{i}.", 1)] = make.sd[key]


def _decoder_aliases(make: _Maker, prefixes: list[str]):
    """The official models hand their heads to the decoder under a second name."""
    for key in [k for k in make.sd if k.startswith(tuple(prefixes))]:
        make.sd["transformer.decoder." + key] = make.sd[key]


def _deformable(make: _Maker, s: Sizes, channels: list[int]):
    d = s.hidden
    _deformable_inputs(make, s, channels)
    if s.two_stage:
        make.linear("transformer.enc_output", d, d)
        make.norm("transformer.enc_output_norm", d)
        make.linear("transformer.pos_trans", 2 * d, 2 * d)
        make.norm("transformer.pos_trans_norm", 2 * d)
    else:
        make.tensor("query_embed.weight", s.queries, 2 * d)
        make.linear("transformer.reference_points", 2, d)
    _deformable_layers(make, s)
    _heads(make, s, s.num_heads_out, separate=s.with_box_refine)
    aliases = []
    if s.with_box_refine:
        aliases.append("bbox_embed.")
    if s.two_stage:
        aliases.append("class_embed.")
    _decoder_aliases(make, aliases)


def _dino(make: _Maker, s: Sizes, channels: list[int]):
    """IDEA-Research/DINO (4-scale, ``two_stage_type='standard'``, ``embed_init_tgt``)."""
    d = s.hidden
    _deformable_inputs(make, s, channels)
    make.tensor("transformer.tgt_embed.weight", s.queries, d)
    make.linear("transformer.enc_output", d, d)
    make.norm("transformer.enc_output_norm", d)
    make.linear("transformer.enc_out_class_embed", 91, d)
    make.mlp("transformer.enc_out_bbox_embed", d, d, 4, 3)
    _deformable_layers(make, s)
    make.mlp("transformer.decoder.ref_point_head", 2 * d, d, d, 2)
    make.norm("transformer.decoder.norm", d)
    _heads(make, s, s.dec_layers, separate=not s.shared_heads)
    _decoder_aliases(make, ["class_embed.", "bbox_embed."])
    make.tensor("label_enc.weight", 92, d)  # dn_labelbook_size 91 + 1


# ---------------------------------------------------------------------------------- detrex layout
def _coco_rows(value: Tensor, no_object: bool) -> Tensor:
    index = list(COCO_CATEGORY_IDS) + ([91] if no_object else [])
    return value[index]


def detrex_state_dict(variant: str, official: dict[str, Tensor], s: Sizes = SMALL):
    """The same tensors in detrex's layout (what detrex's own converters write, or what its
    training saves): detectron2 ResNet names, detrex's layer containers, 80/81 class rows."""
    out: dict[str, Tensor] = {}
    for key, value in official.items():
        new = key
        if key.startswith("backbone.0.body."):
            rest = key[len("backbone.0.body.") :]
            if rest.startswith("layer"):
                stage, tail = rest[len("layer") :].split(".", 1)
                rest = f"res{int(stage) + 1}.{tail}"
            else:
                rest = "stem." + rest
            rest = re.sub(r"bn(\d)", r"conv\1.norm", rest)
            rest = rest.replace("downsample.0", "shortcut").replace("downsample.1", "shortcut.norm")
            new = "backbone." + rest
        elif _LAYER.match(key):
            new = _detrex_layer_key(variant, key)
        elif key.startswith("transformer.decoder.norm.") and variant != "dino":
            new = key.replace("decoder.norm", "decoder.post_norm_layer")
        elif variant in ("deformable_detr", "dino") and key.startswith("input_proj."):
            level, index, param = key.split(".")[1:]
            kind = "conv" if index == "0" else "norm"
            n_convs = 3
            place = (
                f"convs.{level}" if int(level) < n_convs else f"extra_convs.{int(level) - n_convs}"
            )
            new = f"neck.{place}.{kind}.{param}"
        elif key == "query_embed.weight" and variant == "deformable_detr":
            new = "query_embedding.weight"
        elif key == "transformer.level_embed":
            new = "transformer.level_embeds"
        elif key == "refpoint_embed.weight":
            new = "anchor_box_embed.weight"
        elif key.startswith("transformer.enc_out_"):  # DINO: the proposal heads at index L
            head, rest = key[len("transformer.enc_out_") :].split(".", 1)
            new = f"{head}.{s.dec_layers}.{rest}"
        elif key == "label_enc.weight":
            value = _coco_rows(value, no_object=False)  # detrex: one row per contiguous class
        if "class_embed" in key:
            head = key.split("class_embed")[1]
            if variant == "deformable_detr" and head.startswith(f".{s.dec_layers}."):
                value = value[:80]  # detrex keeps the first 80 rows of the proposal head
            else:
                value = _coco_rows(value, no_object=variant == "detr")
        out[new] = value.clone() if value.device.type != "meta" else value
        if variant == "dino" and key.startswith("transformer.enc_out_"):
            out["transformer.decoder." + new] = out[new]  # the decoder's alias of index L
    return out


_LAYER = re.compile(r"transformer\.(?:en|de)coder\.layers\.\d+\.")


def _detrex_layer_key(variant: str, key: str) -> str:
    prefix = _LAYER.match(key).group(0)
    rest = key[len(prefix) :]
    encoder = ".encoder." in prefix
    ffn = {"linear1": "ffns.0.layers.0.0", "linear2": "ffns.0.layers.1"}
    head, tail = rest.split(".", 1)
    if head in ffn:
        return prefix + ffn[head] + "." + tail
    if head == "activation":
        return prefix + "ffns.0.layers.0.1." + tail
    if head.startswith("norm"):
        k = int(head[-1])
        if variant in ("deformable_detr", "dino") and not encoder:
            k = {1: 2, 2: 1, 3: 3}[k]  # official norm2 follows self-attention
        return prefix + f"norms.{k - 1}." + tail
    if variant in ("deformable_detr", "dino"):
        if encoder:
            return prefix + "attentions.0." + rest.split(".", 1)[1]
        if head == "self_attn":
            return prefix + "attentions.0.attn." + tail
        return prefix + "attentions.1." + tail
    if head in ("self_attn", "multihead_attn") and (encoder or variant == "detr"):
        index = 0 if head == "self_attn" else 1
        return prefix + f"attentions.{index}.attn." + tail
    conditional = {
        "sa_qcontent_proj": "attentions.0.query_content_proj",
        "sa_qpos_proj": "attentions.0.query_pos_proj",
        "sa_kcontent_proj": "attentions.0.key_content_proj",
        "sa_kpos_proj": "attentions.0.key_pos_proj",
        "sa_v_proj": "attentions.0.value_proj",
        "self_attn": "attentions.0",
        "ca_qcontent_proj": "attentions.1.query_content_proj",
        "ca_qpos_proj": "attentions.1.query_pos_proj",
        "ca_qpos_sine_proj": "attentions.1.query_pos_sine_proj",
        "ca_kcontent_proj": "attentions.1.key_content_proj",
        "ca_kpos_proj": "attentions.1.key_pos_proj",
        "ca_v_proj": "attentions.1.value_proj",
        "cross_attn": "attentions.1",
    }
    return prefix + conditional[head] + "." + tail


# ---------------------------------------------------------------------------------- target model
def build_model(variant: str, s: Sizes = SMALL, device: str = "cpu", **options):
    """This project's detector for ``variant`` at the sizes ``s``, from its packaged config."""
    cfg = model_config(variant, s, **options)
    with torch.device(device):
        model = instantiate(cfg.model)
    return model.eval()


def model_config(variant: str, s: Sizes = SMALL, **options):
    cfg = LazyConfig.load(str(CONFIGS / f"common/models/{variant}.py"))
    model = cfg.model
    model.backbone.update(depth=s.depth, width=s.width, norm="FrozenBN")
    model.update(hidden_dim=s.hidden, num_queries=s.queries, num_classes=80)
    model.encoder.update(num_layers=s.enc_layers, num_heads=s.heads, ffn_dim=s.ffn, dropout=0.0)
    model.decoder.update(num_layers=s.dec_layers, num_heads=s.heads, ffn_dim=s.ffn, dropout=0.0)
    model.position_embedding.num_pos_feats = s.hidden // 2
    if variant == "deformable_detr":
        model.encoder.update(num_levels=s.levels, num_points=s.points)
        model.decoder.num_points = s.points
        model.update(with_box_refine=s.with_box_refine, as_two_stage=s.two_stage)
    if variant == "dino":
        model.encoder.update(num_levels=s.levels, num_points=s.points)
        model.decoder.num_points = s.points
        model.share_heads = s.shared_heads
        # the official repository's position encoding (detrex's: 10000 and -0.5)
        model.position_embedding.update(temperature=20, offset=0.0)
    model.update(options)
    return cfg


def images(same_size: bool = False, seed: int = 1) -> ImageList:
    """Two normalised images; the second is smaller (padded) unless ``same_size``."""
    gen = torch.Generator().manual_seed(seed)
    sizes = [(96, 128), (96, 128) if same_size else (80, 100)]
    return ImageList.from_tensors([torch.randn(3, h, w, generator=gen) for h, w in sizes])


def padding_mask(batch: ImageList) -> Tensor:
    tensor = batch.tensor
    mask = torch.ones(tensor.shape[0], *tensor.shape[-2:], dtype=torch.bool)
    for i, (h, w) in enumerate(batch.image_sizes):
        mask[i, :h, :w] = False
    return mask


# ---------------------------------------------------------------------------------- references
def _frozen_bn(x, sd, p):
    scale = sd[p + ".weight"] * (sd[p + ".running_var"] + 1e-5).rsqrt()
    shift = sd[p + ".bias"] - sd[p + ".running_mean"] * scale
    return x * scale[None, :, None, None] + shift[None, :, None, None]


def reference_resnet(sd, x, depth) -> list[Tensor]:
    """torchvision ResNet body (``backbone.0.body``) with frozen BN: outputs of layer1..4."""
    p = "backbone.0.body."
    x = F.relu(_frozen_bn(F.conv2d(x, sd[p + "conv1.weight"], stride=2, padding=3), sd, p + "bn1"))
    x = F.max_pool2d(x, 3, 2, 1)
    outs = []
    for stage, blocks in enumerate(BLOCKS[depth]):
        for b in range(blocks):
            q = f"{p}layer{stage + 1}.{b}."
            stride = 2 if b == 0 and stage > 0 else 1
            if depth >= 50:
                y = F.relu(_frozen_bn(F.conv2d(x, sd[q + "conv1.weight"]), sd, q + "bn1"))
                y = F.conv2d(y, sd[q + "conv2.weight"], stride=stride, padding=1)
                y = F.relu(_frozen_bn(y, sd, q + "bn2"))
                y = _frozen_bn(F.conv2d(y, sd[q + "conv3.weight"]), sd, q + "bn3")
            else:
                y = F.conv2d(x, sd[q + "conv1.weight"], stride=stride, padding=1)
                y = F.relu(_frozen_bn(y, sd, q + "bn1"))
                y = _frozen_bn(F.conv2d(y, sd[q + "conv2.weight"], padding=1), sd, q + "bn2")
            if q + "downsample.0.weight" in sd:
                x = _frozen_bn(
                    F.conv2d(x, sd[q + "downsample.0.weight"], stride=stride),
                    sd,
                    q + "downsample.1",
                )
            x = F.relu(y + x)
        outs.append(x)
    return outs


def _sine(values: Tensor, feats: int, temperature: float) -> Tensor:
    dim_t = torch.arange(feats, dtype=torch.float32)
    dim_t = temperature ** (2 * (dim_t // 2) / feats)
    angles = values[..., None] / dim_t
    return torch.stack((angles[..., 0::2].sin(), angles[..., 1::2].cos()), dim=-1).flatten(-2)


def reference_position(mask: Tensor, feats: int, temperature=10000.0, offset=0.0) -> Tensor:
    """Official ``PositionEmbeddingSine(normalize=True)`` (Deformable DETR: offset -0.5)."""
    not_mask = ~mask
    y = not_mask.cumsum(1, dtype=torch.float32)
    x = not_mask.cumsum(2, dtype=torch.float32)
    y = (y + offset) / (y[:, -1:, :] + 1e-6) * 2 * math.pi
    x = (x + offset) / (x[:, :, -1:] + 1e-6) * 2 * math.pi
    pos = torch.cat((_sine(y, feats, temperature), _sine(x, feats, temperature)), dim=3)
    return pos.permute(0, 3, 1, 2)


def reference_query_sine(coords: Tensor, feats: int) -> Tensor:
    """``gen_sineembed_for_position``: (y, x[, w, h]) sine embeddings of normalised coords."""
    parts = [coords[..., 1], coords[..., 0]] + (
        [coords[..., 2], coords[..., 3]] if coords.shape[-1] == 4 else []
    )
    return torch.cat([_sine(v * 2 * math.pi, feats, 10000.0) for v in parts], -1)


def _linear(x, sd, p):
    return F.linear(x, sd[p + ".weight"], sd[p + ".bias"])


def _ln(x, sd, p):
    return F.layer_norm(x, x.shape[-1:], sd[p + ".weight"], sd[p + ".bias"], 1e-5)


def _mlp(x, sd, p):
    layers = sorted({int(k[len(p) :].split(".")[2]) for k in sd if k.startswith(p + ".layers.")})
    for j in layers:
        x = _linear(x, sd, f"{p}.layers.{j}")
        if j < layers[-1]:
            x = F.relu(x)
    return x


def _ffn(x, sd, p):
    hidden = _linear(x, sd, p + "linear1")
    if p + "activation.weight" in sd:
        hidden = F.prelu(hidden, sd[p + "activation.weight"])
    else:
        hidden = F.relu(hidden)
    return _linear(hidden, sd, p + "linear2")


def _packed_mha(query, key, value, sd, p, heads, key_padding_mask=None):
    """``nn.MultiheadAttention`` of the official models, through torch's own functional."""
    out, _ = F.multi_head_attention_forward(
        query.transpose(0, 1),
        key.transpose(0, 1),
        value.transpose(0, 1),
        query.shape[-1],
        heads,
        sd[p + ".in_proj_weight"],
        sd[p + ".in_proj_bias"],
        None,
        None,
        False,
        0.0,
        sd[p + ".out_proj.weight"],
        sd[p + ".out_proj.bias"],
        training=False,
        key_padding_mask=key_padding_mask,
        need_weights=False,
    )
    return out.transpose(0, 1)


def _projectionless_mha(q, k, v, heads, sd, p, key_padding_mask=None):
    """Conditional DETR's attention without input projections (scale = head dim of q)."""
    bsz, len_q, dim_q = q.shape
    len_k = k.shape[1]
    qh = q.view(bsz, len_q, heads, -1).transpose(1, 2) * (dim_q // heads) ** -0.5
    kh = k.view(bsz, len_k, heads, -1).transpose(1, 2)
    vh = v.view(bsz, len_k, heads, -1).transpose(1, 2)
    logits = qh @ kh.transpose(-2, -1)
    if key_padding_mask is not None:
        logits = logits.masked_fill(key_padding_mask[:, None, None, :], float("-inf"))
    out = (logits.softmax(-1) @ vh).transpose(1, 2).reshape(bsz, len_q, -1)
    return _linear(out, sd, p)


def _inverse_sigmoid(x, eps=1e-5):
    x = x.clamp(0, 1)
    return torch.log(x.clamp(min=eps) / (1 - x).clamp(min=eps))


def _single_level(sd, batch: ImageList, s: Sizes, temperature: float):
    """Backbone, input projection and positions of DETR / Conditional DETR / DAB-DETR."""
    feature = reference_resnet(sd, batch.tensor, s.depth)[-1]
    src = F.conv2d(feature, sd["input_proj.weight"], sd["input_proj.bias"])
    mask = F.interpolate(padding_mask(batch)[None].float(), size=src.shape[-2:]).bool()[0]
    pos = reference_position(mask, s.hidden // 2, temperature)
    return src.flatten(2).transpose(1, 2), pos.flatten(2).transpose(1, 2), mask.flatten(1)


def _detr_encoder_forward(sd, src, pos, mask, s: Sizes):
    for i in range(s.enc_layers):
        p = f"transformer.encoder.layers.{i}."
        scale = 1.0
        if "transformer.encoder.query_scale.layers.0.weight" in sd:  # DAB-DETR
            scale = _mlp(src, sd, "transformer.encoder.query_scale")
        q = src + pos * scale
        src = _ln(src + _packed_mha(q, q, src, sd, p + "self_attn", s.heads, mask), sd, p + "norm1")
        src = _ln(src + _ffn(src, sd, p), sd, p + "norm2")
    return src


def reference_detr(sd, batch: ImageList, s: Sizes = SMALL):
    """Official DETR: (logits (L, B, Q, 92), boxes (L, B, Q, 4))."""
    src, pos, mask = _single_level(sd, batch, s, 10000.0)
    memory = _detr_encoder_forward(sd, src, pos, mask, s)
    query_pos = sd["query_embed.weight"][None].expand(src.shape[0], -1, -1)
    tgt = torch.zeros_like(query_pos)
    hidden = []
    for i in range(s.dec_layers):
        p = f"transformer.decoder.layers.{i}."
        q = tgt + query_pos
        tgt = _ln(tgt + _packed_mha(q, q, tgt, sd, p + "self_attn", s.heads), sd, p + "norm1")
        attended = _packed_mha(
            tgt + query_pos, memory + pos, memory, sd, p + "multihead_attn", s.heads, mask
        )
        tgt = _ln(tgt + attended, sd, p + "norm2")
        tgt = _ln(tgt + _ffn(tgt, sd, p), sd, p + "norm3")
        hidden.append(_ln(tgt, sd, "transformer.decoder.norm"))
    hs = torch.stack(hidden)
    return _linear(hs, sd, "class_embed"), _mlp(hs, sd, "bbox_embed").sigmoid()


def _conditional_layer(sd, p, tgt, memory, pos, mask, query_pos, query_sine, first, s: Sizes):
    d, heads = s.hidden, s.heads
    q = _linear(tgt, sd, p + "sa_qcontent_proj") + _linear(query_pos, sd, p + "sa_qpos_proj")
    k = _linear(tgt, sd, p + "sa_kcontent_proj") + _linear(query_pos, sd, p + "sa_kpos_proj")
    v = _linear(tgt, sd, p + "sa_v_proj")
    attended = _projectionless_mha(q, k, v, heads, sd, p + "self_attn.out_proj")
    tgt = _ln(tgt + attended, sd, p + "norm1")
    q = _linear(tgt, sd, p + "ca_qcontent_proj")
    k = _linear(memory, sd, p + "ca_kcontent_proj")
    v = _linear(memory, sd, p + "ca_v_proj")
    k_pos = _linear(pos, sd, p + "ca_kpos_proj")
    if first:
        q = q + _linear(query_pos, sd, p + "ca_qpos_proj")
        k = k + k_pos
    bsz, nq, _ = q.shape
    sine = _linear(query_sine, sd, p + "ca_qpos_sine_proj")
    q = torch.cat([q.view(bsz, nq, heads, -1), sine.view(bsz, nq, heads, -1)], 3)
    k = torch.cat([k.view(bsz, -1, heads, d // heads), k_pos.view(bsz, -1, heads, d // heads)], 3)
    attended = _projectionless_mha(
        q.flatten(2), k.flatten(2), v, heads, sd, p + "cross_attn.out_proj", mask
    )
    tgt = _ln(tgt + attended, sd, p + "norm2")
    return _ln(tgt + _ffn(tgt, sd, p), sd, p + "norm3")


def reference_conditional_detr(sd, batch: ImageList, s: Sizes = SMALL):
    """Official Conditional DETR: (logits (L, B, Q, 91), boxes (L, B, Q, 4))."""
    src, pos, mask = _single_level(sd, batch, s, 10000.0)
    memory = _detr_encoder_forward(sd, src, pos, mask, s)
    query_pos = sd["query_embed.weight"][None].expand(src.shape[0], -1, -1)
    reference = _mlp(query_pos, sd, "transformer.decoder.ref_point_head").sigmoid()
    sine = reference_query_sine(reference, s.hidden // 2)
    tgt = torch.zeros_like(query_pos)
    hidden = []
    for i in range(s.dec_layers):
        scale = 1.0 if i == 0 else _mlp(tgt, sd, "transformer.decoder.query_scale")
        tgt = _conditional_layer(
            sd,
            f"transformer.decoder.layers.{i}.",
            tgt,
            memory,
            pos,
            mask,
            query_pos,
            sine * scale,
            i == 0,
            s,
        )
        hidden.append(_ln(tgt, sd, "transformer.decoder.norm"))
    hs = torch.stack(hidden)
    delta = _mlp(hs, sd, "bbox_embed")
    delta = torch.cat([delta[..., :2] + _inverse_sigmoid(reference), delta[..., 2:]], -1)
    return _linear(hs, sd, "class_embed"), delta.sigmoid()


def reference_dab_detr(sd, batch: ImageList, s: Sizes = SMALL):
    """Official DAB-DETR: (logits (L, B, Q, 91), boxes (L, B, Q, 4))."""
    d = s.hidden
    src, pos, mask = _single_level(sd, batch, s, 20.0)
    memory = _detr_encoder_forward(sd, src, pos, mask, s)
    reference = sd["refpoint_embed.weight"].sigmoid()[None].expand(src.shape[0], -1, -1)
    references = [reference]
    tgt = memory.new_zeros(src.shape[0], reference.shape[1], d)
    hidden = []
    for i in range(s.dec_layers):
        sine = reference_query_sine(reference, d // 2)
        query_pos = _mlp(sine, sd, "transformer.decoder.ref_point_head")
        scale = 1.0 if i == 0 else _mlp(tgt, sd, "transformer.decoder.query_scale")
        query_sine = sine[..., :d] * scale
        size = _mlp(tgt, sd, "transformer.decoder.ref_anchor_head").sigmoid()
        query_sine = torch.cat(
            [
                query_sine[..., : d // 2] * (size[..., 1] / reference[..., 3])[..., None],
                query_sine[..., d // 2 :] * (size[..., 0] / reference[..., 2])[..., None],
            ],
            -1,
        )
        tgt = _conditional_layer(
            sd,
            f"transformer.decoder.layers.{i}.",
            tgt,
            memory,
            pos,
            mask,
            query_pos,
            query_sine,
            i == 0,
            s,
        )
        new = (_mlp(tgt, sd, "bbox_embed") + _inverse_sigmoid(reference)).sigmoid()
        if i != s.dec_layers - 1:
            references.append(new)
        reference = new
        hidden.append(_ln(tgt, sd, "transformer.decoder.norm"))
    hs = torch.stack(hidden)
    boxes = (_mlp(hs, sd, "bbox_embed") + _inverse_sigmoid(torch.stack(references))).sigmoid()
    return _linear(hs, sd, "class_embed"), boxes


def _msda(query, reference, value, shapes, mask, sd, p, s: Sizes):
    """Official ``MSDeformAttn`` with its PyTorch sampling routine."""
    bsz, nq, d = query.shape
    heads, levels, points = s.heads, s.levels, s.points
    value = _linear(value, sd, p + ".value_proj").masked_fill(mask[..., None], 0.0)
    value = value.view(bsz, -1, heads, d // heads)
    offsets = _linear(query, sd, p + ".sampling_offsets").view(bsz, nq, heads, levels, points, 2)
    weights = _linear(query, sd, p + ".attention_weights").view(bsz, nq, heads, levels * points)
    weights = weights.softmax(-1).view(bsz, nq, heads, levels, points)
    if reference.shape[-1] == 2:
        normalizer = torch.stack([shapes[..., 1], shapes[..., 0]], -1)
        loc = reference[:, :, None, :, None, :] + offsets / normalizer[None, None, None, :, None, :]
    else:
        loc = (
            reference[:, :, None, :, None, :2]
            + offsets / points * reference[:, :, None, :, None, 2:] * 0.5
        )
    values = value.split([int(h * w) for h, w in shapes], dim=1)
    grids = 2 * loc - 1
    sampled = []
    for level, (h, w) in enumerate(shapes.tolist()):
        v = values[level].flatten(2).transpose(1, 2).reshape(bsz * heads, d // heads, h, w)
        g = grids[:, :, :, level].transpose(1, 2).flatten(0, 1)
        sampled.append(
            F.grid_sample(v, g, mode="bilinear", padding_mode="zeros", align_corners=False)
        )
    weights = weights.transpose(1, 2).reshape(bsz * heads, 1, nq, levels * points)
    out = (torch.stack(sampled, dim=-2).flatten(-2) * weights).sum(-1).view(bsz, d, nq)
    return _linear(out.transpose(1, 2), sd, p + ".output_proj")


def _valid_ratio(mask):
    _, h, w = mask.shape
    valid_h = (~mask[:, :, 0]).sum(1).float() / h
    valid_w = (~mask[:, 0, :]).sum(1).float() / w
    return torch.stack([valid_w, valid_h], -1)


def _proposals(memory, mask, shapes, sd):
    bsz = memory.shape[0]
    proposals, cur = [], 0
    for level, (h, w) in enumerate(shapes.tolist()):
        level_mask = mask[:, cur : cur + h * w].view(bsz, h, w, 1)
        valid_h = (~level_mask[:, :, 0, 0]).sum(1)
        valid_w = (~level_mask[:, 0, :, 0]).sum(1)
        gy, gx = torch.meshgrid(
            torch.linspace(0, h - 1, h), torch.linspace(0, w - 1, w), indexing="ij"
        )
        grid = torch.cat([gx[..., None], gy[..., None]], -1)
        scale = torch.cat([valid_w[:, None], valid_h[:, None]], 1).view(bsz, 1, 1, 2)
        grid = (grid[None].expand(bsz, -1, -1, -1) + 0.5) / scale
        wh = torch.ones_like(grid) * 0.05 * (2.0**level)
        proposals.append(torch.cat((grid, wh), -1).view(bsz, -1, 4))
        cur += h * w
    proposals = torch.cat(proposals, 1)
    valid = ((proposals > 0.01) & (proposals < 0.99)).all(-1, keepdim=True)
    proposals = torch.log(proposals / (1 - proposals))
    proposals = proposals.masked_fill(mask[..., None], float("inf"))
    proposals = proposals.masked_fill(~valid, float("inf"))
    out = memory.masked_fill(mask[..., None], 0.0).masked_fill(~valid, 0.0)
    out = _ln(_linear(out, sd, "transformer.enc_output"), sd, "transformer.enc_output_norm")
    return out, proposals


def _proposal_sine(coords_unact, feats):
    """x, y, w, h sine embeddings of sigmoid(coords) (two-stage queries)."""
    coords = coords_unact.sigmoid() * 2 * math.pi
    return torch.cat([_sine(coords[..., i], feats, 10000.0) for i in range(4)], -1)


def _reference_deformable_encoder(sd, batch: ImageList, s: Sizes, temperature, offset):
    """Backbone, input projection, positions and the deformable encoder of the official
    Deformable DETR / DINO: memory (B, S, D), mask (B, S), spatial shapes (Lv, 2) and valid
    ratios (B, Lv, 2)."""
    d = s.hidden
    feats = reference_resnet(sd, batch.tensor, s.depth)[1:]
    image_mask = padding_mask(batch)

    def project(x, level, **conv):
        x = F.conv2d(
            x, sd[f"input_proj.{level}.0.weight"], sd[f"input_proj.{level}.0.bias"], **conv
        )
        return F.group_norm(
            x, 32, sd[f"input_proj.{level}.1.weight"], sd[f"input_proj.{level}.1.bias"]
        )

    srcs = [project(feat, level) for level, feat in enumerate(feats)]
    for level in range(len(feats), s.levels):  # the first extra level reads the raw res5
        srcs.append(
            project(feats[-1] if level == len(feats) else srcs[-1], level, stride=2, padding=1)
        )
    masks = [F.interpolate(image_mask[None].float(), size=x.shape[-2:]).bool()[0] for x in srcs]
    pos = [reference_position(m, d // 2, temperature, offset) for m in masks]
    shapes = torch.as_tensor([x.shape[-2:] for x in srcs], dtype=torch.long)
    src = torch.cat([x.flatten(2).transpose(1, 2) for x in srcs], 1)
    mask = torch.cat([m.flatten(1) for m in masks], 1)
    level_pos = torch.cat(
        [
            p.flatten(2).transpose(1, 2) + sd["transformer.level_embed"][level][None, None]
            for level, p in enumerate(pos)
        ],
        1,
    )
    ratios = torch.stack([_valid_ratio(m) for m in masks], 1)
    points = []
    for level, (h, w) in enumerate(shapes.tolist()):
        ry, rx = torch.meshgrid(
            torch.linspace(0.5, h - 0.5, h), torch.linspace(0.5, w - 0.5, w), indexing="ij"
        )
        ry = ry.reshape(-1)[None] / (ratios[:, None, level, 1] * h)
        rx = rx.reshape(-1)[None] / (ratios[:, None, level, 0] * w)
        points.append(torch.stack((rx, ry), -1))
    enc_reference = torch.cat(points, 1)[:, :, None] * ratios[:, None]
    memory = src
    for i in range(s.enc_layers):
        p = f"transformer.encoder.layers.{i}."
        attended = _msda(
            memory + level_pos, enc_reference, memory, shapes, mask, sd, p + "self_attn", s
        )
        memory = _ln(memory + attended, sd, p + "norm1")
        memory = _ln(memory + _ffn(memory, sd, p), sd, p + "norm2")
    return memory, mask, shapes, ratios


def _reference_deformable_layer(sd, p, tgt, query_pos, level_ref, memory, shapes, mask, s):
    """One official deformable decoder layer: self-attention (norm2), deformable
    cross-attention (norm1), FFN (norm3)."""
    q = tgt + query_pos
    tgt = _ln(tgt + _packed_mha(q, q, tgt, sd, p + "self_attn", s.heads), sd, p + "norm2")
    attended = _msda(tgt + query_pos, level_ref, memory, shapes, mask, sd, p + "cross_attn", s)
    tgt = _ln(tgt + attended, sd, p + "norm1")
    return _ln(tgt + _ffn(tgt, sd, p), sd, p + "norm3")


def reference_deformable_detr(sd, batch: ImageList, s: Sizes = SMALL):
    """Official Deformable DETR (plain / box refinement / two-stage): (logits (L, B, Q, 91),
    boxes (L, B, Q, 4))."""
    d = s.hidden
    memory, mask, shapes, ratios = _reference_deformable_encoder(sd, batch, s, 10000.0, -0.5)
    layers = s.dec_layers
    if s.two_stage:
        out_memory, proposals = _proposals(memory, mask, shapes, sd)
        enc_class = _linear(out_memory, sd, f"class_embed.{layers}")
        enc_coords = _mlp(out_memory, sd, f"bbox_embed.{layers}") + proposals
        top = torch.topk(enc_class[..., 0], s.queries, dim=1)[1]
        top_coords = torch.gather(enc_coords, 1, top[..., None].repeat(1, 1, 4))
        reference = top_coords.sigmoid()
        embedding = _linear(_proposal_sine(top_coords, d // 2), sd, "transformer.pos_trans")
        query_pos, tgt = _ln(embedding, sd, "transformer.pos_trans_norm").split(d, 2)
    else:
        query_pos, tgt = sd["query_embed.weight"].split(d, 1)
        query_pos = query_pos[None].expand(memory.shape[0], -1, -1)
        tgt = tgt[None].expand(memory.shape[0], -1, -1)
        reference = _linear(query_pos, sd, "transformer.reference_points").sigmoid()
    inputs, hidden = [], []
    for i in range(layers):
        p = f"transformer.decoder.layers.{i}."
        inputs.append(reference)
        if reference.shape[-1] == 4:
            level_ref = reference[:, :, None] * torch.cat([ratios, ratios], -1)[:, None]
        else:
            level_ref = reference[:, :, None] * ratios[:, None]
        tgt = _reference_deformable_layer(sd, p, tgt, query_pos, level_ref, memory, shapes, mask, s)
        if s.with_box_refine:
            delta = _mlp(tgt, sd, f"bbox_embed.{i}")
            if reference.shape[-1] == 4:
                reference = (delta + _inverse_sigmoid(reference)).sigmoid()
            else:
                new = delta.clone()
                new[..., :2] = delta[..., :2] + _inverse_sigmoid(reference)
                reference = new.sigmoid()
        hidden.append(tgt)
    logits, boxes = [], []
    for i, (hs, ref) in enumerate(zip(hidden, inputs)):
        logits.append(_linear(hs, sd, f"class_embed.{i}"))
        delta = _mlp(hs, sd, f"bbox_embed.{i}")
        if ref.shape[-1] == 4:
            delta = delta + _inverse_sigmoid(ref)
        else:
            delta = torch.cat([delta[..., :2] + _inverse_sigmoid(ref), delta[..., 2:]], -1)
        boxes.append(delta.sigmoid())
    return torch.stack(logits), torch.stack(boxes)


def _dino_inverse_sigmoid(x):
    return _inverse_sigmoid(x, eps=1e-3)  # DINO's util.misc.inverse_sigmoid


def reference_dino_outputs(sd, batch: ImageList, s: Sizes = SMALL) -> dict[str, Tensor]:
    """Official DINO 4-scale forward without denoising queries: per-layer ``logits``
    (L, B, Q, 91) and ``boxes`` (L, B, Q, 4), and the selected proposals ``enc_logits``
    (B, Q, 91) / ``enc_boxes`` (B, Q, 4).

    One deliberate difference from the official code: proposals on padding (and near-border
    tokens) rank last in the top-k selection, as in this project (the official code ranks them
    by their score, which only matters on padded images).
    """
    d = s.hidden
    memory, mask, shapes, ratios = _reference_deformable_encoder(sd, batch, s, 20.0, 0.0)
    out_memory, proposals = _proposals(memory, mask, shapes, sd)
    enc_class = _linear(out_memory, sd, "transformer.enc_out_class_embed")
    enc_coords = _mlp(out_memory, sd, "transformer.enc_out_bbox_embed") + proposals
    scores = enc_class.max(-1).values.masked_fill(torch.isinf(proposals).any(-1), float("-inf"))
    top = torch.topk(scores, s.queries, dim=1)[1]
    enc_logits = torch.gather(enc_class, 1, top[..., None].repeat(1, 1, enc_class.shape[-1]))
    reference = torch.gather(enc_coords, 1, top[..., None].repeat(1, 1, 4)).sigmoid()
    enc_boxes = reference
    tgt = sd["transformer.tgt_embed.weight"][None].expand(memory.shape[0], -1, -1)
    references, hidden = [reference], []
    for i in range(s.dec_layers):
        p = f"transformer.decoder.layers.{i}."
        level_ref = reference[:, :, None] * torch.cat([ratios, ratios], -1)[:, None]
        sine = reference_query_sine(level_ref[:, :, 0], d // 2)
        query_pos = _mlp(sine, sd, "transformer.decoder.ref_point_head")
        tgt = _reference_deformable_layer(sd, p, tgt, query_pos, level_ref, memory, shapes, mask, s)
        delta = _mlp(tgt, sd, f"bbox_embed.{i}")  # the un-normalised output refines the anchor
        reference = (delta + _dino_inverse_sigmoid(reference)).sigmoid()
        references.append(reference)
        hidden.append(_ln(tgt, sd, "transformer.decoder.norm"))
    logits, boxes = [], []
    for i, hs in enumerate(hidden):
        logits.append(_linear(hs, sd, f"class_embed.{i}"))
        delta = _mlp(hs, sd, f"bbox_embed.{i}") + _dino_inverse_sigmoid(references[i])
        boxes.append(delta.sigmoid())
    return {
        "logits": torch.stack(logits),
        "boxes": torch.stack(boxes),
        "enc_logits": enc_logits,
        "enc_boxes": enc_boxes,
    }


def reference_dino(sd, batch: ImageList, s: Sizes = SMALL):
    """Official DINO: (logits (L, B, Q, 91), boxes (L, B, Q, 4)); see
    :func:`reference_dino_outputs`."""
    out = reference_dino_outputs(sd, batch, s)
    return out["logits"], out["boxes"]


REFERENCES = {
    "detr": reference_detr,
    "conditional_detr": reference_conditional_detr,
    "dab_detr": reference_dab_detr,
    "deformable_detr": reference_deformable_detr,
    "dino": reference_dino,
}


def reference_outputs(variant: str, sd, batch: ImageList, s: Sizes = SMALL):
    """Reference logits reduced to the 80 COCO classes (+ DETR's no-object) and boxes."""
    logits, boxes = REFERENCES[variant](sd, batch, s)
    index = list(COCO_CATEGORY_IDS) + ([91] if variant == "detr" else [])
    return logits[..., index], boxes


def sizes_of(**changes) -> Sizes:
    return replace(SMALL, **changes)


def model_layout(model) -> tuple[dict[str, torch.Size], list[tuple[str, ...]]]:
    """Shapes and shared-tensor groups of a built model (as ``target_layout`` gives them)."""
    state = model.state_dict(keep_vars=True)
    groups: dict[int, list[str]] = {}
    for key, value in state.items():
        groups.setdefault(id(value), []).append(key)
    return {k: v.shape for k, v in state.items()}, [tuple(g) for g in groups.values() if len(g) > 1]


def sizes_of_config(cfg, variant: str) -> Sizes:
    """The :class:`Sizes` of a packaged detector config (full-size teachers)."""
    m = cfg.model
    deformable = variant in ("deformable_detr", "dino")
    return Sizes(
        depth=m.backbone.depth,
        width=m.backbone.width,
        hidden=m.hidden_dim,
        heads=m.encoder.num_heads,
        ffn=m.encoder.ffn_dim,
        enc_layers=m.encoder.num_layers,
        dec_layers=m.decoder.num_layers,
        queries=m.num_queries,
        levels=m.encoder.num_levels if deformable else 4,
        points=m.encoder.num_points if deformable else 4,
        with_box_refine=bool(m.get("with_box_refine", False)),
        two_stage=bool(m.get("as_two_stage", False)),
        shared_heads=bool(m.get("share_heads", True)),
    )
