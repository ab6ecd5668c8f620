# Conditional DETR R50 (Meng et al.): 300 queries, conditional spatial queries, focal loss.
from detectron2.config import LazyCall as L

from detrdistill.modeling import ConditionalDETR
from detrdistill.modeling.transformers import ConditionalDecoder

from .detr import model

model._target_ = ConditionalDETR
model.decoder._target_ = ConditionalDecoder
model.num_queries = 300
model.loss_class_type = "focal"
model.criterion.matcher.cost_class = 2.0
model.criterion.weight_dict = {"loss_class": 2.0, "loss_bbox": 5.0, "loss_giou": 2.0}
del L
