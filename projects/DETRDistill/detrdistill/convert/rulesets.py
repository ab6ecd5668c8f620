"""Conversion tables: one :class:`~detrdistill.convert.rules.RuleSet` per (variant, source).

Variants are this project's detectors (``detr``, ``conditional_detr``, ``dab_detr``,
``deformable_detr``, ``dino``); sources are the layouts of the official repositories
(``official``: facebookresearch/detr, Atten4Vis/ConditionalDETR, IDEA-Research/DAB-DETR,
fundamentalvision/Deformable-DETR, IDEA-Research/DINO) and of detrex's model zoo (``detrex``).
The tables are composed from small blocks (backbone, attention, FFN, heads) so that what two
layouts share is written once.
"""

from __future__ import annotations

import re

from .rules import NUM_LAYERS_TOKEN, Alias, Create, Drop, Rename, Rule, RuleSet, SharedHead, Split
from .transforms import CocoClassRows, ObjectnessRows, ReorderInputBlocks

__all__ = ["RULE_SETS", "SOURCES", "VARIANTS", "get_rule_set"]

VARIANTS = ("detr", "conditional_detr", "dab_detr", "deformable_detr", "dino")
SOURCES = ("official", "detrex")

_P = r"(?P<p>weight|bias)"
_BN = r"(?P<p>weight|bias|running_mean|running_var)"
_N = r"(?P<n>\d+)"  # layer index
_L = NUM_LAYERS_TOKEN
_QKV = "rows of the packed q/k/v input projection"
_MSDA = r"(?P<m>sampling_offsets|attention_weights|value_proj|output_proj)"


def _plus_one(name: str, out: str):
    """Template field ``out`` = group ``name`` + 1 (layer1 -> res2, norms.0 -> norm1)."""
    return lambda groups, context: {out: int(groups[name]) + 1}


# ---------------------------------------------------------------------------------- backbone
_BN_COUNTER = "BatchNorm update counter; the frozen BatchNorm of this model keeps none"
_TORCHVISION_BLOCK = r"backbone\.0\.body\.layer(?P<s>[1-4])\.(?P<b>\d+)\."
TORCHVISION_RESNET: tuple[Rule, ...] = (
    Rename(r"backbone\.0\.body\.conv1\.weight", "backbone.stem.conv1.weight"),
    Rename(rf"backbone\.0\.body\.bn1\.{_BN}", "backbone.stem.conv1.norm.{p}"),
    Rename(
        _TORCHVISION_BLOCK + r"conv(?P<c>[1-3])\.weight",
        "backbone.res{res}.{b}.conv{c}.weight",
        fields=_plus_one("s", "res"),
    ),
    Rename(
        _TORCHVISION_BLOCK + rf"bn(?P<c>[1-3])\.{_BN}",
        "backbone.res{res}.{b}.conv{c}.norm.{p}",
        fields=_plus_one("s", "res"),
    ),
    Rename(
        _TORCHVISION_BLOCK + r"downsample\.0\.weight",
        "backbone.res{res}.{b}.shortcut.weight",
        fields=_plus_one("s", "res"),
    ),
    Rename(
        _TORCHVISION_BLOCK + rf"downsample\.1\.{_BN}",
        "backbone.res{res}.{b}.shortcut.norm.{p}",
        fields=_plus_one("s", "res"),
    ),
    Drop(r"backbone\.0\.body\..*num_batches_tracked", _BN_COUNTER),
)
DETECTRON2_RESNET: tuple[Rule, ...] = (
    Drop(r"backbone\..*num_batches_tracked", _BN_COUNTER),
    Rename(r"backbone\.(?P<rest>(stem|res[2-5])\..+)", "backbone.{rest}"),
)


# ---------------------------------------------------------------------------------- blocks
def _packed_attention(src: str, dst: str) -> tuple[Rule, ...]:
    """``nn.MultiheadAttention`` (``in_proj_*`` + ``out_proj``) -> q/k/v/out projections."""
    return (
        Split(
            src + rf"\.in_proj_{_P}",
            tuple(dst + f".{name}_proj.{{p}}" for name in "qkv"),
            note=_QKV,
        ),
        Rename(src + rf"\.out_proj\.{_P}", dst + ".out_proj.{p}"),
    )


