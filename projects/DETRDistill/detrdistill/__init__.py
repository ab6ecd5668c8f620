"""DETRDistill: knowledge distillation for DETR-family detectors in Detectron2.

Importing the package registers everything with detectron2: the detectors and the distillation
wrapper in ``META_ARCH_REGISTRY``, the embedded datasets in ``DatasetCatalog``, the
``detrdistill://`` checkpoint prefix with ``PathManager`` and the ``DETRDistill/`` names with
``detectron2.model_zoo``.
"""

from . import data, distill, model_zoo, modeling  # noqa: F401  (registration side effects)

__version__ = "0.1.0"
