"""DETRDistill: knowledge distillation for DETR-family detectors in Detectron2.

Importing the package registers everything with detectron2: the detectors and the distillation
wrapper in ``META_ARCH_REGISTRY``, the embedded datasets in ``DatasetCatalog``, the
``detrdistill://`` checkpoint prefix with ``PathManager`` and the ``DETRDistill/`` names with
``detectron2.model_zoo``.
"""

import warnings

# detectron2 and fvcore decorate functions with torch.jit.script at import time, which torch
# 2.x answers with a FutureWarning per function; silence exactly that while importing them.
with warnings.catch_warnings():
    warnings.filterwarnings(
        "ignore", message=r"`torch\.jit\.script` is deprecated", category=FutureWarning
    )
    from . import data, distill, model_zoo, modeling  # noqa: F401  (registration side effects)

__version__ = "0.1.0"
