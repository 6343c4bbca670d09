"""Op-table entries for sorting (``lucid.sorting``), running products and extremes
(``lucid.cumulative``), norms (``lucid.linalg``, ``lucid.norm``) and ``lucid.einsum``:
values, dtypes and gradients against PyTorch in float64, in every mode.

Sorted values come from distinct data (PyTorch leaves the order of ties unspecified
except for ``stable=True``, which the int entries check, ties included). The
``cumprod`` entries splice exact zeros (``const:0`` inputs that require grad) between
random blocks, so the gradient at the first zero, before it and after it is checked.
"""
from op_table import In, T, op

INF = float("inf")


def _along(kind="distinct"):
    """Shapes for ops along one dim: 1-D, 2-D, 0-d, empty, 1-sized, primes, a view."""
    return [[In((7,), kind)], [In((3, 5), kind)], [In((), kind)], [In((0, 4), kind)], [In((1, 1), kind)],
            [In((2, 3, 11), kind)], [T(5, 3, kind=kind)], [T(2, 7, 3, kind=kind)]]


# ------------------------------------------------------------------ sorting
op("sort", lambda lib, x: lib.sort(x), _along())
op("sort_descending_dim0", lambda lib, x: x.sort(dim=0, descending=True), _along())
op("sort_named_fields", lambda lib, x: (lambda r: r.values * 2.0 + r.indices)(x.sort(1)),
   [[In((3, 5), "distinct")], [T(4, 3, kind="distinct")]])
op("sort_stable_ties", lambda lib, x: (lib.sort(x, stable=True), x.sort(dim=-1, descending=True, stable=True)),
   [[In((4, 9), "int")], [In((31,), "int")], [T(6, 5, kind="int")], [In((3, 4), "bool")]], grad=False)
op("argsort", lambda lib, x: x.argsort(dim=-1), _along(), grad=False)
op("argsort_descending_stable_ties", lambda lib, x: lib.argsort(x, dim=0, descending=True, stable=True),
   [[In((9, 4), "int")], [T(5, 7, kind="int")], [In((5,), "int32")]], grad=False)
op("msort", lambda lib, x: lib.msort(x), [[In((5, 3), "distinct")], [In((7,), "distinct")], [T(4, 3, kind="distinct")]])
op("topk", lambda lib, x: x.topk(1), _along()[:3] + _along()[4:])
op("topk_dim_smallest", lambda lib, x: lib.topk(x, 2, dim=0, largest=False),
   [[In((5, 3), "distinct")], [In((2, 3, 7), "distinct")], [T(5, 4, kind="distinct")], [In((2, 0), "distinct")]])
op("topk_k_all_and_zero", lambda lib, x: (x.topk(x.shape[-1]), x.topk(0, dim=-1)),
   [[In((3, 5), "distinct")], [In((13,), "distinct")]])
op("topk_int", lambda lib, x: x.topk(3, sorted=True), [[In((4, 17), "index:1000")]], grad=False)
op("sort_then_sum_grad", lambda lib, x: (x.sort(0).values * x).sum(dim=0),
   [[In((6, 4), "distinct")], [T(3, 5, kind="distinct")]])

# ------------------------------------------------------------------ running products and extremes
op("cumprod", lambda lib, x: x.cumprod(dim=-1), _along("float"))
op("cumprod_dim0", lambda lib, x: lib.cumprod(x, 0), [[In((5, 3), "unit")], [T(4, 6, kind="unit")]])
op("cumprod_zeros", lambda lib, a, z, b: lib.cumprod(lib.cat([a, z, b], dim=-1), dim=-1),
   [[In((3, 4)), In((3, 1), "const:0"), In((3, 2))], [In((5,)), In((1,), "const:0"), In((3,))],
    [In((2, 0)), In((2, 1), "const:0"), In((2, 3))]])
op("cumprod_two_zeros", lambda lib, a, z, b, y, c: lib.cumprod(lib.cat([a, z, b, y, c]), dim=0),
   [[In((2,)), In((1,), "const:0"), In((3,)), In((1,), "const:0"), In((2,))]])
