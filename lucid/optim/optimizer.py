"""The optimiser base, as ``torch.optim.Optimizer``: parameter groups with their own
options, per-parameter ``state``, ``state_dict()``/``load_state_dict()`` in PyTorch's
layout, ``zero_grad(set_to_none=True)`` and ``step(closure=None)``.

``step()`` runs eagerly (one fused native kernel per parameter, ``update``) or, inside
a function being compiled by ``lucid.compile``, adds the same update to the traced
graph (``traced_update``): the compiled training step then writes the parameters and
the optimiser's state in place at every call, and reads the learning rate (and every
other option that is a number) at every call, so a schedule never retraces. Options
that change which state exists (``momentum`` turned on, ``amsgrad``, ``centered``)
retrace.

>>> import lucid
>>> w, b = lucid.Tensor([1.0], requires_grad=True), lucid.Tensor([2.0], requires_grad=True)
>>> opt = lucid.optim.SGD([{"params": [w]}, {"params": [b], "lr": 0.5}], lr=0.1)
>>> [g["lr"] for g in opt.param_groups]
[0.1, 0.5]
>>> (w * b).sum().backward()
>>> opt.step()
>>> [round(v, 4) for v in w.tolist() + b.tolist()]
[0.8, 1.5]
>>> opt.state_dict()["param_groups"][1]["params"]
[1]
"""
from __future__ import annotations

from collections import defaultdict

import numpy as np

from .. import dispatch, tracing
from ..grad_mode import enable_grad, no_grad
from ..tensor import Tensor


