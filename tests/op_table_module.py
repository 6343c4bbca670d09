"""Op-table entries of the nn-module work: ``F.bilinear`` and the reshaping layers'
functions (``flatten``, and ``Unflatten`` through ``nn``)."""
from op_table import F, In, T, op

op("bilinear", lambda lib, a, b, w, bias: F(lib).bilinear(a, b, w, bias),
   [[In((4, 3)), In((4, 5)), In((2, 3, 5)), In((2,))],
    [In((7,)), In((1,)), In((3, 7, 1)), In((3,))],
    [In((2, 3, 3)), In((2, 3, 2)), In((5, 3, 2)), In((5,))],
    [In((0, 3)), In((0, 2)), In((4, 3, 2)), In((4,))],
    [T(3, 4), In((3, 2)), In((1, 4, 2)), In((1,))]])
op("bilinear_no_bias", lambda lib, a, b, w: F(lib).bilinear(a, b, w),
   [[In((5, 2)), In((5, 3)), In((4, 2, 3))], [In((3, 2)), T(3, 3), In((1, 2, 3))]])
op("nn_flatten", lambda lib, x: lib.nn.Flatten()(x), [[In((2, 3, 4))], [T(3, 5)], [In((0, 2, 2))]])
op("nn_unflatten", lambda lib, x: lib.nn.Unflatten(-1, (2, -1))(x), [[In((3, 6))], [T(4, 2)], [In((0, 4))]])
