# DETRDistill, all three components, embedded shapes data: the shipped tiny Deformable DETR
# teacher (configs/common/distill_shapes.py) -> the tiny DINO (shapes/dino_tiny.py), a
# heterogeneous pair: the teacher's queries enter the DINO decoder as anchors + content (DINO
# derives positional queries from anchors).
#   python train_net.py --config-file detrdistill/shapes_dino_tiny.py
from ..common.distill_losses import detrdistill_losses as _losses
from ..common.distill_losses import detrdistill_weights as _weights
from ..common.distill_shapes import dataloader, lr_multiplier, model, optimizer, train
from ..shapes.dino_tiny import model as _student

model.student = _student
model.losses = {name: _losses[name] for name in ("logits", "feature", "query_prior")}
model.loss_weights = {name: _weights[name] for name in model.losses}
train.output_dir = "./output/detrdistill/shapes_dino_tiny"
