"""The losses of ``lucid.nn.functional`` in the op table: every loss with every
reduction, class weights, ignore_index, label smoothing, K-dimensional inputs, int32
class targets and transposed inputs (see ``tests/op_table.py``)."""
from op_table import F, In, T, op

REDUCTIONS = ("none", "mean", "sum")


def _int32(lib, t):
    """Class targets as int32 on lucid (PyTorch only takes int64 class indices)."""
    return t if lib.__name__ == "torch" else t.int()


def _pair_cases(kind_x="float", kind_t="float", grad_t=True):
    return [[In((4, 6), kind_x), In((4, 6), kind_t, grad=grad_t)], [In((7,), kind_x), In((7,), kind_t, grad=grad_t)],
            [In((), kind_x), In((), kind_t, grad=grad_t)], [In((0, 3), kind_x), In((0, 3), kind_t, grad=grad_t)],
            [T(5, 3, kind=kind_x), In((5, 3), kind_t, grad=grad_t)]]


# ------------------------------------------------------------------ regression losses
for _r in REDUCTIONS:
    op(f"mse_loss_{_r}", (lambda r: lambda lib, x, y: F(lib).mse_loss(x, y, reduction=r))(_r), _pair_cases())
    op(f"l1_loss_{_r}", (lambda r: lambda lib, x, y: F(lib).l1_loss(x, y, reduction=r))(_r), _pair_cases())
    op(f"smooth_l1_loss_{_r}", (lambda r: lambda lib, x, y: F(lib).smooth_l1_loss(x, y, reduction=r))(_r),
       _pair_cases())
    op(f"huber_loss_{_r}", (lambda r: lambda lib, x, y: F(lib).huber_loss(x, y, reduction=r))(_r),
       _pair_cases())
    op(f"soft_margin_loss_{_r}", (lambda r: lambda lib, x, y: F(lib).soft_margin_loss(
        x, y.sign(), reduction=r))(_r), _pair_cases("float", "distinct", grad_t=False))
op("smooth_l1_loss_beta", lambda lib, x, y: F(lib).smooth_l1_loss(x, y, beta=0.3, reduction="none"),
   _pair_cases())
op("smooth_l1_loss_beta0", lambda lib, x, y: F(lib).smooth_l1_loss(x, y, beta=0.0), _pair_cases())
op("huber_loss_delta", lambda lib, x, y: F(lib).huber_loss(x, y, delta=2.5, reduction="sum"), _pair_cases())
op("mse_loss_int_target", lambda lib, x, y: F(lib).mse_loss(x, y.to(x.dtype)), [[In((3, 4)), In((3, 4), "int")]])

# ------------------------------------------------------------------ class indices
_CE_CASES = [[In((4, 6)), In((4,), "index:6")], [In((1, 3)), In((1,), "index:3")],
             [In((2, 5, 3)), In((2, 3), "index:5")], [In((2, 3, 4, 2)), In((2, 4, 2), "index:3")],
             [T(3, 4), In((3,), "index:4")], [In((0, 4)), In((0,), "index:4")]]
_W_CASES = [[*c, In((c[0].shape[0 if len(c[0].shape) == 1 else 1],), "positive", grad=False)]
            for c in _CE_CASES]
for _r in REDUCTIONS:
    op(f"cross_entropy_{_r}", (lambda r: lambda lib, x, t: F(lib).cross_entropy(x, t, reduction=r))(_r),
       _CE_CASES)
    op(f"cross_entropy_weight_{_r}", (lambda r: lambda lib, x, t, w: F(lib).cross_entropy(
        x, t, weight=w, reduction=r))(_r), _W_CASES)
    op(f"cross_entropy_smoothing_{_r}", (lambda r: lambda lib, x, t, w: F(lib).cross_entropy(
        x, t, weight=w, reduction=r, label_smoothing=0.2))(_r), _W_CASES)
    op(f"cross_entropy_ignore_{_r}", (lambda r: lambda lib, x, t, w: F(lib).cross_entropy(
        x, t, weight=w, ignore_index=1, reduction=r, label_smoothing=0.1))(_r), _W_CASES)
    op(f"nll_loss_{_r}", (lambda r: lambda lib, x, t, w: F(lib).nll_loss(
        F(lib).log_softmax(x, dim=1 if x.dim() > 1 else 0), t, weight=w, reduction=r))(_r), _W_CASES)
    op(f"nll_loss_ignore_{_r}", (lambda r: lambda lib, x, t: F(lib).nll_loss(x, t, ignore_index=2, reduction=r))(_r),
       [_CE_CASES[0], *_CE_CASES[2:4]])
