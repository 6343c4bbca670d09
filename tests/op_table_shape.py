"""Op-table entries for the shape/movement ops (``lucid.shape_ops``), the index ops
(``lucid.index_ops``) and the ``lucid.<fn>`` forms of the elementwise ops
(``lucid.functions``)."""
from op_table import In, T, _binary_cases, _unary_cases, op

# ------------------------------------------------------------------ lucid.<fn> forms
for _name, _kind in [("exp", "float"), ("log", "positive"), ("log2", "positive"), ("log1p", "positive"),
                     ("expm1", "float"), ("sqrt", "positive"), ("rsqrt", "positive"), ("sin", "float"),
                     ("cos", "float"), ("tanh", "float"), ("sigmoid", "float"), ("erf", "float"), ("erfc", "float"),
                     ("neg", "float"), ("abs", "distinct"), ("square", "float"), ("reciprocal", "positive")]:
    op("fn_" + _name, (lambda n: lambda lib, x: getattr(lib, n)(x))(_name), _unary_cases(_kind))
op("square_method", lambda lib, x: x.square(), _unary_cases())
op("square_int", lambda lib, x: lib.square(x), _unary_cases("int"), grad=False)
op("reciprocal_method", lambda lib, x: x.reciprocal(), _unary_cases("positive"))
op("reciprocal_int", lambda lib, x: lib.reciprocal(x * x + 1), _unary_cases("int"), grad=False)
for _name in ("sign", "floor", "ceil", "round", "trunc"):
    op("fn_" + _name, (lambda n: lambda lib, x: getattr(lib, n)(x * 3))(_name), _unary_cases("distinct"),
       grad=False)
op("trunc_method", lambda lib, x: x.trunc() + x.fix(), _unary_cases("distinct"), grad=False)
op("trunc_int", lambda lib, x: lib.trunc(x), _unary_cases("int"), grad=False)
op("round_decimals", lambda lib, x: lib.round(x * 100, decimals=1), _unary_cases("distinct"), grad=False)
op("round_neg_decimals", lambda lib, x: x.round(decimals=-1) * 1.0, [[In((3, 4), "distinct")]], grad=False)
op("fn_isinf", lambda lib, x: lib.isinf(x / x.round()), _unary_cases(), grad=False)
op("isinf_method_int", lambda lib, x: x.isinf(), _unary_cases("int"), grad=False)
op("fn_isnan_isfinite", lambda lib, x: (lib.isnan(x.log()), lib.isfinite(1 / x)), _unary_cases(), grad=False)
op("fn_logical_not", lambda lib, x: lib.logical_not(x), _unary_cases("int"), grad=False)
op("fn_logical_xor", lambda lib, x, y: lib.logical_xor(x, y), _binary_cases("int", "bool"), grad=False)

op("fn_add", lambda lib, x, y: lib.add(x, y), _binary_cases())
op("fn_add_alpha", lambda lib, x, y: lib.add(x, y, alpha=2.5), _binary_cases())
op("add_alpha_method", lambda lib, x, y: x.add(y, alpha=-3), _binary_cases())
op("add_alpha_int", lambda lib, x, y: x.add(y, alpha=3), _binary_cases("int", "int"), grad=False)
op("add_alpha_number", lambda lib, x: lib.add(x, 2.0, alpha=0.5), _unary_cases())
op("fn_sub_alpha", lambda lib, x, y: lib.sub(x, y, alpha=0.5), _binary_cases())
op("sub_method", lambda lib, x, y: x.sub(y), _binary_cases("int", "float"))
op("fn_mul", lambda lib, x, y: lib.mul(x, y) + x.mul(2), _binary_cases())
op("fn_div", lambda lib, x, y: lib.div(x, y) + x.div(y), _binary_cases("float", "positive"))
op("true_divide", lambda lib, x, y: lib.true_divide(x, y) + x.true_divide(y), _binary_cases("int", "positive"))
op("div_trunc", lambda lib, x, y: lib.div(x * 4, y, rounding_mode="trunc"), _binary_cases("float", "positive"),
   grad=False)
op("div_trunc_int", lambda lib, x, y: x.div(y * y + 1, rounding_mode="trunc"), _binary_cases("int", "int"),
   grad=False)
op("div_trunc_int_neg", lambda lib, x, y: x.div(-(y * y) - 1, rounding_mode="trunc"),
   _binary_cases("int", "int"), grad=False)
op("div_floor", lambda lib, x, y: lib.div(x * 4, y, rounding_mode="floor"), _binary_cases("float", "unit"),
   grad=False)
op("div_floor_int", lambda lib, x, y: x.div(y * y + 1, rounding_mode="floor"), _binary_cases("int", "int"),
   grad=False)
op("fn_floor_divide", lambda lib, x, y: lib.floor_divide(x, y * y + 1) + x.floor_divide(3),
   _binary_cases("int", "int"), grad=False)
