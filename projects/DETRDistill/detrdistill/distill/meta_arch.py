"""The teacher-student meta-architecture that injects distillation losses."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Mapping
from dataclasses import fields, is_dataclass, replace

import torch
from detectron2.config import instantiate
from detectron2.modeling import META_ARCH_REGISTRY
from torch import nn

from ..modeling.denoising import DENOISING
from ..modeling.meta_arch.base import DETRBase
from ..modeling.outputs import DETROutput, EncoderOutputs, QueryGroup
from .groups import (
    MODELS,
    TEACHER_QUERIES,
    GroupContext,
    QueryGroupBuilder,
    TeacherQueryGroup,
    default_group_builder,
)
from .inputs import DistillationInputs
from .layer_mapping import map_decoder_layers
from .teacher import freeze, load_teacher_weights

__all__ = ["DistillationDetector"]

logger = logging.getLogger(__name__)

TEACHER_QUERY_REFERENCES = ("auto", "student_head", "teacher")


def _to_float(value):
    """Cast every floating tensor inside (nested) dataclasses/lists to float32."""
    if isinstance(value, torch.Tensor):
        return value.float() if value.is_floating_point() else value
    if isinstance(value, list):
        return [_to_float(v) for v in value]
    if isinstance(value, tuple):
        return tuple(_to_float(v) for v in value)
    if isinstance(value, dict):
        return {k: _to_float(v) for k, v in value.items()}
    if is_dataclass(value):
        return type(value)(**{f.name: _to_float(getattr(value, f.name)) for f in fields(value)})
    return value


def _build(module, key: str) -> nn.Module:
    if isinstance(module, nn.Module):
        return module
    if isinstance(module, Mapping) and "_target_" in module:
        module = instantiate(module)
    if not isinstance(module, nn.Module):
        raise TypeError(f"{key} must be a loss module or a LazyCall of one, got {type(module)}")
    return module


def _writers_first(losses: dict[str, nn.Module]) -> dict[str, nn.Module]:
    """Order the losses so that every loss runs after those writing what it reads from
    ``DistillationInputs.shared`` (config order otherwise)."""
    written = {key for m in losses.values() for key in getattr(m, "writes_shared", ())}
    for name, module in losses.items():
        missing = set(getattr(module, "reads_shared", ())) - written
        if missing:
            raise ValueError(
                f"model.losses.{name} ({type(module).__name__}) reads {sorted(missing)} from "
                "another loss, but no configured loss writes it (see its docstring)"
            )
    readers = {n for n, m in losses.items() if getattr(m, "reads_shared", ())}
    return {n: losses[n] for n in losses if n not in readers} | {n: losses[n] for n in readers}


@META_ARCH_REGISTRY.register()
class DistillationDetector(nn.Module):
    """A frozen teacher and a trainable student, both DETR-family detectors.

    Training: the teacher runs once without autograd; the student runs once (its own queries
    plus the named query groups the losses read, e.g. the teacher's queries as
    ``"teacher_queries"``, each non-interacting, in the same decoder pass; see
    :mod:`detrdistill.distill.groups`); the student's ground-truth losses (with its denoising
    losses when the student has ``denoising``) and every distillation loss, each multiplied by its
    weight in ``loss_weights``, are returned. Keys: the student's ``loss_*`` and
    ``loss_distill_<name>_<component>``. Inference: the student alone.

    The teacher is loaded strictly from ``teacher_weights`` at construction (never from
    ``train.init_checkpoint``, which keeps its detectron2 meaning for the student), frozen, kept in
    eval mode by :meth:`train`, and never registered with the optimizer.
    """

    def __init__(
        self,
        *,
        student: DETRBase,
        teacher: DETRBase,
        losses: dict[str, nn.Module],
        loss_weights: dict[str, float],
        teacher_weights: str = "",
        allow_random_teacher: bool = False,
        teacher_half_precision: bool = False,
        layer_mapping="last_aligned",
        teacher_query_reference: str = "auto",
        group_builders: dict[str, QueryGroupBuilder] | None = None,
    ):
        """
        Args:
            student: the detector being trained.
            teacher: the detector distilled from (any variant, depth, width or query count).
            losses: name -> distillation loss module (see ``detrdistill.distill.losses``).
            loss_weights: name -> weight; every name in ``losses`` needs one.
            teacher_weights: checkpoint of the teacher (config key ``model.teacher_weights``).
            allow_random_teacher: permit an empty ``teacher_weights`` (randomly initialised
                teacher); only for tests and smoke runs.
            teacher_half_precision: run the teacher in fp16 (CUDA only).
            layer_mapping: how student decoder layers pair with teacher layers:
                "last_aligned", "uniform" or an explicit list of (student, teacher) pairs.
            teacher_query_reference: reference points of the teacher-query group in the
                student decoder: "student_head" passes the teacher's positional queries through
                the student's own reference head (the official DETRDistill code), "teacher"
                keeps the teacher's reference points, "auto" takes "student_head" where the
                student derives its references from positional queries (single-stage
                Deformable DETR, Conditional DETR) and "teacher" elsewhere (DAB-DETR anchors,
                two-stage proposals, DETR).
            group_builders: name -> :class:`~detrdistill.distill.groups.QueryGroupBuilder` for
                query groups the losses read (``query_groups``); a group without an entry gets
                its default builder (``"teacher_queries"``: the teacher's adapted queries;
                KD-DETR's ``"kd_specific_points"`` and ``"kd_general_points"``, see
                :func:`~detrdistill.distill.groups.default_group_builder`). Only groups some loss
                reads are built and decoded; each builder's ``check_pair`` runs here.
        """
        super().__init__()
        missing = sorted(set(losses) - set(loss_weights))
        extra = sorted(set(loss_weights) - set(losses))
        if missing or extra:
            raise KeyError(
                f"model.loss_weights must give one weight per model.losses entry: missing "
                f"{missing}, without a loss {extra}"
            )
        if student.num_classes != teacher.num_classes:
            raise ValueError(
                f"teacher has {teacher.num_classes} classes but student {student.num_classes} "
                "(model.teacher.num_classes / model.student.num_classes)"
            )
        if student.input_format != teacher.input_format:
            raise ValueError(
                f"teacher reads {teacher.input_format} images but the student "
                f"{student.input_format} (model.teacher.input_format / "
                "model.student.input_format): both see the same mapped images, so one of them "
                "would see its colour channels swapped"
            )
        if teacher_query_reference not in TEACHER_QUERY_REFERENCES:
            raise ValueError(
                f"model.teacher_query_reference must be one of {TEACHER_QUERY_REFERENCES}, got "
                f"{teacher_query_reference!r}"
            )
        if teacher_query_reference == "student_head" and not student.has_reference_head:
            raise ValueError(
                f'model.teacher_query_reference="student_head" needs a student that derives '
                f"reference points from positional queries; {type(student).__name__} does not "
                '(use "teacher" or "auto")'
            )
        self.student = student
        self.teacher = freeze(teacher)
        if teacher_weights:
            load_teacher_weights(self.teacher, teacher_weights)
        elif not allow_random_teacher:
            raise ValueError(
                "model.teacher_weights is empty: distilling from a randomly initialised teacher "
                "is almost certainly a mistake. Point it at a trained teacher checkpoint, or set "
                "model.allow_random_teacher=True for a smoke test."
            )
        else:
            logger.warning(
                "model.allow_random_teacher=True and model.teacher_weights is empty: the "
                "TEACHER IS RANDOMLY INITIALISED, so every distillation loss pulls the student "
                "towards noise. Use this only for smoke tests; results of this run mean nothing."
            )
        self.teacher_weights = teacher_weights
        # detectron2's instantiate() does not descend into plain dicts: build lazy entries here.
        built = {name: _build(module, f"model.losses.{name}") for name, module in losses.items()}
        self.distill_losses = nn.ModuleDict(_writers_first(built))
        self.loss_weights = {name: float(w) for name, w in loss_weights.items()}
        self.teacher_half_precision = teacher_half_precision
        self.layer_pairs = map_decoder_layers(
            student.decoder.num_layers, teacher.decoder.num_layers, layer_mapping
        )
        modules = list(self.distill_losses.values())
        self.needs_attention = any(getattr(m, "needs_attention", False) for m in modules)
        self.needs_teacher_assignment = any(
            getattr(m, "needs_teacher_assignment", False) for m in modules
        )
        if teacher_query_reference == "auto":
            teacher_query_reference = "student_head" if student.has_reference_head else "teacher"
        self.teacher_query_reference = teacher_query_reference
        self.group_builders = nn.ModuleDict(
            self._group_builders(modules, dict(group_builders or {}), teacher_query_reference)
        )
        self._register_load_state_dict_pre_hook(_rename_legacy_query_adapter)

    def _group_builders(self, modules, given, teacher_query_reference):
        """One builder per group some loss reads, in first-read order."""
        names = list(dict.fromkeys(n for m in modules for n in getattr(m, "query_groups", ())))
        unread = sorted(set(given) - set(names))
        if unread:
            raise ValueError(
                f"model.group_builders has {unread}, but no loss reads these groups (their "
                "query_groups); remove them or add the loss"
            )
        builders = {}
        for name in names:
            builder = given.get(name)
            if builder is None:
                builder = default_group_builder(
                    name,
                    student=self.student,
                    teacher=self.teacher,
                    teacher_query_reference=teacher_query_reference,
                )
            builder = _build(builder, f"model.group_builders.{name}")
            models = tuple(builder.models)
            if not models or set(models) - set(MODELS):
                raise ValueError(
                    f"model.group_builders.{name}.models must be a non-empty subset of {MODELS}, "
                    f"got {models}"
                )
            if builder.needs_teacher_output and "teacher" in models:
                raise ValueError(
                    f"query group {name!r} is built from the teacher's output, so it cannot run "
                    f"in the teacher (model.group_builders.{name}.models)"
                )
            builder.check_pair(self.student, self.teacher)
            if name in _model_group_names(self.student):
                raise ValueError(
                    f"query group {name!r} of the losses has the name of a group the student "
                    "adds itself (its denoising group); rename it"
                )
            builders[name] = builder
        return builders

    @property
    def query_adapter(self) -> nn.Module | None:
        """The teacher-query group's :class:`QueryAdapter`, or None without that group."""
        builders = self.group_builders
        builder = builders[TEACHER_QUERIES] if TEACHER_QUERIES in builders else None
        return builder.adapter if isinstance(builder, TeacherQueryGroup) else None

    @property
    def device(self) -> torch.device:
        return self.student.device

    def init_checkpoint_module(self) -> nn.Module:
        """``train.init_checkpoint`` initialises the student (detectron2's meaning of the key)."""
        return self.student

    def train(self, mode: bool = True):
        """Switch the student (and adapters) to ``mode``; the teacher always stays in eval."""
        super().train(mode)
        self.teacher.eval()
        return self

    def forward(self, batched_inputs: list[dict]):
        """detectron2 contract: loss dict in training, student detections in inference."""
        if not self.training:
            return self.student(batched_inputs)
        targets = self.student.prepare_targets(batched_inputs)
        teacher_out, student_out = self.run_models(batched_inputs, targets)
        losses, _ = self.student.compute_losses(student_out, targets)
        inputs = DistillationInputs(
            teacher=teacher_out,
            student=_only_groups(student_out, self.group_builders),
            targets=targets,
            layer_pairs=self.layer_pairs,
            teacher_class_type=self.teacher.loss_class_type,
            student_class_type=self.student.loss_class_type,
            teacher_gt_indices=self.teacher_assignment(teacher_out, targets),
            student_criterion=self.student.criterion,
        )
        for name, module in self.distill_losses.items():
            weight = self.loss_weights[name]
            for component, value in module(inputs).items():
                losses[f"loss_distill_{name}_{component}"] = value * weight
        return losses

    def run_models(
        self,
        batched_inputs: list[dict],
        targets: list[dict] | None,
        *,
        return_attention: bool | None = None,
    ):
        """Run the teacher, then the student, each once, with the query groups the losses read
        (and, in training, the student's own training groups such as denoising).

        Args:
            batched_inputs: the detectron2 batch.
            targets: from ``student.prepare_targets`` (None outside training: no own groups).
            return_attention: default: whether a loss needs attention maps.

        Returns:
            ``(teacher DETROutput, student DETROutput)``.
        """
        attention = self.needs_attention if return_attention is None else return_attention
        context = GroupContext(self.student, self.teacher, targets)
        groups = self.build_groups(context, after_teacher=False)
        teacher_out = self.run_teacher(
            batched_inputs, groups=groups["teacher"], return_attention=attention
        )
        context.teacher_output = teacher_out
        groups["student"].update(self.build_groups(context, after_teacher=True)["student"])
        own_groups = {}
        if targets is not None and self.student.training:
            own_groups = self.student.training_groups(targets)  # e.g. denoising
        student_out = self.student.run(
            self.student.preprocess_image(batched_inputs),
            return_attention=attention,
            groups={**own_groups, **groups["student"]},
        )
        return teacher_out, student_out

    def build_groups(
        self, context: GroupContext, *, after_teacher: bool
    ) -> dict[str, dict[str, QueryGroup]]:
        """Build the query groups of one phase: those made without the teacher's output
        (``after_teacher=False``, before the teacher runs) or from it (``True``).

        Returns:
            model ("student", "teacher") -> group name -> QueryGroup.
        """
        built: dict[str, dict[str, QueryGroup]] = {model: {} for model in MODELS}
        for name, builder in self.group_builders.items():
            if bool(builder.needs_teacher_output) != after_teacher:
                continue
            groups = builder(context)
            if set(groups) != set(builder.models):
                raise ValueError(
                    f"the builder of query group {name!r} returned groups for {sorted(groups)}, "
                    f"but declares models={tuple(builder.models)}"
                )
            for model, group in groups.items():
                built[model][name] = group
        return built

    def teacher_query_group(
        self, teacher_queries: QueryGroup, teacher_encoder: EncoderOutputs | None = None
    ) -> QueryGroup:
        """The teacher's initial queries as the student decoder's ``"teacher_queries"`` group:
        widths adapted to the student's, references per ``teacher_query_reference``.

        Args:
            teacher_queries: content/pos (B, Qt, D_t), reference (B, Qt, 2|4) or None.
            teacher_encoder: the teacher's encoder outputs (needed for a DINO teacher whose
                positional queries the student uses).

        Returns:
            QueryGroup with content (and pos) (B, Qt, D_s).
        """
        if TEACHER_QUERIES not in self.group_builders:
            raise ValueError(f"no loss reads the {TEACHER_QUERIES!r} query group")
        builder = self.group_builders[TEACHER_QUERIES]
        return builder.adapt(teacher_queries, self.student, self.teacher, teacher_encoder)

    @torch.no_grad()
    def run_teacher(
        self,
        batched_inputs: list[dict],
        groups: dict[str, QueryGroup] | None = None,
        *,
        return_attention: bool | None = None,
    ):
        """The teacher's :class:`DETROutput` for a batch (no autograd, eval mode), with the
        given query groups decoded next to its own queries; attention maps when
        ``return_attention`` (default: whether a loss needs them)."""
        if return_attention is None:
            return_attention = self.needs_attention
        images = self.teacher.preprocess_image(batched_inputs)
        if self.teacher_half_precision:
            if images.tensor.device.type != "cuda":
                raise ValueError("model.teacher_half_precision=True needs train.device=cuda")
            context = torch.autocast("cuda", dtype=torch.float16)
        else:
            context = contextlib.nullcontext()
        with context:
            output = self.teacher.run(
                images, return_attention=return_attention, groups=groups or None
            )
        return _to_float(output) if self.teacher_half_precision else output

    @torch.no_grad()
    def teacher_assignment(self, teacher_out, targets):
        """Per teacher layer, the teacher's own Hungarian assignment of its queries to GT."""
        if not self.needs_teacher_assignment:
            return None
        decoded = teacher_out.decoder
        return self.teacher.criterion.matcher.match_layers(
            decoded.pred_logits, decoded.pred_boxes, targets
        )


def _model_group_names(model: nn.Module) -> set[str]:
    """Names of the query groups a detector adds to its own training step."""
    return {DENOISING} if getattr(model, "denoising", None) is not None else set()


def _only_groups(output: DETROutput, names) -> DETROutput:
    """``output`` with only the named groups: the losses never see the student's own groups
    (denoising queries)."""
    keep = set(names)
    return replace(
        output,
        groups={k: v for k, v in output.groups.items() if k in keep},
        group_queries={k: v for k, v in output.group_queries.items() if k in keep},
    )


def _rename_legacy_query_adapter(state_dict, prefix, *args):
    """Checkpoints written before query groups kept the teacher-query adapter at
    ``query_adapter.*``; it now lives at ``group_builders.teacher_queries.adapter.*``."""
    old = prefix + "query_adapter."
    new = prefix + f"group_builders.{TEACHER_QUERIES}.adapter."
    for key in [k for k in state_dict if k.startswith(old)]:
        state_dict[new + key[len(old) :]] = state_dict.pop(key)
