"""Batch-first multi-head attention that can return per-head attention maps.

``torch.nn.MultiheadAttention`` averages (or hides) the attention weights and keeps packed
in-projections; attention distillation needs the per-head probabilities, so the modules here own
their projections and return ``(out, weights)`` where ``weights`` is ``(B, H, Lq, Lk)`` only
when ``need_weights=True``. Without weights the fused
:func:`torch.nn.functional.scaled_dot_product_attention` kernel is used, so asking for nothing
costs nothing.

Mask conventions (both boolean, True = not allowed):

* ``attn_mask``: (Lq, Lk), or anything broadcastable to (B, H, Lq, Lk); True = blocked.
* ``key_padding_mask``: (B, Lk); True = padding key.

No module here adds a residual connection, dropout on the output, or normalisation: that is the
job of the transformer layer.
"""

import torch
from torch import Tensor, nn
from torch.nn import functional as F

__all__ = [
    "scaled_dot_product_attention_with_weights",
    "MultiheadAttention",
    "ConditionalSelfAttention",
    "ConditionalCrossAttention",
]


def _blocked_mask(attn_mask: Tensor | None, key_padding_mask: Tensor | None) -> Tensor | None:
    """Merge both masks into one bool mask broadcastable to (B, H, Lq, Lk), True = blocked."""
    blocked = None
    if attn_mask is not None:
        if attn_mask.dtype != torch.bool:
            raise TypeError(f"attn_mask must be a bool tensor, got {attn_mask.dtype}")
        blocked = attn_mask
    if key_padding_mask is not None:
        if key_padding_mask.dtype != torch.bool:
            raise TypeError(f"key_padding_mask must be a bool tensor, got {key_padding_mask.dtype}")
        pad = key_padding_mask[:, None, None, :]  # (B, 1, 1, Lk)
        blocked = pad if blocked is None else blocked | pad
    return blocked


def scaled_dot_product_attention_with_weights(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    attn_mask: Tensor | None = None,
    key_padding_mask: Tensor | None = None,
    *,
    dropout_p: float = 0.0,
    scale: float | None = None,
) -> tuple[Tensor, Tensor]:
    """Explicit softmax attention that also returns the attention probabilities.

    Blocked positions get probability exactly 0; a query whose keys are all blocked gets an
    all-zero row and a zero output (same as the PyTorch CPU fused kernel).

    Args:
        q: Tensor of shape (B, H, Lq, Dk).
        k: Tensor of shape (B, H, Lk, Dk).
        v: Tensor of shape (B, H, Lk, Dv).
        attn_mask: Optional bool tensor (Lq, Lk) or broadcastable to (B, H, Lq, Lk),
            True = blocked.
        key_padding_mask: Optional bool tensor (B, Lk), True = padding.
        dropout_p: Dropout probability applied to the probabilities used for the output (the
            returned weights are taken before dropout).
        scale: Logit scale; ``1 / sqrt(Dk)`` when None.

    Returns:
        tuple: ``out`` of shape (B, H, Lq, Dv) and ``weights`` of shape (B, H, Lq, Lk).
    """
    if scale is None:
        scale = q.shape[-1] ** -0.5
    scores = torch.matmul(q, k.transpose(-2, -1)) * scale
    blocked = _blocked_mask(attn_mask, key_padding_mask)
    if blocked is not None:
        scores = scores.masked_fill(blocked, float("-inf"))
    weights = scores.softmax(dim=-1)
    if blocked is not None:
        # Also turns rows that are fully blocked (NaN after softmax) into zeros.
        weights = weights.masked_fill(blocked, 0.0)
    probs = F.dropout(weights, p=dropout_p) if dropout_p > 0 else weights
    return torch.matmul(probs, v), weights


