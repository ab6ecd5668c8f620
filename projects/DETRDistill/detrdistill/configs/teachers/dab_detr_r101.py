# Teacher: DAB-DETR R101, COCO 2017, from a published checkpoint. Paper pair: R101 teacher ->
# R50 student (the DAB-DETR rows of the DETR-distillation papers).
#   detrex    44.0 AP (trained in detrex, 50 epochs)
#             https://github.com/IDEA-Research/detrex-storage/releases/download/v0.1.0/dab_detr_r101_50ep.pth
#   official  the DAB-DETR paper reports 43.5 AP for R101; IDEA-Research/DAB-DETR's model zoo
#             (Google Drive links in its README) lists R50 models; an R101 file in the official
#             layout converts the same way.
# Convert: python -m detrdistill.convert --config teachers/dab_detr_r101.py <file> \
#       detrdistill://teachers/dab_detr_r101.pth
from ..coco.dab_detr_r101_50ep import dataloader, lr_multiplier, model, optimizer, train

train.init_checkpoint = "detrdistill://teachers/dab_detr_r101.pth"
train.output_dir = "./output/teachers/dab_detr_r101"
