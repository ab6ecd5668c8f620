"""Image normalisation constants (RGB order, 0-255 pixel range)."""

__all__ = ["IMAGENET_RGB_MEAN", "IMAGENET_RGB_STD"]

# torchvision ImageNet statistics, as used by DETR-family models with torchvision backbones.
IMAGENET_RGB_MEAN = (123.675, 116.28, 103.53)
IMAGENET_RGB_STD = (58.395, 57.12, 57.375)
