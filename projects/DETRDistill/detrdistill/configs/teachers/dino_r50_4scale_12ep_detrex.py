# Teacher: DINO R50 4-scale, 12 epochs, COCO 2017, trained in detrex.
#   detrex    49.2 AP https://github.com/IDEA-Research/detrex-storage/releases/download/v0.2.0/dino_r50_4scale_12ep_49_2AP.pth
# detrex's DINO has one class/box head per decoder layer (share_heads=False) and encodes
# positions with temperature 10000, offset -0.5 (this project's DINO default).
# Convert: python -m detrdistill.convert --config teachers/dino_r50_4scale_12ep_detrex.py \
#       dino_r50_4scale_12ep_49_2AP.pth detrdistill://teachers/dino_r50_4scale_12ep_detrex.pth
from ..coco.dino_r50_4scale_12ep import dataloader, lr_multiplier, model, optimizer, train

model.share_heads = False
train.init_checkpoint = "detrdistill://teachers/dino_r50_4scale_12ep_detrex.pth"
train.output_dir = "./output/teachers/dino_r50_4scale_12ep_detrex"