def _official_ffn(layer: str, dst: str) -> tuple[Rule, ...]:
    """``linear1``/``linear2`` (and a PReLU ``activation``) of an official transformer layer."""
    return (
        Rename(layer + rf"\.linear(?P<k>[12])\.{_P}", dst + ".ffn.linear{k}.{p}"),
        Rename(layer + r"\.activation\.weight", dst + ".ffn.activation.weight"),
    )


def _detrex_ffn(layer: str, dst: str) -> tuple[Rule, ...]:
    """detrex's ``FFN``: ``layers.0.0`` Linear, ``layers.0.1`` activation, ``layers.1`` Linear."""
    return (
        Rename(layer + rf"\.ffns\.0\.layers\.0\.0\.{_P}", dst + ".ffn.linear1.{p}"),
        Rename(layer + r"\.ffns\.0\.layers\.0\.1\.weight", dst + ".ffn.activation.weight"),
        Rename(layer + rf"\.ffns\.0\.layers\.1\.{_P}", dst + ".ffn.linear2.{p}"),
    )


def _detrex_norms(layer: str, dst: str) -> tuple[Rule, ...]:
    """detrex's ``norms.{k}`` in order of use -> ``norm{k+1}``."""
    return (
        Rename(
            layer + rf"\.norms\.(?P<k>[0-2])\.{_P}",
            dst + ".norm{k1}.{p}",
            fields=_plus_one("k", "k1"),
        ),
    )


def _mlp(src: str, dst: str) -> Rule:
    return Rename(src + rf"\.layers\.(?P<j>\d+)\.{_P}", dst + ".layers.{j}.{p}")


def _single_level_input(src: str) -> tuple[Rule, ...]:
    return (Rename(src + rf"\.{_P}", "neck.convs.0.0.{p}"),)


def _shared_heads(with_no_object: bool, aliases: tuple[str, ...] = ()) -> tuple[Rule, ...]:
    rules: list[Rule] = [
        SharedHead(
            rf"class_embed\.{_P}", "class_embed.{i}.{p}", transform=CocoClassRows(with_no_object)
        ),
        SharedHead(rf"bbox_embed\.layers\.(?P<j>\d+)\.{_P}", "bbox_embed.{i}.layers.{j}.{p}"),
    ]
    for alias in aliases:
        rules.insert(
            0,
            Alias(
                alias + r"\.bbox_embed\.(?P<rest>.+)",
                r"bbox_embed.\g<rest>",
                "second name of the box head (the decoder refines anchors with it)",
            ),
        )
    return tuple(rules)


# ---------------------------------------------------------------------------------- encoders
def _official_detr_encoder() -> tuple[Rule, ...]:
    layer = rf"transformer\.encoder\.layers\.{_N}"
    dst = "encoder.layers.{n}"
    return (
        *_packed_attention(layer + r"\.self_attn", dst + ".self_attn"),
        *_official_ffn(layer, dst),
        Rename(layer + rf"\.norm(?P<k>[12])\.{_P}", dst + ".norm{k}.{p}"),
        _mlp(r"transformer\.encoder\.query_scale", "encoder.query_scale"),  # DAB-DETR
    )


def _detrex_detr_encoder() -> tuple[Rule, ...]:
    layer = rf"transformer\.encoder\.layers\.{_N}"
    dst = "encoder.layers.{n}"
    return (
        *_packed_attention(layer + r"\.attentions\.0\.attn", dst + ".self_attn"),
        *_detrex_ffn(layer, dst),
        *_detrex_norms(layer, dst),
        _mlp(r"transformer\.encoder\.query_scale", "encoder.query_scale"),  # DAB-DETR
    )


# ---------------------------------------------------------------------------------- decoders
def _official_detr_decoder() -> tuple[Rule, ...]:
    layer = rf"transformer\.decoder\.layers\.{_N}"
    dst = "decoder.layers.{n}"
    return (
        *_packed_attention(layer + r"\.self_attn", dst + ".self_attn"),
        *_packed_attention(layer + r"\.multihead_attn", dst + ".cross_attn"),
        *_official_ffn(layer, dst),
        Rename(layer + rf"\.norm(?P<k>[1-3])\.{_P}", dst + ".norm{k}.{p}"),
        Rename(rf"transformer\.decoder\.norm\.{_P}", "decoder.norm.{p}"),
    )


