"""Op-table entries of ``lucid.nn.functional``'s activations, norms, dropout, embedding,
one_hot, pad and distances (see ``tests/op_table.py``)."""
from op_table import In, T, F, op, _unary_cases  # noqa: F401

# ------------------------------------------------------------------ activations
_KINKED = _unary_cases("distinct")  # no sample sits on a kink: finite differences stay valid
op("f_relu6", lambda lib, x: F(lib).relu6(x * 4.0), _KINKED)
op("f_leaky_relu", lambda lib, x: F(lib).leaky_relu(x, 0.2), _KINKED)
op("f_leaky_relu_default", lambda lib, x: F(lib).leaky_relu(x), _KINKED[:2])
op("f_elu", lambda lib, x: F(lib).elu(x, alpha=0.7), _KINKED)
op("f_selu", lambda lib, x: F(lib).selu(x), _KINKED)
op("f_celu", lambda lib, x: F(lib).celu(x, alpha=1.3), _KINKED, rtol=1e-7,
   notes="PyTorch's celu gradient rounds 1/alpha to float32 (about 1e-8 off)")
op("f_gelu", lambda lib, x: F(lib).gelu(x), _unary_cases())
op("f_gelu_tanh", lambda lib, x: F(lib).gelu(x, approximate="tanh"), _unary_cases())
op("f_silu", lambda lib, x: F(lib).silu(x), _unary_cases())
op("f_mish", lambda lib, x: F(lib).mish(x * 5.0), _unary_cases())
op("f_softplus", lambda lib, x: F(lib).softplus(x), _unary_cases())
op("f_softplus_beta_threshold", lambda lib, x: F(lib).softplus(x, beta=2.0, threshold=3.0), _KINKED)
op("f_softsign", lambda lib, x: F(lib).softsign(x), _KINKED)
op("f_hardtanh", lambda lib, x: F(lib).hardtanh(x, -0.5, 2.0), _KINKED)
op("f_hardsigmoid", lambda lib, x: F(lib).hardsigmoid(x * 3.0), _KINKED, rtol=1e-7,
   notes="PyTorch's hardsigmoid gradient is 1/6 rounded to float32")
op("f_hardswish", lambda lib, x: F(lib).hardswish(x * 3.0), _KINKED)
op("f_logsigmoid", lambda lib, x: F(lib).logsigmoid(x * 10.0), _unary_cases())
op("f_tanhshrink", lambda lib, x: F(lib).tanhshrink(x), _unary_cases())
op("f_threshold", lambda lib, x: F(lib).threshold(x, 0.3, -2.0), _KINKED)
op("f_relu_inplace", lambda lib, x: F(lib).relu(x * 1.0, inplace=True), _KINKED[:2])
op("f_elu_inplace", lambda lib, x: F(lib).elu(x + 0.0, inplace=True), _KINKED[:2])
op("f_glu", lambda lib, x: F(lib).glu(x), [[In((4, 6))], [In((2, 3, 8))], [In((0, 2))]])
op("f_glu_dim0", lambda lib, x: F(lib).glu(x, 0), [[T(6, 3)], [In((2, 5))]])
op("f_softmin", lambda lib, x: F(lib).softmin(x, dim=1), [[In((4, 6))], [T(5, 3)], [In((2, 3, 4))]])
op("tensor_softmax", lambda lib, x: x.softmax(0) + x.log_softmax(dim=-1), [[In((4, 6))], [T(5, 3)]])
op("lib_softmax_log_softmax", lambda lib, x: lib.softmax(x, 1) * lib.log_softmax(x, dim=0), [[In((3, 5))]])
op("lib_relu_sigmoid_tanh", lambda lib, x: lib.relu(x) + lib.sigmoid(x) * lib.tanh(x), _KINKED[:3])

# ------------------------------------------------------------------ normalisation
op("f_layer_norm", lambda lib, x, w, b: F(lib).layer_norm(x, (x.shape[-1],), w, b),
   [[In((4, 6)), In((6,)), In((6,))], [T(5, 3), In((3,)), In((3,))], [In((1, 7)), In((7,)), In((7,))],
    [In((0, 4)), In((4,)), In((4,))]])
