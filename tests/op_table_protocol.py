"""Op-table entries for the tensor protocol of issue 14: the augmented assignments and
in-place ``*_`` methods (on tensors autograd records, gradients through the rewritten
history), ``unfold``, ``index_fill``, and the method forms of ``addmm``/``baddbmm``.

An in-place op needs a tensor it may write: each entry writes into ``x * 1`` (a
recorded tensor when ``x`` requires grad, as PyTorch allows). Writes through a view
into its base (``h[0:2].mul_(y)``) run eagerly and interpreted: inside ``lucid.compile``
an in-place op on a view rebinds the view only."""
from op_table import In, T, _unary_cases, op

_EAGER = ("eager", "interpret")


def _cases(a="float", b="float"):
    """Pairs whose broadcast shape is the first one's (an in-place result keeps it)."""
    return [[In((3, 5), a), In((3, 5), b)], [In((3, 5), a), In((5,), b)], [In((2, 3), a), In((), b)],
            [In((0, 3), a), In((1, 3), b)], [T(4, 3, kind=a), In((4, 3), b)], [In((4, 3), a), T(4, 3, kind=b)]]


def _augmented(symbol: str):
    """``h = x * 1; h <symbol>= y; h`` as a function (a lambda cannot assign)."""
    namespace: dict = {}
    exec(f"def f(lib, x, y):\n    h = x * 1\n    h {symbol}= y\n    return h\n", namespace)
    return namespace["f"]


op("iadd", _augmented("+"), _cases())
op("isub", _augmented("-"), _cases())
op("imul", _augmented("*"), _cases())
op("itruediv", _augmented("/"), _cases("float", "positive"))
op("ipow", _augmented("**"), _cases("positive", "float"))
op("imod", _augmented("%"), _cases("float", "positive"))
op("iadd_int", _augmented("+"), _cases("int", "int32"), grad=False)
op("imul_int_scalar", lambda lib, x: _augmented("*")(lib, x, 3), _unary_cases("int"), grad=False)
op("ifloordiv_int", lambda lib, x, y: _augmented("//")(lib, x, y * y + 1), _cases("int", "int"),
   grad=False)
op("imod_int", lambda lib, x, y: _augmented("%")(lib, x, y * y + 1), _cases("int", "int"), grad=False)
op("iand_ior_ixor_int", lambda lib, x, y: (_augmented("&")(lib, x, y), _augmented("|")(lib, x, y),
                                            _augmented("^")(lib, x, y)), _cases("int", "int"), grad=False)
op("iand_bool", _augmented("&"), _cases("bool", "bool"), grad=False)
op("iadd_float_into_double", lambda lib, x, y: _augmented("+")(lib, x, y.float()),
   _cases()[:2], rtol=1e-6, atol=1e-6, fd=False, notes="float32 rounding defeats finite differences")

for _name, _kind in [("exp", "float"), ("log", "positive"), ("sqrt", "positive"), ("rsqrt", "positive"),
                     ("sigmoid", "float"), ("tanh", "float"), ("sin", "float"), ("neg", "float"),
                     ("abs", "distinct"), ("relu", "distinct"), ("reciprocal", "positive"),
                     ("square", "float"), ("expm1", "float"), ("erf", "float")]:
    op(_name + "_", (lambda n: lambda lib, x: getattr(x * 1, n + "_")())(_name), _unary_cases(_kind))
for _name in ("floor", "ceil", "round", "trunc", "sign"):
    op(_name + "_", (lambda n: lambda lib, x: getattr(x * 3, n + "_")())(_name), _unary_cases("distinct"),
       grad=False)
op("pow_", lambda lib, x, y: (x * 1).pow_(y), _cases("positive", "float"))
op("pow_number", lambda lib, x: (x * 1).pow_(3), _unary_cases())
op("floor_divide_remainder_fmod_", lambda lib, x, y: ((x * 1).floor_divide_(y * y + 1),
                                                     (x * 1).remainder_(y * y + 1), (x * 1).fmod_(y * y + 1)),
   _cases("int", "int"), grad=False)
op("masked_fill_", lambda lib, x, m: (x * 1).masked_fill_(m, -2.5),
   [[In((3, 5)), In((3, 5), "bool")], [In((3, 5)), In((5,), "bool")], [T(4, 3), In((4, 3), "bool")]])
op("masked_fill_tensor_value", lambda lib, x, m, v: (x * 1).masked_fill_(m, v),
   [[In((3, 5)), In((3, 1), "bool"), In(())]])
op("clamp_", lambda lib, x: (x * 1).clamp_(-0.5, 0.7), _unary_cases("distinct"))
op("copy_from_recorded", lambda lib, x, y: (x * 1).copy_(y * 2), [[In((3, 5)), In((3, 5))], [T(4, 3), In((3,))]])
op("zero_fill_keep_recorded", lambda lib, x, y: ((x * 1).zero_() + y, (x * 1).fill_(2.0) * y),
   _cases()[:2])