# (C,) logits and a 0-d target: no finite differences (their harness makes 0-d arrays 1-d)
op("cross_entropy_unbatched", lambda lib, x, t, w: F(lib).cross_entropy(x, t, weight=w, label_smoothing=0.1),
   [[In((5,)), In((), "index:5"), In((5,), "positive", grad=False)]], fd=False)
op("cross_entropy_unbatched_none", lambda lib, x, t: F(lib).cross_entropy(x, t, reduction="none"),
   [[In((5,)), In((), "index:5")]], fd=False)
# every target ignored: a NaN mean with a zero gradient, as PyTorch
op("cross_entropy_all_ignored", lambda lib, x, t, w: F(lib).cross_entropy(x, t, weight=w, ignore_index=0),
   [[In((3, 4)), In((3,), "index:1"), In((4,), "positive", grad=False)]], fd=False)
op("nll_loss_all_ignored", lambda lib, x, t: F(lib).nll_loss(x, t, ignore_index=0, reduction="mean"),
   [[In((2, 3, 4)), In((2, 4), "index:1")]], fd=False)
# ignore_index outside [0, C): the default -100 here is C (targets drawn from 0..C)
op("cross_entropy_ignore_out_of_range", lambda lib, x, t: F(lib).cross_entropy(x, t, ignore_index=6),
   [[In((5, 6)), In((5,), "index:7")], [In((2, 6, 3)), In((2, 3), "index:7")]])
op("cross_entropy_int32_targets", lambda lib, x, t: F(lib).cross_entropy(x, _int32(lib, t), label_smoothing=0.3),
   [[In((4, 6)), In((4,), "index:6")], [In((2, 5, 3)), In((2, 3), "index:5")]])
op("nll_loss_int32_targets", lambda lib, x, t: F(lib).nll_loss(x, _int32(lib, t), reduction="sum"),
   [[In((4, 6)), In((4,), "index:6")]])

# ------------------------------------------------------------------ class probabilities
_P_CASES = [[In((4, 6)), In((4, 6), "prob")], [In((2, 5, 3)), In((2, 5, 3), "positive")],
            [In((5,)), In((5,), "prob")], [T(3, 4), T(3, 4, kind="prob")]]
for _r in REDUCTIONS:
    op(f"cross_entropy_probs_{_r}", (lambda r: lambda lib, x, p: F(lib).cross_entropy(x, p, reduction=r))(_r),
       _P_CASES)
    op(f"cross_entropy_probs_weight_smoothing_{_r}", (lambda r: lambda lib, x, p, w: F(lib).cross_entropy(
        x, p, weight=w, reduction=r, label_smoothing=0.25))(_r),
       [[*c, In((c[0].shape[0 if len(c[0].shape) == 1 else 1],), "positive", grad=False)] for c in _P_CASES])

# ------------------------------------------------------------------ binary
_B_CASES = [[In((4, 6)), In((4, 6), "prob")], [In((7,)), In((7,), "prob")], [In(()), In((), "prob")],
            [T(5, 3), In((5, 3), "prob")], [In((0, 2)), In((0, 2), "prob")]]
for _r in REDUCTIONS:
    op(f"binary_cross_entropy_{_r}", (lambda r: lambda lib, x, t: F(lib).binary_cross_entropy(
        x.sigmoid(), t, reduction=r))(_r), _B_CASES)
    op(f"binary_cross_entropy_weight_{_r}", (lambda r: lambda lib, x, t, w: F(lib).binary_cross_entropy(
        x.sigmoid(), t, weight=w, reduction=r))(_r),
       [[In((4, 6)), In((4, 6), "prob"), In((6,), "positive", grad=False)],
        [T(5, 3), In((5, 3), "prob"), In((5, 1), "positive", grad=False)]])
    op(f"bce_with_logits_{_r}", (lambda r: lambda lib, x, t: F(lib).binary_cross_entropy_with_logits(
        x, t, reduction=r))(_r), _B_CASES)
    op(f"bce_with_logits_weights_{_r}", (lambda r: lambda lib, x, t, w, pw: F(lib).binary_cross_entropy_with_logits(
        x, t, w, reduction=r, pos_weight=pw))(_r),
       [[In((4, 6)), In((4, 6), "prob"), In((6,), "positive", grad=False), In((6,), "positive", grad=False)],
        [T(5, 3), In((5, 3), "prob"), In((5, 1), "positive", grad=False), In((3,), "positive", grad=False)]])
