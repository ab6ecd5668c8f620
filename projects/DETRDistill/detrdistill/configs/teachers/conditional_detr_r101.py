# Teacher: Conditional DETR R101, COCO 2017, from a published checkpoint. Paper pair: R101
# teacher -> R50 student (DETRDistill, D3ETR).
#   official  42.8 AP  (Atten4Vis/ConditionalDETR README, 50 epochs)
#             https://pkueducn-my.sharepoint.com/:u:/g/personal/pkucxk_pku_edu_cn/EXTH01VuhzNEn9W_5Zg_dsEBkutCNBOoZYhV1ew7UVwo8Q?e=2xS3eO
#   detrex    43.0 AP  https://github.com/IDEA-Research/detrex-storage/releases/download/v0.1.0/converted_conditional_detr_r101_50ep.pth
# Convert: python -m detrdistill.convert --config teachers/conditional_detr_r101.py <file> \
#       detrdistill://teachers/conditional_detr_r101.pth
from ..coco.conditional_detr_r101_50ep import dataloader, lr_multiplier, model, optimizer, train

train.init_checkpoint = "detrdistill://teachers/conditional_detr_r101.pth"
train.output_dir = "./output/teachers/conditional_detr_r101"
