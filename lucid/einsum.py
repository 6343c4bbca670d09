"""``lucid.einsum``: Einstein summation, as ``torch.einsum``, composed of IR ops.

An equation such as ``"bij,bjk->bik"`` becomes one chain of primitives (one eager call,
cached per equation, shapes and dtype; traced as is by ``lucid.compile``), so the
gradient is the IR's autodiff of the chain:

1. per operand, a subscript repeated in it takes the diagonal (the axes moved last,
   flattened, and read with a stride: ``"ii->i"``), and a subscript no other operand
   and not the output has is summed away;
2. the operands are contracted pairwise, left to right: each pair is permuted to
   ``(batch..., rows, contracted)`` and ``(batch..., contracted, cols)``, reshaped to
   matrices and multiplied by ONE ``matmul`` (batch axes broadcast, as a size-1
   subscript broadcasts in PyTorch); integer operands multiply and sum instead;
3. what is left is summed to the output's subscripts and permuted to their order.

As in PyTorch, an equation that only permutes or takes a diagonal of one operand
gives a view of it; a sum over one integer operand gives int64.

Accepted forms: explicit output (``"ij,jk->ik"``) or implicit (no ``->``: the
subscripts that appear once, in alphabetical order, uppercase first), ``...`` for
broadcast leading dims, the operands as arguments or as one list, and PyTorch's
sublist form ``einsum(a, [0, 1], b, [1, 2], [0, 2])``. Errors as PyTorch's
(RuntimeError, naming the subscript and the operand).

>>> import lucid
>>> a, b = lucid.arange(6.0).reshape(2, 3), lucid.ones(3, 2)
>>> lucid.einsum("ij,jk->ik", a, b).tolist(), lucid.einsum("ij->j", a).tolist()
([[3.0, 3.0], [12.0, 12.0]], [3.0, 5.0, 7.0])
>>> lucid.einsum("ii", lucid.arange(9.0).reshape(3, 3)).item(), lucid.einsum("i,j", [b[0], b[1]]).shape
(12.0, (2, 2))
"""
from __future__ import annotations

import math

from . import dispatch
from .nn.chain_steps import Steps

__all__ = ["einsum"]

_LETTERS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")


def _error(message: str) -> RuntimeError:
    return RuntimeError(f"einsum(): {message}")


# ------------------------------------------------------------------ parsing
def _parse_term(term: str, where: str):
    """A term's subscripts as a list of letters, with ``"..."`` standing for the
    ellipsis (at most once)."""
    out, i = [], 0
    while i < len(term):
        c = term[i]
        if c == ".":
            if term[i:i + 3] != "...":
                raise _error(f"found '.' for {where} that is not part of any ellipsis (...)")
            if "..." in out:
                raise _error(f"found '.' for {where} for which an ellipsis was already found")
            out.append("...")
            i += 3
            continue
        if c not in _LETTERS:
            raise _error(f"invalid subscript {c!r} given for {where}: subscripts must be in [a-zA-Z]")
        out.append(c)
        i += 1
    return out


