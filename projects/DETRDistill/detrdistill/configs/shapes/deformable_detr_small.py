# Deformable DETR (two-stage, box refinement), "small": an optional wider teacher for the
# embedded-data distillation configs (see common/distill_shapes.py). 1.5x wider backbone and
# transformer than the tiny student, 3 encoder layers, 4,000 iterations (16 epochs).
#   python train_net.py --config-file shapes/deformable_detr_small.py
from .deformable_detr_tiny import dataloader, lr_multiplier, model, optimizer, train

model.backbone.width = 48
model.hidden_dim = 192
model.position_embedding.num_pos_feats = 96
model.encoder.update(num_layers=3, ffn_dim=768)
model.decoder.update(num_layers=3, ffn_dim=768)
train.max_iter = 4000
train.eval_period = 2000
train.checkpointer.period = 1000
train.output_dir = "./output/shapes/deformable_detr_small"