def _multihead_attend(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    num_heads: int,
    *,
    attn_mask: Tensor | None,
    key_padding_mask: Tensor | None,
    dropout_p: float,
    need_weights: bool,
) -> tuple[Tensor, Tensor | None]:
    """Split heads, attend, merge heads.

    Args:
        q: (B, Lq, H * Dk) projected queries.
        k: (B, Lk, H * Dk) projected keys.
        v: (B, Lk, H * Dv) projected values.

    Returns:
        tuple: (B, Lq, H * Dv) output before the output projection, and (B, H, Lq, Lk) weights
        or None.
    """
    bsz, len_q, _ = q.shape
    len_k = k.shape[1]
    qh = q.view(bsz, len_q, num_heads, -1).transpose(1, 2)
    kh = k.view(bsz, len_k, num_heads, -1).transpose(1, 2)
    vh = v.view(bsz, len_k, num_heads, -1).transpose(1, 2)
    if need_weights:
        out, weights = scaled_dot_product_attention_with_weights(
            qh, kh, vh, attn_mask, key_padding_mask, dropout_p=dropout_p
        )
    else:
        blocked = _blocked_mask(attn_mask, key_padding_mask)
        allowed = None if blocked is None else ~blocked  # SDPA's bool mask is True = attend
        out = F.scaled_dot_product_attention(qh, kh, vh, attn_mask=allowed, dropout_p=dropout_p)
        weights = None
    return out.transpose(1, 2).reshape(bsz, len_q, -1), weights


def _check_heads(embed_dim: int, num_heads: int) -> None:
    if embed_dim % num_heads != 0:
        raise ValueError(f"embed_dim={embed_dim} is not divisible by num_heads={num_heads}")


def _init_linears(*linears: nn.Linear) -> None:
    for layer in linears:
        nn.init.xavier_uniform_(layer.weight)
        if layer.bias is not None:
            nn.init.zeros_(layer.bias)


class MultiheadAttention(nn.Module):
    """Batch-first multi-head attention with separate q/k/v/out projections.

    Projections are ``q_proj``, ``k_proj``, ``v_proj`` and ``out_proj`` (all ``nn.Linear``).
    Positional embeddings may be given as ``query_pos`` / ``key_pos``; they are added to the
    query / key (not to the value) before projection, as in DETR.

    Args:
        embed_dim: Model width D.
        num_heads: Number of heads H (must divide D).
        dropout: Dropout on the attention probabilities (training only).
        bias: Use biases in the projections.
    """

    def __init__(self, embed_dim: int, num_heads: int, dropout: float = 0.0, *, bias: bool = True):
        super().__init__()
        _check_heads(embed_dim, num_heads)
        self.embed_dim = embed_dim
        self.num_heads = num_heads
        self.dropout = dropout
        self.q_proj = nn.Linear(embed_dim, embed_dim, bias=bias)
        self.k_proj = nn.Linear(embed_dim, embed_dim, bias=bias)
        self.v_proj = nn.Linear(embed_dim, embed_dim, bias=bias)
        self.out_proj = nn.Linear(embed_dim, embed_dim, bias=bias)
        _init_linears(self.q_proj, self.k_proj, self.v_proj, self.out_proj)

    def forward(
        self,
        query: Tensor,
        key: Tensor,
        value: Tensor,
        attn_mask: Tensor | None = None,
        key_padding_mask: Tensor | None = None,
        need_weights: bool = False,
        *,
        query_pos: Tensor | None = None,
        key_pos: Tensor | None = None,
    ) -> tuple[Tensor, Tensor | None]:
        """
        Args:
            query: Tensor of shape (B, Lq, D).
            key: Tensor of shape (B, Lk, D).
            value: Tensor of shape (B, Lk, D).
            attn_mask: Optional bool (Lq, Lk), True = blocked.
            key_padding_mask: Optional bool (B, Lk), True = padding.
            need_weights: Also return the per-head attention probabilities.
            query_pos: Optional (B, Lq, D) added to ``query``.
            key_pos: Optional (B, Lk, D) added to ``key``.

        Returns:
            tuple: ``out`` (B, Lq, D) and ``weights`` (B, H, Lq, Lk) or None.
        """
        if query_pos is not None:
            query = query + query_pos
        if key_pos is not None:
            key = key + key_pos
        out, weights = _multihead_attend(
            self.q_proj(query),
            self.k_proj(key),
            self.v_proj(value),
            self.num_heads,
            attn_mask=attn_mask,
            key_padding_mask=key_padding_mask,
            dropout_p=self.dropout if self.training else 0.0,
            need_weights=need_weights,
        )
        return self.out_proj(out), weights