# a recorded tensor rewritten in place: calls recorded before keep its old history
op("inplace_after_consumer", lambda lib, x, y: _after_consumer(x, y),
   [[In((3, 5)), In((3, 5))], [In((3, 5)), In((5,))], [T(4, 3), In((4, 1))]])


def _after_consumer(x, y):
    h = x * 1.5
    z = h * 2.0          # reads no value of h: its gradient reaches h's old history
    h.mul_(y)
    h += z
    h.exp_()             # saves its result: nothing writes h after it
    return h, z


def _into_view(x, y):
    h = x * 1.0
    h[0:2].mul_(y[0:2])  # the base takes the view's history (PyTorch's CopySlices)
    h.T.add_(y.T)
    return h


def _column_times(x, y):
    h = x * 1.0
    h[:, 0] *= y[:, 1]   # a view, written in place, then assigned back
    return h


op("inplace_into_view", lambda lib, x, y: _into_view(x, y),
   [[In((3, 4)), In((3, 4))], [T(4, 3), In((4, 3))]], modes=_EAGER,
   notes="in-place ops on a view inside lucid.compile do not reach the base")
op("imul_column_assigned_back", lambda lib, x, y: _column_times(x, y), [[In((3, 4)), In((3, 4))]])

# ------------------------------------------------------------------ index_fill
op("index_fill", lambda lib, x, i: x.index_fill(1, i, -1.5),
   [[In((3, 5)), In((4,), "index:5")], [T(4, 3), In((2,), "index:3")], [In((2, 3)), In((0,), "index:3")]])
op("fn_index_fill_dim0_scalar_index", lambda lib, x, i: lib.index_fill(x, 0, i, 2.0),
   [[In((4, 3)), In((), "index:4")]])
op("index_fill_tensor_value", lambda lib, x, i, v: x.index_fill(-1, i, v),
   [[In((3, 5)), In((3,), "index:5"), In(())]])
op("index_fill_int", lambda lib, x, i: x.index_fill(0, i, 7), [[In((4, 2), "int"), In((2,), "index:4")]],
   grad=False)
op("index_fill_", lambda lib, x, i: (x * 1).index_fill_(1, i, 0.5), [[In((3, 5)), In((2,), "index:5")]])

# ------------------------------------------------------------------ unfold
op("tensor_unfold", lambda lib, x: x.unfold(0, 3, 2), [[In((7,))], [In((6, 2))], [T(5, 3)], [In((3, 4))]])
op("unfold_overlapping_last_dim", lambda lib, x: x.unfold(-1, 2, 1) * 1.0,
   [[In((2, 3, 5))], [T(4, 3)], [In((3, 2))]])
op("unfold_step_past_size", lambda lib, x: x.unfold(1, 2, 3), [[In((2, 7, 3))], [In((1, 2, 1))]])
op("unfold_whole_and_empty", lambda lib, x: (x.unfold(0, 4, 1), x.unfold(1, 0, 2)), [[In((4, 3))]])
op("unfold_scalar", lambda lib, x: x.unfold(0, 1, 1), [[In(())]])
op("unfold_twice", lambda lib, x: x.unfold(0, 2, 1).unfold(1, 2, 2), [[In((4, 5))]])

# ------------------------------------------------------------------ addmm / baddbmm as methods
op("addmm_method", lambda lib, b, x, y: b.addmm(x, y, beta=0.5, alpha=2.0),
   [[In((5,)), In((3, 4)), In((4, 5))], [In((3, 1)), T(3, 4), In((4, 1))]])
op("addmm_", lambda lib, b, x, y: (b * 1).addmm_(x, y, alpha=-1.0), [[In((3, 5)), In((3, 4)), In((4, 5))]])
op("baddbmm_method", lambda lib, b, x, y: b.baddbmm(x, y, beta=0.25, alpha=1.5),
   [[In((2, 3, 5)), In((2, 3, 4)), In((2, 4, 5))], [In((5,)), In((1, 3, 2)), In((1, 2, 5))]])
op("baddbmm_", lambda lib, b, x, y: (b * 1).baddbmm_(x, y), [[In((2, 3, 5)), In((2, 3, 4)), In((2, 4, 5))]])

# view_as / type_as: the other tensor gives the shape or the dtype (float64 in the table,
# so type_as keeps the values; the gradient flows to x only)
op("view_as", lambda lib, x, y: x.view_as(y),
   [[In((3, 4)), In((4, 3))], [In((6,)), In((2, 3))], [In((0, 3)), In((3, 0))], [In(()), In((1, 1))]])
op("type_as", lambda lib, x, y: x.type_as(y) * y, [[In((3, 4)), In((3, 4))], [In((2, 1)), In((2, 5))]])
