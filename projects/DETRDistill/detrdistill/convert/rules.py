"""The machinery of table-driven state-dict conversion: rules, value transforms and the report.

A :class:`RuleSet` is an ordered table of rules for one (variant, source layout) pair; the
tables themselves live in :mod:`detrdistill.convert.rulesets`. Every source key must be claimed
by exactly one rule (the first whose regular expression matches the whole key), and every key of
the target model must be produced exactly once with the model's shape; anything else stops the
conversion with a :class:`ConversionError` that names the key.

Rule kinds:

* :class:`Rename`: one source tensor -> one target key (optionally through a :class:`Transform`).
* :class:`SharedHead`: one source tensor -> the same key for every decoder layer
  (``class_embed.{i}``): this project lists a shared head once per layer.
* :class:`Split`: one packed tensor -> equal chunks (``in_proj_weight`` -> q/k/v projections).
* :class:`Alias`: a second name of another source tensor (checked equal), dropped.
* :class:`Drop`: a tensor the target model has no use for, dropped with the reason.
* :class:`Create`: a target key no source key maps to, computed from source tensors.

Target-key templates are ``str.format`` strings over the pattern's named groups, plus the fields
returned by the rule's optional ``fields`` function (e.g. ``res = layer + 1``) and ``i`` for
:class:`SharedHead`. The token ``@L@`` in a pattern stands for the number of decoder layers of
the target model (Deformable DETR keeps its two-stage proposal heads at that index).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

__all__ = [
    "Alias",
    "ConversionContext",
    "ConversionError",
    "ConversionReport",
    "Create",
    "Drop",
    "Rename",
    "Rule",
    "RuleSet",
    "SharedHead",
    "Split",
    "Transform",
]

NUM_LAYERS_TOKEN = "@L@"


class ConversionError(ValueError):
    """A conversion cannot be done exactly; the message names the offending key."""


@dataclass(frozen=True)
class ConversionContext:
    """What the rules need to know about the target model.

    Attributes:
        target_shapes: every key of the target model's state dict and its shape.
        num_decoder_layers: decoder layers of the target model.
        num_neck_convs: backbone levels projected by the neck (``neck.convs.{i}``); levels after
            them come from ``neck.extra_convs``.
    """

    target_shapes: Mapping[str, torch.Size]
    num_decoder_layers: int
    num_neck_convs: int

    @classmethod
    def from_target(cls, target_shapes: Mapping[str, torch.Size]) -> ConversionContext:
        """Derive the counts from the target model's keys."""
        layers = {int(m.group(1)) for k in target_shapes if (m := _DECODER_LAYER.match(k))}
        convs = {int(m.group(1)) for k in target_shapes if (m := _NECK_CONV.match(k))}
        return cls(dict(target_shapes), len(layers), len(convs))


_DECODER_LAYER = re.compile(r"decoder\.layers\.(\d+)\.")
_NECK_CONV = re.compile(r"neck\.convs\.(\d+)\.")


class Transform:
    """A change of a tensor's values on its way to the target key (base class).

    Subclasses implement :meth:`__call__`, returning the new tensor and a note for the report.
    """

    def __call__(self, value: Tensor, target_shape: torch.Size, key: str) -> tuple[Tensor, str]:
        raise NotImplementedError


Fields = Callable[[dict[str, str], ConversionContext], dict[str, Any]]


@dataclass(frozen=True)
class Rule:
    """Base of all rules: a regular expression that must match a whole source key."""

    pattern: str

    def bind(self, context: ConversionContext) -> re.Pattern:
        """The compiled pattern with ``@L@`` replaced by the decoder depth."""
        return re.compile(self.pattern.replace(NUM_LAYERS_TOKEN, str(context.num_decoder_layers)))


def _render(
    template: str, match: re.Match, context: ConversionContext, fields: Fields | None, **extra
) -> str:
    values: dict[str, Any] = dict(match.groupdict())
    if fields is not None:
        values.update(fields(match.groupdict(), context))
    values.update(extra)
    return template.format(**values)


@dataclass(frozen=True)
class Rename(Rule):
    """One source tensor to one target key.

    Attributes:
        target: template of the target key.
        transform: optional change of the values (class rows, column order).
        fields: extra template fields computed from the groups and the context.
        note: why the name changes, when it is not obvious (shown in the report).
    """

    target: str = ""
    transform: Transform | None = None
    fields: Fields | None = None
    note: str = ""


@dataclass(frozen=True)
class SharedHead(Rule):
    """One source tensor to the same key of every decoder layer (``{i}`` in the template)."""

    target: str = ""
    transform: Transform | None = None
    fields: Fields | None = None


@dataclass(frozen=True)
class Split(Rule):
    """One packed tensor split into equal chunks along ``dim``, one per target template."""

    targets: tuple[str, ...] = ()
    dim: int = 0
    fields: Fields | None = None
    note: str = ""


@dataclass(frozen=True)
class Alias(Rule):
    """A second name under which the source file stores another source tensor; dropped after
    checking that both hold the same values."""

    canonical: str = ""
    reason: str = ""