def _detrex_detr_decoder() -> tuple[Rule, ...]:
    layer = rf"transformer\.decoder\.layers\.{_N}"
    dst = "decoder.layers.{n}"
    return (
        *_packed_attention(layer + r"\.attentions\.0\.attn", dst + ".self_attn"),
        *_packed_attention(layer + r"\.attentions\.1\.attn", dst + ".cross_attn"),
        *_detrex_ffn(layer, dst),
        *_detrex_norms(layer, dst),
        Rename(rf"transformer\.decoder\.post_norm_layer\.{_P}", "decoder.norm.{p}"),
    )


# Official Conditional/DAB-DETR projection names -> this project's attention submodules.
_CONDITIONAL_PROJECTIONS = {
    "sa_qcontent_proj": "self_attn.query_content_proj",
    "sa_qpos_proj": "self_attn.query_pos_proj",
    "sa_kcontent_proj": "self_attn.key_content_proj",
    "sa_kpos_proj": "self_attn.key_pos_proj",
    "sa_v_proj": "self_attn.value_proj",
    "self_attn.out_proj": "self_attn.out_proj",
    "ca_qcontent_proj": "cross_attn.query_content_proj",
    "ca_qpos_proj": "cross_attn.query_pos_proj",
    "ca_qpos_sine_proj": "cross_attn.query_pos_sine_proj",
    "ca_kcontent_proj": "cross_attn.key_content_proj",
    "ca_kpos_proj": "cross_attn.key_pos_proj",
    "ca_v_proj": "cross_attn.value_proj",
    "cross_attn.out_proj": "cross_attn.out_proj",
}
_CONDITIONAL_HEADS = ("query_scale", "ref_point_head", "ref_anchor_head")


def _official_conditional_decoder() -> tuple[Rule, ...]:
    layer = rf"transformer\.decoder\.layers\.{_N}"
    dst = "decoder.layers.{n}"
    projections = tuple(
        Rename(layer + rf"\.{re.escape(src)}\.{_P}", dst + f".{ours}.{{p}}")
        for src, ours in _CONDITIONAL_PROJECTIONS.items()
    )
    return (
        *projections,
        *_official_ffn(layer, dst),
        Rename(layer + rf"\.norm(?P<k>[1-3])\.{_P}", dst + ".norm{k}.{p}"),
        *(_mlp(rf"transformer\.decoder\.{head}", f"decoder.{head}") for head in _CONDITIONAL_HEADS),
        Rename(rf"transformer\.decoder\.norm\.{_P}", "decoder.norm.{p}"),
    )


def _detrex_conditional_decoder() -> tuple[Rule, ...]:
    layer = rf"transformer\.decoder\.layers\.{_N}"
    dst = "decoder.layers.{n}"
    attention = r"(?P<proj>(query|key)_(content|pos)_proj|query_pos_sine_proj|value_proj|out_proj)"
    return (
        Rename(layer + rf"\.attentions\.0\.{attention}\.{_P}", dst + ".self_attn.{proj}.{p}"),
        Rename(layer + rf"\.attentions\.1\.{attention}\.{_P}", dst + ".cross_attn.{proj}.{p}"),
        *_detrex_ffn(layer, dst),
        *_detrex_norms(layer, dst),
        *(_mlp(rf"transformer\.decoder\.{head}", f"decoder.{head}") for head in _CONDITIONAL_HEADS),
        Rename(rf"transformer\.decoder\.post_norm_layer\.{_P}", "decoder.norm.{p}"),
    )


# ---------------------------------------------------------------------------------- Deformable
def _neck_level(groups: dict[str, str], context) -> dict[str, str]:
    """Official ``input_proj.{l}``: backbone levels first, then the extra strided levels."""
    level, convs = int(groups["l"]), context.num_neck_convs
    name = f"convs.{level}" if level < convs else f"extra_convs.{level - convs}"
    return {"level": name}


def _deformable_norm(groups: dict[str, str], context) -> dict[str, str]:
    """Official decoder norm1 (after cross-attention) -> norm2, norm2 (after self-) -> norm1."""
    return {"k": {"1": "2", "2": "1"}[groups["k"]]}


