"""bench_models.py's workloads written in JAX, the same shapes and arithmetic as
model_zoo.py's PyTorch-API versions: each step is one ``jax.jit`` of ``value_and_grad``
and the update (AdamW with clipping at 1.0 for the GPT, SGD with Nesterov momentum for
the CNN, written by hand as PyTorch defines them), parameters and optimiser state donated
so that XLA updates them in place. The weights are PyTorch's initial ones
(``model_zoo.initial_state``), so the first losses match PyTorch's.

``build_step(workload, state)`` gives ``(call, check)`` as ``model_zoo.build_step`` does.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

import model_zoo as zoo

EPS = 1e-5  # LayerNorm and BatchNorm2d


def _linear(p, name, x):
    y = x @ p[name + ".weight"].T
    return y + p[name + ".bias"] if name + ".bias" in p else y


def _layer_norm(p, name, x):
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) * jax.lax.rsqrt(var + EPS) * p[name + ".weight"] + p[name + ".bias"]


def gpt_logits(p, idx):
    """CharGPT's forward (examples/train_char_gpt.py): embeddings, pre-norm blocks of
    causal attention and an exact-GELU MLP, final LayerNorm, bias-free head."""
    B, T = idx.shape
    C, H = zoo.GPT["d_model"], zoo.GPT["n_head"]
    x = p["tok.weight"][idx] + p["pos.weight"][:T]
    for i in range(zoo.GPT["n_layer"]):
        blk = f"blocks.{i}."
        q, k, v = jnp.split(_linear(p, blk + "attn.qkv", _layer_norm(p, blk + "ln1", x)), 3, axis=-1)
        heads = (B, T, H, C // H)  # jax.nn.dot_product_attention's (batch, length, heads, dim)
        y = jax.nn.dot_product_attention(q.reshape(heads), k.reshape(heads), v.reshape(heads), is_causal=True)
        x = x + _linear(p, blk + "attn.proj", y.reshape(B, T, C))
        h = jax.nn.gelu(_linear(p, blk + "mlp.0", _layer_norm(p, blk + "ln2", x)), approximate=False)
        x = x + _linear(p, blk + "mlp.2", h)
    return _linear(p, "head", _layer_norm(p, "ln_f", x))


def _cross_entropy(logits, y, smoothing=0.0):
    logp = jax.nn.log_softmax(logits, axis=-1)
    nll = -jnp.take_along_axis(logp, y[:, None], axis=-1).mean()
    return nll if not smoothing else (1 - smoothing) * nll - smoothing * logp.mean(-1).mean()


def _conv(p, name, x):
    y = jax.lax.conv_general_dilated(x, p[name + ".weight"], (1, 1), ((1, 1), (1, 1)),
                                     dimension_numbers=("NCHW", "OIHW", "NCHW"))
    return y + p[name + ".bias"][None, :, None, None]


def cnn_logits(p, buffers, x):
    """model_zoo.cnn's forward in training mode; also the BatchNorm's new running stats."""
    h = _conv(p, "0", x)
    mean, var = h.mean((0, 2, 3)), h.var((0, 2, 3))
    h = (h - mean[:, None, None]) * jax.lax.rsqrt(var + EPS)[:, None, None]
    h = jax.nn.relu(h * p["1.weight"][:, None, None] + p["1.bias"][:, None, None])
    h = jax.lax.reduce_window(h, -jnp.inf, jax.lax.max, (1, 1, 2, 2), (1, 1, 2, 2), "VALID")
    h = jax.nn.relu(_conv(p, "4", h)).mean((2, 3))
    n = x.shape[0] * x.shape[2] * x.shape[3]
    new = {"1.running_mean": 0.9 * buffers["1.running_mean"] + 0.1 * mean,
           "1.running_var": 0.9 * buffers["1.running_var"] + 0.1 * var * n / (n - 1),
           "1.num_batches_tracked": buffers["1.num_batches_tracked"] + 1}
    return _linear(p, "8", h), new


def gpt_step(p, m, v, t, x, y):
    """One AdamW step (as torch.optim.AdamW: decoupled decay, bias corrections) after
    clipping the gradients' joint norm at 1.0 (as torch.nn.utils.clip_grad_norm_)."""
    def loss_fn(p):
        logits = gpt_logits(p, x)
        return _cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))
    loss, g = jax.value_and_grad(loss_fn)(p)
    norm = jnp.sqrt(sum(jnp.sum(a * a) for a in jax.tree.leaves(g)))
    g = jax.tree.map(lambda a: a * jnp.minimum(1.0, zoo.CLIP / (norm + 1e-6)), g)
    lr, wd, (b1, b2) = zoo.ADAMW["lr"], zoo.ADAMW["weight_decay"], zoo.ADAMW["betas"]
    t = t + 1
    bc1, bc2 = 1 - b1 ** t, 1 - b2 ** t
    m = jax.tree.map(lambda m, g: b1 * m + (1 - b1) * g, m, g)
    v = jax.tree.map(lambda v, g: b2 * v + (1 - b2) * g * g, v, g)
    p = jax.tree.map(lambda p, m, v: p * (1 - lr * wd) - (lr / bc1) * m / (jnp.sqrt(v) / jnp.sqrt(bc2) + 1e-8),
                     p, m, v)
    return loss, p, m, v, t


