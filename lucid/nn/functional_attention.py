"""Attention: ``scaled_dot_product_attention`` and ``multi_head_attention_forward``, as
PyTorch's ``torch.nn.functional`` defines them.

>>> import lucid
>>> import lucid.nn.functional as F
>>> q = k = v = lucid.ones(2, 4, 3, 8)                 # (batch, heads, length, head dim)
>>> F.scaled_dot_product_attention(q, k, v, is_causal=True).shape
(2, 4, 3, 8)
"""
from __future__ import annotations

import math

import numpy as np

from lucid_ir.types import broadcast_shapes

from ..dispatch import ChainCache, as_tensor
from ..functional_core import cat

_NEG_INF = float("-inf")


def _causal_mask(L: int, S: int):
    """(L, S) bool: True where position i may attend to j (j <= i), as PyTorch's
    ``torch.ones(L, S).tril()``."""
    from ..creation import tensor
    return tensor(np.tril(np.ones((L, S), dtype=bool)))


def scaled_dot_product_attention(query, key, value, attn_mask=None, dropout_p: float = 0.0,
                                 is_causal: bool = False, scale: float | None = None,
                                 enable_gqa: bool = False):
    """``softmax(q·kᵀ·scale + mask) · v`` over the last two dims, batch dims broadcast.

    query ``(…, L, E)``, key ``(…, S, E)``, value ``(…, S, Ev)`` → ``(…, L, Ev)``.
    ``attn_mask``: bool (True: may attend) or additive float, broadcastable to
    ``(…, L, S)``; ``is_causal`` masks the upper triangle (not with ``attn_mask``);
    ``scale`` defaults to ``1/√E``; ``dropout_p`` drops attention weights (always, as in
    PyTorch: pass 0 in evaluation); ``enable_gqa`` lets key/value have fewer heads
    (dim -3) than query, each shared by a group of query heads.
    """
    q, k, v = as_tensor(query), as_tensor(key), as_tensor(value)
    if q.ndim < 2 or k.ndim < 2 or v.ndim < 2:
        raise ValueError(f"scaled_dot_product_attention: query, key and value need at least 2 dims, "
                         f"got {q.shape}, {k.shape}, {v.shape}")
    if q.shape[-1] != k.shape[-1] or k.shape[-2] != v.shape[-2]:
        raise RuntimeError(f"scaled_dot_product_attention: query {q.shape}, key {k.shape} and value "
                           f"{v.shape} do not fit: query and key need the same last dim, key and value "
                           f"the same length (dim -2)")
    if is_causal and attn_mask is not None:
        raise RuntimeError("_scaled_dot_product_attention: Explicit attn_mask should not be set when is_causal=True")
    if enable_gqa and q.ndim >= 3 and k.shape[-3] != q.shape[-3]:
        hq, hk = q.shape[-3], k.shape[-3]
        if hq % hk or v.shape[-3] != hk:
            raise RuntimeError(f"scaled_dot_product_attention: {hq} query heads cannot be grouped over "
                               f"{hk} key heads and {v.shape[-3]} value heads")
        k, v = _repeat_heads(k, hq // hk), _repeat_heads(v, hq // hk)
    L, S = q.shape[-2], k.shape[-2]
    factor = 1.0 / math.sqrt(q.shape[-1]) if scale is None else float(scale)
    if attn_mask is None and dropout_p == 0.0 and _fusable(q, k, v):
        return fused_attention(q, k, v, is_causal=bool(is_causal), scale=factor)
    scores = (q @ k.transpose(-2, -1)) * factor
    if is_causal:
        scores = scores.masked_fill(_causal_mask(L, S).logical_not(), _NEG_INF)
    elif attn_mask is not None:
        mask = as_tensor(attn_mask)
        if mask.dtype == "bool":
            scores = scores.masked_fill(mask.logical_not(), _NEG_INF)
        else:
            scores = scores + mask
    from . import functional as F
    weights = F.softmax(scores, dim=-1)
    if dropout_p > 0.0:
        weights = F.dropout(weights, dropout_p, training=True)
    return weights @ v


def _fusable(q, k, v) -> bool:
    """Whether one fused ``attention`` op computes this call: q, k, v of one float dtype
    whose leading dims broadcast together, at least one key."""
    if not (q.dtype == k.dtype == v.dtype and q.dtype in ("float32", "float64") and k.shape[-2] > 0):
        return False
    try:
        broadcast_shapes(q.shape[:-2], k.shape[:-2], v.shape[:-2])
    except ValueError:
        return False
    return True


def fused_attention(q, k, v, is_causal: bool = False, scale: float | None = None):
    """``softmax(q·kᵀ·scale + causal mask)·v`` as one fused native op (``attention`` in the
    IR: tiled, online softmax, no L×S buffer), in eager mode and inside ``lucid.compile``.
    q ``(…, L, E)``, k ``(…, S, E)``, v ``(…, S, Ev)`` with leading dims that broadcast
    (expanded views: no copies).

    >>> import lucid
    >>> q = lucid.ones(1, 2, 3)
    >>> fused_attention(q, q, lucid.arange(6.0).reshape(1, 2, 3), is_causal=True).tolist()
    [[[0.0, 1.0, 2.0], [1.5, 2.5, 3.5]]]
    """
    from .. import dispatch
    q, k, v = as_tensor(q), as_tensor(k), as_tensor(v)
    lead = broadcast_shapes(q.shape[:-2], k.shape[:-2], v.shape[:-2], op="scaled_dot_product_attention")
    q, k, v = (x if x.shape[:-2] == lead else x.expand(*lead, *x.shape[-2:]) for x in (q, k, v))
    factor = 1.0 / math.sqrt(q.shape[-1]) if scale is None and q.shape[-1] else (
        1.0 if scale is None else float(scale))
    out_shape = (*q.shape[:-2], q.shape[-2], v.shape[-1])
    key = (bool(is_causal), factor, out_shape)
    chain = _CHAINS.get(key)
    if chain is None:
        n, size = len(out_shape) - 2, out_shape[-2] * out_shape[-1]
        chain = _CHAINS[key] = dispatch.Chain([
            ("attention", {"is_causal": bool(is_causal), "scale": factor}, (0, 1, 2)),
            ("slice", {"starts": (None,) * n + (0,), "stops": (None,) * n + (size,), "steps": (1,) * (n + 1)},
             (-1,)),
            ("reshape", {"shape": out_shape}, (-1,))], name="scaled_dot_product_attention")
    return dispatch.call(chain, (q, k, v))


_CHAINS: dict = ChainCache(limit=256)


def _repeat_heads(x, times: int):
    """(…, H, S, E) → (…, H·times, S, E), each head repeated ``times`` times in place
    (``repeat_interleave`` along the heads)."""
    lead, (h, s, e) = x.shape[:-3], x.shape[-3:]
    return x.unsqueeze(-3).expand(*lead, h, times, s, e).reshape(*lead, h * times, s, e)


def multi_head_attention_forward(query, key, value, embed_dim_to_check: int, num_heads: int,
                                 in_proj_weight, in_proj_bias, bias_k, bias_v, add_zero_attn: bool,
                                 dropout_p: float, out_proj_weight, out_proj_bias, training: bool = True,
                                 key_padding_mask=None, need_weights: bool = True, attn_mask=None,
                                 use_separate_proj_weight: bool = False, q_proj_weight=None,
                                 k_proj_weight=None, v_proj_weight=None, static_k=None, static_v=None,
                                 average_attn_weights: bool = True, is_causal: bool = False):
    """PyTorch's multi-head attention on sequence-first inputs: query ``(L, N, E)``,
    key ``(S, N, kdim)``, value ``(S, N, vdim)`` (or unbatched ``(L, E)`` …). Returns
    ``(output (L, N, E), weights (N, L, S) averaged over heads, or per head, or None)``.
    Masks: bool ``True`` = may NOT attend (PyTorch's convention here), float = added."""
    from . import functional as F
    q_in, k_in, v_in = as_tensor(query), as_tensor(key), as_tensor(value)
    unbatched = q_in.ndim == 2
    if unbatched:
        q_in, k_in, v_in = q_in.unsqueeze(1), k_in.unsqueeze(1), v_in.unsqueeze(1)
        if key_padding_mask is not None:
            key_padding_mask = as_tensor(key_padding_mask).unsqueeze(0)
    if q_in.ndim != 3 or k_in.ndim != 3 or v_in.ndim != 3:
        raise AssertionError(f"query should be unbatched 2D or batched 3D tensor but received "
                             f"{as_tensor(query).ndim}-D query tensor")
    L, N, E = q_in.shape
    S = k_in.shape[0]
    if E != embed_dim_to_check:
        raise AssertionError(f"was expecting embedding dimension of {embed_dim_to_check}, but got {E}")
    if E % num_heads:
        raise AssertionError(f"embed_dim {E} not divisible by num_heads {num_heads}")
    if k_in.shape[:2] != v_in.shape[:2]:
        raise AssertionError(f"key shape {k_in.shape} does not match value shape {v_in.shape}")
    hd = E // num_heads
    if is_causal and attn_mask is None:
        raise RuntimeError("Need attn_mask if specifying the is_causal hint. You may use the Transformer "
                           "module method `generate_square_subsequent_mask` to create this mask.")
    # projections
    if use_separate_proj_weight:
        wq, wk, wv = q_proj_weight, k_proj_weight, v_proj_weight
    else:
        wq, wk, wv = in_proj_weight[:E], in_proj_weight[E:2 * E], in_proj_weight[2 * E:]
    bq = bk = bv = None
    if in_proj_bias is not None:
        bq, bk, bv = in_proj_bias[:E], in_proj_bias[E:2 * E], in_proj_bias[2 * E:]
    q = F.linear(q_in, wq, bq)
    k = F.linear(k_in, wk, bk)
    v = F.linear(v_in, wv, bv)
    mask = _merge_attn_mask(attn_mask, L, S, N, num_heads, q.dtype)
    if bias_k is not None and bias_v is not None:
        k = cat([k, bias_k.expand(1, N, E)])
        v = cat([v, bias_v.expand(1, N, E)])
        mask = None if mask is None else F.pad(mask, (0, 1))
        if key_padding_mask is not None:
            key_padding_mask = F.pad(as_tensor(key_padding_mask), (0, 1))
    # (len, N, E) -> (N·heads, len, head dim)
    q = q.reshape(L, N * num_heads, hd).transpose(0, 1)
    k = k.reshape(k.shape[0], N * num_heads, hd).transpose(0, 1)
    v = v.reshape(v.shape[0], N * num_heads, hd).transpose(0, 1)
    if add_zero_attn:
        from ..creation import zeros
        k = cat([k, zeros(N * num_heads, 1, hd, dtype=k.dtype)], dim=1)
        v = cat([v, zeros(N * num_heads, 1, hd, dtype=v.dtype)], dim=1)
        mask = None if mask is None else F.pad(mask, (0, 1))
        if key_padding_mask is not None:
            key_padding_mask = F.pad(as_tensor(key_padding_mask), (0, 1))
    S2 = k.shape[1]
    if key_padding_mask is not None:
        kpm = _additive(as_tensor(key_padding_mask), q.dtype, "key_padding_mask")
        if tuple(kpm.shape) != (N, S2):
            raise AssertionError(f"expecting key_padding_mask shape of {(N, S2)}, but got {kpm.shape}")
        kpm = kpm.reshape(N, 1, 1, S2).expand(N, num_heads, 1, S2).reshape(N * num_heads, 1, S2)
        mask = kpm if mask is None else mask + kpm
    scores = (q * (1.0 / math.sqrt(hd))) @ k.transpose(-2, -1)
    if mask is not None:
        scores = scores + mask
    weights = F.softmax(scores, dim=-1)
    if dropout_p > 0.0 and training:
        weights = F.dropout(weights, dropout_p, training=True)
    out = (weights @ v).transpose(0, 1).reshape(L * N, E)
    out = F.linear(out, out_proj_weight, out_proj_bias).reshape(L, N, E)
    if unbatched:
        out = out.squeeze(1)
    if not need_weights:
        return out, None
    weights = weights.reshape(N, num_heads, L, S2)
    if average_attn_weights:
        weights = weights.mean(dim=1)
    if unbatched:
        weights = weights.squeeze(0)
    return out, weights


def _additive(mask, dtype, what: str):
    """A bool mask (True: masked out) as 0/-inf, or a float mask as it is."""
    if mask.dtype == "bool":
        from ..creation import zeros
        return zeros(*mask.shape, dtype=dtype).masked_fill(mask, _NEG_INF)
    if mask.dtype not in ("float32", "float64"):
        raise AssertionError(f"only bool and floating types of {what} are supported")
    return mask


def _merge_attn_mask(attn_mask, L, S, N, heads, dtype):
    if attn_mask is None:
        return None
    mask = _additive(as_tensor(attn_mask), dtype, "attn_mask")
    if mask.ndim == 2:
        if tuple(mask.shape) != (L, S):
            raise RuntimeError(f"The shape of the 2D attn_mask is {mask.shape}, but should be {(L, S)}.")
        return mask.unsqueeze(0)
    if mask.ndim == 3:
        if tuple(mask.shape) != (N * heads, L, S):
            raise RuntimeError(f"The shape of the 3D attn_mask is {mask.shape}, but should be "
                               f"{(N * heads, L, S)}.")
        return mask
    raise RuntimeError(f"attn_mask's dimension {mask.ndim} is not supported")
