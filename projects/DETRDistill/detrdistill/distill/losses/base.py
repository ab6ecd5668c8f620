"""The base every teacher-student loss shares: what it asks of the wrapper, how its decoder-layer
terms combine, and a warning when one of its terms stays empty."""

from __future__ import annotations

import logging

from torch import Tensor, nn

__all__ = ["DistillationLoss", "EmptyTermMonitor", "LAYER_REDUCTIONS"]

logger = logging.getLogger(__name__)

LAYER_REDUCTIONS = ("sum", "mean")


class EmptyTermMonitor:
    """Warns when a loss term has had no matched pair for ``patience`` consecutive steps.

    A term with no pair is exactly 0 and teaches nothing; when that lasts, the configuration (a
    threshold, a weak teacher, a mask) has switched the term off without saying so.

    Args:
        owner: Name shown in the warning (the loss class).
        patience: Consecutive empty steps before the warning (0 disables it).
    """

    def __init__(self, owner: str, patience: int):
        if patience < 0:
            raise ValueError(f"empty_term_patience must be >= 0, got {patience}")
        self.owner = owner
        self.patience = patience
        self.empty_steps: dict[str, int] = {}

    def update(self, counts: dict[str, int]) -> None:
        """Record one step's number of pairs per term; warn once per empty streak."""
        if not self.patience:
            return
        for term, count in counts.items():
            streak = 0 if count > 0 else self.empty_steps.get(term, 0) + 1
            self.empty_steps[term] = streak
            if streak == self.patience:
                logger.warning(
                    "%s: term %r has had no matched pair for %d consecutive iterations, so it is "
                    "0 and teaches nothing (check the loss's thresholds/masks and the teacher's "
                    "confidence)",
                    self.owner,
                    term,
                    streak,
                )


class DistillationLoss(nn.Module):
    """Base of the distillation losses: ``forward(inputs: DistillationInputs) -> dict``.

    Class attributes (a subclass may set them per instance in ``__init__``) declare what the
    wrapper (:class:`~detrdistill.distill.DistillationDetector`) must compute for it:

    * ``needs_attention``: per-layer self/cross attention maps of both models;
    * ``query_groups``: names of the query groups it reads (see
      :mod:`detrdistill.distill.groups`): their outputs are in ``inputs.student.groups[name]``
      (and ``inputs.teacher.groups[name]`` when the group also runs in the teacher), e.g.
      ``"teacher_queries"``, the student decoder's outputs for the teacher's initial queries;
      :meth:`group_outputs` reads them. A loss never sees a group it does not name (nor the
      student's denoising queries);
    * ``needs_teacher_assignment``: the teacher's own Hungarian assignment to the ground truth
      (``inputs.teacher_gt_indices``);
    * ``reads_shared``: names in ``inputs.shared`` it reads (the wrapper runs the losses that
      write them first); ``writes_shared``: names it writes.

    Per-layer-pair terms combine with :meth:`combine_layers`: ``layer_reduction="sum"`` (every
    decoder layer pair at full weight, as the official DETRDistill code and the public D3ETR
    port do) or ``"mean"`` (divided by the number of layer pairs).

    Args:
        layer_reduction: "sum" or "mean" over decoder layer pairs.
        empty_term_patience: Warn when a term has had no matched pair for this many consecutive
            iterations (0: never).
    """

    needs_attention = False
    query_groups: tuple[str, ...] = ()
    needs_teacher_assignment = False
    reads_shared: tuple[str, ...] = ()
    writes_shared: tuple[str, ...] = ()

    def __init__(self, *, layer_reduction: str = "sum", empty_term_patience: int = 100):
        super().__init__()
        if layer_reduction not in LAYER_REDUCTIONS:
            raise ValueError(
                f"layer_reduction must be one of {LAYER_REDUCTIONS}, got {layer_reduction!r}"
            )
        self.layer_reduction = layer_reduction
        self.empty_terms = EmptyTermMonitor(type(self).__name__, empty_term_patience)

    def group_outputs(self, inputs, name: str, model: str = "student"):
        """The :class:`~detrdistill.modeling.outputs.DecoderOutputs` of query group ``name``
        in ``model`` ("student" or "teacher").

        Raises:
            ValueError: when the group was not decoded (not declared in ``query_groups``, or
                not run in that model).
        """
        output = getattr(inputs, model)
        if name not in output.groups:
            raise ValueError(
                f"{type(self).__name__} needs the {model}'s outputs for query group {name!r}, "
                f"but the {model} decoded {sorted(output.groups) or 'no group'}; declare it in "
                "query_groups (the wrapper then builds and runs it)"
            )
        return output.groups[name]

    def combine_layers(self, per_layer: list[dict[str, Tensor]]) -> dict[str, Tensor]:
        """Sum (or average) per-layer-pair loss dicts key by key.

        Args:
            per_layer: one dict of scalar tensors per decoder layer pair (same keys).

        Returns:
            dict of scalar tensors.
        """
        if not per_layer:
            raise ValueError("layer_pairs is empty: no decoder layer pair to distill")
        total: dict[str, Tensor] = {}
        for losses in per_layer:
            for key, value in losses.items():
                total[key] = total[key] + value if key in total else value
        if self.layer_reduction == "mean":
            total = {key: value / len(per_layer) for key, value in total.items()}
        return total

    def extra_repr(self) -> str:
        return f"layer_reduction={self.layer_reduction!r}"