op("f_layer_norm_2d_no_affine", lambda lib, x: F(lib).layer_norm(x, tuple(x.shape[1:])),
   [[In((2, 3, 4))], [In((3, 5, 1))]])
op("f_rms_norm", lambda lib, x, w: F(lib).rms_norm(x, (x.shape[-1],), w, eps=1e-6),
   [[In((4, 6)), In((6,))], [T(5, 3), In((3,))]])
op("f_rms_norm_no_weight", lambda lib, x: F(lib).rms_norm(x, (3, 4)), [[In((2, 3, 4))]])
op("f_group_norm", lambda lib, x, w, b: F(lib).group_norm(x, 2, w, b),
   [[In((3, 4, 5)), In((4,)), In((4,))], [In((2, 6, 2, 3)), In((6,)), In((6,))], [In((1, 4)), In((4,)), In((4,))]])
op("f_group_norm_no_affine", lambda lib, x: F(lib).group_norm(x, 3), [[In((2, 6, 5))], [T(2, 6, 5)]])
op("f_batch_norm_train", lambda lib, x, w, b: F(lib).batch_norm(x, None, None, w, b, training=True),
   [[In((5, 3)), In((3,)), In((3,))], [In((2, 4, 3)), In((4,)), In((4,))], [In((2, 3, 2, 2)), In((3,)), In((3,))],
    [T(3, 4), In((4,)), In((4,))]])
op("f_batch_norm_train_running_stats",
   lambda lib, x, rm, rv: (lambda m, v: (F(lib).batch_norm(x, m, v, training=True, momentum=0.3), m, v))(
       rm.clone(), rv.clone()),
   [[In((5, 3)), In((3,), grad=False), In((3,), "positive", grad=False)],
    [In((2, 4, 3)), In((4,), grad=False), In((4,), "positive", grad=False)]],
   fd=False, notes="the updated statistics depend on x but carry no gradient (as in PyTorch)")
_STATS = (In((3,), grad=False), In((3,), "positive", grad=False))  # PyTorch refuses gradients for them
op("f_batch_norm_eval", lambda lib, x, rm, rv, w, b: F(lib).batch_norm(x, rm, rv, w, b),
   [[In((5, 3)), *_STATS, In((3,)), In((3,))], [In((2, 3, 2, 2)), *_STATS, In((3,)), In((3,))],
    [T(4, 3), *_STATS, In((3,)), In((3,))]])
op("f_batch_norm_eval_no_affine", lambda lib, x, rm, rv: F(lib).batch_norm(x, rm, rv, eps=1e-3),
   [[In((4, 3, 2)), *_STATS], [In((0, 3)), *_STATS]])
op("f_instance_norm", lambda lib, x, w, b: F(lib).instance_norm(x, weight=w, bias=b),
   [[In((2, 3, 5)), In((3,)), In((3,))], [In((2, 2, 3, 3)), In((2,)), In((2,))]])
op("f_normalize", lambda lib, x: F(lib).normalize(x), [[In((4, 6))], [T(5, 3)], [In((2, 3, 4))]])
op("f_normalize_p3_dim_last", lambda lib, x: F(lib).normalize(x, p=3.0, dim=-1), [[In((4, 6))]])
op("f_normalize_zero_row", lambda lib, x: F(lib).normalize(x, dim=1), [[In((3, 4), "const:0")]], fd=False,
   notes="x / eps: a 1e12 slope that finite differences cannot resolve")

# ------------------------------------------------------------------ dropout, random numbers (deterministic settings)
op("f_dropout_eval", lambda lib, x: F(lib).dropout(x, 0.4, training=False), _unary_cases()[:2])
op("f_dropout_p0", lambda lib, x: F(lib).dropout(x, 0.0) * 2.0, _unary_cases()[:2])
op("f_dropout_p1", lambda lib, x: F(lib).dropout(x, 1.0) + x, _unary_cases()[:2])
# random numbers whose use is certain: in compiled mode they are random ops of the graph
op("lib_rand_like_floor", lambda lib, x: x + lib.rand_like(x).floor() + lib.randn_like(x) * 0.0,
   _unary_cases()[:2])
op("lib_bernoulli_certain", lambda lib, x: lib.bernoulli(x * 0.0 + 1.0) * x + lib.bernoulli(x * 0.0),
   _unary_cases()[:2])

