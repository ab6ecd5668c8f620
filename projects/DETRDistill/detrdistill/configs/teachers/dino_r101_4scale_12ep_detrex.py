# Teacher: DINO R101 4-scale, 12 epochs, COCO 2017, trained in detrex (the official repository
# releases no R101 model).
#   detrex    50.0 AP https://github.com/IDEA-Research/detrex-storage/releases/download/v0.1.1/dino_r101_4scale_12ep.pth
# detrex layout: one head per decoder layer, position encoding 10000 / -0.5.
# Convert: python -m detrdistill.convert --config teachers/dino_r101_4scale_12ep_detrex.py \
#       dino_r101_4scale_12ep.pth detrdistill://teachers/dino_r101_4scale_12ep_detrex.pth
from ..coco.dino_r101_4scale_12ep import dataloader, lr_multiplier, model, optimizer, train

model.share_heads = False
train.init_checkpoint = "detrdistill://teachers/dino_r101_4scale_12ep_detrex.pth"
train.output_dir = "./output/teachers/dino_r101_4scale_12ep_detrex"