def _deformable_heads(alias_prefix: str) -> tuple[Rule, ...]:
    """Per-layer heads, the two-stage proposal heads at index L, and their decoder aliases."""
    return (
        Alias(
            alias_prefix + r"\.(?P<head>class_embed|bbox_embed)\.(?P<rest>\d+\..+)",
            r"\g<head>.\g<rest>",
            "second name of a prediction head (the decoder refines boxes / ranks proposals "
            "with it)",
        ),
        Rename(rf"class_embed\.{_L}\.{_P}", "enc_class_embed.{p}", transform=ObjectnessRows()),
        Rename(rf"bbox_embed\.{_L}\.layers\.(?P<j>\d+)\.{_P}", "enc_bbox_embed.layers.{j}.{p}"),
        Rename(
            rf"class_embed\.{_N}\.{_P}",
            "class_embed.{n}.{p}",
            transform=CocoClassRows(with_no_object=False),
        ),
        Rename(rf"bbox_embed\.{_N}\.layers\.(?P<j>\d+)\.{_P}", "bbox_embed.{n}.layers.{j}.{p}"),
    )


def _two_stage(prefix: str, norm_names: str = "enc_output_norm") -> tuple[Rule, ...]:
    return (
        Rename(prefix + rf"\.enc_output\.{_P}", "enc_output.{p}"),
        Rename(prefix + rf"\.(?:{norm_names})\.{_P}", "enc_output_norm.{p}"),
        Rename(
            prefix + r"\.pos_trans\.weight",
            "pos_trans.weight",
            transform=ReorderInputBlocks(),
        ),
        Rename(prefix + r"\.pos_trans\.bias", "pos_trans.bias"),
        Rename(prefix + rf"\.pos_trans_norm\.{_P}", "pos_trans_norm.{p}"),
    )


def _official_deformable_body() -> tuple[Rule, ...]:
    """Backbone, input projection and transformer layers of the official Deformable DETR layout
    (shared by Deformable DETR and DINO)."""
    enc = rf"transformer\.encoder\.layers\.{_N}"
    dec = rf"transformer\.decoder\.layers\.{_N}"
    return (
        *TORCHVISION_RESNET,
        Rename(
            rf"input_proj\.(?P<l>\d+)\.(?P<i>[01])\.{_P}",
            "neck.{level}.{i}.{p}",
            fields=_neck_level,
        ),
        Rename(r"transformer\.level_embed", "encoder.level_embed"),
        Rename(enc + rf"\.self_attn\.{_MSDA}\.{_P}", "encoder.layers.{n}.self_attn.{m}.{p}"),
        *_official_ffn(enc, "encoder.layers.{n}"),
        Rename(enc + rf"\.norm(?P<k>[12])\.{_P}", "encoder.layers.{n}.norm{k}.{p}"),
        Rename(dec + rf"\.cross_attn\.{_MSDA}\.{_P}", "decoder.layers.{n}.cross_attn.{m}.{p}"),
        *_packed_attention(dec + r"\.self_attn", "decoder.layers.{n}.self_attn"),
        *_official_ffn(dec, "decoder.layers.{n}"),
        Rename(
            dec + rf"\.norm(?P<k>[12])\.{_P}",
            "decoder.layers.{n}.norm{k}.{p}",
            fields=_deformable_norm,
            note="norm1/norm2 swapped: this decoder numbers its norms in order of use "
            "(official: norm2 after self-attention, norm1 after cross-attention)",
        ),
        Rename(dec + rf"\.norm3\.{_P}", "decoder.layers.{n}.norm3.{p}"),
    )


def _official_deformable() -> tuple[Rule, ...]:
    return (
        Rename(r"query_embed\.weight", "query_embedding.weight"),  # (Q, 2D) = [pos | content]
        Rename(rf"transformer\.reference_points\.{_P}", "reference_points.{p}"),
        *_deformable_heads(r"transformer\.decoder"),
        *_two_stage(r"transformer"),
        *_official_deformable_body(),
    )


def _detrex_deformable_body() -> tuple[Rule, ...]:
    """Backbone, neck and transformer layers of detrex's Deformable DETR layout (shared by
    Deformable DETR and DINO)."""
    enc = rf"transformer\.encoder\.layers\.{_N}"
    dec = rf"transformer\.decoder\.layers\.{_N}"
    neck = r"neck\.(?P<kind>convs|extra_convs)\.(?P<l>\d+)"
    return (
        *DETECTRON2_RESNET,
        Rename(neck + rf"\.conv\.{_P}", "neck.{kind}.{l}.0.{p}"),
        Rename(neck + rf"\.norm\.{_P}", "neck.{kind}.{l}.1.{p}"),
        Rename(r"transformer\.level_embeds", "encoder.level_embed"),
        Rename(enc + rf"\.attentions\.0\.{_MSDA}\.{_P}", "encoder.layers.{n}.self_attn.{m}.{p}"),
        *_detrex_ffn(enc, "encoder.layers.{n}"),
        *_detrex_norms(enc, "encoder.layers.{n}"),
        *_packed_attention(dec + r"\.attentions\.0\.attn", "decoder.layers.{n}.self_attn"),
        Rename(dec + rf"\.attentions\.1\.{_MSDA}\.{_P}", "decoder.layers.{n}.cross_attn.{m}.{p}"),
        *_detrex_ffn(dec, "decoder.layers.{n}"),
        *_detrex_norms(dec, "decoder.layers.{n}"),
    )