op("cumprod_leading_zero", lambda lib, z, b: lib.cumprod(lib.cat([z, b], dim=1), dim=1),
   [[In((3, 1), "const:0"), In((3, 4))]])
op("cumprod_int_dtype", lambda lib, x: (x.cumprod(1), lib.cumprod(x, 0, dtype=lib.float64)),
   [[In((3, 4), "int")], [In((2, 3), "int32")], [In((3, 2), "bool")]], grad=False)
op("cummax", lambda lib, x: x.cummax(dim=-1), _along())
op("cummin_dim0", lambda lib, x: lib.cummin(x, 0), _along())
op("cummax_cummin_ties", lambda lib, x: (lib.cummax(x, 1), x.cummin(0)),
   [[In((4, 9), "int")], [T(5, 6, kind="int")], [In((3, 4), "bool")]], grad=False)

# ------------------------------------------------------------------ vector norms
_ORDERS = (2, 1, INF, -INF, 0, 0.5, 3, 1.5, -1, -0.5)
for _ord in _ORDERS:
    op(f"vector_norm_{_ord}", (lambda p: lambda lib, x: lib.linalg.vector_norm(x, p))(_ord),
       [[In((7,))], [In((3, 5))], [In(())], [T(4, 3)], [In((2, 3, 5))]])
    op(f"vector_norm_{_ord}_dim", (lambda p: lambda lib, x: lib.linalg.vector_norm(x, ord=p, dim=-1))(_ord),
       [[In((3, 5))], [T(4, 3)], [In((2, 1))], [In((2, 0, 3))], [In((0, 3))]])
    op(f"vector_norm_{_ord}_zero_vector", (lambda p: lambda lib, z: lib.linalg.vector_norm(z, p, dim=1))(_ord),
       [[In((2, 3), "const:0")]], fd=False, notes="the norm has a kink at the zero vector")
op("vector_norm_dims_keepdim", lambda lib, x: lib.linalg.vector_norm(x, 3, dim=(0, 2), keepdim=True),
   [[In((2, 3, 4))], [T(4, 3, 2)]])
op("vector_norm_inf_ties", lambda lib, x: lib.linalg.vector_norm(x * 0.0 + 1.0, INF, dim=0), [[In((3, 2))]],
   fd=False, notes="ties share the gradient evenly (a kink)")
op("vector_norm_zero_element", lambda lib, x, z: lib.linalg.vector_norm(lib.cat([x, z]), 0.5),
   [[In((4,)), In((2,), "const:0")]], fd=False, notes="|x|^0.5 has a kink at 0")

# ------------------------------------------------------------------ matrix norms and the norm forms
for _ord in ("fro", 1, -1, INF, -INF):
    op(f"matrix_norm_{_ord}", (lambda p: lambda lib, x: lib.linalg.matrix_norm(x, p))(_ord),
       [[In((3, 4), "distinct")], [In((2, 3, 5), "distinct")], [T(4, 3, kind="distinct")], [In((1, 1), "distinct")]])
op("matrix_norm_dims_keepdim", lambda lib, x: (lib.linalg.matrix_norm(x, 1, dim=(2, 0), keepdim=True),
                                               lib.linalg.matrix_norm(x, -INF, dim=(0, 2))),
   [[In((3, 2, 4), "distinct")], [T(4, 2, 3, kind="distinct")]])
op("matrix_norm_empty", lambda lib, x: (lib.linalg.matrix_norm(x, 1), lib.linalg.matrix_norm(x, INF),
                                        lib.linalg.matrix_norm(x)),
   [[In((0, 3))], [In((3, 0))], [In((2, 0, 3))]])
op("linalg_norm", lambda lib, x: (lib.linalg.norm(x), lib.linalg.norm(x, dim=1), lib.linalg.norm(x, 3, dim=(0,)),
                                  lib.linalg.norm(x, INF), lib.linalg.norm(x, "fro", dim=(1, 0))),
   [[In((3, 4), "distinct")], [T(4, 3, kind="distinct")]])
