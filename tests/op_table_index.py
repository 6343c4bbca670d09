"""Op-table entries for advanced indexing (``x[index_tensor]``, masks, several index
tensors) and index assignment (``x[key] = value``, written as a function that clones
and assigns, so the same source runs on torch and lucid and is differentiable).

Masks taken from a tensor need their values to know the result's shape, so the entries
that read ``x[mask]`` run eager and interpreted only (``lucid.compile`` refuses them with
a TracingError, as ``torch.compile`` would break the graph); ``x[mask] = v`` runs in all
modes.
"""
from op_table import In, T, op


def _assign(x, key, value):
    y = x.clone()
    y[key] = value
    return y


def _assign_into_result(x, v):
    h = x * 2.0
    h[:, 0] = v
    return h * h


_EAGER = ("eager", "interpret")
_MASK_NOTE = "a mask tensor's values decide the result's shape: not traceable"

# ------------------------------------------------------------------ x[...] reading
op("index_tensor", lambda lib, x, i: x[i],
   [[In((5, 4)), In((3,), "index:5")], [T(5, 4), In((2, 3), "index:5")],
    [In((3, 2)), In((9,), "index:3")],                       # duplicates accumulate
    [In((7,)), In((), "index:7")], [In((4, 0)), In((2,), "index:4")], [In((4, 3)), In((0,), "index:4")],
    [In((6, 3)), In((8,), "int")]])                          # negative indices
op("index_tensor_int_data", lambda lib, x, i: x[i], [[In((5, 4), "int"), In((3,), "index:5")],
                                                     [In((4,), "bool"), In((2, 2), "index:4")]], grad=False)
op("index_two_tensors", lambda lib, x, i, j: x[i, j],
   [[In((4, 5)), In((3,), "index:4"), In((3,), "index:5")],
    [T(5, 4), In((2, 1), "index:5"), In((3,), "index:4")],
    [In((2, 3, 4)), In((2, 2), "index:2"), In((2,), "index:3")]])
op("index_tensor_after_slice", lambda lib, x, i: x[1:, i, ::2],
   [[In((3, 4, 5)), In((2, 3), "index:4")], [T(5, 4, 3), In((6,), "index:4")]])
op("index_tensors_apart", lambda lib, x, i, j: x[i, :, j],
   [[In((3, 4, 5)), In((2,), "index:3"), In((2,), "index:5")],
    [T(5, 4, 3), In((2, 1), "index:5"), In((1, 3), "index:3")]])
op("index_int_select_then_tensor", lambda lib, x, i: x[1, :, i],
   [[In((2, 3, 4)), In((5,), "index:4")], [T(4, 3, 2), In((2, 2), "index:2")]])
op("index_none_ellipsis_tensor", lambda lib, x, i: x[None, ..., i], [[In((2, 3, 4)), In((3,), "index:4")]])
op("index_list", lambda lib, x: x[[0, 2, 2, -1]], [[In((4, 3))], [T(3, 4)], [In((5,))]])
op("index_list_pair", lambda lib, x: x[[0, -1, 1], [[2], [0]]], [[In((3, 4))], [T(4, 3)]])
op("index_bool_list", lambda lib, x: x[:, [True, False, True, True]], [[In((3, 4))], [T(2, 4)]])
op("index_mask_tensor", lambda lib, x: x[x > 0], [[In((3, 4))], [T(4, 3)], [In((7,))]],
   modes=_EAGER, notes=_MASK_NOTE)
op("index_mask_rows", lambda lib, x, m: x[m], [[In((5, 3)), In((5,), "bool")], [T(3, 4, 2), In((3, 4), "bool")]],
   modes=_EAGER, notes=_MASK_NOTE)

# ------------------------------------------------------------------ x[...] = value
op("setitem_basic", lambda lib, x, v: _assign(x, (slice(1, None), slice(None, None, 2)), v),
   [[In((3, 5)), In((2, 3))], [T(5, 3), In((2,))], [In((3, 5)), In(())]])
op("setitem_int_number", lambda lib, x: _assign(x, (-1, 1), 2.5), [[In((3, 4))], [T(4, 3)]])
op("setitem_list", lambda lib, x, v: _assign(x, [0, 2, -1], v),
   [[In((5, 4)), In((3, 4))], [T(5, 4), In((4,))], [In((5, 4)), In((3, 1))]])
op("setitem_two_lists", lambda lib, x, v: _assign(x, ([0, 1, 3], [2, 0, -2]), v),
   [[In((4, 3)), In((3,))], [T(4, 3), In(())]])
op("setitem_lists_apart", lambda lib, x, v: _assign(x, ([0, 1], slice(None), [1, 3]), v),
   [[In((2, 3, 4)), In((2, 3))], [In((2, 3, 4)), In((3,))]])
op("setitem_int_then_list", lambda lib, x, v: _assign(x, (1, slice(None), [0, 2]), v),
   [[In((2, 3, 4)), In((3, 2))], [T(4, 3, 3), In((2,))]])
op("setitem_mask", lambda lib, x: _assign(x, x > 0, 0.0), [[In((3, 4))], [T(4, 3)], [In(())]])
op("setitem_mask_rows", lambda lib, x, v: _assign(x, x[:, 0] > 0, v),
   [[In((5, 3)), In((3,))], [T(3, 5), In((1, 5))], [In((4, 2)), In(())]])
op("setitem_int_data", lambda lib, x: _assign(x, ([1, 0], [2, 2]), 7), [[In((3, 4), "int")]], grad=False)
op("setitem_nonleaf_then_use", lambda lib, x, v: _assign_into_result(x, v),
   [[In((3, 4)), In((3,))], [T(4, 3), In(())]])
