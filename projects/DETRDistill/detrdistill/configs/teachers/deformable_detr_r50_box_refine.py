# Teacher: Deformable DETR R50 with iterative box refinement, COCO 2017, from a published
# checkpoint.
#   official  46.2 AP  r50_deformable_detr_plus_iterative_bbox_refinement-checkpoint.pth
#             (fundamentalvision/Deformable-DETR README)
#             https://drive.google.com/file/d/1JYKyRYzUH7uo9eVfDaVCiaIGZb5YTCuI/view
#   detrex    46.28 AP https://github.com/IDEA-Research/detrex-storage/releases/download/v0.1.0/converted_deformable_detr_r50_with_box_refine_50ep.pth
#   detrex    47.0 AP (trained in detrex) https://github.com/IDEA-Research/detrex-storage/releases/download/v0.1.1/deformable_detr_with_box_refinement_50ep_new.pth
# Convert: python -m detrdistill.convert --config teachers/deformable_detr_r50_box_refine.py \
#       <file> detrdistill://teachers/deformable_detr_r50_box_refine.pth
from ..coco.deformable_detr_r50_50ep import dataloader, lr_multiplier, model, optimizer, train

model.with_box_refine = True
train.init_checkpoint = "detrdistill://teachers/deformable_detr_r50_box_refine.pth"
train.output_dir = "./output/teachers/deformable_detr_r50_box_refine"