# ------------------------------------------------------------------ embedding and one_hot
op("f_embedding", lambda lib, i, w: F(lib).embedding(i, w),
   [[In((3, 4), "index:7"), In((7, 5))], [In((6,), "index:2"), In((2, 3))], [In((0,), "index:3"), In((3, 2))],
    [In((), "index:4"), In((4, 3))]])
op("f_embedding_padding_idx", lambda lib, i, w: F(lib).embedding(i, w, padding_idx=2),
   [[In((4, 5), "index:4"), In((4, 3))], [In((9,), "index:3"), T(3, 3)]], fd=False,
   notes="the padding row reads its weight but gets no gradient (PyTorch's rule)")
op("f_one_hot", lambda lib, i: F(lib).one_hot(i, 5), [[In((7,), "index:5")], [In((2, 3), "index:5")], [In((0,), "index:5")]],
   grad=False)
op("f_one_hot_inferred", lambda lib, i: F(lib).one_hot(i), [[In((9,), "index:4")]], grad=False,
   modes=("eager", "interpret"), notes="num_classes=-1 reads the data: not inside lucid.compile")

# ------------------------------------------------------------------ pad
op("f_pad_constant", lambda lib, x: F(lib).pad(x, (1, 2, 0, 3), value=1.5), [[In((3, 4))], [T(2, 5)], [In((0, 2))]])
op("f_pad_constant_crop", lambda lib, x: F(lib).pad(x, (-1, 2, 1, -2)), [[In((4, 5))], [In((2, 3, 4))]])
op("f_pad_reflect", lambda lib, x: F(lib).pad(x, (2, 3), mode="reflect"), [[In((2, 4))], [In((2, 3, 5))], [T(3, 4)]])
op("f_pad_reflect_2d", lambda lib, x: F(lib).pad(x, (1, 2, 2, 1), mode="reflect"), [[In((2, 3, 4))]])
op("f_pad_replicate", lambda lib, x: F(lib).pad(x, (1, 2, 3, 0), mode="replicate"), [[In((2, 3, 2, 3))], [In((1, 3, 1))]])
op("f_pad_replicate_3d", lambda lib, x: F(lib).pad(x, (1, 1, 0, 2, 1, 0), mode="replicate"), [[In((1, 2, 2, 3))]])
op("f_pad_circular", lambda lib, x: F(lib).pad(x, (2, 1, 1, 3), mode="circular"), [[In((2, 4, 3))], [In((1, 2, 3, 4))]])

# ------------------------------------------------------------------ distances
op("f_cosine_similarity", lambda lib, a, b: F(lib).cosine_similarity(a, b),
   [[In((4, 5)), In((4, 5))], [T(3, 4), In((3, 4))], [In((2, 3, 4)), In((2, 3, 4))]])
op("f_cosine_similarity_broadcast", lambda lib, a, b: F(lib).cosine_similarity(a, b, dim=-1),
   [[In((4, 5)), In((5,))], [In((3, 1, 4)), In((2, 4))]])
op("f_pairwise_distance", lambda lib, a, b: F(lib).pairwise_distance(a, b),
   [[In((4, 5)), In((4, 5))], [In((4, 5)), In((5,))], [T(3, 4), In((3, 4))], [In((6,)), In((6,))]])
op("f_pairwise_distance_p1_keepdim", lambda lib, a, b: F(lib).pairwise_distance(a, b, p=1.0, keepdim=True),
   [[In((4, 5)), In((4, 5))]])
op("f_pairwise_distance_p3", lambda lib, a, b: F(lib).pairwise_distance(a, b, p=3.0), [[In((4, 5)), In((4, 5))]])
op("f_pairwise_distance_inf", lambda lib, a, b: F(lib).pairwise_distance(a, b, p=float("inf")),
   [[In((4, 5), "distinct"), In((4, 5), "const:0.5")]])

# PReLU: one shared slope, or one per channel (dim 1)
op("f_prelu", lambda lib, x, w: F(lib).prelu(x, w),
   [[In((3, 4), "distinct"), In((1,), "unit")], [In((2, 3, 5), "distinct"), In((3,), "unit")],
    [In((5,), "distinct"), In((1,), "unit")], [T(4, 3, kind="distinct"), In((3,), "unit")]])
