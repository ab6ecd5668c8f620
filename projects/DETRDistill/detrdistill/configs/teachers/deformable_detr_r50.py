# Teacher: Deformable DETR R50 (single-stage, no box refinement), COCO 2017, from a published
# checkpoint. Paper pair: R50 teacher -> R18 / MobileNetV2 student (DETRDistill's README rows).
#   official  44.5 AP  r50_deformable_detr-checkpoint.pth (fundamentalvision/Deformable-DETR README)
#             https://drive.google.com/file/d/1nDWZWHuRwtwGden77NLM9JoWe-YisJnA/view
#   detrex    44.59 AP https://github.com/IDEA-Research/detrex-storage/releases/download/v0.1.0/converted_deformable_detr_r50.pth
# Convert either file into the checkpoint named below (docs/converting_teachers.md):
#   python -m detrdistill.convert --config teachers/deformable_detr_r50.py <file> \
#       detrdistill://teachers/deformable_detr_r50.pth
from ..coco.deformable_detr_r50_50ep import dataloader, lr_multiplier, model, optimizer, train

train.init_checkpoint = "detrdistill://teachers/deformable_detr_r50.pth"
train.output_dir = "./output/teachers/deformable_detr_r50"