def parse(equation: str, shapes):
    """``(terms, output)``: each operand's subscripts and the output's, as lists of
    labels (letters; the ellipsis's dims as ``-E .. -1``, right-aligned)."""
    eq = "".join(equation.split())
    lhs, arrow, rhs = eq.partition("->")
    if "->" in rhs:
        raise _error(f"the equation {equation!r} has more than one '->'")
    terms = [_parse_term(t, f"operand {k}") for k, t in enumerate(lhs.split(","))]
    if len(terms) > len(shapes):
        raise _error(f"fewer operands were provided than specified in the equation ({len(shapes)} "
                     f"operands for {len(terms)} terms of {equation!r})")
    if len(terms) < len(shapes):
        raise _error(f"more operands were provided than specified in the equation ({len(shapes)} "
                     f"operands for {len(terms)} terms of {equation!r})")
    labelled, widest = [], 0
    for k, (term, shape) in enumerate(zip(terms, shapes)):
        letters = [c for c in term if c != "..."]
        if "..." not in term:
            if len(letters) != len(shape):
                raise _error(f"the number of subscripts in the equation ({len(letters)}) does not "
                             f"match the number of dimensions ({len(shape)}) for operand {k} and no "
                             f"ellipsis was given")
            labelled.append(letters)
            continue
        spread = len(shape) - len(letters)
        if spread < 0:
            raise _error(f"the number of subscripts in the equation ({len(letters)}) is more than the "
                         f"number of dimensions ({len(shape)}) for operand {k}")
        widest = max(widest, spread)
        at = term.index("...")
        labelled.append(term[:at] + list(range(-spread, 0)) + term[at + 1:])
    ellipsis = list(range(-widest, 0))
    if arrow:
        out = _parse_term(rhs, "output")
        seen = {c for t in labelled for c in t}
        for c in out:
            if c != "..." and c not in seen:
                raise _error(f"output subscript {c} does not appear in the equation for any input operand")
            if c != "..." and out.count(c) > 1:
                raise _error(f"output subscript {c} appears more than once in the output")
        at = out.index("...") if "..." in out else None
        output = out if at is None else out[:at] + ellipsis + out[at + 1:]
    else:
        counts: dict = {}
        for t in labelled:
            for c in t:
                if isinstance(c, str):
                    counts[c] = counts.get(c, 0) + 1
        output = ellipsis + sorted(c for c, n in counts.items() if n == 1)
    return labelled, output


def _sizes(terms, shapes) -> dict:
    """Each label's size (sizes of 1 broadcast); RuntimeError where they do not fit."""
    size: dict = {}
    for k, (term, shape) in enumerate(zip(terms, shapes)):
        mine: dict = {}
        for c, n in zip(term, shape):
            if c in mine and mine[c] != n:
                raise _error(f"subscript {c} is repeated for operand {k} but the sizes don't match, "
                             f"{n} != {mine[c]}")
            mine[c] = n
        for c, n in mine.items():
            seen = size.get(c)
            if seen is not None and n != seen and 1 not in (n, seen):
                what = f"subscript {c}" if isinstance(c, str) else f"dim {c} of the ellipsis"
                raise _error(f"{what} has size {n} for operand {k} which does not broadcast with "
                             f"previously seen size {seen} (shapes {[tuple(s) for s in shapes]})")
            size[c] = n if seen is None or seen == 1 else seen
    return size


# ------------------------------------------------------------------ the plan, as chain steps
class _Operand:
    """One value of the plan: a chain reference, its labels and its shape."""

    def __init__(self, ref, labels, shape):
        self.ref, self.shape = ref, list(shape)
        self.labels = None if labels is None else list(labels)  # None: a matrix form