def _detrex_deformable() -> tuple[Rule, ...]:
    return (
        Rename(r"query_embedding\.weight", "query_embedding.weight"),
        Rename(rf"transformer\.reference_points\.{_P}", "reference_points.{p}"),
        *_deformable_heads(r"transformer\.decoder"),
        # detrex releases spelled the norm "enc_outpout_norm" for a while
        *_two_stage(r"transformer", norm_names="enc_output_norm|enc_outpout_norm"),
        *_detrex_deformable_body(),
    )


# ---------------------------------------------------------------------------------- DINO


def _dino_decoder_heads() -> tuple[Rule, ...]:
    """Per-layer heads, their decoder aliases, the anchor head and the final decoder norm."""
    return (
        Alias(
            r"transformer\.decoder\.(?P<head>class_embed|bbox_embed)\.(?P<rest>\d+\..+)",
            r"\g<head>.\g<rest>",
            "second name of a prediction head (the decoder refines anchors with it)",
        ),
        Rename(
            rf"class_embed\.{_N}\.{_P}",
            "class_embed.{n}.{p}",
            transform=CocoClassRows(with_no_object=False),
        ),
        Rename(rf"bbox_embed\.{_N}\.layers\.(?P<j>\d+)\.{_P}", "bbox_embed.{n}.layers.{j}.{p}"),
        _mlp(r"transformer\.decoder\.ref_point_head", "decoder.ref_point_head"),
        Rename(rf"transformer\.decoder\.norm\.{_P}", "decoder.norm.{p}"),
        Rename(r"transformer\.tgt_embed\.weight", "tgt_embed.weight"),
        Rename(rf"transformer\.enc_output\.{_P}", "enc_output.{p}"),
        Rename(rf"transformer\.enc_output_norm\.{_P}", "enc_output_norm.{p}"),
        # the denoising label embedding (official: 92 rows by category id; detrex: 80)
        Rename(
            r"label_enc\.weight",
            "denoising.label_embed.weight",
            transform=CocoClassRows(with_no_object=False, id_rows=92),
        ),
    )


def _official_dino() -> tuple[Rule, ...]:
    """IDEA-Research/DINO: the official Deformable DETR body plus DINO's parts; the proposal
    heads are ``transformer.enc_out_{class,bbox}_embed`` (91 class rows by category id)."""
    return (
        Rename(
            rf"transformer\.enc_out_class_embed\.{_P}",
            "enc_class_embed.{p}",
            transform=CocoClassRows(with_no_object=False),
        ),
        _mlp(r"transformer\.enc_out_bbox_embed", "enc_bbox_embed"),
        *_dino_decoder_heads(),
        *_official_deformable_body(),
    )


def _detrex_dino() -> tuple[Rule, ...]:
    """detrex projects/dino: detrex's Deformable DETR body plus DINO's parts; the proposal heads
    are ``class_embed.{L}`` / ``bbox_embed.{L}`` (80 class rows)."""
    return (
        Rename(
            rf"class_embed\.{_L}\.{_P}",
            "enc_class_embed.{p}",
            transform=CocoClassRows(with_no_object=False),
        ),
        Rename(rf"bbox_embed\.{_L}\.layers\.(?P<j>\d+)\.{_P}", "enc_bbox_embed.layers.{j}.{p}"),
        *_dino_decoder_heads(),
        *_detrex_deformable_body(),
    )


# ---------------------------------------------------------------------------------- tables
_ANCHOR_CENTERS = (
    "fixed anchor centres (model.random_anchor_centers=True): sigmoid of the first two "
    "columns of the frozen anchor table"
)


def _anchor_centers(source_key: str) -> Create:
    return Create(
        "anchor_centers", (source_key,), lambda w: w[:, :2].sigmoid().clone(), _ANCHOR_CENTERS
    )


