# Teacher: Deformable DETR R101, COCO 2017. Paper pair: R101 teacher -> R50 student (DETRDistill).
#   No R101 checkpoint is published: neither fundamentalvision/Deformable-DETR nor detrex release
#   one, and DETRDistill's own teacher (44.8 AP in its README, trained with mmdetection) is not
#   downloadable. Train it with coco/deformable_detr_r101_50ep.py, or convert an R101 checkpoint
#   you trained with the official code (same layout as the R50 release):
#   python -m detrdistill.convert --config teachers/deformable_detr_r101.py <file> \
#       detrdistill://teachers/deformable_detr_r101.pth
from ..coco.deformable_detr_r101_50ep import dataloader, lr_multiplier, model, optimizer, train

train.init_checkpoint = "detrdistill://teachers/deformable_detr_r101.pth"
train.output_dir = "./output/teachers/deformable_detr_r101"
