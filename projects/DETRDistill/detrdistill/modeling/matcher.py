"""Hungarian (one-to-one) matching between predictions and ground-truth boxes."""

import lap
import numpy as np
import scipy.optimize
import torch
from torch import Tensor, nn

from ..layers import box_cxcywh_to_xyxy, generalized_box_iou
from .class_type import agree_class_type, check_class_type, require_class_type

__all__ = ["ASSIGNMENT_SOLVERS", "HungarianMatcher", "linear_sum_assignment_batch"]

# "lapx": Jonker-Volgenant in native code (lapx's ``lapjvr_batch``), all same-shaped problems of
# a call in one call over a thread pool; "scipy": SciPy's solver, one matrix at a time (the
# reference the tests and benchmarks/matching.py compare against). Both return an optimum.
ASSIGNMENT_SOLVERS = ("lapx", "scipy")


def _solve_group(matrices: np.ndarray, solver: str, num_threads: int) -> list[tuple]:
    """(G, N, M) float64 -> G ``(rows, cols)`` NumPy index arrays (unsorted)."""
    if solver == "scipy":
        return [scipy.optimize.linear_sum_assignment(m) for m in matrices]
    threads = max(1, min(num_threads, len(matrices)))
    rows, cols = lap.lapjvr_batch(matrices, extend_cost=True, return_cost=False, n_threads=threads)
    return list(zip(rows, cols))


def linear_sum_assignment_batch(
    costs: list[Tensor], solver: str = "lapx", num_threads: int | None = None
) -> list[tuple[Tensor, Tensor]]:
    """Solve one minimum-cost bipartite assignment per cost matrix.

    This is the only place that calls a solver. Same-shaped matrices (the images of a batch,
    or of all decoder layers) are moved to the CPU in one copy and solved in one call on up to
    ``num_threads`` threads.

    Args:
        costs: list of Tensors of shape (Q_i, n_i); each may live on any device. A matrix with
            ``n_i == 0`` (or ``Q_i == 0``) gives empty indices.
        solver: One of :data:`ASSIGNMENT_SOLVERS`.
        num_threads: Solver threads for a group of same-shaped matrices (lapx only). Default:
            ``torch.get_num_threads()``, so ``OMP_NUM_THREADS`` limits both.

    Returns:
        list of ``(row, col)`` int64 CPU tensors of length ``min(Q_i, n_i)``, sorted by ``row``.

    Raises:
        ValueError: if a cost matrix is not 2-D or contains NaN or infinite values, or the
            solver is unknown.
    """
    if solver not in ASSIGNMENT_SOLVERS:
        raise ValueError(f"solver must be one of {ASSIGNMENT_SOLVERS}, got {solver!r}")
    threads = torch.get_num_threads() if num_threads is None else num_threads
    empty = torch.empty(0, dtype=torch.int64)
    results: list[tuple[Tensor, Tensor] | None] = [None] * len(costs)
    groups: dict[tuple[tuple[int, ...], torch.device], list[int]] = {}
    for i, cost in enumerate(costs):
        if cost.dim() != 2:
            raise ValueError(f"cost matrix {i} must be 2-D, got shape {tuple(cost.shape)}")
        if cost.numel() == 0:
            results[i] = (empty, empty.clone())
        else:
            groups.setdefault((tuple(cost.shape), cost.device), []).append(i)

    for (_, device), members in groups.items():
        if device.type == "cpu":
            # NumPy, not torch: a torch op right before the solve leaves torch's OpenMP
            # threads spinning, and they would compete with the solver's threads.
            matrices = np.stack([costs[i].detach().numpy() for i in members])
        else:  # one device-to-host copy for the whole group
            matrices = torch.stack([costs[i].detach() for i in members]).cpu().numpy()
        matrices = matrices.astype(np.float64, copy=False)
        finite = np.isfinite(matrices).all(axis=(1, 2))
        if not finite.all():
            bad = members[int(np.argmin(finite))]
            raise ValueError(
                f"cost matrix {bad} of shape {tuple(costs[bad].shape)} contains NaN or infinite "
                "values; check the predictions (diverged training?) and the target boxes"
            )
        for i, (rows, cols) in zip(members, _solve_group(matrices, solver, threads)):
            order = np.argsort(rows, kind="stable")
            results[i] = (
                torch.as_tensor(rows[order], dtype=torch.int64),
                torch.as_tensor(cols[order], dtype=torch.int64),
            )
    return results