op("fn_remainder", lambda lib, x, y: lib.remainder(x * 3, y), _binary_cases("float", "positive"))
op("remainder_method", lambda lib, x, y: x.remainder(-y), _binary_cases("float", "positive"))
op("fn_fmod", lambda lib, x, y: lib.fmod(x * 3, y), _binary_cases("float", "positive"))
op("fmod_negative_divisor", lambda lib, x, y: x.fmod(-y) + lib.fmod(x, -1.5), _binary_cases("float", "positive"))
op("fmod_int", lambda lib, x, y: lib.fmod(x, y * y + 1) + x.fmod(-2), _binary_cases("int", "int"), grad=False)
op("fn_pow", lambda lib, x, y: lib.pow(x, y) + lib.pow(2.0, y), _binary_cases("positive", "float"))
for _name in ("eq", "ne", "lt", "le", "gt", "ge"):
    op("fn_" + _name, (lambda n: lambda lib, x, y: (getattr(lib, n)(x, y), getattr(x, n)(y), getattr(x, n)(1)))(_name),
       _binary_cases("int", "int"), grad=False)

# ------------------------------------------------------------------ shape and movement
op("unflatten", lambda lib, x: x.unflatten(1, (2, -1)) * 1.0, [[In((3, 4, 2))], [In((1, 6))], [T(3, 4)]])
op("fn_unflatten", lambda lib, x: lib.unflatten(x, -1, (1, 3, 1)), [[In((2, 3))], [In((0, 3))]])
op("broadcast_to", lambda lib, x: lib.broadcast_to(x, (2, 3, 4)) + x.broadcast_to((3, -1)).sum(),
   [[In((3, 1))], [In((3, 4))], [T(3, 4)]])
op("repeat", lambda lib, x: x.repeat(2, 3), [[In((3, 4))], [In((1, 5))], [T(2, 3)], [In((0, 2))]])
op("repeat_new_axes", lambda lib, x: x.repeat(2, 1, 3), [[In((4,))], [In(())], [In((7,))]])
op("split_size", lambda lib, x: x.split(2, dim=1), [[In((3, 5))], [T(5, 3)], [In((2, 4))], [In((2, 0))]])
op("fn_split_sections", lambda lib, x: lib.split(x, [1, 0, 3], dim=0), [[In((4, 3))], [T(4, 3)]])
op("chunk", lambda lib, x: x.chunk(3, -1), [[In((2, 7))], [In((2, 6))], [In((3, 2))], [T(5, 2)], [In((2, 0))]])
op("fn_chunk", lambda lib, x: lib.chunk(x, 2), [[In((5,))], [In((1, 3))]])
op("unbind", lambda lib, x: x.unbind(1), [[In((3, 4))], [T(4, 3)], [In((2, 1, 3))]])
op("fn_unbind", lambda lib, x: lib.unbind(x), [[In((3,))], [In((2, 3, 2))]])
for _name in ("tril", "triu"):
    op(_name, (lambda n: lambda lib, x: getattr(x, n)())(_name),
       [[In((4, 4))], [In((3, 5))], [In((2, 3, 4))], [T(5, 3)], [In((0, 3))], [In((1, 1))]])
    op("fn_" + _name + "_diagonal", (lambda n: lambda lib, x: getattr(lib, n)(x, 1) + getattr(x, n)(diagonal=-2))(_name),
       [[In((4, 4))], [In((3, 5))], [In((5, 2))], [T(2, 5)]])
    op(_name + "_int", (lambda n: lambda lib, x: getattr(x, n)(-1))(_name), [[In((3, 4), "int")], [In((3, 3), "bool")]],
       grad=False)
op("flip", lambda lib, x: x.flip(0), [[In((3, 4))], [In((7,))], [T(3, 4)], [In((0, 2))]])
op("fn_flip_dims", lambda lib, x: lib.flip(x, (0, -1)) + x.flip(1, 2), [[In((2, 3, 4))], [In((1, 1, 5))]])
op("roll", lambda lib, x: x.roll(2, 1), [[In((3, 5))], [T(5, 3)], [In((2, 1))], [In((2, 0))]])
op("roll_negative_tuple", lambda lib, x: lib.roll(x, (-1, 7), (0, -1)), [[In((3, 5))], [In((2, 3, 4))]])
op("roll_flat", lambda lib, x: x.roll(3), [[In((3, 5))], [T(4, 3)], [In((7,))], [In(())]])
op("narrow", lambda lib, x: x.narrow(1, 1, 2), [[In((3, 5))], [T(5, 3)]])
op("fn_narrow_negative", lambda lib, x: lib.narrow(x, 0, -2, 2) + x.narrow(0, 0, 0).sum(), [[In((4, 3))], [In((2,))]])
op("movedim", lambda lib, x: x.movedim(0, -1), [[In((2, 3, 4))], [T(3, 4)]])
op("fn_movedim_tuple", lambda lib, x: lib.movedim(x, (0, 1), (2, 0)), [[In((2, 3, 4))], [In((1, 5, 1, 2))]])
op("swapaxes", lambda lib, x: x.swapaxes(0, 2) + lib.swapdims(x, -1, 0), [[In((2, 3, 2))], [In((4, 1, 4))]])
op("t", lambda lib, x: x.t() * lib.t(x.t()).t(), [[In((2, 3))], [T(4, 4)], [In((5,))], [In(())]])
op("fn_swapdims", lambda lib, x: lib.swapaxes(x, 0, 1) * x.swapdims(1, 0), [[In((3, 3))], [T(4, 4)]])
op("squeeze_all", lambda lib, x: x.squeeze() * 1.0, [[In((1, 3, 1, 4))], [In((1, 1))], [In(())], [In((2, 3))]])
op("squeeze_tuple", lambda lib, x: lib.squeeze(x, (0, -1)), [[In((1, 3, 1))], [In((2, 1, 3))]])
op("unsqueeze_negative", lambda lib, x: lib.unsqueeze(x, -2) + x.unsqueeze(-3), [[In((3, 4))], [T(2, 3)]])
op("view_flat", lambda lib, x: x.view(-1), [[In((3, 4))], [In(())], [In((0, 3))]])
op("view_split_axis", lambda lib, x: x.view(-1, 2, 2), [[In((4, 3))], [T(3, 4)]])
op("fn_reshape_flatten_permute_transpose",
   lambda lib, x: (lib.reshape(x, (4, -1)), lib.flatten(x), lib.permute(x, (1, 0, 2)), lib.transpose(x, 0, 2)),
   [[In((2, 3, 2))], [In((2, 2, 1))]])

