"""ResNet backbones built from config values (depth, width, normalisation).

detectron2's ResNet is used as is; this module only chooses its stages so that LazyConfig files can
select R18/R50/R101 with ``model.backbone.depth=...`` and shrink the width for fast CPU runs.
"""

from detectron2.layers import ShapeSpec
from detectron2.modeling.backbone.resnet import BasicBlock, BasicStem, BottleneckBlock, ResNet

__all__ = ["build_resnet_backbone", "resnet_output_shapes", "RESNET_BLOCKS_PER_STAGE"]

RESNET_BLOCKS_PER_STAGE = {
    18: (2, 2, 2, 2),
    34: (3, 4, 6, 3),
    50: (3, 4, 6, 3),
    101: (3, 4, 23, 3),
    152: (3, 8, 36, 3),
}
_STAGE_NAMES = ("res2", "res3", "res4", "res5")


def build_resnet_backbone(
    *,
    depth: int = 50,
    out_features=("res5",),
    norm: str = "FrozenBN",
    freeze_at: int = 1,
    width: int = 64,
    stride_in_1x1: bool = False,
    input_channels: int = 3,
) -> ResNet:
    """Build a detectron2 :class:`ResNet`.

    Args:
        depth: 18, 34 (BasicBlock) or 50, 101, 152 (BottleneckBlock).
        out_features: stage names to return, subset of ``("stem", "res2", ..., "res5")``; stages
            after the last requested one are not built.
        norm: detectron2 norm name: "FrozenBN" for ImageNet-initialised backbones, "BN"/"SyncBN"/
            "GN" when training from scratch.
        freeze_at: number of leading blocks (stem = 1) whose weights are frozen; 0 trains all.
        width: stem channels; stage widths scale with it (64 = standard ResNet).
        stride_in_1x1: True for MSRA (caffe) weights, False for torchvision weights.
        input_channels: image channels.

    Returns:
        ResNet whose ``output_shape()`` gives channels and strides of ``out_features``.
    """
    if depth not in RESNET_BLOCKS_PER_STAGE:
        raise ValueError(
            f"model.backbone.depth={depth} is not supported; choose one of "
            f"{sorted(RESNET_BLOCKS_PER_STAGE)}"
        )
    out_features = tuple(out_features)
    unknown = [name for name in out_features if name not in ("stem",) + _STAGE_NAMES]
    if unknown:
        raise ValueError(f"model.backbone.out_features has unknown stage names {unknown}")
    last_stage = max(_STAGE_NAMES.index(n) for n in out_features if n != "stem") + 1

    stem = BasicStem(in_channels=input_channels, out_channels=width, norm=norm)
    bottleneck = depth >= 50
    block_class = BottleneckBlock if bottleneck else BasicBlock
    in_channels = width
    stages = []
    for index, num_blocks in enumerate(RESNET_BLOCKS_PER_STAGE[depth][:last_stage]):
        inner = width * 2**index
        out_channels = inner * 4 if bottleneck else inner
        kwargs = (
            {"bottleneck_channels": inner, "stride_in_1x1": stride_in_1x1} if bottleneck else {}
        )
        stages.append(
            ResNet.make_stage(
                block_class=block_class,
                num_blocks=num_blocks,
                stride_per_block=[1 if index == 0 else 2] + [1] * (num_blocks - 1),
                in_channels=in_channels,
                out_channels=out_channels,
                norm=norm,
                **kwargs,
            )
        )
        in_channels = out_channels
    return ResNet(stem, stages, out_features=list(out_features), freeze_at=freeze_at)


def resnet_output_shapes(*, depth: int = 50, width: int = 64) -> dict[str, ShapeSpec]:
    """Channels and strides of every stage of :func:`build_resnet_backbone`, without building it.

    Configs use this to size the input projection from ``model.backbone.depth``/``width`` by
    interpolation, so that switching R18/R50/R101 is a single override.
    """
    if depth not in RESNET_BLOCKS_PER_STAGE:
        raise ValueError(
            f"model.backbone.depth={depth} is not supported; choose one of "
            f"{sorted(RESNET_BLOCKS_PER_STAGE)}"
        )
    expansion = 4 if depth >= 50 else 1
    shapes = {"stem": ShapeSpec(channels=width, stride=4)}
    for index, name in enumerate(_STAGE_NAMES):
        shapes[name] = ShapeSpec(channels=width * 2**index * expansion, stride=4 * 2**index)
    return shapes