class ConditionalSelfAttention(nn.Module):
    """Decoder self-attention of Conditional DETR / DAB-DETR.

    Content and positional parts of queries and keys have their own projections and are summed
    after projection: ``q = Wqc x + Wqp p``, ``k = Wkc x + Wkp p``, ``v = Wv x``.

    Submodules: ``query_content_proj``, ``query_pos_proj``, ``key_content_proj``,
    ``key_pos_proj``, ``value_proj``, ``out_proj``.

    Args:
        embed_dim: Model width D.
        num_heads: Number of heads H.
        dropout: Dropout on the attention probabilities (training only).
    """

    def __init__(self, embed_dim: int, num_heads: int, dropout: float = 0.0):
        super().__init__()
        _check_heads(embed_dim, num_heads)
        self.embed_dim = embed_dim
        self.num_heads = num_heads
        self.dropout = dropout
        self.query_content_proj = nn.Linear(embed_dim, embed_dim)
        self.query_pos_proj = nn.Linear(embed_dim, embed_dim)
        self.key_content_proj = nn.Linear(embed_dim, embed_dim)
        self.key_pos_proj = nn.Linear(embed_dim, embed_dim)
        self.value_proj = nn.Linear(embed_dim, embed_dim)
        self.out_proj = nn.Linear(embed_dim, embed_dim)
        _init_linears(
            self.query_content_proj,
            self.query_pos_proj,
            self.key_content_proj,
            self.key_pos_proj,
            self.value_proj,
            self.out_proj,
        )

    def forward(
        self,
        query: Tensor,
        key: Tensor | None = None,
        value: Tensor | None = None,
        *,
        query_pos: Tensor,
        key_pos: Tensor | None = None,
        attn_mask: Tensor | None = None,
        key_padding_mask: Tensor | None = None,
        need_weights: bool = False,
    ) -> tuple[Tensor, Tensor | None]:
        """
        Args:
            query: Content queries (B, Lq, D).
            key: Content keys (B, Lk, D); defaults to ``query``.
            value: Values (B, Lk, D); defaults to ``key``.
            query_pos: Positional queries (B, Lq, D).
            key_pos: Positional keys (B, Lk, D); defaults to ``query_pos``.
            attn_mask: Optional bool (Lq, Lk), True = blocked.
            key_padding_mask: Optional bool (B, Lk), True = padding.
            need_weights: Also return the per-head attention probabilities.

        Returns:
            tuple: ``out`` (B, Lq, D) and ``weights`` (B, H, Lq, Lk) or None.
        """
        key = query if key is None else key
        value = key if value is None else value
        key_pos = query_pos if key_pos is None else key_pos
        q = self.query_content_proj(query) + self.query_pos_proj(query_pos)
        k = self.key_content_proj(key) + self.key_pos_proj(key_pos)
        out, weights = _multihead_attend(
            q,
            k,
            self.value_proj(value),
            self.num_heads,
            attn_mask=attn_mask,
            key_padding_mask=key_padding_mask,
            dropout_p=self.dropout if self.training else 0.0,
            need_weights=need_weights,
        )
        return self.out_proj(out), weights