# ------------------------------------------------------------------ index ops
op("gather", lambda lib, x, i: x.gather(1, i), [[In((3, 5)), In((3, 4), "index:5")], [T(4, 3), In((2, 2), "index:3")],
                                                 [In((2, 3)), In((2, 0), "index:3")], [In((3, 1)), In((3, 7), "index:1")]])
op("fn_gather_dim0", lambda lib, x, i: lib.gather(x, 0, i), [[In((4, 3)), In((6, 3), "index:4")],
                                                             [In((2, 3, 2)), In((5, 1, 2), "index:2")]])
op("take", lambda lib, x, i: x.take(i), [[In((3, 4)), In((5,), "index:12")], [T(3, 4), In((2, 3), "index:12")],
                                         [In((7,)), In((), "index:7")]])
op("fn_take_negative", lambda lib, x, i: lib.take(x, i - 6), [[In((2, 3)), In((4, 2), "index:12")]])
op("index_select", lambda lib, x, i: x.index_select(1, i), [[In((3, 5)), In((7,), "index:5")],
                                                            [T(4, 3), In((2,), "index:3")], [In((2, 3)), In((0,), "index:3")]])
op("fn_index_select_dim0", lambda lib, x, i: lib.index_select(x, -3, i), [[In((4, 2, 3)), In((6,), "index:4")]])
op("index_select_0d", lambda lib, x, i: x.index_select(0, i), [[In(()), In((1,), "index:1")], [In(()), In((), "index:1")]])
op("index_select_int", lambda lib, x, i: lib.index_select(x, 0, i), [[In((4, 3), "int"), In((5,), "index:4")]], grad=False)
op("scatter_add", lambda lib, x, i, s: x.scatter_add(1, i, s),
   [[In((3, 5)), In((3, 4), "index:5"), In((3, 4))], [T(4, 3), In((2, 6), "index:3"), In((3, 7), grad=False)],
    [In((2, 3)), In((2, 0), "index:3"), In((2, 1))]])
op("fn_scatter_add_dim0", lambda lib, x, i, s: lib.scatter_add(x, 0, i, s),
   [[In((4, 3)), In((6, 3), "index:4"), In((6, 3))], [In((3,)), In((8,), "index:3"), In((9,), grad=False)]])
op("scatter_add_int", lambda lib, x, i, s: x.scatter_add(0, i, s),
   [[In((4, 3), "int"), In((6, 3), "index:4"), In((6, 3), "int")]], grad=False)
op("scatter_add_inplace_nonleaf", lambda lib, x, i, s: (x * 2.0).scatter_add_(1, i, s * 3.0) * 1.0,
   [[In((3, 5)), In((3, 4), "index:5"), In((3, 4))], [T(4, 3), In((4, 2), "index:3"), In((4, 2))]])
op("masked_select", lambda lib, x, m: x.masked_select(m), [[In((3, 5)), In((3, 5), "bool")],
                                                          [T(4, 3), In((3,), "bool")], [In((3, 1)), In((2, 3, 4), "bool")]],
   modes=("eager", "interpret"))
op("fn_masked_select", lambda lib, x: lib.masked_select(x, x > 0), _unary_cases(), modes=("eager", "interpret"))
op("nonzero", lambda lib, x: x.nonzero(), [[In((3, 5), "int")], [In((7,), "bool")], [In((), "int")], [In((0, 3), "int")],
                                           [T(4, 3, kind="int")]], grad=False, modes=("eager", "interpret"))
op("fn_nonzero_as_tuple", lambda lib, x: lib.nonzero(x > 0, as_tuple=True), [[In((3, 5))], [In((2, 3, 2))], [In(())]],
   grad=False, modes=("eager", "interpret"))
