# Teacher: DAB-DETR R50, COCO 2017, from a published checkpoint.
#   official  42.2 AP  (IDEA-Research/DAB-DETR, 50 epochs; Google Drive link in the README's
#             model zoo)
#             https://github.com/IDEA-Research/DAB-DETR#model-zoo
#   detrex    43.3 AP (trained in detrex) https://github.com/IDEA-Research/detrex-storage/releases/download/v0.1.0/dab_detr_r50_50ep.pth
# Only the single-pattern ResNet models convert: the 3-pattern variant's transformer.patterns
# and DC5 backbones have no counterpart here (the converter stops on them).
# Convert: python -m detrdistill.convert --config teachers/dab_detr_r50.py <file> \
#       detrdistill://teachers/dab_detr_r50.pth
from ..coco.dab_detr_r50_50ep import dataloader, lr_multiplier, model, optimizer, train

train.init_checkpoint = "detrdistill://teachers/dab_detr_r50.pth"
train.output_dir = "./output/teachers/dab_detr_r50"