class HungarianMatcher(nn.Module):
    """One-to-one assignment of queries to targets minimising a weighted matching cost.

    ``C = cost_class * C_class + cost_bbox * L1(cxcywh) + cost_giou * (-GIoU)`` where ``C_class``
    is either the focal cost of Deformable DETR,
    ``alpha (1-p)^gamma (-log p) - (1-alpha) p^gamma (-log(1-p))`` with ``p = sigmoid(logit)``,
    or ``-softmax(logits)[label]`` (DETR). Costs of all images are computed in one batched pass on
    the prediction device; only the assignment runs per image on CPU.

    Args:
        cost_class: Weight of the classification cost.
        cost_bbox: Weight of the L1 box cost.
        cost_giou: Weight of the GIoU cost.
        class_cost_type: "focal" (sigmoid logits, K = num_classes) or "softmax" (K includes the
            no-object class last); None (the default) takes the class type of the criterion or
            detector that owns the matcher (:meth:`adopt_class_type`, :mod:`.class_type`).
        focal_alpha: Focal cost alpha.
        focal_gamma: Focal cost gamma.
    """

    def __init__(
        self,
        cost_class: float = 1.0,
        cost_bbox: float = 1.0,
        cost_giou: float = 1.0,
        class_cost_type: str | None = None,
        focal_alpha: float = 0.25,
        focal_gamma: float = 2.0,
    ):
        super().__init__()
        if cost_class == 0 and cost_bbox == 0 and cost_giou == 0:
            raise ValueError("all matching costs are 0")
        self.cost_class = cost_class
        self.cost_bbox = cost_bbox
        self.cost_giou = cost_giou
        self.class_cost_type = check_class_type(
            class_cost_type, "criterion.matcher.class_cost_type", allow_none=True
        )
        self.focal_alpha = focal_alpha
        self.focal_gamma = focal_gamma

    def adopt_class_type(
        self, class_type: str, source: str, key: str = "criterion.matcher.class_cost_type"
    ) -> None:
        """Take the class type of the criterion / detector that owns this matcher.

        Args:
            class_type: "focal" or "softmax".
            source: the owner's key, relative to ``model.`` (for error messages).
            key: this matcher's key, relative to ``model.``.

        Raises:
            ValueError: if ``class_cost_type`` was given explicitly and differs, naming both
                keys.
        """
        self.class_cost_type = agree_class_type(self.class_cost_type, class_type, key, source)

    def _class_cost(self, logits: Tensor, labels: Tensor) -> Tensor:
        """(N, K) logits, (M,) labels -> (N, M) cost."""
        class_type = require_class_type(self.class_cost_type, "HungarianMatcher", "class_cost_type")
        if class_type == "softmax":
            return -logits.softmax(-1)[:, labels]
        prob = logits.sigmoid()[:, labels]
        alpha, gamma = self.focal_alpha, self.focal_gamma
        pos = alpha * (1 - prob) ** gamma * -(prob + 1e-8).log()
        neg = (1 - alpha) * prob**gamma * -(1 - prob + 1e-8).log()
        return pos - neg

    @torch.no_grad()
    def cost_matrices(
        self, pred_logits: Tensor, pred_boxes: Tensor, targets: list[dict]
    ) -> list[Tensor]:
        """Per-image matching costs.

        Args:
            pred_logits: Tensor of shape (B, Q, K).
            pred_boxes: Tensor of shape (B, Q, 4), normalised cxcywh.
            targets: list of B dicts with ``labels`` (n_i,) int64 and ``boxes`` (n_i, 4)
                normalised cxcywh.

        Returns:
            list of B Tensors of shape (Q, n_i) on the prediction device.
        """
        bsz, num_queries = pred_logits.shape[:2]
        if len(targets) != bsz:
            raise ValueError(f"{len(targets)} targets for a batch of {bsz}")
        sizes = [len(t["boxes"]) for t in targets]
        device = pred_logits.device
        if sum(sizes) == 0:
            return [pred_logits.new_zeros(num_queries, 0) for _ in sizes]

        # fp32 even under autocast: costs of nearby boxes differ by tiny amounts.
        logits = pred_logits.flatten(0, 1).float()  # (B*Q, K)
        boxes = pred_boxes.flatten(0, 1).float()  # (B*Q, 4)
        tgt_labels = torch.cat([t["labels"] for t in targets]).to(device)
        tgt_boxes = torch.cat([t["boxes"] for t in targets]).to(device).float()

        cost = self.cost_bbox * torch.cdist(boxes, tgt_boxes, p=1)
        cost = cost + self.cost_class * self._class_cost(logits, tgt_labels)
        giou = generalized_box_iou(box_cxcywh_to_xyxy(boxes), box_cxcywh_to_xyxy(tgt_boxes))
        cost = cost - self.cost_giou * giou
        cost = cost.view(bsz, num_queries, -1)  # (B, Q, sum n_i)
        # each image only competes for its own targets
        return [c[i] for i, c in enumerate(cost.split(sizes, dim=-1))]

    @torch.no_grad()
    def forward(
        self, pred_logits: Tensor, pred_boxes: Tensor, targets: list[dict]
    ) -> list[tuple[Tensor, Tensor]]:
        """
        Args:
            pred_logits: Tensor of shape (B, Q, K).
            pred_boxes: Tensor of shape (B, Q, 4), normalised cxcywh.
            targets: list of B dicts with ``labels`` (n_i,) and ``boxes`` (n_i, 4) normalised
                cxcywh.

        Returns:
            list of B tuples ``(pred_idx, tgt_idx)``: int64 CPU tensors of length
            ``min(Q, n_i)``, sorted by ``pred_idx``; query ``pred_idx[k]`` is assigned to target
            ``tgt_idx[k]``.
        """
        return linear_sum_assignment_batch(self.cost_matrices(pred_logits, pred_boxes, targets))

    @torch.no_grad()
    def match_layers(
        self, pred_logits: Tensor, pred_boxes: Tensor, targets: list[dict]
    ) -> list[list[tuple[Tensor, Tensor]]]:
        """:meth:`forward` for every decoder layer at once: one batched cost pass and one solver
        call for all L x B matrices (so the solver's threads work on all of them together).

        Args:
            pred_logits: Tensor of shape (L, B, Q, K).
            pred_boxes: Tensor of shape (L, B, Q, 4), normalised cxcywh.
            targets: list of B target dicts (as in :meth:`forward`).

        Returns:
            list of L lists of B ``(pred_idx, tgt_idx)``, equal to calling :meth:`forward` per
            layer.
        """
        num_layers, bsz = pred_logits.shape[:2]
        costs = self.cost_matrices(
            pred_logits.flatten(0, 1), pred_boxes.flatten(0, 1), list(targets) * num_layers
        )
        solved = linear_sum_assignment_batch(costs)
        return [solved[layer * bsz : (layer + 1) * bsz] for layer in range(num_layers)]

    def extra_repr(self) -> str:
        return (
            f"cost_class={self.cost_class}, cost_bbox={self.cost_bbox}, "
            f"cost_giou={self.cost_giou}, class_cost_type={self.class_cost_type!r}"
        )