RULE_SETS: dict[tuple[str, str], RuleSet] = {
    ("detr", "official"): RuleSet(
        "detr",
        "official",
        (
            *TORCHVISION_RESNET,
            *_single_level_input(r"input_proj"),
            Rename(r"query_embed\.weight", "query_embed.weight"),
            *_shared_heads(with_no_object=True),
            *_official_detr_encoder(),
            *_official_detr_decoder(),
        ),
        description="facebookresearch/detr (detr-r50/r101-*.pth)",
    ),
    ("detr", "detrex"): RuleSet(
        "detr",
        "detrex",
        (
            *DETECTRON2_RESNET,
            *_single_level_input(r"input_proj"),
            Rename(r"query_embed\.weight", "query_embed.weight"),
            *_shared_heads(with_no_object=True),
            *_detrex_detr_encoder(),
            *_detrex_detr_decoder(),
        ),
        description="detrex projects/detr (converted_detr_*.pth)",
    ),
    ("conditional_detr", "official"): RuleSet(
        "conditional_detr",
        "official",
        (
            *TORCHVISION_RESNET,
            *_single_level_input(r"input_proj"),
            Rename(r"query_embed\.weight", "query_embed.weight"),
            *_shared_heads(with_no_object=False),
            *_official_detr_encoder(),
            *_official_conditional_decoder(),
        ),
        description="Atten4Vis/ConditionalDETR (ConditionalDETR_r50/r101_epoch50.pth)",
    ),
    ("conditional_detr", "detrex"): RuleSet(
        "conditional_detr",
        "detrex",
        (
            *DETECTRON2_RESNET,
            *_single_level_input(r"input_proj"),
            Rename(r"query_embed\.weight", "query_embed.weight"),
            *_shared_heads(with_no_object=False),
            *_detrex_detr_encoder(),
            *_detrex_conditional_decoder(),
        ),
        description="detrex projects/conditional_detr (conditional_detr_*.pth)",
    ),
    ("dab_detr", "official"): RuleSet(
        "dab_detr",
        "official",
        (
            *TORCHVISION_RESNET,
            *_single_level_input(r"input_proj"),
            Rename(r"refpoint_embed\.weight", "anchor_box_embed.weight"),
            *_shared_heads(with_no_object=False, aliases=(r"transformer\.decoder",)),
            *_official_detr_encoder(),
            *_official_conditional_decoder(),
        ),
        creates=(_anchor_centers("refpoint_embed.weight"),),
        description="IDEA-Research/DAB-DETR (single pattern, ResNet)",
    ),
    ("dab_detr", "detrex"): RuleSet(
        "dab_detr",
        "detrex",
        (
            *DETECTRON2_RESNET,
            *_single_level_input(r"input_proj"),
            Rename(r"anchor_box_embed\.weight", "anchor_box_embed.weight"),
            *_shared_heads(with_no_object=False, aliases=(r"transformer\.decoder",)),
            *_detrex_detr_encoder(),
            *_detrex_conditional_decoder(),
        ),
        creates=(_anchor_centers("anchor_box_embed.weight"),),
        description="detrex projects/dab_detr (dab_detr_r50/r101_50ep.pth)",
    ),
    ("deformable_detr", "official"): RuleSet(
        "deformable_detr",
        "official",
        _official_deformable(),
        description="fundamentalvision/Deformable-DETR (plain, box refinement, two-stage)",
    ),
    ("deformable_detr", "detrex"): RuleSet(
        "deformable_detr",
        "detrex",
        _detrex_deformable(),
        description="detrex projects/deformable_detr (plain, box refinement, two-stage)",
    ),
    ("dino", "official"): RuleSet(
        "dino",
        "official",
        _official_dino(),
        description="IDEA-Research/DINO (4-scale ResNet, checkpoint00{11,23,33}_4scale.pth)",
    ),
    ("dino", "detrex"): RuleSet(
        "dino",
        "detrex",
        _detrex_dino(),
        description="detrex projects/dino (dino_r50/r101_4scale_*.pth)",
    ),
}


def get_rule_set(variant: str, source: str) -> RuleSet:
    """The table for ``variant`` (see :data:`VARIANTS`) from ``source`` (:data:`SOURCES`)."""
    try:
        return RULE_SETS[(variant, source)]
    except KeyError:
        raise ValueError(
            f"no conversion table for variant {variant!r} from {source!r}; variants: "
            f"{', '.join(VARIANTS)}; sources: {', '.join(SOURCES)}"
        ) from None
