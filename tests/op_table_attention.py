"""Op-table entries: attention (``F.scaled_dot_product_attention``)."""
from op_table import F, In, T, op  # noqa: F401

_QKV = [In((2, 3, 5, 4)), In((2, 3, 5, 4)), In((2, 3, 5, 4))]
op("sdpa", lambda lib, q, k, v: F(lib).scaled_dot_product_attention(q, k, v),
   [_QKV, [In((1, 1, 4)), In((1, 7, 4)), In((1, 7, 3))], [In((3, 2)), In((3, 2)), In((3, 2))]])
op("sdpa_causal", lambda lib, q, k, v: F(lib).scaled_dot_product_attention(q, k, v, is_causal=True),
   [_QKV, [In((2, 6, 3)), In((2, 6, 3)), In((2, 6, 5))], [In((1, 1, 1, 4)), In((1, 1, 1, 4)), In((1, 1, 1, 4))]])
op("sdpa_scale_float_mask", lambda lib, q, k, v, m: F(lib).scaled_dot_product_attention(q, k, v, attn_mask=m, scale=0.3),
   [[*_QKV, In((5, 5))], [In((2, 4, 3)), In((2, 6, 3)), In((2, 6, 2)), In((2, 4, 6))]])
op("sdpa_bool_mask", lambda lib, q, k, v, m: F(lib).scaled_dot_product_attention(
    q, k, v, attn_mask=m | (lib.eye(5) > 0)), [[*_QKV, In((5, 5), "bool")], [*_QKV, In((3, 5, 5), "bool")]])
op("sdpa_gqa", lambda lib, q, k, v: F(lib).scaled_dot_product_attention(q, k, v, enable_gqa=True),
   [[In((1, 4, 5, 4)), In((1, 2, 5, 4)), In((1, 2, 5, 4))]])
op("sdpa_transposed_views", lambda lib, q, k, v: F(lib).scaled_dot_product_attention(
    q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), is_causal=True),
   [[In((2, 5, 3, 4)), In((2, 5, 3, 4)), In((2, 5, 3, 4))]])