def cnn_step(p, buffers, momentum, x, y):
    """One SGD step with Nesterov momentum (as torch.optim.SGD, no dampening: the first
    step's buffer is the gradient itself, as zeros times 0.9 plus it)."""
    def loss_fn(p):
        logits, new = cnn_logits(p, buffers, x)
        return _cross_entropy(logits, y, zoo.LABEL_SMOOTHING), new
    (loss, buffers), g = jax.value_and_grad(loss_fn, has_aux=True)(p)
    lr, mu = zoo.SGD["lr"], zoo.SGD["momentum"]
    momentum = jax.tree.map(lambda b, g: mu * b + g, momentum, g)
    p = jax.tree.map(lambda p, g, b: p - lr * (g + mu * b), p, g, momentum)
    return loss, p, buffers, momentum


def build_step(workload: str, state: dict):
    """``(call, check)`` for the workload: ``call()`` runs one jitted step (waiting for
    its result) and returns the loss, or for attention (loss, grads of q, k, v)."""
    if workload in zoo.ATTN_LENGTH:
        # jax.nn.dot_product_attention takes (batch, length, heads, dim): the same values
        q, k, v = (jnp.asarray(np.ascontiguousarray(a.transpose(0, 2, 1, 3))) for a in zoo.inputs(workload))
        fn = jax.jit(jax.value_and_grad(
            lambda q, k, v: jax.nn.dot_product_attention(q, k, v, is_causal=True).sum(), argnums=(0, 1, 2)))

        def check(out):
            loss, grads = out
            return [float(loss)] + [float((np.asarray(g, np.float64) ** 2).sum()) for g in grads]
        return lambda: jax.block_until_ready(fn(q, k, v)), check

    x, y = (jnp.asarray(a) for a in zoo.inputs(workload))
    if workload == "gpt":
        params = {name: jnp.asarray(a) for name, a in state.items()}
        zeros = lambda: jax.tree.map(jnp.zeros_like, params)
        carry = [params, zeros(), zeros(), jnp.asarray(0, jnp.int32)]
        step = jax.jit(gpt_step, donate_argnums=(0, 1, 2))
    else:
        bufs = ("1.running_mean", "1.running_var", "1.num_batches_tracked")
        params = {name: jnp.asarray(a) for name, a in state.items() if name not in bufs}
        carry = [params, {name: jnp.asarray(state[name]) for name in bufs}, jax.tree.map(jnp.zeros_like, params)]
        step = jax.jit(cnn_step, donate_argnums=(0, 1, 2))

    def call():
        loss, *carry[:] = step(*carry, x, y)
        return jax.block_until_ready(loss)
    return call, lambda loss: [float(loss)]