op("bce_with_logits_pos_weight_only", lambda lib, x, t, pw: F(lib).binary_cross_entropy_with_logits(
    x, t, pos_weight=pw), [[In((4, 6), "float"), In((4, 6), "prob"), In((6,), "positive", grad=False)]])
op("bce_with_logits_large_logits", lambda lib, x, t: F(lib).binary_cross_entropy_with_logits(x * 200, t),
   [[In((3, 4)), In((3, 4), "prob")]])

# ------------------------------------------------------------------ divergences and margins
for _r in (*REDUCTIONS, "batchmean"):
    op(f"kl_div_{_r}", (lambda r: lambda lib, x, p: F(lib).kl_div(
        F(lib).log_softmax(x, dim=-1), p, reduction=r))(_r),
       [[In((4, 6)), In((4, 6), "prob")], [T(3, 5), In((3, 5), "prob")], [In((7,)), In((7,), "prob")]])
    op(f"kl_div_log_target_{_r}", (lambda r: lambda lib, x, t: F(lib).kl_div(
        x, t, reduction=r, log_target=True))(_r), [[In((4, 6)), In((4, 6))], [In(()), In(())]])
op("kl_div_zero_target", lambda lib, x, p: F(lib).kl_div(x, p * (p > 0.25), reduction="sum"),
   [[In((4, 6)), In((4, 6), "prob", grad=False)]])
for _r in REDUCTIONS:
    op(f"margin_ranking_loss_{_r}", (lambda r: lambda lib, a, b, y: F(lib).margin_ranking_loss(
        a, b, y.sign(), margin=0.3, reduction=r))(_r),
       [[In((6,)), In((6,)), In((6,), "distinct", grad=False)],
        [In((3, 4)), T(3, 4), In((3, 4), "distinct", grad=False)]])
    op(f"hinge_embedding_loss_{_r}", (lambda r: lambda lib, x, y: F(lib).hinge_embedding_loss(
        x, y.sign(), margin=0.7, reduction=r))(_r),
       [[In((4, 5)), In((4, 5), "distinct", grad=False)], [T(3, 2), In((3, 2), "distinct", grad=False)]])
    op(f"poisson_nll_loss_{_r}", (lambda r: lambda lib, x, t: F(lib).poisson_nll_loss(x, t, reduction=r))(_r),
       [[In((4, 5)), In((4, 5), "positive")], [T(3, 2), In((3, 2), "positive")]])
op("poisson_nll_loss_full", lambda lib, x, t: F(lib).poisson_nll_loss(x, t * 3, full=True, reduction="none"),
   [[In((4, 5)), In((4, 5), "positive")]])
op("poisson_nll_loss_not_log_input", lambda lib, x, t: F(lib).poisson_nll_loss(x, t, log_input=False, full=True),
   [[In((4, 5), "positive"), In((4, 5), "positive")]])

# ------------------------------------------------------------------ elementwise weights (PyTorch 2.13)
for _r in REDUCTIONS:
    for _name in ("mse_loss", "l1_loss", "huber_loss"):
        op(f"{_name}_weight_{_r}", (lambda n, r: lambda lib, x, y, w: getattr(F(lib), n)(
            x, y, reduction=r, weight=w))(_name, _r),
           [[In((4, 6)), In((4, 6)), In((4, 6), "positive", grad=False)],
            [T(5, 3), In((5, 3)), T(5, 3, kind="positive")]])

for _r in REDUCTIONS:
    op(f"cosine_embedding_loss_{_r}", (lambda r: lambda lib, a, b, y: F(lib).cosine_embedding_loss(
        a, b, y.sign(), margin=0.2, reduction=r))(_r),
       [[In((5, 4)), In((5, 4)), In((5,), "distinct", grad=False)],
        [T(3, 6), In((3, 6)), In((3,), "distinct", grad=False)]])
op("cosine_embedding_loss_unbatched", lambda lib, a, b, y: F(lib).cosine_embedding_loss(a, b, y.sign() * -1),
   [[In((4,)), In((4,)), In((), "distinct", grad=False)]], fd=False)
