# Teacher: DINO R50 4-scale, 12 epochs, COCO 2017, from the official release.
#   official  49.0 AP  checkpoint0011_4scale.pth (IDEA-Research/DINO README, model zoo folder)
#             https://drive.google.com/drive/folders/1qD5m1NmK0kjE5hh-G17XUX751WsEG-h_
# The official model encodes positions with temperature 20 and no offset (detrex: 10000, -0.5)
# and shares one class/box head between the decoder layers. detrex's DINO checkpoints need
# teachers/dino_r50_4scale_12ep_detrex.py. label_enc becomes the denoising label embedding
# (used only if the converted model is trained further: a teacher builds no denoising queries).
# Convert: python -m detrdistill.convert --config teachers/dino_r50_4scale_12ep.py \
#       checkpoint0011_4scale.pth detrdistill://teachers/dino_r50_4scale_12ep.pth
from ..coco.dino_r50_4scale_12ep import dataloader, lr_multiplier, model, optimizer, train

model.position_embedding.update(temperature=20, offset=0.0)
model.share_heads = True
train.init_checkpoint = "detrdistill://teachers/dino_r50_4scale_12ep.pth"
train.output_dir = "./output/teachers/dino_r50_4scale_12ep"