class _Plan:
    def __init__(self, s: Steps, integer: bool):
        self.s, self.integer = s, integer

    def permute(self, x: _Operand, labels) -> _Operand:
        perm = tuple(x.labels.index(c) for c in labels)
        if perm == tuple(range(len(perm))):
            return x
        return _Operand(self.s("transpose", x.ref, perm=perm), labels, [x.shape[p] for p in perm])

    def reshape(self, x: _Operand, labels, shape) -> _Operand:
        if list(shape) == x.shape:
            return _Operand(x.ref, labels, shape)
        return _Operand(self.s("reshape", x.ref, shape=tuple(shape)), labels, shape)

    def sum_out(self, x: _Operand, labels) -> _Operand:
        axes = tuple(i for i, c in enumerate(x.labels) if c in labels)
        if not axes:
            return x
        keep = [i for i in range(len(x.labels)) if i not in axes]
        return _Operand(self.s("sum", x.ref, axes=axes, keepdims=False),
                        [x.labels[i] for i in keep], [x.shape[i] for i in keep])

    def diagonal(self, x: _Operand, label) -> _Operand:
        """The diagonal of the axes ``label`` repeats on, as one axis at the end."""
        others = [i for i, c in enumerate(x.labels) if c != label]
        ordered = others + [i for i, c in enumerate(x.labels) if c == label]
        n, r = x.shape[ordered[-1]], len(ordered) - len(others)
        moved = x if ordered == list(range(len(ordered))) else _Operand(
            self.s("transpose", x.ref, perm=tuple(ordered)), [x.labels[i] for i in ordered],
            [x.shape[i] for i in ordered])
        lead = moved.shape[:len(others)]
        flat = self.reshape(moved, moved.labels[:len(others)] + [label], lead + [n ** r])
        stride = sum(n ** j for j in range(r))   # (i, i, ..., i) flattened is i * stride
        m = len(flat.shape)
        ref = self.s("slice", flat.ref, starts=(0,) * m, stops=tuple(flat.shape),
                     steps=(1,) * (m - 1) + (stride,))
        return _Operand(ref, flat.labels, lead + [n])

    def drop_size_one(self, x: _Operand, label) -> _Operand:
        i = x.labels.index(label)
        return self.reshape(x, x.labels[:i] + x.labels[i + 1:], x.shape[:i] + x.shape[i + 1:])

    def contract(self, a: _Operand, b: _Operand, keep) -> _Operand:
        """``a`` and ``b`` multiplied, summing the shared labels ``keep`` lacks."""
        a = self.sum_out(a, [c for c in a.labels if c not in b.labels and c not in keep])
        b = self.sum_out(b, [c for c in b.labels if c not in a.labels and c not in keep])
        for c in [c for c in a.labels if c in b.labels and c not in keep]:
            na, nb = a.shape[a.labels.index(c)], b.shape[b.labels.index(c)]
            if na != nb:  # a size-1 subscript broadcast over a sum: sum the other side first
                a, b = (self.drop_size_one(a, c), self.sum_out(b, [c])) if na == 1 else \
                       (self.sum_out(a, [c]), self.drop_size_one(b, c))
        batch = [c for c in a.labels if c in b.labels and c in keep]
        summed = [c for c in a.labels if c in b.labels and c not in keep]
        rows = [c for c in a.labels if c not in b.labels]
        cols = [c for c in b.labels if c not in a.labels]

        def size(x, labels):
            return [x.shape[x.labels.index(c)] for c in labels]
        row_sizes, col_sizes = size(a, rows), size(b, cols)
        m, k, n = math.prod(row_sizes), math.prod(size(a, summed)), math.prod(col_sizes)
        a = self.permute(a, batch + rows + summed)
        b = self.permute(b, batch + summed + cols)
        ba, bb = size(a, batch), size(b, batch)
        out_batch = [0 if 0 in (p, q) else max(p, q) for p, q in zip(ba, bb)]
        if self.integer:  # no integer GEMM: multiply and sum
            a = self.reshape(a, None, ba + [m, k, 1])
            b = self.reshape(b, None, bb + [1, k, n])
            ref = self.s("sum", self.s("mul", a.ref, b.ref), axes=(len(batch) + 1,), keepdims=False)
        else:
            a = self.reshape(a, None, ba + [m, k])
            b = self.reshape(b, None, bb + [k, n])
            ref = self.s("matmul", a.ref, b.ref)
        product = _Operand(ref, None, out_batch + [m, n])
        return self.reshape(product, batch + rows + cols, out_batch + row_sizes + col_sizes)


def build_plan(s: Steps, terms, output, shapes, integer: bool, dtype: str) -> None:
    """Write the chain of the contraction into ``s`` (its last step is the result).
    Integer operands are summed in int64 and cast back to ``dtype`` at the end."""
    size = _sizes(terms, shapes)
    plan = _Plan(s, integer)
    ops = []
    for k, (t, shape) in enumerate(zip(terms, shapes)):
        ref = s("cast", k, dtype="int64") if integer and dtype != "int64" else k
        ops.append(_Operand(ref, t, shape))
    for k, x in enumerate(ops):
        for c in [c for c in dict.fromkeys(x.labels) if x.labels.count(c) > 1]:
            x = plan.diagonal(x, c)
        elsewhere = {c for j, y in enumerate(ops) if j != k for c in y.labels} | set(output)
        ops[k] = plan.sum_out(x, [c for c in x.labels if c not in elsewhere])
    result = ops[0]
    for k in range(1, len(ops)):
        keep = set(output) | {c for y in ops[k + 1:] for c in y.labels}
        result = plan.contract(result, ops[k], keep)
    result = plan.sum_out(result, [c for c in result.labels if c not in output])
    result = plan.permute(result, list(output))
    shape = [size[c] for c in output]
    if result.shape != shape:  # a size-1 subscript of one operand, broadcast to the output
        result = _Operand(s("broadcast_to", result.ref, shape=tuple(shape)), output, shape)
    if integer:  # the int64 sums back in the operands' dtype (one operand summed: int64, as PyTorch)
        summed = len(terms) == 1 and len(set(terms[0])) > len(output)
        s("cast", result.ref, dtype="int64" if summed else dtype)
    elif isinstance(result.ref, int):  # the operand itself: a view of it, as PyTorch's
        s("reshape", result.ref, shape=tuple(shape))