op("linalg_norm_vector", lambda lib, x: (lib.linalg.norm(x, 1), lib.linalg.norm(x, -INF)), [[In((6,), "distinct")]])
op("norm_function", lambda lib, x: (lib.norm(x), lib.norm(x, p=1, dim=(0, 2)), lib.norm(x, "fro", dim=1, keepdim=True),
                                    lib.norm(x, 2.5, 2), lib.norm(x, p=None, dim=[0])),
   [[In((2, 3, 4))], [T(4, 3, 2)]])
op("norm_method", lambda lib, x: (x.norm(), x.norm(p=INF), x.norm(1, 1, True), x.norm(dim=-1)),
   [[In((3, 5), "distinct")], [T(4, 3, kind="distinct")]])
op("norm_method_empty_and_scalar", lambda lib, x: (x.norm(), x.norm(p=1, dim=0), x.norm(3, keepdim=True)),
   [[In((0, 3))], [In(())], [In((1,))]])
op("norm_dtype", lambda lib, x: lib.linalg.vector_norm(x.float(), dtype=lib.float64), [[In((3, 4))]],
   rtol=1e-6, atol=1e-8, fd=False, notes="the values pass through float32 (finite differences too coarse)")

# ------------------------------------------------------------------ einsum
_EINSUM = [
    ("ij,jk->ik", [In((3, 4)), In((4, 5))]), ("ij,jk", [T(3, 4), In((4, 2))]),
    ("bij,bjk->bik", [In((2, 3, 4)), In((2, 4, 5))]), ("bhqd,bhkd->bhqk", [In((2, 3, 4, 5)), In((2, 3, 6, 5))]),
    ("ii->i", [In((4, 4))]), ("ii", [T(3, 3)]), ("iij->ji", [In((3, 3, 2))]),
    ("i,i->", [In((5,)), In((5,))]), ("i,j->ij", [In((3,)), In((4,))]), ("ij->", [In((0, 3))]),
    ("...ij,...jk", [In((5, 2, 3)), In((3, 4))]), ("...ij,...jk->...ik", [In((2, 1, 2, 3)), In((3, 3, 4))]),
    ("i...->...", [In((5, 2, 3))]), ("...i->i...", [T(2, 3, 4)]), ("ij,ij->ij", [In((3, 1)), In((1, 4))]),
    ("ij,jk,kl->il", [In((2, 3)), In((3, 4)), In((4, 5))]),
    ("abc,cd,dbe->ae", [In((2, 3, 4)), In((4, 5)), In((5, 3, 6))]), ("iijj->ji", [In((3, 3, 2, 2))]),
    ("ba", [In((5, 2))]), ("bA,Ab", [In((2, 3)), In((3, 2))]), ("ij,ji->", [In((3, 4)), T(4, 3)]),
    ("ij,jk->ik", [In((2, 0)), In((0, 3))]), ("i,i->", [In((1,)), In((4,))]), ("", [In(())]),
    ("a...b,b...c->a...c", [In((2, 3, 4)), In((4, 3, 5))]), ("xyz,zyx->", [In((2, 3, 4)), In((4, 3, 2))]),
    ("ij,k->", [In((2, 3)), In((4,))]), ("ii,i->i", [In((3, 3)), In((3,))]),
]
for _k, (_eq, _specs) in enumerate(_EINSUM):
    op(f"einsum_{_k}_{_eq or 'scalar'}", (lambda e: lambda lib, *xs: lib.einsum(e, *xs))(_eq), [_specs])
op("einsum_list_and_sublist", lambda lib, x, y: (lib.einsum("ij,jk", [x, y]), lib.einsum(x, [0, 1], y, [1, 2], [2, 0])),
   [[In((3, 4)), In((4, 2))]])
op("einsum_int", lambda lib, x, y: lib.einsum("ij,jk->ik", x, y), [[In((3, 4), "int"), In((4, 2), "int")],
                                                                    [In((2, 3), "int32"), In((3, 2), "int32")]],
   grad=False)
