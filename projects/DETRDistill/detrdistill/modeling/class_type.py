"""The classification type of a DETR-family detector, decided by one config key.

``"focal"``: sigmoid scores over K = num_classes logits, sigmoid focal loss and focal matching
cost (Deformable DETR and later). ``"softmax"``: K = num_classes + 1 logits with a no-object
class last, cross-entropy and ``-p(label)`` matching cost (DETR).

``model.loss_class_type`` (:class:`~detrdistill.modeling.meta_arch.DETRBase`) is the only key a
config sets. The criterion (``model.criterion.loss_class_type``) and its matcher
(``model.criterion.matcher.class_cost_type``) default to None and take the detector's value
when the detector is built (:meth:`SetCriterion.adopt_class_type
<detrdistill.modeling.criterion.SetCriterion.adopt_class_type>`); an explicit value that
disagrees stops the build naming both keys. A criterion or matcher built on its own takes
an explicit value.
"""

from __future__ import annotations

__all__ = ["CLASS_TYPES", "agree_class_type", "check_class_type", "require_class_type"]

CLASS_TYPES = ("focal", "softmax")


def check_class_type(value: str | None, key: str, allow_none: bool = False) -> str | None:
    """``value`` if it is one of :data:`CLASS_TYPES` (or None where ``allow_none``).

    Raises:
        ValueError: naming ``key`` otherwise.
    """
    if value is None and allow_none:
        return None
    if value not in CLASS_TYPES:
        raise ValueError(f"{key} must be one of {CLASS_TYPES}, got {value!r}")
    return value


def agree_class_type(current: str | None, wanted: str, key: str, source: str) -> str:
    """The class type a part takes from its owner: ``wanted``, which ``current`` (the part's
    own explicit value, or None) must not contradict.

    Args:
        current: the part's value (None: unset).
        wanted: the owner's value.
        key: the part's key, e.g. ``"criterion.matcher.class_cost_type"``.
        source: the owner's key, e.g. ``"loss_class_type"`` (both relative to ``model.``).

    Raises:
        ValueError: when ``current`` is set and differs from ``wanted``, naming both keys.
    """
    check_class_type(wanted, f"model.{source}")
    if current is not None and current != wanted:
        raise ValueError(
            f"model.{key}={current!r} disagrees with model.{source}={wanted!r}: "
            f"model.{source} decides the class type; leave model.{key} unset (None)"
        )
    return wanted


def require_class_type(value: str | None, owner: str, key: str) -> str:
    """``value``, which must have been set before the part computes anything.

    Raises:
        RuntimeError: naming ``key`` when the part has no class type yet.
    """
    if value is None:
        raise RuntimeError(
            f"{owner} has no class type: pass {key}= when building it on its own, or build it "
            "inside a detector, which gives it model.loss_class_type"
        )
    return value