_CHAINS: dict = dispatch.ChainCache()


def _chain(key, terms, output, shapes, integer: bool, dtype: str) -> dispatch.Chain:
    chain = _CHAINS.get(key)
    if chain is None:
        s = Steps(dtype)
        build_plan(s, terms, output, shapes, integer, dtype)
        if len(_CHAINS) >= 4096:
            _CHAINS.clear()
        chain = _CHAINS[key] = dispatch.Chain(s.steps, name="einsum")
    return chain


# ------------------------------------------------------------------ the public function
def _sublist_equation(args):
    """``(equation, operands)`` of the sublist form ``(a, [0, 1], b, [1, 2], [0, 2])``."""
    def term(sub):
        out = []
        for n in sub:
            if n is Ellipsis:
                out.append("...")
            elif isinstance(n, int) and 0 <= n < 26:
                out.append(chr(ord("A") + n))
            elif isinstance(n, int) and 26 <= n < 52:
                out.append(chr(ord("a") + n - 26))
            else:
                raise ValueError(f"einsum(): subscript in subscript list is not within the valid "
                                 f"range [0, 52), got {n!r}")
        return "".join(out)
    operands, terms = list(args[0::2]), [term(sub) for sub in args[1::2]]
    if len(args) % 2:  # an output sublist at the end
        return ",".join(terms[:len(operands) - 1]) + "->" + term(operands[-1]), operands[:-1]
    return ",".join(terms), operands


def einsum(*args):
    """Sum of products of the operands' elements over the subscripts the output lacks,
    as ``torch.einsum(equation, *operands)``.

    >>> import lucid
    >>> x, y = lucid.tensor([[1.0, 2.0], [3.0, 4.0]]), lucid.tensor([1.0, -1.0])
    >>> lucid.einsum("ij,j->i", x, y).tolist(), lucid.einsum("ij->ji", x).tolist()
    ([-1.0, -1.0], [[1.0, 3.0], [2.0, 4.0]])
    >>> lucid.einsum("...j,j", x, y).tolist(), lucid.einsum(x, [0, 1], y, [1]).tolist()
    ([-1.0, -1.0], [-1.0, -1.0])
    """
    if not args or (isinstance(args[0], str) and len(args) < 2):
        raise ValueError("einsum(): must specify the equation string and at least one operand, or "
                         "at least one operand and its subscripts list")
    equation, operands = args[0], list(args[1:])
    if not isinstance(equation, str):
        if type(equation) not in dispatch._TENSOR_TYPES:
            raise TypeError(f"einsum(): argument 'equation' must be str, not {type(equation).__name__}")
        equation, operands = _sublist_equation(args)
    elif len(operands) == 1 and isinstance(operands[0], (list, tuple)):
        operands = list(operands[0])
    xs = [dispatch.as_tensor(o) for o in operands]
    dtypes = sorted({str(x.dtype) for x in xs})
    if len(dtypes) > 1:
        raise RuntimeError(f"einsum(): expected operands of one dtype, got {' and '.join(dtypes)} "
                           f"(cast them to one dtype first)")
    dtype = dtypes[0] if dtypes else "float32"
    if dtype == "bool":
        raise NotImplementedError("einsum(): not implemented for bool operands (as PyTorch's bmm)")
    shapes = tuple(tuple(x.shape) for x in xs)
    key = (equation, shapes, dtype)
    chain = _CHAINS.get(key)
    if chain is None:
        terms, output = parse(equation, shapes)
        chain = _chain(key, terms, output, shapes, dtype not in ("float32", "float64"), dtype)
    return dispatch.call(chain, xs)
