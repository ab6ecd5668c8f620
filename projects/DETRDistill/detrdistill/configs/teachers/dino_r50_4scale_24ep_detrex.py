# Teacher: DINO R50 4-scale, 24 epochs, COCO 2017, trained in detrex.
#   detrex    50.6 AP https://github.com/IDEA-Research/detrex-storage/releases/download/v0.1.1/dino_r50_4scale_24ep.pth
# detrex layout: one head per decoder layer, position encoding 10000 / -0.5.
# Convert: python -m detrdistill.convert --config teachers/dino_r50_4scale_24ep_detrex.py \
#       dino_r50_4scale_24ep.pth detrdistill://teachers/dino_r50_4scale_24ep_detrex.pth
from ..coco.dino_r50_4scale_24ep import dataloader, lr_multiplier, model, optimizer, train

model.share_heads = False
train.init_checkpoint = "detrdistill://teachers/dino_r50_4scale_24ep_detrex.pth"
train.output_dir = "./output/teachers/dino_r50_4scale_24ep_detrex"
