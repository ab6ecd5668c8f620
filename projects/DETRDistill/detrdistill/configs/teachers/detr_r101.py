# Teacher: DETR R101, COCO 2017, from a published checkpoint.
#   official  43.5 AP (facebookresearch/detr README, 500 epochs)
#             https://dl.fbaipublicfiles.com/detr/detr-r101-2c7b67e5.pth
#   detrex    43.5 AP https://github.com/IDEA-Research/detrex-storage/releases/download/v0.1.0/converted_detr_r101_500ep.pth
# Convert: python -m detrdistill.convert --config teachers/detr_r101.py <file> \
#       detrdistill://teachers/detr_r101.pth
from ..coco.detr_r101_50ep import dataloader, lr_multiplier, model, optimizer, train

train.init_checkpoint = "detrdistill://teachers/detr_r101.pth"
train.output_dir = "./output/teachers/detr_r101"
