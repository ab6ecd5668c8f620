# DAB-DETR R50 (Liu et al.): 300 learned anchor boxes refined per layer, PReLU, no dropout.
from detrdistill.modeling import DABDETR
from detrdistill.modeling.transformers import DabDecoder

from .detr import model

model._target_ = DABDETR
model.decoder._target_ = DabDecoder
model.decoder.activation = "prelu"
model.decoder.dropout = 0.0
model.encoder.activation = "prelu"
model.encoder.dropout = 0.0
model.encoder.scale_pos_by_content = True
model.position_embedding.temperature = 20
model.num_queries = 300
model.loss_class_type = "focal"
model.criterion.matcher.cost_class = 2.0
model.criterion.weight_dict = {"loss_class": 1.0, "loss_bbox": 5.0, "loss_giou": 2.0}
