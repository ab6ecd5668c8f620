"""The shared DETR-family meta-architecture.

Everything that DETR, Conditional DETR, DAB-DETR and Deformable DETR have in common lives here:
image normalisation and padding masks, target preparation, the backbone -> projection -> encoder ->
decoder -> heads pipeline, extra named query groups decoded next to the model's own queries (a
teacher's queries, denoising queries), losses and inference. A variant
supplies its encoder/decoder modules and overrides :meth:`DETRBase.initial_queries`; DETR also
overrides the class-head size and inference (softmax with a no-object class).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import torch
from detectron2.modeling.postprocessing import detector_postprocess
from detectron2.structures import Boxes, ImageList, Instances
from torch import Tensor, nn

from ...layers import (
    MLP,
    box_cxcywh_to_xyxy,
    box_xyxy_to_cxcywh,
    coordinate_sine_embedding,
    inverse_sigmoid,
)
from ..class_type import check_class_type
from ..denoising import DENOISING, DenoisingGroup
from ..neck import level_masks
from ..outputs import DecoderOutputs, DETROutput, EncoderOutputs, QueryGroup

__all__ = ["DETRBase", "query_group_mask", "sine_point_queries"]


def query_group_mask(
    num_own: int,
    group_sizes: Sequence[int],
    sees_own: Sequence[bool] | None = None,
    device=None,
) -> Tensor:
    """Self-attention mask of a model's own queries followed by extra query groups.

    Queries ``[0, num_own)`` are the model's own; then come the groups, ``group_sizes[i]``
    queries each. Every group attends to itself only, plus to the model's own queries where
    ``sees_own[i]`` (DN-DETR's denoising queries); the model's own queries attend to
    themselves only, so their outputs do not depend on any group.

    Args:
        num_own: number of the model's own queries.
        group_sizes: number of queries of each group, in order.
        sees_own: per group, whether it may attend to the model's own queries (default: none
            may).
        device: device of the mask.

    Returns:
        (Q, Q) bool tensor, Q = num_own + sum(group_sizes); True where attention is blocked
        (row = query, column = key).
    """
    sees_own = [False] * len(group_sizes) if sees_own is None else list(sees_own)
    if len(sees_own) != len(group_sizes):
        raise ValueError(f"sees_own has {len(sees_own)} entries for {len(group_sizes)} groups")
    total = num_own + sum(group_sizes)
    mask = torch.ones(total, total, dtype=torch.bool, device=device)
    mask[:num_own, :num_own] = False
    start = num_own
    for size, may_see_own in zip(group_sizes, sees_own):
        end = start + size
        mask[start:end, start:end] = False
        if may_see_own:
            mask[start:end, :num_own] = False
        start = end
    return mask


def sine_point_queries(boxes: Tensor, hidden_dim: int) -> QueryGroup:
    """Queries of variants with (x, y) reference points for given boxes: the box centres as
    references, their sine embedding (the decoder family's ``coordinate_sine_embedding``) as
    positional queries, zero content queries.

    Args:
        boxes: (B or 1, Q, 4) normalised (cx, cy, w, h).
        hidden_dim: width D (even).

    Returns:
        QueryGroup with content/pos (B or 1, Q, D), reference (B or 1, Q, 2).
    """
    centers = boxes[..., :2]
    pos = coordinate_sine_embedding(centers, num_pos_feats=hidden_dim // 2).to(boxes.dtype)
    return QueryGroup(content=torch.zeros_like(pos), pos=pos, reference=centers)


class DETRBase(nn.Module):
    """Base class of the DETR-family detectors (see module docstring).

    Subclasses set ``self.loss_class_type`` ("focal" or "softmax") through the constructor and
    implement :meth:`initial_queries`. A variant whose decoder takes pos-less queries with 4-d
    anchor references sets ``supports_denoising = True`` to accept ``denoising=``.
    """

    supports_denoising = False

    def __init__(
        self,
        *,
        backbone: nn.Module,
        neck: nn.Module,
        position_embedding: nn.Module,
        encoder: nn.Module,
        decoder: nn.Module,
        criterion: nn.Module,
        num_classes: int,
        num_queries: int,
        hidden_dim: int,
        pixel_mean: tuple[float, float, float],
        pixel_std: tuple[float, float, float],
        loss_class_type: str = "focal",
        aux_loss: bool = True,
        share_heads: bool = True,
        refine_boxes: bool = False,
        select_box_nums_for_evaluation: int = 100,
        input_format: str = "RGB",
        size_divisibility: int = 0,
        denoising: nn.Module | None = None,
    ):
        """
        Args:
            backbone: detectron2 Backbone (e.g. from ``build_resnet_backbone``).
            neck: :class:`~detrdistill.modeling.neck.InputProjection`.
            position_embedding: module mapping a padding mask (B, H, W) to (B, D, H, W).
            encoder: transformer encoder, ``forward(src, pos, mask, spatial_shapes,
                level_start_index, valid_ratios) -> (B, S, D)``.
            decoder: transformer decoder, see :meth:`decode`.
            criterion: :class:`~detrdistill.modeling.criterion.SetCriterion` (its class type
                and its matcher's are left unset: they take ``loss_class_type``).
            num_classes: foreground classes.
            num_queries: object queries.
            hidden_dim: transformer width D.
            pixel_mean, pixel_std: normalisation constants in ``input_format`` channel order.
            loss_class_type: "focal" (sigmoid scores, K = num_classes) or "softmax"
                (K = num_classes + 1 with a no-object class): the one key of the class type;
                the criterion and its matcher take it (:mod:`~detrdistill.modeling.class_type`).
            aux_loss: supervise every decoder layer, not only the last.
            share_heads: one class/box head for all layers (False for box refinement).
            refine_boxes: each decoder layer refines the previous layer's boxes.
            select_box_nums_for_evaluation: detections kept per image at inference.
            input_format: "RGB" or "BGR" (images from the mapper are in this order).
            size_divisibility: pad images to a multiple of this.
            denoising: a :class:`~detrdistill.modeling.denoising.DenoisingQueries` to train
                with DN-DETR / DINO denoising queries (training only), or None (off).
        """
        super().__init__()
        self.backbone = backbone
        self.neck = neck
        self.position_embedding = position_embedding
        self.encoder = encoder
        self.decoder = decoder
        self.criterion = criterion
        self.num_classes = num_classes
        self.num_queries = num_queries
        self.hidden_dim = hidden_dim
        self.loss_class_type = check_class_type(loss_class_type, "model.loss_class_type")
        criterion.adopt_class_type(loss_class_type, source="loss_class_type")
        self.aux_loss = aux_loss
        self.refine_boxes = refine_boxes
        self.select_box_nums_for_evaluation = select_box_nums_for_evaluation
        self.input_format = input_format
        self.size_divisibility = size_divisibility
        self.register_buffer("pixel_mean", torch.tensor(pixel_mean).view(-1, 1, 1), False)
        self.register_buffer("pixel_std", torch.tensor(pixel_std).view(-1, 1, 1), False)
        if denoising is not None:
            self._check_denoising(denoising, num_classes, hidden_dim)
        self.denoising = denoising

        num_layers = decoder.num_layers
        num_logits = num_classes + 1 if loss_class_type == "softmax" else num_classes
        self.class_embed = self._make_heads(
            lambda: nn.Linear(hidden_dim, num_logits), num_layers, share_heads
        )
        self.bbox_embed = self._make_heads(
            lambda: MLP(hidden_dim, hidden_dim, 4, 3), num_layers, share_heads
        )
        self._init_heads()

    def _check_denoising(self, denoising: nn.Module, num_classes: int, hidden_dim: int):
        if not self.supports_denoising:
            raise ValueError(
                f"model.denoising is set, but {type(self).__name__} does not decode denoising "
                "queries (they need a decoder taking 4-d anchor references without positional "
                "queries, e.g. DAB-DETR)"
            )
        for key, expected in (("num_classes", num_classes), ("hidden_dim", hidden_dim)):
            if getattr(denoising, key) != expected:
                raise ValueError(
                    f"model.denoising.{key}={getattr(denoising, key)} differs from the model's "
                    f"{key}={expected}"
                )

    @staticmethod
    def _make_heads(factory, num_layers: int, shared: bool) -> nn.ModuleList:
        if shared:
            head = factory()
            return nn.ModuleList([head] * num_layers)
        return nn.ModuleList(factory() for _ in range(num_layers))

    def _init_heads(self):
        if self.loss_class_type == "focal":
            prior_bias = -math.log((1 - 0.01) / 0.01)
            for head in self.class_embed:
                nn.init.constant_(head.bias, prior_bias)
        for head in self.bbox_embed:
            nn.init.zeros_(head.layers[-1].weight)
            nn.init.zeros_(head.layers[-1].bias)

    @property
    def device(self) -> torch.device:
        return self.pixel_mean.device

    # ------------------------------------------------------------------ inputs
    def preprocess_image(self, batched_inputs: list[dict]) -> ImageList:
        """Normalise and pad the images of a batch.

        Returns:
            ImageList with ``tensor`` (B, 3, Hpad, Wpad) and ``image_sizes`` [(h, w)].
        """
        images = [
            (x["image"].to(self.device) - self.pixel_mean) / self.pixel_std for x in batched_inputs
        ]
        return ImageList.from_tensors(images, self.size_divisibility)

    @staticmethod
    def padding_mask(images: ImageList) -> Tensor:
        """(B, Hpad, Wpad) bool, True on padded pixels."""
        batch, _, height, width = images.tensor.shape
        mask = torch.ones(batch, height, width, dtype=torch.bool, device=images.tensor.device)
        for index, (h, w) in enumerate(images.image_sizes):
            mask[index, :h, :w] = False
        return mask

    def prepare_targets(self, batched_inputs: list[dict]) -> list[dict[str, Tensor]]:
        """Ground truth as DETR targets.

        Returns:
            per image ``{"labels": (n,) long, "boxes": (n, 4) normalised cxcywh}``; boxes are
            divided by the augmented, unpadded image size (``Instances.image_size``).
        """
        targets = []
        for record in batched_inputs:
            if "instances" not in record:
                raise KeyError(
                    "training needs 'instances' in every input dict; the dataset mapper must run "
                    "with is_train=True"
                )
            instances = record["instances"].to(self.device)
            h, w = instances.image_size
            scale = torch.tensor([w, h, w, h], dtype=torch.float32, device=self.device)
            boxes = box_xyxy_to_cxcywh(instances.gt_boxes.tensor.float() / scale)
            targets.append({"labels": instances.gt_classes.long(), "boxes": boxes})
        return targets

    # ------------------------------------------------------------------ network
    def forward(self, batched_inputs: list[dict]):
        """detectron2 contract.

        Args:
            batched_inputs: list of dicts with ``image`` (3, H, W) uint8 in ``input_format``,
                ``instances`` (training) and optional ``height``/``width`` (original size).

        Returns:
            training: dict of weighted losses; inference: ``[{"instances": Instances}]`` with
            ``pred_boxes`` (absolute XYXY at the original size), ``scores``, ``pred_classes``.
        """
        images = self.preprocess_image(batched_inputs)
        if self.training:
            targets = self.prepare_targets(batched_inputs)
            output = self.run(images, groups=self.training_groups(targets))
            losses, _ = self.compute_losses(output, targets)
            return losses
        output = self.run(images)
        return self.postprocess(self.inference(output), batched_inputs, images.image_sizes)

    def training_groups(self, targets: list[dict]) -> dict[str, QueryGroup]:
        """Query groups the model adds to its own training step: ``{"denoising": ...}`` when
        ``denoising`` is set and the model is training, else none.

        Args:
            targets: from :meth:`prepare_targets`.
        """
        if self.denoising is None or not self.training:
            return {}
        return {DENOISING: self.denoising(targets)}

    def run(
        self,
        images: ImageList,
        *,
        return_attention: bool = False,
        groups: Mapping[str, QueryGroup] | None = None,
    ) -> DETROutput:
        """Run the whole network and return every intermediate result distillation needs.

        Args:
            images: preprocessed batch from :meth:`preprocess_image`.
            return_attention: also return per-layer self- and cross-attention weights.
            groups: name -> extra query group (e.g. a teacher's initial queries, denoising
                queries; each field (B or 1, Qg, ...)) decoded in the same pass as the model's
                own queries under :func:`query_group_mask`: each group attends to itself only
                (and to the own queries where ``QueryGroup.sees_own_queries``), the own queries
                never attend to a group, so the model's own outputs do not change.

        Returns:
            :class:`DETROutput`; ``groups[name]`` holds each group's per-layer outputs.
        """
        groups = dict(groups or {})
        encoder_out = self.encode(images)
        own, proposals = self.initial_queries(encoder_out)
        queries, mask = own, None
        if groups:
            queries = QueryGroup.concat(own, groups)
            blocks = [(size, g.sees_own_queries) for g in groups.values() for size in g.block_sizes]
            mask = query_group_mask(
                own.num_queries, [b[0] for b in blocks], [b[1] for b in blocks], self.device
            )
        decoded = self.decode(queries, encoder_out, mask, return_attention)
        if proposals is not None:
            decoded.enc_logits, decoded.enc_boxes = proposals
        group_outputs = {}
        if groups:
            sizes = [own.num_queries] + [g.num_queries for g in groups.values()]
            decoded, *parts = decoded.split_queries(sizes)
            group_outputs = dict(zip(groups, parts))
        return DETROutput(
            decoded, own, encoder_out, list(images.image_sizes), group_outputs, groups
        )

    def encode(self, images: ImageList) -> EncoderOutputs:
        """Backbone, input projection, positional encoding and transformer encoder."""
        features = self.neck(self.backbone(images.tensor))
        masks = level_masks(self.padding_mask(images), features)
        pos = [
            self.position_embedding(mask).to(feature.dtype)
            for mask, feature in zip(masks, features)
        ]
        spatial_shapes = torch.as_tensor(
            [f.shape[-2:] for f in features], dtype=torch.long, device=self.device
        )
        level_start_index = torch.cat(
            [spatial_shapes.new_zeros(1), spatial_shapes.prod(1).cumsum(0)[:-1]]
        )
        valid_ratios = torch.stack([self._valid_ratio(m) for m in masks], 1)
        src = torch.cat([f.flatten(2).transpose(1, 2) for f in features], 1)
        src_pos = torch.cat([p.flatten(2).transpose(1, 2) for p in pos], 1)
        src_mask = torch.cat([m.flatten(1) for m in masks], 1)
        memory = self.encoder(
            src=src,
            pos=src_pos,
            mask=src_mask,
            spatial_shapes=spatial_shapes,
            level_start_index=level_start_index,
            valid_ratios=valid_ratios,
        )
        return EncoderOutputs(
            features=features,
            masks=masks,
            pos=pos,
            memory=memory,
            memory_pos=src_pos,
            memory_mask=src_mask,
            spatial_shapes=spatial_shapes,
            level_start_index=level_start_index,
            valid_ratios=valid_ratios,
        )

    @staticmethod
    def _valid_ratio(mask: Tensor) -> Tensor:
        """(B, 2) fraction (w, h) of a level's (B, H, W) mask that is not padding."""
        _, height, width = mask.shape
        valid_h = (~mask[:, :, 0]).sum(1).float() / height
        valid_w = (~mask[:, 0, :]).sum(1).float() / width
        return torch.stack([valid_w, valid_h], -1)

    def initial_queries(
        self, encoder: EncoderOutputs
    ) -> tuple[QueryGroup, tuple[Tensor, Tensor] | None]:
        """The model's own initial queries (variant hook).

        Returns:
            the :class:`QueryGroup` for B images, and two-stage proposals
            ``(logits (B, Q, K), boxes (B, Q, 4))`` or None.
        """
        raise NotImplementedError

    #: Clamp of :func:`~detrdistill.layers.inverse_sigmoid` when boxes are predicted as offsets to
    #: references (the official code's value: 1e-5 Deformable DETR, 1e-3 DINO).
    inverse_sigmoid_eps: float = 1e-5

    #: The decoder derives positional queries from ``QueryGroup.reference`` (DINO): the model's
    #: query groups carry ``pos=None``, and so must a group given from outside.
    positions_from_reference: bool = False

    def positional_queries(self, queries: QueryGroup, encoder: EncoderOutputs) -> Tensor:
        """Positional queries (B, Q, D) of one of this model's query groups, as its first decoder
        layer uses them (``queries.pos``, or derived from ``queries.reference`` by variants with
        :attr:`positions_from_reference`)."""
        if queries.pos is not None:
            return queries.pos
        raise NotImplementedError(
            f"{type(self).__name__} does not derive positional queries from reference points"
        )

    @property
    def has_reference_head(self) -> bool:
        """Whether :meth:`reference_from_pos` maps positional queries to reference points."""
        return False

    def reference_from_pos(self, pos: Tensor) -> Tensor:
        """Reference points of positional queries through this model's own reference head
        (variant hook; used for a teacher-query group, see ``teacher_query_reference``).

        Args:
            pos: (B, Q, D) positional queries.

        Returns:
            (B, Q, 2) reference points in [0, 1].
        """
        raise NotImplementedError(
            f"{type(self).__name__} does not derive reference points from positional queries"
        )

    @property
    def has_box_queries(self) -> bool:
        """Whether :meth:`queries_from_boxes` turns boxes into this model's queries."""
        return type(self).queries_from_boxes is not DETRBase.queries_from_boxes

    def queries_from_boxes(self, boxes: Tensor) -> QueryGroup:
        """This model's initial queries for given boxes (variant hook; used for distillation
        points decoded by a teacher and a student alike, e.g. KD-DETR's).

        The queries have the form of the model's own (same fields, same reference width), so
        they can be decoded as a query group next to them.

        Args:
            boxes: (B or 1, Q, 4) normalised (cx, cy, w, h) in [0, 1].

        Returns:
            QueryGroup with content (and pos) (B or 1, Q, D) and reference (B or 1, Q, 2|4): the
            boxes themselves, or their centres for models with (x, y) reference points.
        """
        raise NotImplementedError(
            f"{type(self).__name__} has no query form for boxes (no reference points or anchors)"
        )

    def decode(
        self,
        queries: QueryGroup,
        encoder: EncoderOutputs,
        self_attn_mask: Tensor | None,
        return_attention: bool,
    ) -> DecoderOutputs:
        """Run the decoder and the prediction heads on all layers."""
        raw = self.decoder(
            content=queries.content,
            pos=queries.pos,
            reference=queries.reference,
            memory=encoder.memory,
            memory_mask=encoder.memory_mask,
            memory_pos=encoder.memory_pos,
            spatial_shapes=encoder.spatial_shapes,
            level_start_index=encoder.level_start_index,
            valid_ratios=encoder.valid_ratios,
            self_attn_mask=self_attn_mask,
            return_attention=return_attention,
            box_refiner=self.bbox_embed if self.refine_boxes else None,
        )
        logits, boxes = self.predict(raw.hidden_states, raw.references)
        return DecoderOutputs(
            pred_logits=logits,
            pred_boxes=boxes,
            hidden_states=raw.hidden_states,
            references=raw.references,
            self_attn=raw.self_attn,
            cross_attn=raw.cross_attn,
        )

    def predict(self, hidden_states: Tensor, references: Tensor | None) -> tuple[Tensor, Tensor]:
        """Class logits and boxes of every layer.

        Args:
            hidden_states: (L, B, Q, D).
            references: (L, B, Q, 2|4) per-layer input references (the box head predicts an
                offset to them in inverse-sigmoid space), or None.

        Returns:
            logits (L, B, Q, K) and boxes (L, B, Q, 4) normalised cxcywh.
        """
        logits, boxes = [], []
        for index, hidden in enumerate(hidden_states):
            logits.append(self.class_embed[index](hidden))
            delta = self.bbox_embed[index](hidden)
            if references is not None:
                ref = inverse_sigmoid(references[index], self.inverse_sigmoid_eps)
                width = ref.shape[-1]
                delta = torch.cat([delta[..., :width] + ref, delta[..., width:]], -1)
            boxes.append(delta.sigmoid())
        return torch.stack(logits), torch.stack(boxes)

    # ------------------------------------------------------------------ losses / inference
    def compute_losses(self, output: DETROutput, targets: list[dict], indices=None):
        """Weighted detection losses of the model's own queries, plus the denoising losses
        (``loss_*_dn``) when ``denoising`` is set and the model is training.

        Args:
            output: from :meth:`run` (with ``groups=self.training_groups(targets)`` when
                denoising).
            targets: from :meth:`prepare_targets`.
            indices: optional per-layer assignments overriding the matcher.

        Returns:
            (loss dict, per-layer indices of the own queries).
        """
        decoded = output.decoder
        if not self.aux_loss:
            decoded = _last_layer_only(decoded)
            if indices is not None:
                indices = indices[-1:]
        losses, indices = self.criterion(decoded, targets, indices=indices)
        if self.denoising is not None and self.training:
            losses.update(self.denoising_losses(output, targets))
        return losses, indices

    def denoising_losses(self, output: DETROutput, targets: list[dict]) -> dict[str, Tensor]:
        """The criterion's losses of the denoising group under its known assignment."""
        group = output.group_queries.get(DENOISING)
        if not isinstance(group, DenoisingGroup):
            raise ValueError(
                f"model.denoising is set but the output has no {DENOISING!r} group; run the "
                "model with groups=model.training_groups(targets) in training"
            )
        decoded = output.groups[DENOISING]
        if not self.aux_loss:
            decoded = _last_layer_only(decoded)
        return self.criterion.denoising_losses(
            decoded, targets, group.assignment, num_groups=group.num_blocks
        )

    def inference(self, output: DETROutput) -> list[Instances]:
        """Detections of the last decoder layer in the resized (unpadded) image frame."""
        logits = output.decoder.pred_logits[-1]
        boxes = output.decoder.pred_boxes[-1]
        if self.loss_class_type == "softmax":
            scores, labels = logits.softmax(-1)[..., :-1].max(-1)
            query_index = None
        else:
            probs = logits.sigmoid().flatten(1)
            k = min(self.select_box_nums_for_evaluation, probs.shape[1])
            scores, flat_index = probs.topk(k, dim=1)
            query_index = torch.div(flat_index, logits.shape[-1], rounding_mode="floor")
            labels = flat_index % logits.shape[-1]
            boxes = torch.gather(boxes, 1, query_index.unsqueeze(-1).expand(-1, -1, 4))
        results = []
        for score, label, box, (h, w) in zip(scores, labels, boxes, output.image_sizes):
            instances = Instances((h, w))
            scale = torch.tensor([w, h, w, h], dtype=box.dtype, device=box.device)
            instances.pred_boxes = Boxes(box_cxcywh_to_xyxy(box) * scale)
            instances.scores = score
            instances.pred_classes = label
            results.append(instances)
        return results

    @staticmethod
    def postprocess(
        results: list[Instances], batched_inputs: list[dict], image_sizes
    ) -> list[dict]:
        """Rescale detections to each input's original ``height``/``width``."""
        processed = []
        for instances, record, (h, w) in zip(results, batched_inputs, image_sizes):
            height = record.get("height", h)
            width = record.get("width", w)
            processed.append({"instances": detector_postprocess(instances, height, width)})
        return processed


def _last_layer_only(decoded: DecoderOutputs) -> DecoderOutputs:
    return DecoderOutputs(
        pred_logits=decoded.pred_logits[-1:],
        pred_boxes=decoded.pred_boxes[-1:],
        hidden_states=decoded.hidden_states[-1:],
        enc_logits=decoded.enc_logits,
        enc_boxes=decoded.enc_boxes,
    )