class ConditionalCrossAttention(nn.Module):
    """Decoder cross-attention of Conditional DETR / DAB-DETR (spatial/content decoupling).

    Per head, the query is ``[q_content, Wqs s]`` and the key is ``[k_content, Wkp p]``
    (concatenated along the channel axis, so the q·k head dimension is ``2 * D / H`` and logits
    are scaled by ``1 / sqrt(2 * D / H)``), where ``s`` is the sine embedding of the reference point
    (``query_sine_embed``) and ``p`` the memory position embedding. In the first layer (or always
    with ``keep_query_pos``) the positional terms are also added to the content parts:
    ``q_content += Wqp query_pos`` and ``k_content += Wkp p``.

    Submodules: ``query_content_proj``, ``query_pos_proj``, ``query_pos_sine_proj``,
    ``key_content_proj``, ``key_pos_proj``, ``value_proj``, ``out_proj``.
    ``query_pos_proj`` is only used when ``is_first`` or ``keep_query_pos``; a decoder may set it
    to None in later layers to avoid unused parameters under DDP (as Conditional DETR does).

    Args:
        embed_dim: Model width D.
        num_heads: Number of heads H.
        dropout: Dropout on the attention probabilities (training only).
        keep_query_pos: Add the positional terms to the content parts in every layer.
    """

    def __init__(
        self,
        embed_dim: int,
        num_heads: int,
        dropout: float = 0.0,
        *,
        keep_query_pos: bool = False,
    ):
        super().__init__()
        _check_heads(embed_dim, num_heads)
        self.embed_dim = embed_dim
        self.num_heads = num_heads
        self.dropout = dropout
        self.keep_query_pos = keep_query_pos
        self.query_content_proj = nn.Linear(embed_dim, embed_dim)
        self.query_pos_proj = nn.Linear(embed_dim, embed_dim)
        self.query_pos_sine_proj = nn.Linear(embed_dim, embed_dim)
        self.key_content_proj = nn.Linear(embed_dim, embed_dim)
        self.key_pos_proj = nn.Linear(embed_dim, embed_dim)
        self.value_proj = nn.Linear(embed_dim, embed_dim)
        self.out_proj = nn.Linear(embed_dim, embed_dim)
        _init_linears(
            self.query_content_proj,
            self.query_pos_proj,
            self.query_pos_sine_proj,
            self.key_content_proj,
            self.key_pos_proj,
            self.value_proj,
            self.out_proj,
        )

    def forward(
        self,
        query: Tensor,
        key: Tensor,
        value: Tensor | None = None,
        *,
        key_pos: Tensor,
        query_sine_embed: Tensor,
        query_pos: Tensor | None = None,
        is_first: bool = False,
        attn_mask: Tensor | None = None,
        key_padding_mask: Tensor | None = None,
        need_weights: bool = False,
    ) -> tuple[Tensor, Tensor | None]:
        """
        Args:
            query: Content queries (B, Lq, D).
            key: Memory (B, Lk, D).
            value: Values (B, Lk, D); defaults to ``key``.
            key_pos: Memory position embedding (B, Lk, D).
            query_sine_embed: Sine embedding of the reference (B, Lq, D), already modulated
                by the caller where the variant does so (DAB-DETR).
            query_pos: Positional queries (B, Lq, D); required when ``is_first`` or
                ``keep_query_pos``.
            is_first: This is the first decoder layer.
            attn_mask: Optional bool (Lq, Lk), True = blocked.
            key_padding_mask: Optional bool (B, Lk), True = padding.
            need_weights: Also return the per-head attention probabilities.

        Returns:
            tuple: ``out`` (B, Lq, D) and ``weights`` (B, H, Lq, Lk) or None.
        """
        value = key if value is None else value
        bsz, len_q, _ = query.shape
        len_k = key.shape[1]
        heads = self.num_heads

        q = self.query_content_proj(query)
        k = self.key_content_proj(key)
        k_pos = self.key_pos_proj(key_pos)
        if is_first or self.keep_query_pos:
            if query_pos is None or self.query_pos_proj is None:
                raise ValueError("query_pos and query_pos_proj are needed in the first layer")
            q = q + self.query_pos_proj(query_pos)
            k = k + k_pos
        q_sine = self.query_pos_sine_proj(query_sine_embed)
        q = torch.cat((q.view(bsz, len_q, heads, -1), q_sine.view(bsz, len_q, heads, -1)), -1)
        k = torch.cat((k.view(bsz, len_k, heads, -1), k_pos.view(bsz, len_k, heads, -1)), -1)
        out, weights = _multihead_attend(
            q.flatten(2),
            k.flatten(2),
            self.value_proj(value),
            heads,
            attn_mask=attn_mask,
            key_padding_mask=key_padding_mask,
            dropout_p=self.dropout if self.training else 0.0,
            need_weights=need_weights,
        )
        return self.out_proj(out), weights
