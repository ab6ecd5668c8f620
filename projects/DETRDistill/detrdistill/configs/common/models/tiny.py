# Sizes of the tiny CPU models used on the embedded shapes dataset (not a model by itself):
# a ResNet-18 layout at half width trained from scratch with BatchNorm, and a 128-wide transformer.
from detectron2.config import LazyCall as L

from detrdistill.modeling import build_resnet_backbone

backbone = L(build_resnet_backbone)(
    depth=18, width=32, out_features=["res3", "res4", "res5"], norm="BN", freeze_at=0
)
transformer = dict(num_heads=8, ffn_dim=512, dropout=0.0)
size = dict(hidden_dim=128, num_queries=30, num_classes=5)
# The same backbone trained (from scratch, inside the shipped Deformable DETR teacher) on
# shapes_train: the dense-attention detectors start from it, as they start from ImageNet weights
# on COCO (from scratch they do not learn in a CPU budget; see the README).
pretrained_backbone = "detrdistill://shipped/shapes_resnet18_w32_backbone.pth"
# The 16-wide backbone of the nano students, trained inside the nano Deformable DETR
# (shapes/deformable_detr_nano_backbone_source.py).
nano_pretrained_backbone = "detrdistill://shipped/shapes_resnet18_w16_backbone.pth"
