"""The fused attention ops (``attention``, ``attention_backward``; kernels in
``lucid_codegen.attention_*``) behind ``F.scaled_dot_product_attention``: forward and
gradients against PyTorch (float64 and float32 tolerances) and against the unfused
reference composition, causal and not, sequence lengths around the 64-block, several
head dims, leading dims, transposed views; eager, interpreter and compiled modes; 1
and 2 threads bit-identical; bounds checking; clear errors; no L×S buffer anywhere."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import lucid
import lucid.nn.functional as F
from lucid_codegen.runtime import attention_steps, bounds
from lucid_codegen.runtime import plan as runtime_plan
from lucid_codegen.runtime import threads
from lucid_codegen.kernels.attention_backward import backward_layout
from lucid_codegen.kernels.attention import forward_scratch
from lucid_ir.builder import GraphBuilder
from lucid_ir.interpreter import interpret

# (leading dims, L, S, E, Ev): lengths 1, 2, 63, 64, 65, 127, 200; head dims 1, 8, 32, 48, 64, 80
# (float32 with AVX-512: the tile products' column blocks of 4, 2 and 1 vectors)
CASES = [
    ((1,), 1, 1, 1, 1),
    ((2, 3), 2, 2, 8, 8),
    ((2,), 63, 63, 64, 64),
    ((1, 2), 64, 64, 8, 8),
    ((3,), 65, 65, 80, 80),
    ((2, 2), 127, 127, 1, 8),
    ((1,), 200, 200, 64, 64),
    ((2,), 65, 127, 8, 80),     # L != S (causal: top-left aligned, as PyTorch)
    ((2, 2), 64, 64, 32, 48),   # a GPT head of 32
    ((3,), 97, 97, 48, 32),
    ((), 200, 63, 8, 1),        # 2-D q, k, v
]
TOL = {"float64": 1e-10, "float32": 3e-5}


def _inputs(lead, L, S, E, Ev, seed=0):
    rng = np.random.default_rng(seed)
    q, k, v = (rng.standard_normal((*lead, n, d)) for n, d in ((L, E), (S, E), (S, Ev)))
    g = rng.standard_normal((*lead, L, Ev))
    return q, k, v, g


def _torch(q, k, v, g, causal, scale=None):
    tq, tk, tv = (torch.tensor(x, requires_grad=True) for x in (q, k, v))
    out = torch.nn.functional.scaled_dot_product_attention(tq, tk, tv, is_causal=causal, scale=scale)
    out.backward(torch.tensor(g))
    return [x.detach().numpy() for x in (out, tq.grad, tk.grad, tv.grad)]


def _lucid(q, k, v, g, causal, dtype, scale=None, fn=None):
    fn = fn or (lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=causal, scale=scale))
    lq, lk, lv = (lucid.tensor(x.astype(dtype), requires_grad=True) for x in (q, k, v))
    out = fn(lq, lk, lv)
    out.backward(lucid.tensor(g.astype(dtype)))
    return [np.asarray(x.numpy()) for x in (out, lq.grad, lk.grad, lv.grad)]


def _close(got, want, dtype):
    for name, a, b in zip(("out", "dq", "dk", "dv"), got, want):
        assert a.shape == b.shape, name
        err = np.abs(a - b).max() / max(1.0, np.abs(b).max()) if b.size else 0.0
        assert err < TOL[dtype], (name, err)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("causal", [True, False])
@pytest.mark.parametrize("case", CASES, ids=lambda c: "x".join(map(str, (*c[0], *c[1:]))))
def test_matches_torch(case, causal, dtype):
    q, k, v, g = _inputs(*case)
    _close(_lucid(q, k, v, g, causal, dtype), _torch(q, k, v, g, causal), dtype)


def test_scale_and_the_fused_op_is_what_runs():
    q, k, v, g = _inputs((2, 2), 65, 65, 8, 8)
    _close(_lucid(q, k, v, g, True, "float64", scale=0.3), _torch(q, k, v, g, True, scale=0.3), "float64")
    lowered = lucid.compile(lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=True)).lower(
        *(lucid.tensor(x) for x in (q, k, v)))
    assert "attention[" in lowered.as_text("fused")


@pytest.mark.parametrize("causal", [True, False])
def test_matches_the_reference_composition(causal):
    """The fused path against the unfused one (softmax of masked products), in float32."""
    q, k, v, g = _inputs((2, 3), 70, 70, 16, 16, seed=1)
    mask = np.tril(np.ones((70, 70), bool)) if causal else np.ones((70, 70), bool)

    def composed(q, k, v):
        return F.scaled_dot_product_attention(q, k, v, attn_mask=lucid.tensor(mask))
    _close(_lucid(q, k, v, g, causal, "float32"), _lucid(q, k, v, g, causal, "float32", fn=composed),
           "float32")


def test_transposed_views_as_a_gpt_head_split():
    """q, k, v are (B, T, H, D) -> (B, H, T, D) views of one projection: no copies needed."""
    rng = np.random.default_rng(2)
    qkv = rng.standard_normal((2, 67, 3, 4, 16))          # (B, T, 3, H, D)
    g = rng.standard_normal((2, 4, 67, 16))
    tq = torch.tensor(qkv, requires_grad=True)
    parts = [tq[:, :, i].transpose(1, 2) for i in range(3)]
    torch.nn.functional.scaled_dot_product_attention(*parts, is_causal=True).backward(torch.tensor(g))
    lq = lucid.tensor(qkv.astype(np.float32), requires_grad=True)
    lparts = [lq[:, :, i].transpose(1, 2) for i in range(3)]
    out = F.scaled_dot_product_attention(*lparts, is_causal=True)
    out.backward(lucid.tensor(g.astype(np.float32)))
    want = torch.nn.functional.scaled_dot_product_attention(*parts, is_causal=True).detach().numpy()
    _close([np.asarray(out.numpy()), np.asarray(lq.grad.numpy())], [want, tq.grad.numpy()], "float32")


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("causal", [True, False])
def test_features_at_a_stride_and_partial_vectors_give_the_contiguous_bits(dtype, causal):
    """q, k, v whose feature axis is not contiguous (transposed (D, T) storage: the packs
    gather W scalars a vector) and head dims that are not a multiple of the vector width
    (20, 12: the packs' and copy-outs' partial spans), against the same values stored
    contiguously, bit for bit, and against PyTorch."""
    q, k, v, g = _inputs((2, 3), 37, 41, 20, 12, seed=9)
    contiguous = _lucid(q, k, v, g, causal, dtype)

    lq, lk, lv = (lucid.tensor(np.ascontiguousarray(np.swapaxes(x.astype(dtype), -1, -2))).transpose(-1, -2)
                  for x in (q, k, v))
    for t in (lq, lk, lv):
        assert t.stride()[-1] != 1
        t.requires_grad_(True)
    out = F.scaled_dot_product_attention(lq, lk, lv, is_causal=causal)
    out.backward(lucid.tensor(g.astype(dtype)))
    got = [np.asarray(x.numpy()) for x in (out, lq.grad, lk.grad, lv.grad)]
    for a, b in zip(got, contiguous):
        assert np.array_equal(a, b)
    _close(got, _torch(q, k, v, g, causal), dtype)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_one_and_two_threads_give_the_same_bits(dtype):
    q, k, v, g = _inputs((2, 4), 300, 300, 64, 64, seed=3)
    assert attention_steps.work_split.attention_splits(4 * 8 * 300 * 300 * 64 * 0.5)  # (the call splits)
    results = []
    for n in (1, 2):
        threads.set_num_threads(n)
        results.append(_lucid(q, k, v, g, True, dtype))
    for a, b in zip(*results):
        assert np.array_equal(a, b)


def test_compiled_training_step_matches_eager():
    q, k, v, g = _inputs((2, 2), 65, 65, 8, 8, seed=4)

    def loss(q, k, v):
        return (F.scaled_dot_product_attention(q, k, v, is_causal=True) * lucid.tensor(g)).sum()

    def step(q, k, v):
        out = loss(q, k, v)
        out.backward()
        return out, q.grad, k.grad, v.grad

    compiled = lucid.compile(step)
    args = [lucid.tensor(x, requires_grad=True) for x in (q, k, v)]
    got = [np.asarray(x.numpy()) for x in compiled(*args)]
    want = _torch(q, k, v, g, True)
    assert abs(got[0] - (want[0] * g).sum()) < 1e-9
    _close([np.zeros(1), *got[1:]], [np.zeros(1), *want[1:]], "float64")
    text = compiled.lower(*args).as_text("fused")
    assert "attention[" in text and "attention_backward[" in text


def test_interpreter_backend_runs_the_reference(monkeypatch):
    monkeypatch.setenv("LUCID_BACKEND", "interpret")
    q, k, v, g = _inputs((2,), 65, 65, 8, 8, seed=5)
    _close(_lucid(q, k, v, g, True, "float64"), _torch(q, k, v, g, True), "float64")


def test_bounds_checking_runs_the_kernels_in_guarded_buffers(monkeypatch):
    monkeypatch.setenv("LUCID_CHECK_BOUNDS", "1")
    q, k, v, g = _inputs((2,), 130, 70, 80, 8, seed=6)
    _close(_lucid(q, k, v, g, True, "float32"), _torch(q, k, v, g, True), "float32")


def test_empty_queries_and_batches():
    for lead, L in (((0, 3), 5), ((2,), 0)):
        q, k, v, g = _inputs(lead, L, 4, 8, 8)
        _close(_lucid(q, k, v, g, True, "float32"), _torch(q, k, v, g, True), "float32")


def test_no_length_by_length_buffer_for_long_sequences():
    """At T = 1024 no value of the compiled forward or backward graph, nor any kernel's
    scratch, holds T·T elements (the unfused composition would hold (B, H, T, T))."""
    T, D = 1024, 16
    args = [lucid.tensor(np.zeros((1, 2, T, D), np.float32), requires_grad=True) for _ in range(3)]

    def step(q, k, v):
        out = F.scaled_dot_product_attention(q, k, v, is_causal=True).sum()
        out.backward()
        return out, q.grad

    program = lucid.compile(step).lower(*args).program
    sizes = [v.type.size for cg in (program.compiled_forward, program.compiled_backward) if cg is not None
             for n in cg.fused.nodes for v in n.outs]
    assert sizes and max(sizes) < T * T
    assert forward_scratch(D, D) < T * T and backward_layout(T, T, D, D, "float32")[3] < T * T


def test_ir_ops_check_their_operands():
    b = GraphBuilder()
    q, k = b.input((2, 5, 4)), b.input((2, 6, 4))
    with pytest.raises(ValueError, match="attention: q .* need the same leading dims"):
        b.emit("attention", q, b.input((3, 6, 4)), b.input((3, 6, 4)))
    with pytest.raises(ValueError, match="do not fit"):
        b.emit("attention", q, k, b.input((2, 7, 4)))
    with pytest.raises(ValueError, match="no keys"):
        b.emit("attention", q, b.input((2, 0, 4)), b.input((2, 0, 4)))
    with pytest.raises(TypeError, match="float32 or float64"):
        b.emit("attention", *(b.input((2, 5, 4), "int64") for _ in range(3)))
    with pytest.raises(TypeError, match="different dtypes"):
        b.emit("attention", q, k, b.input((2, 6, 4), "float64"))
    packed = b.emit("attention", q, k, k)
    with pytest.raises(ValueError, match="attention_backward: g .* is not the packed"):
        b.emit("attention_backward", q, k, k, packed, b.input((2, 5)))
    with pytest.raises(RuntimeError, match="do not fit"):
        F.scaled_dot_product_attention(lucid.ones(2, 5, 4), lucid.ones(2, 6, 3), lucid.ones(2, 6, 3))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("n_threads", [1, 2])
def test_backward_of_the_output_gradient_alone_at_its_strides(dtype, n_threads):
    """``attention_backward`` with g in the output's shape (the lse gradient 0) gives the
    bits of the packed g zero past the output, from a dO that is a transposed view (a
    head merge's gradient) as well as a contiguous one, at 1 and 2 threads; and equals
    the reference. The ops check g's shape."""
    from lucid.compiler import compile_graph
    threads.set_num_threads(n_threads)
    lead, L, E, Ev = (2, 3), 70, 8, 24

    def backward(g_shape):
        b = GraphBuilder()
        q, k, v = b.input((*lead, L, E), dtype), b.input((*lead, L, E), dtype), b.input((*lead, L, Ev), dtype)
        packed = b.emit("attention", q, k, v, is_causal=True)
        g = b.input(g_shape or packed.shape, dtype)
        return b.build([b.emit("attention_backward", q, k, v, packed, g, is_causal=True)])
    direct, whole = backward((*lead, L, Ev)), backward(None)
    with pytest.raises(ValueError, match="attention_backward: g .* is not the packed"):
        backward((*lead, L, Ev + 1))
    rng = np.random.default_rng(12)
    feeds = [rng.standard_normal(x.shape).astype(dtype) for x in direct.inputs]
    padded = np.concatenate([feeds[3].reshape(*lead, L * Ev), np.zeros((*lead, L), dtype)], axis=-1)
    want = compile_graph(whole).executable(feeds[:3] + [padded])[0]
    run = compile_graph(direct).executable
    strided = np.ascontiguousarray(feeds[3].swapaxes(1, 2)).swapaxes(1, 2)   # (B, T, H, D) viewed
    for d in (feeds[3], strided):
        assert np.array_equal(run(feeds[:3] + [d])[0], want)
    np.testing.assert_allclose(want, interpret(direct, feeds)[0], rtol=TOL[dtype], atol=TOL[dtype])


def test_the_backward_reads_the_output_gradient_without_a_packed_copy():
    """simplify turns the packed gradient that autodiff builds (the output's gradient
    embedded, zeros for lse) into the output's gradient itself: SDPA's backward, in a
    GPT's head layout, holds no embed before the kernel, and computes the reference."""
    from lucid.compiler import compile_graph
    from lucid_ir import pipeline
    from lucid_ir.ops.attention import attention_parts
    from lucid_ir.passes import simplify
    b = GraphBuilder()
    x = b.input((2, 9, 3, 8))                                    # (B, T, H, D)
    q = b.emit("transpose", x, perm=(0, 2, 1, 3))
    packed = b.emit("attention", q, q, q, is_causal=True)
    out, _ = attention_parts(b, packed, (2, 3, 9, 8))
    merged = b.emit("reshape", b.emit("transpose", out, perm=(0, 2, 1, 3)), shape=(2, 9, 24))
    graph = b.build([b.emit("sum", b.emit("mul", merged, merged), axes=(0, 1, 2), keepdims=False)])
    bwd = simplify.run(pipeline.run(graph, pipeline.differentiate([0])).graph)
    node = next(n for n in bwd.nodes if n.op == "attention_backward")
    assert node.inputs[4].shape == (2, 3, 9, 8)
    assert not [n for n in bwd.nodes if n.op in ("embed", "embed_sum")]
    feeds = [np.random.default_rng(3).standard_normal(v.shape).astype(np.float32) for v in bwd.inputs]
    for got, want in zip(compile_graph(bwd).executable(feeds), interpret(bwd, feeds)):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


def test_packed_result_holds_out_and_logsumexp():
    q, k, v, _ = _inputs((2,), 5, 7, 3, 2)
    b = GraphBuilder()
    ins = [b.input(x.shape, "float64") for x in (q, k, v)]
    (packed,) = interpret(b.build([b.emit("attention", *ins, is_causal=True)]), [q, k, v])
    s = q @ k.swapaxes(-1, -2) / np.sqrt(3) + np.where(np.tril(np.ones((5, 7))), 0, -np.inf)
    lse = np.log(np.exp(s).sum(-1))
    assert np.allclose(packed[..., 10:], lse)
    assert np.allclose(packed[..., :10].reshape(2, 5, 2), np.exp(s - lse[..., None]) @ v)


def test_fuzzer_generates_attention_graphs_and_they_pass():
    """tests/fuzz.py's generator emits ``attention`` (q from the graph, causal or not,
    the packed result or its output view); the first such seeds run the full fuzz case
    (fused/unfused, 1 and 2 threads, layouts, bounds checking) and the gradient check."""
    import fuzz
    seeds = [s for s in range(300) if any(n.op == "attention" for n in fuzz.make_case(s)[1].nodes)][:10]
    assert len(seeds) >= 8
    for seed in seeds:
        failures = fuzz.run_case(seed, grad=True)[2]
        assert not failures, (seed, failures[:1])


@pytest.mark.skipif(not runtime_plan.NATIVE_PLANS or bounds.enabled(),
                    reason="plans run step by step (LUCID_NATIVE_PLAN=0 or LUCID_CHECK_BOUNDS=1)")
@pytest.mark.parametrize("n_threads", [1, 2])
def test_plans_run_the_kernels_in_native_programs(monkeypatch, n_threads):
    """A compiled plan holding attention and its backward runs as a native program (each
    op one job, split across threads like a loop kernel's rows), with the same bits as
    the step-by-step call; its LLVM text shows both kernels."""
    from lucid.compiler import compile_graph
    from lucid_codegen.runtime import work_split
    monkeypatch.setattr(work_split, "LOOP_SPLIT_BYTES", 256)   # small work splits too
    threads.set_num_threads(n_threads)
    b = GraphBuilder()
    q, k, v = (b.input((2, 3, 70, 8)) for _ in range(3))
    packed = b.emit("attention", q, k, v, is_causal=True)
    g = b.input(packed.shape)
    graph = b.build([b.emit("exp", packed), b.emit("attention_backward", q, k, v, packed, g, is_causal=True)])
    plan = compile_graph(graph).executable
    assert plan.kinds.count("attention") == 2
    rng = np.random.default_rng(7)
    feeds = [rng.standard_normal(x.shape).astype(np.float32) for x in graph.inputs]
    feeds[0] = np.ascontiguousarray(feeds[0].swapaxes(1, 2)).swapaxes(1, 2)   # a strided q
    first = [x.copy() for x in plan(feeds)]
    for _ in range(2):
        for a, w in zip(plan(feeds), first):
            assert np.array_equal(a, w)
    programs = [p for p in plan._local.programs.values() if p]
    assert programs
    if n_threads == 2:
        assert programs[0].splits          # (its records: the jobs, forks and joins)
    else:
        assert programs[0].n_jobs == plan.n_kernels
    for a, w in zip(first, interpret(graph, feeds)):
        np.testing.assert_allclose(a, w, rtol=1e-4, atol=1e-4)
    text = plan.llvm_text()
    assert "lucid_attention_fwd" in text and "lucid_attention_bwd" in text


def test_leading_dims_broadcast_through_expanded_views():
    """k and v shared across batches or heads (leading dims of 1, or fewer dims): the
    fused op reads them as expanded (stride-0) views; their gradients sum over the copies."""
    for shapes in (((2, 3, 9, 4), (1, 3, 7, 4), (3, 7, 5)), ((9, 4), (2, 7, 4), (2, 7, 4))):
        rng = np.random.default_rng(8)
        q, k, v = (rng.standard_normal(s) for s in shapes)
        g = rng.standard_normal(torch.nn.functional.scaled_dot_product_attention(
            *(torch.tensor(x) for x in (q, k, v))).shape)
        _close(_lucid(q, k, v, g, True, "float64"), _torch(q, k, v, g, True), "float64")
