# Teacher: DINO R50 4-scale, 24 epochs, COCO 2017, from the official release.
#   official  50.4 AP  checkpoint0023_4scale.pth (IDEA-Research/DINO README, model zoo folder)
#             https://drive.google.com/drive/folders/1qD5m1NmK0kjE5hh-G17XUX751WsEG-h_
# Same model as teachers/dino_r50_4scale_12ep.py (official position encoding, shared heads).
# Convert: python -m detrdistill.convert --config teachers/dino_r50_4scale_24ep.py \
#       checkpoint0023_4scale.pth detrdistill://teachers/dino_r50_4scale_24ep.pth
from ..coco.dino_r50_4scale_24ep import dataloader, lr_multiplier, model, optimizer, train

model.position_embedding.update(temperature=20, offset=0.0)
model.share_heads = True
train.init_checkpoint = "detrdistill://teachers/dino_r50_4scale_24ep.pth"
train.output_dir = "./output/teachers/dino_r50_4scale_24ep"
