# Teacher: DETR R50, COCO 2017, from a published checkpoint.
#   official  42.0 AP (facebookresearch/detr README, 500 epochs)
#             https://dl.fbaipublicfiles.com/detr/detr-r50-e632da11.pth
#   detrex    42.0 AP https://github.com/IDEA-Research/detrex-storage/releases/download/v0.1.0/converted_detr_r50_500ep.pth
# Convert: python -m detrdistill.convert --config teachers/detr_r50.py <file> \
#       detrdistill://teachers/detr_r50.pth
from ..coco.detr_r50_50ep import dataloader, lr_multiplier, model, optimizer, train

train.init_checkpoint = "detrdistill://teachers/detr_r50.pth"
train.output_dir = "./output/teachers/detr_r50"
