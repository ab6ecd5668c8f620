"""DETRDistill: knowledge distillation for DETR-family detectors in Detectron2."""
