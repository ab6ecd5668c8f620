# Teacher: two-stage Deformable DETR R50 with box refinement, COCO 2017, from a published
# checkpoint.
#   official  46.9 AP  "++ two-stage Deformable DETR" (fundamentalvision/Deformable-DETR README)
#             https://drive.google.com/file/d/15I03A7hNTpwuLNdfuEmW9_taZMNVssEp/view
#   detrex    47.09 AP https://github.com/IDEA-Research/detrex-storage/releases/download/v0.1.0/converted_deformable_detr_two_stage_50ep.pth
#   detrex    48.2 AP (trained in detrex) https://github.com/IDEA-Research/detrex-storage/releases/download/v0.1.1/deformable_detr_r50_two_stage_50ep_new.pth
# Proposals: the converter copies the original's objectness row to every class row of
# enc_class_embed, so ranking by the class maximum selects the original's proposals.
# Convert: python -m detrdistill.convert --config teachers/deformable_detr_r50_two_stage.py \
#       <file> detrdistill://teachers/deformable_detr_r50_two_stage.pth
from ..coco.deformable_detr_r50_50ep import dataloader, lr_multiplier, model, optimizer, train

model.with_box_refine = True
model.as_two_stage = True
train.init_checkpoint = "detrdistill://teachers/deformable_detr_r50_two_stage.pth"
train.output_dir = "./output/teachers/deformable_detr_r50_two_stage"