class Optimizer:
    """Base class: ``params`` is an iterable of tensors or of dicts (parameter groups,
    each with ``"params"`` and any options overriding ``defaults``)."""

    def __init__(self, params, defaults: dict):
        name = type(self).__name__
        if isinstance(params, Tensor):
            raise TypeError(f"{name}: params should be an iterable of Tensors or dicts, but got a Tensor")
        self.defaults = dict(defaults)
        self.state: defaultdict = defaultdict(dict)   # parameter -> its state, as PyTorch
        self.param_groups: list[dict] = []
        self._runtime: dict = {}   # parameter -> kernels prepared for it, first-step flags
        groups = list(params)
        if not groups:
            raise ValueError(f"{name}: got an empty parameter list")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        for group in groups:
            self.add_param_group(group)

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__} ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            lines += [f"    {k}: {v}" for k, v in sorted(group.items()) if k != "params"]
        return "\n".join(lines + [")"])

    def add_param_group(self, param_group: dict) -> None:
        """Add a group of parameters with its own options (the others from ``defaults``)."""
        name = type(self).__name__
        if not isinstance(param_group, dict):
            raise TypeError(f"{name}: a parameter group must be a dict, got {type(param_group).__name__}")
        params = param_group["params"]
        params = [params] if isinstance(params, Tensor) else list(params)
        if isinstance(param_group["params"], set):
            raise TypeError(f"{name}: parameters must be an ordered collection, not a set")
        for i, p in enumerate(params):
            if not isinstance(p, Tensor):
                raise TypeError(f"{name}: can only optimize Tensors, parameter {i} is {type(p).__name__}")
            if not p.is_leaf or p._data is None:
                raise ValueError(f"{name}: can't optimize a non-leaf Tensor (parameter {i})")
            if p._data.dtype.kind != "f":
                raise TypeError(f"{name}: parameter {i} has dtype {p.dtype}; only floating tensors train")
        group = dict(param_group, params=params)
        for key, default in self.defaults.items():
            group.setdefault(key, default)
        self._check_options(group)
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        if len({id(p) for p in params}) != len(params) or seen & {id(p) for p in params}:
            raise ValueError(f"{name}: some parameters appear in more than one parameter group")
        self.param_groups.append(group)

    def _check_options(self, group: dict) -> None:
        """Raise ValueError for options out of range (each optimiser checks its own)."""
        if group["lr"] < 0:
            raise ValueError(f"{type(self).__name__}: invalid learning rate: {group['lr']}")

    # -- the update ---------------------------------------------------------------------
    def zero_grad(self, set_to_none: bool = True) -> None:
        """Forget every parameter's gradient (or set it to zeros in place)."""
        for group in self.param_groups:
            for p in group["params"]:
                if set_to_none:  # without reading .grad: a compiled step must not depend on it
                    p.grad = None
                    continue
                grad = p.grad
                if grad is None:
                    continue
                if grad._data is not None:  # eager: zero the stored array in place
                    grad._data.fill(0)
                else:
                    p.grad = grad * 0

    def step(self, closure=None):
        """One update of every parameter that has a gradient; ``closure`` (re-evaluating
        the model and returning the loss) runs first, with gradients on."""
        loss = None
        if closure is not None:
            with enable_grad():
                loss = closure()
        tracer = tracing.current()
        if tracer is not None:
            tracer.static(self.structure)
        for group in self.param_groups:
            if tracer is None:
                self._update_group(group)
                continue
            for p in group["params"]:
                grad = p.grad
                if grad is not None:
                    with no_grad():
                        self.traced_update(tracer, p, group, grad)
        return loss

    def _update_group(self, group: dict) -> None:
        """Eagerly, every parameter of ``group`` that has a gradient: those of one rule
        and dtype in one native call (PyTorch's ``foreach``), a lone one by its own."""
        batches: dict = {}
        for p in group["params"]:
            if p._grad is None:
                continue
            rule, buffers, scalars = self.rule(p, group)
            batches.setdefault((rule, p.dtype), []).append((p, buffers, scalars))
        for (rule, _), batch in batches.items():
            if len(batch) == 1:
                (p, buffers, scalars), = batch
                self._apply(rule, p, buffers, scalars, p._grad.astype(p.dtype, copy=False))
                continue
            rule.many([([p._data] + [b._data for b in buffers], [p._grad.astype(p.dtype, copy=False)], scalars())
                       for p, buffers, scalars in batch])

    def rule(self, p: Tensor, group: dict):
        """``(InPlaceRule, state tensors, scalars)`` of ``p``'s update: the rule updates
        ``p`` and the state tensors in place; ``scalars()`` gives this step's run-time
        scalars (read from ``group`` and ``p``'s state at call time; it advances the
        state's step counter)."""
        raise NotImplementedError

    def group_structure(self, group: dict):
        """What, in a group's options, decides which rule ``rule`` picks."""
        return None

    def structure(self):
        """What a compiled step was traced for (it retraces when this changes)."""
        return tuple((len(g["params"]), self.group_structure(g)) for g in self.param_groups)

    def update(self, p: Tensor, group: dict, grad: np.ndarray) -> None:
        """Update ``p`` (and its state) in place, eagerly: one fused native kernel."""
        rule, buffers, scalars = self.rule(p, group)
        self._apply(rule, p, buffers, scalars, grad)

    def _apply(self, rule, p: Tensor, buffers, scalars, grad: np.ndarray) -> None:
        rule([p._data] + [b._data for b in buffers], [grad], scalars(), self._prepared(p))

    def traced_update(self, tracer, p: Tensor, group: dict, grad: Tensor) -> None:
        """The same update inside a trace (the same rule: the same rounding as eager)."""
        rule, buffers, scalars = self.rule(p, group)
        rule.trace(tracer, [p] + buffers, [dispatch.cast(grad, p.dtype)], scalars)

    def _prepared(self, p: Tensor) -> dict:
        return self._runtime.setdefault(p, {}).setdefault("prepared", {})

    # -- state helpers for the subclasses -------------------------------------------------
    def buffer(self, p: Tensor, name: str, fill: float = 0.0) -> Tensor:
        """The state tensor ``name`` of ``p`` (``fill`` like ``p``, made on first use)."""
        state = self.state[p]
        buf = state.get(name)
        if buf is None:
            buf = state[name] = Tensor(np.full_like(p._data, fill))
        return buf

    def step_counter(self, p: Tensor) -> Tensor:
        """``p``'s count of steps taken (a 0-d float32 tensor, as PyTorch's ``state["step"]``)."""
        state = self.state[p]
        step = state.get("step")
        if not isinstance(step, Tensor):
            step = state["step"] = Tensor(np.asarray(step or 0, np.float32))
        return step

    def advance_step(self, p: Tensor) -> float:
        """Count one more step in ``p``'s state; the new count."""
        step = self.step_counter(p)
        count = float(step._data) + 1
        step._data[()] = count
        return count

    # -- saving and loading ----------------------------------------------------------------
    def state_dict(self) -> dict:
        """``{"state": {index: state}, "param_groups": [{..., "params": [indices]}]}``, the
        parameters numbered in group order, as PyTorch's (state tensors by reference)."""
        index, groups = {}, []
        for group in self.param_groups:
            packed = {k: v for k, v in group.items() if k != "params"}
            packed["params"] = [index.setdefault(p, len(index)) for p in group["params"]]
            groups.append(packed)
        state = {index[p]: dict(s) for p, s in self.state.items() if p in index}
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict) -> None:
        """Take the options and state of ``state_dict`` (from ``state_dict()``, here or
        from PyTorch). State tensors already present are overwritten in place, so a
        compiled step keeps working after a load."""
        name = type(self).__name__
        saved = state_dict["param_groups"]
        if len(saved) != len(self.param_groups):
            raise ValueError(f"{name}.load_state_dict: loaded state dict has {len(saved)} parameter "
                             f"groups, the optimizer has {len(self.param_groups)}")
        for i, (mine, theirs) in enumerate(zip(self.param_groups, saved)):
            if len(mine["params"]) != len(theirs["params"]):
                raise ValueError(f"{name}.load_state_dict: loaded parameter group {i} has "
                                 f"{len(theirs['params'])} parameters, the optimizer's has {len(mine['params'])}")
        by_index = {}
        for mine, theirs in zip(self.param_groups, saved):
            by_index.update(zip(theirs["params"], mine["params"]))
            mine.update({k: v for k, v in theirs.items() if k != "params"})
        for key, values in state_dict["state"].items():
            p = by_index.get(int(key))
            if p is None:
                continue
            self._load_param_state(p, values)

    def _load_param_state(self, p: Tensor, values: dict) -> None:
        state = self.state[p]
        for key, value in values.items():
            if value is None:
                state[key] = None
                continue
            arr = np.array(value.numpy() if hasattr(value, "numpy") else value)
            if key != "step" and arr.dtype.kind == "f":
                arr = arr.astype(p.dtype)
            elif key == "step":
                arr = arr.astype(np.float32)
            old = state.get(key)
            if isinstance(old, Tensor) and old._data.shape == arr.shape and old._data.dtype == arr.dtype:
                np.copyto(old._data, arr)  # in place: a compiled step holds this array
            else:
                state[key] = Tensor(arr)
        self._runtime.setdefault(p, {})["started"] = True