@dataclass(frozen=True)
class Drop(Rule):
    """A source tensor the target model does not use; dropped, with the reason reported."""

    reason: str = ""


@dataclass(frozen=True)
class Create:
    """A target key no source key maps to, computed from source tensors.

    Applied only when the target model has ``target`` and no other rule produced it.

    Attributes:
        target: the target key.
        sources: source keys the value is computed from (the first one present is used).
        compute: function of the source tensor.
        reason: what the key is and how it is computed (shown in the report).
    """

    target: str
    sources: tuple[str, ...]
    compute: Callable[[Tensor], Tensor]
    reason: str


@dataclass
class ConversionReport:
    """What a conversion did, key by key.

    Attributes:
        variant: target detector variant (``"deformable_detr"``...).
        source_format: ``"official"`` or ``"detrex"``.
        mapped: ``{"from": [source keys], "to": target key, "note": str}`` per produced key.
        dropped: ``{"key": source key, "reason": str}``.
        created: ``{"key": target key, "from": source key or "", "reason": str}``.
    """

    variant: str
    source_format: str
    mapped: list[dict[str, Any]] = field(default_factory=list)
    dropped: list[dict[str, str]] = field(default_factory=list)
    created: list[dict[str, str]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """Plain-data form (JSON-serialisable, and safe to store in a checkpoint)."""
        return {
            "variant": self.variant,
            "source_format": self.source_format,
            "counts": {
                "mapped": len(self.mapped),
                "dropped": len(self.dropped),
                "created": len(self.created),
            },
            "mapped": [dict(m, **{"from": list(m["from"])}) for m in self.mapped],
            "dropped": [dict(d) for d in self.dropped],
            "created": [dict(c) for c in self.created],
        }

    def summary(self, max_examples: int = 3) -> str:
        """A short human-readable account: counts, and every kind of drop, creation and value
        transform with a few example keys."""
        sources = len({key for m in self.mapped for key in m["from"]})
        lines = [
            f"{self.source_format} {self.variant} checkpoint: {len(self.mapped)} model keys "
            f"mapped from {sources} source keys, {len(self.dropped)} source keys dropped, "
            f"{len(self.created)} model keys created"
        ]
        for title, entries, key_name, reason_name in (
            ("dropped", self.dropped, "key", "reason"),
            ("created", self.created, "key", "reason"),
            ("changed on the way", [m for m in self.mapped if m["note"]], "to", "note"),
        ):
            groups: dict[str, list[str]] = {}
            for entry in entries:
                groups.setdefault(entry[reason_name], []).append(entry[key_name])
            for reason, keys in groups.items():
                shown = ", ".join(keys[:max_examples])
                more = f" (+{len(keys) - max_examples} more)" if len(keys) > max_examples else ""
                lines.append(f"  {title} [{len(keys)}]: {reason}\n      {shown}{more}")
        return "\n".join(lines)


class RuleSet:
    """The conversion table of one (variant, source layout) pair.

    Args:
        variant: target detector variant.
        source_format: source layout name.
        rules: ordered rules; the first whose pattern matches a source key claims it.
        creates: keys computed when the target model has them and nothing mapped to them.
        description: one line for ``--help`` and the docs.
    """

    def __init__(
        self,
        variant: str,
        source_format: str,
        rules: Iterable[Rule],
        creates: Iterable[Create] = (),
        description: str = "",
    ):
        self.variant = variant
        self.source_format = source_format
        self.rules = tuple(rules)
        self.creates = tuple(creates)
        self.description = description

    @property
    def name(self) -> str:
        return f"({self.variant}, {self.source_format})"

    def convert(
        self,
        source: Mapping[str, Tensor],
        target_shapes: Mapping[str, torch.Size],
        tied: Iterable[tuple[str, ...]] = (),
    ) -> tuple[dict[str, Tensor], ConversionReport]:
        """Convert ``source`` to the keys and shapes of ``target_shapes``.

        Args:
            source: the source state dict (tensor values; ``meta`` tensors allowed, then the
                value checks are skipped).
            target_shapes: key -> shape of the target model's state dict.
            tied: groups of target keys that are one tensor in the target model (a head shared
                by all decoder layers); they must receive equal values.

        Returns:
            The converted state dict (exactly the target's keys) and the report.

        Raises:
            ConversionError: an unknown source key, a shape mismatch, a key produced twice, a
                target key left missing, or different values for one shared tensor; the message
                names the key(s).
        """
        context = ConversionContext.from_target(target_shapes)
        bound = [(rule, rule.bind(context)) for rule in self.rules]
        report = ConversionReport(self.variant, self.source_format)
        produced: dict[str, Tensor] = {}
        origin: dict[str, str] = {}

        def emit(
            source_key: str, target_key: str, value: Tensor, note: str = "", created: str = ""
        ) -> None:
            """Store one target tensor after the checks; ``created`` reports it as a created
            key (with that reason) instead of a mapped one."""
            if target_key not in context.target_shapes:
                raise ConversionError(
                    f"{source_key}: maps to {target_key}, which the model built by the config "
                    f"does not have; the checkpoint has a part this model lacks (check the "
                    f"config's options, e.g. with_box_refine/as_two_stage, num_queries, depth)"
                )
            expected = tuple(context.target_shapes[target_key])
            if tuple(value.shape) != expected:
                raise ConversionError(
                    f"{source_key}: shape {tuple(value.shape)} does not fit {target_key} "
                    f"{expected} of the model built by the config (hidden size, queries, "
                    f"backbone depth or class count differ)"
                )
            if target_key in produced:
                raise ConversionError(
                    f"{source_key}: {target_key} was already produced from {origin[target_key]}"
                )
            produced[target_key] = value
            origin[target_key] = source_key
            if created:
                report.created.append({"key": target_key, "from": source_key, "reason": created})
            else:
                report.mapped.append({"from": [source_key], "to": target_key, "note": note})

        for key, value in source.items():
            for rule, pattern in bound:
                match = pattern.fullmatch(key)
                if match is not None:
                    self._apply(rule, key, value, match, source, context, emit, report)
                    break
            else:
                raise ConversionError(
                    f"{key}: unknown key, no rule of {self.name} matches it (a different "
                    f"variant or layout, or a part this project's {self.variant} lacks); "
                    f"nothing was written"
                )

        for create in self.creates:
            if create.target in context.target_shapes and create.target not in produced:
                present = [s for s in create.sources if s in source]
                if not present:
                    continue
                value = create.compute(source[present[0]])
                emit(present[0], create.target, value, created=create.reason)

        missing = sorted(set(context.target_shapes) - set(produced))
        if missing:
            shown = ", ".join(missing[:6]) + (
                f" (+{len(missing) - 6} more)" if len(missing) > 6 else ""
            )
            raise ConversionError(
                f"the checkpoint has nothing for {len(missing)} key(s) of the model built by the "
                f"config: {shown}; the config has parts the checkpoint lacks (check its options)"
            )
        for group in tied:
            first = produced[group[0]]
            for key in group[1:]:
                other = produced[key]
                if first.is_meta or other.is_meta or torch.equal(first, other):
                    continue
                raise ConversionError(
                    f"{key} (from {origin[key]}) and {group[0]} (from {origin[group[0]]}) are one "
                    f"shared tensor in the model built by the config, but the checkpoint holds "
                    f"different values for them: it has separate per-layer heads (Deformable DETR "
                    f"with box refinement: set model.with_box_refine=True; DINO trained in "
                    f"detrex: model.share_heads=False)"
                )
        return {k: produced[k] for k in context.target_shapes}, report

    @staticmethod
    def _apply(rule, key, value, match, source, context, emit, report) -> None:
        if isinstance(rule, Drop):
            report.dropped.append({"key": key, "reason": rule.reason})
        elif isinstance(rule, Alias):
            canonical = match.expand(rule.canonical)
            if canonical not in source:
                raise ConversionError(
                    f"{key}: should be a second name of {canonical}, which the file lacks"
                )
            other = source[canonical]
            if not value.is_meta and not other.is_meta:
                if value.shape != other.shape or not torch.equal(value, other):
                    raise ConversionError(
                        f"{key}: should hold the same values as {canonical} but differs; the "
                        f"file is inconsistent"
                    )
            report.dropped.append({"key": key, "reason": f"{rule.reason} (same values)"})
        elif isinstance(rule, Rename):
            target = _render(rule.target, match, context, rule.fields)
            note = rule.note
            if rule.transform is not None:
                value, note = _transform(rule.transform, value, target, key, context)
            emit(key, target, value, note)
        elif isinstance(rule, SharedHead):
            for i in range(context.num_decoder_layers):
                target = _render(rule.target, match, context, rule.fields, i=i)
                new, note = value, ""
                if rule.transform is not None:
                    new, note = _transform(rule.transform, value, target, key, context)
                emit(key, target, new, note, created=_SHARED_COPY if i > 0 else "")
        elif isinstance(rule, Split):
            parts = len(rule.targets)
            if value.shape[rule.dim] % parts:
                raise ConversionError(
                    f"{key}: size {value.shape[rule.dim]} along dim {rule.dim} does not split "
                    f"into {parts} equal parts"
                )
            size = value.shape[rule.dim] // parts
            for index, (chunk, template) in enumerate(
                zip(value.split(size, rule.dim), rule.targets)
            ):
                target = _render(template, match, context, rule.fields)
                span = f"{rule.note} [{index * size}:{(index + 1) * size})" if rule.note else ""
                emit(key, target, chunk.clone(), span)
        else:  # pragma: no cover - a table bug
            raise TypeError(f"unknown rule type {type(rule).__name__}")


_SHARED_COPY = (
    "copy of the head shared by all decoder layers (this model's state dict lists a shared "
    "head once per layer)"
)


def _transform(
    transform: Transform, value: Tensor, target: str, key: str, context: ConversionContext
) -> tuple[Tensor, str]:
    shape = context.target_shapes.get(target)
    if shape is None:
        raise ConversionError(
            f"{key}: maps to {target}, which the model built by the config does not have"
        )
    return transform(value, shape, key)
