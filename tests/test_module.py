"""``lucid.nn.Module``, the containers and ``lucid.nn.init`` against PyTorch: the same
model-building code runs on both libraries (``lib`` is ``torch`` or ``lucid``), and names,
order, state_dict keys and values, repr strings, errors and hooks must agree."""
import math
import re
from collections import OrderedDict

import numpy as np
import pytest
import torch

import lucid
import lucid.nn as nn


def both(build):
    """``build(lib)`` for torch and lucid."""
    return build(torch), build(lucid)


def as_lucid_text(text: str) -> str:
    """torch's message in lucid's words."""
    return text.replace("torch.Size", "lucid.Size").replace("torch.nn.", "lucid.nn.").replace(
        "torch.float", "lucid.float").replace("torch Tensor", "lucid Tensor").replace(
        "torch.Tensor", "lucid.Tensor")


def copy_weights(src, dst):
    """torch module ``src``'s parameters and buffers into lucid module ``dst`` (by name)."""
    dst.load_state_dict({k: v.detach().numpy() for k, v in src.state_dict().items()})


def error_of(fn):
    try:
        fn()
    except Exception as exc:  # noqa: BLE001 - the point is to compare
        return type(exc), str(exc)
    return None


# ------------------------------------------------------------------ equivalent models
def nested(lib):
    nn_ = lib.nn

    class Block(nn_.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn_.Linear(3, 4)
            self.register_buffer("running", lib.zeros(4))
            self.register_buffer("scratch", lib.ones(2), persistent=False)
            self.scale = nn_.Parameter(lib.ones(1))
            self.register_parameter("unused", None)
            self.act = nn_.Tanh()

        def forward(self, x):
            return self.act(self.fc(x)) * self.scale + self.running

    class Net(nn_.Module):
        def __init__(self):
            super().__init__()
            self.first = Block()
            self.shared = nn_.Linear(4, 4)
            self.body = nn_.Sequential(self.shared, nn_.ReLU(), self.shared)  # shared twice
            self.heads = nn_.ModuleDict({"b": nn_.Linear(4, 2), "a": nn_.Linear(4, 1)})
            self.extra = nn_.ParameterList([nn_.Parameter(lib.zeros(2, 2))])
            self.empty = None

        def forward(self, x):
            h = self.body(self.first(x))
            return self.heads["b"](h)

    return Net()


def test_names_and_order_match_torch():
    t, l = both(nested)
    for method in ("named_parameters", "named_buffers", "named_modules", "named_children"):
        assert [n for n, _ in getattr(l, method)()] == [n for n, _ in getattr(t, method)()], method
    for kw in (dict(remove_duplicate=False), dict(prefix="net"), dict(recurse=False)):
        assert [n for n, _ in l.named_parameters(**kw)] == [n for n, _ in t.named_parameters(**kw)]
    assert [n for n, _ in l.named_modules(remove_duplicate=False)] == \
        [n for n, _ in t.named_modules(remove_duplicate=False)]
    assert len(list(l.parameters())) == len(list(t.parameters()))
    assert len(list(l.buffers())) == len(list(t.buffers())) == 2
    assert [type(m).__name__ for m in l.children()] == [type(m).__name__ for m in t.children()]
    assert [type(m).__name__ for m in l.modules()] == [type(m).__name__ for m in t.modules()]


def test_state_dict_keys_values_and_memory_match_torch():
    t, l = both(nested)
    copy_weights(t, l)
    ts, ls = t.state_dict(), l.state_dict()
    assert list(ls) == list(ts) and isinstance(ls, OrderedDict)
    for k in ts:
        np.testing.assert_array_equal(ls[k].numpy(), ts[k].numpy())
        assert type(ls[k]) is lucid.Tensor and not ls[k].requires_grad
    assert ls._metadata[""] == {"version": 1} and "first.fc" in ls._metadata
    ls["first.fc.weight"].numpy()[0, 0] = 42.0  # shares memory, as torch's
    assert l.first.fc.weight.numpy()[0, 0] == 42.0
    kept = l.state_dict(keep_vars=True)
    assert kept["first.fc.weight"] is l.first.fc.weight
    assert list(l.state_dict(prefix="m.")) == list(t.state_dict(prefix="m."))
    into = OrderedDict(start=1)
    assert l.state_dict(into, "p.") is into and list(into)[:2] == ["start", "p.first.scale"]
    x = np.random.default_rng(0).standard_normal((5, 3)).astype(np.float32)
    copy_weights(t, l)
    np.testing.assert_allclose(l(lucid.tensor(x)).numpy(), t(torch.tensor(x)).detach().numpy(), rtol=1e-5)


def test_load_state_dict_in_place_from_numpy_torch_and_lucid():
    t, l = both(lambda lib: lib.nn.Linear(3, 2))
    weight_array = l.weight._data
    result = l.load_state_dict(t.state_dict())  # torch tensors
    assert repr(result) == "<All keys matched successfully>" and result.missing_keys == []
    assert l.weight._data is weight_array
    np.testing.assert_array_equal(l.weight.numpy(), t.weight.detach().numpy())
    l.load_state_dict({"weight": np.ones((2, 3)), "bias": lucid.zeros(2, dtype=lucid.float64)})
    assert l.weight._data is weight_array and l.weight.dtype == lucid.float32
    assert l.weight.numpy().tolist() == [[1.0] * 3] * 2 and l.bias.numpy().tolist() == [0.0, 0.0]
    t.weight.requires_grad_(True)
    l.load_state_dict({"weight": t.weight, "bias": t.bias})  # tensors that require grad


def test_load_state_dict_errors_match_torch():
    t, l = both(lambda lib: lib.nn.Sequential(lib.nn.Linear(3, 2), lib.nn.ReLU(), lib.nn.Linear(2, 1)))
    bad = {"0.weight": np.zeros((2, 3)), "0.bias": np.zeros(3), "2.bias": np.zeros(1),
           "2.extra": np.zeros(1), "5.weight": np.zeros(1), "x": np.zeros(1)}
    expected = error_of(lambda: t.load_state_dict({k: torch.from_numpy(v) for k, v in bad.items()}))
    got = error_of(lambda: l.load_state_dict(bad))
    assert got[0] is expected[0] is RuntimeError
    assert got[1] == as_lucid_text(expected[1])
    lenient = {k: v for k, v in bad.items() if k != "0.bias"}
    r_t = t.load_state_dict({k: torch.from_numpy(v) for k, v in lenient.items()}, strict=False)
    r_l = l.load_state_dict(lenient, strict=False)
    assert (r_l.missing_keys, r_l.unexpected_keys) == (r_t.missing_keys, r_t.unexpected_keys)
    assert repr(r_l) == repr(r_t)
    with pytest.raises(TypeError, match="dict-like"):
        l.load_state_dict([1, 2])
    with pytest.raises(RuntimeError, match='While copying the parameter named "0.bias"'):
        l.load_state_dict({"0.bias": "not a tensor"}, strict=False)


def test_load_state_dict_assign_and_scalar_compatibility():
    l = nn.Linear(2, 1)
    new = lucid.tensor([[5.0, 6.0]])
    l.load_state_dict({"weight": new, "bias": lucid.tensor([1.0])}, assign=True)
    assert isinstance(l.weight, nn.Parameter) and l.weight.requires_grad
    assert l.weight._data is new._data and dict(l.named_parameters())["weight"] is l.weight
    m = nn.Module()
    m.register_buffer("step", lucid.tensor(0.0))
    m.load_state_dict({"step": np.array([3.0])})  # 1-element into 0-d, as torch allows
    assert m.step.item() == 3.0


def test_load_state_dict_is_seen_by_compiled_functions():
    model = nn.Linear(3, 2)
    forward = lucid.compile(lambda x: model(x))
    x = lucid.ones(1, 3)
    forward(x)
    model.load_state_dict({"weight": np.ones((2, 3)), "bias": np.full(2, 0.5)})
    np.testing.assert_allclose(forward(x).numpy(), [[3.5, 3.5]])


def test_extra_state_round_trip():
    class Counter(nn.Module):
        def __init__(self):
            super().__init__()
            self.count = 0

        def get_extra_state(self):
            return {"count": self.count}

        def set_extra_state(self, state):
            self.count = state["count"]

    a, b = Counter(), Counter()
    a.count = 7
    assert list(a.state_dict()) == ["_extra_state"]
    b.load_state_dict(a.state_dict())
    assert b.count == 7
    with pytest.raises(RuntimeError, match='Missing key\\(s\\) in state_dict: "_extra_state"'):
        b.load_state_dict({})


# ------------------------------------------------------------------ attribute semantics
def test_setattr_rules_match_torch():
    for assign in [lambda lib, m: setattr(m, "weight", lib.zeros(2, 3)),
                   lambda lib, m: setattr(m, "weight", 3),
                   lambda lib, m: setattr(m, "sub", lib.nn.ReLU()) or setattr(m, "sub", 3),
                   lambda lib, m: m.register_buffer("buf", lib.zeros(1)) or setattr(m, "buf", 3),
                   lambda lib, m: m.register_buffer("weight", lib.zeros(1)),
                   lambda lib, m: m.register_parameter("a.b", None),
                   lambda lib, m: m.register_parameter("", None),
                   lambda lib, m: m.register_parameter(3, None),
                   lambda lib, m: m.register_parameter("p", lib.zeros(1)),
                   lambda lib, m: m.register_buffer("b", 3),
                   lambda lib, m: m.register_buffer("a.b", None),
                   lambda lib, m: m.add_module("x.y", lib.nn.ReLU()),
                   lambda lib, m: m.add_module("w", 3),
                   lambda lib, m: m.add_module("in_features", lib.nn.ReLU()),
                   lambda lib, m: m.missing]:
        expected = error_of(lambda: assign(torch, torch.nn.Linear(3, 2)))
        got = error_of(lambda: assign(lucid, nn.Linear(3, 2)))
        assert got[0] is expected[0], (got, expected)
        exp_text = re.sub(r"'torch\.\w+Tensor'", "'lucid.Tensor'", as_lucid_text(expected[1]))
        assert got[1] == exp_text, (got, expected)


def test_assignments_update_registries():
    m = nn.Linear(3, 2)
    m.register_buffer("buf", lucid.zeros(2))
    new = lucid.ones(2)
    m.buf = new  # a plain tensor to a buffer's name: the buffer
    assert m._buffers["buf"] is new and dict(m.named_buffers())["buf"] is new
    m.bias = None
    assert "bias" in m._parameters and m.bias is None and [n for n, _ in m.named_parameters()] == ["weight"]
    m.weight = nn.Parameter(lucid.zeros(2, 3))
    assert dict(m.named_parameters())["weight"] is m.weight
    m.sub = nn.ReLU()
    m.sub = nn.Tanh()
    assert list(m._modules) == ["sub"] and isinstance(m.sub, nn.Tanh)
    del m.sub, m.buf, m.weight
    assert not m._modules and not m._buffers and "weight" not in m._parameters
    with pytest.raises(AttributeError, match="'Linear' object has no attribute 'sub'"):
        _ = m.sub
    m.plain = 3
    assert m.plain == 3 and "plain" not in m._parameters
    m.steps = nn.Buffer(lucid.zeros(1), persistent=False)
    assert "steps" in m._buffers and "steps" not in m.state_dict() and type(m.steps) is lucid.Tensor
    assert "weight" not in dir(m) and "buf" not in dir(m) and "in_features" in dir(m) and "forward" in dir(m)


def test_super_init_required():
    class Bad(nn.Module):
        def __init__(self):
            self.p = nn.Parameter(lucid.zeros(1))

    with pytest.raises(AttributeError, match="before Module.__init__"):
        Bad()


def test_get_submodule_parameter_buffer_match_torch():
    t, l = both(nested)
    assert type(l.get_submodule("first.fc")).__name__ == "Linear" and l.get_submodule("") is l
    assert l.get_parameter("first.fc.weight") is l.first.fc.weight
    assert l.get_buffer("first.running") is l.first.running
    for target in ("first.nothing", "first.fc.weight.x", "first.running"):
        assert error_of(lambda: l.get_submodule(target)) == error_of(lambda: t.get_submodule(target))
    for target in ("first.act", "first.fc.nothing", "first.running"):
        assert error_of(lambda: l.get_parameter(target)) == error_of(lambda: t.get_parameter(target))


# ------------------------------------------------------------------ repr
def custom(lib):
    class Scaled(lib.nn.Module):
        def __init__(self):
            super().__init__()
            self.inner = lib.nn.Sequential(lib.nn.Linear(2, 2), lib.nn.Identity())

        def extra_repr(self):
            return "factor=2\nmode='x'"

    return Scaled()


@pytest.mark.parametrize("build", [
    lambda lib: lib.nn.Linear(3, 2, bias=False),
    lambda lib: lib.nn.Sequential(lib.nn.Flatten(), lib.nn.Unflatten(1, (2, 5)), lib.nn.Identity(),
                                  lib.nn.Bilinear(2, 3, 4), lib.nn.Sequential(lib.nn.Tanh())),
    lambda lib: lib.nn.Sequential(OrderedDict(fc=lib.nn.Linear(2, 2), act=lib.nn.ReLU())),
    lambda lib: lib.nn.ModuleList([lib.nn.Linear(2, 2), lib.nn.Linear(2, 2), lib.nn.ReLU(),
                                   lib.nn.Linear(2, 2)]),
    lambda lib: lib.nn.ModuleList(),
    lambda lib: lib.nn.ModuleDict({"b": lib.nn.ReLU(), "a": lib.nn.Flatten(0)}),
    lambda lib: lib.nn.ParameterList([lib.nn.Parameter(lib.zeros(2, 3)), lib.zeros(4)]),
    custom,
    nested,
])
def test_repr_matches_torch(build):
    t, l = both(build)
    assert repr(l) == as_lucid_text(repr(t)).replace("Net", "Net")


def test_parameter_repr_and_construction():
    p = nn.Parameter(lucid.tensor([1.0, 2.0]))
    assert repr(p) == "Parameter containing:\n" + repr(lucid.tensor([1.0, 2.0]))
    assert nn.Parameter().shape == (0,) and nn.Parameter().requires_grad
    base = lucid.zeros(3)
    shared = nn.Parameter(base)
    shared.data.fill_(2.0)
    assert base.tolist() == [2.0, 2.0, 2.0]
    assert not nn.Parameter(lucid.zeros(2), requires_grad=False).requires_grad


# ------------------------------------------------------------------ containers
def apply_ops(lib, ops):
    seq = lib.nn.Sequential(*[lib.nn.Linear(i + 1, i + 1) for i in range(5)])
    for op in ops:
        op(lib, seq)
    return [n for n, _ in seq.named_parameters()], [m.in_features for m in seq]


@pytest.mark.parametrize("ops", [
    [lambda lib, s: s.append(lib.nn.Linear(9, 9))],
    [lambda lib, s: s.insert(1, lib.nn.Linear(9, 9))],
    [lambda lib, s: s.insert(-2, lib.nn.Linear(9, 9))],
    [lambda lib, s: s.__delitem__(1)],
    [lambda lib, s: s.__delitem__(slice(1, 4, 2))],
    [lambda lib, s: s.pop(-1), lambda lib, s: s.extend([lib.nn.Linear(7, 7)])],
    [lambda lib, s: s.__setitem__(-1, lib.nn.Linear(8, 8))],
])
def test_sequential_edits_match_torch(ops):
    assert apply_ops(lucid, ops) == apply_ops(torch, ops)


def test_sequential_indexing():
    t, l = both(lambda lib: lib.nn.Sequential(*[lib.nn.Linear(i + 1, 2) for i in range(4)]))
    assert l[-1].in_features == 4 and isinstance(l[1:3], nn.Sequential) and len(l[1:3]) == 2
    assert [m.in_features for m in l[::-1]] == [m.in_features for m in t[::-1]]
    assert error_of(lambda: l[4]) == error_of(lambda: t[4])
    assert error_of(lambda: l[-5]) == error_of(lambda: t[-5])
    assert error_of(lambda: l.insert(9, nn.ReLU())) == error_of(lambda: t.insert(9, torch.nn.ReLU()))
    assert error_of(lambda: nn.Sequential(nn.ReLU(), 3)) == error_of(lambda: torch.nn.Sequential(torch.nn.ReLU(), 3))
    assert len(l + l) == 8 and len(l * 2) == 8
    named = nn.Sequential(OrderedDict(fc=nn.Linear(2, 2), act=nn.ReLU()))
    assert [n for n, _ in named.named_children()] == ["fc", "act"] and named.fc is named[0]
    assert "0" not in dir(l)


def test_module_list_and_dict_match_torch():
    def lists(lib):
        ml = lib.nn.ModuleList([lib.nn.Linear(1, 1), lib.nn.Linear(2, 2)])
        ml.append(lib.nn.Linear(3, 3))
        ml.insert(0, lib.nn.Linear(4, 4))
        ml.extend([lib.nn.Linear(5, 5)])
        ml += [lib.nn.Linear(6, 6)]
        del ml[1]
        ml[-1] = lib.nn.Linear(7, 7)
        popped = ml.pop(0)
        both_lists = ml + lib.nn.ModuleList([lib.nn.ReLU()])
        return ([n for n, _ in ml.named_parameters()], [m.in_features for m in ml], popped.in_features,
                len(both_lists), [m.in_features for m in ml[1:]])

    assert lists(lucid) == lists(torch)

    def dicts(lib):
        md = lib.nn.ModuleDict({"z": lib.nn.Linear(1, 1)})
        md.update([("a", lib.nn.Linear(2, 2))])
        md["m"] = lib.nn.Linear(3, 3)
        md.update({"z": lib.nn.Linear(4, 4)})
        out = md.pop("a").in_features
        return list(md), out, "m" in md, len(md), [n for n, _ in md.named_parameters()], list(md.keys())

    assert dicts(lucid) == dicts(torch)
    for bad in (3, [("a",)], [3]):
        e_l, e_t = error_of(lambda: nn.ModuleDict(bad)), error_of(lambda: torch.nn.ModuleDict(bad))
        assert e_l[0] is e_t[0], (e_l, e_t)
    assert error_of(lambda: nn.ModuleList(3))[0] is TypeError


def test_parameter_list_and_dict():
    def build(lib):
        pl = lib.nn.ParameterList([lib.zeros(2), lib.nn.Parameter(lib.ones(3))])
        pl.append(lib.zeros(1))
        pl.extend([lib.zeros(4)])
        pd = lib.nn.ParameterDict({"w": lib.zeros(2)})
        pd["b"] = lib.ones(1)
        pd.update([("c", lib.zeros(3))])
        out = pd.pop("w").shape[0]
        return ([n for n, _ in pl.named_parameters()], all(isinstance(p, lib.nn.Parameter) for p in pl),
                len(pl), [tuple(p.shape) for p in pl[1:3]], list(pd), out, "b" in pd,
                [n for n, _ in pd.named_parameters()], pd.get("zz", 5))

    assert build(lucid) == build(torch)
    with pytest.raises(RuntimeError, match="ParameterList should not be called"):
        nn.ParameterList()()
    pd = nn.ParameterDict({"a": lucid.zeros(2)})
    assert repr(pd) == "ParameterDict(  (a): Parameter containing: [lucid.float32 of size 2])"


# ------------------------------------------------------------------ hooks, modes, conversion
def test_forward_hooks_match_torch():
    def run(lib):
        log = []
        m = lib.nn.Linear(2, 2)
        h1 = m.register_forward_pre_hook(lambda mod, args: log.append("pre") or (args[0] * 2,))
        h2 = m.register_forward_hook(lambda mod, args, out: log.append("post") or out + 1)
        h3 = m.register_forward_hook(lambda mod, args, out: log.append("first"), prepend=True)
        m.register_forward_pre_hook(lambda mod, args, kwargs: log.append("kw") or (args, kwargs),
                                    with_kwargs=True)
        with torch.no_grad() if lib is torch else lucid.no_grad():
            m.weight.copy_(lib.ones(2, 2))
            m.bias.zero_()
        a = m(lib.ones(1, 2)).tolist()
        h1.remove(), h2.remove(), h3.remove()
        b = m(lib.ones(1, 2)).tolist()
        return log, a, b

    assert run(lucid) == run(torch)


def test_always_call_hook_and_handle_context():
    m = nn.Linear(2, 2)
    seen = []
    m.register_forward_hook(lambda mod, args, out: seen.append(out), always_call=True)
    with pytest.raises(ValueError):
        m(lucid.zeros(3, 5))
    assert seen == [None]
    with m.register_forward_hook(lambda mod, args, out: out * 0):
        assert m(lucid.ones(1, 2)).abs().sum().item() == 0
    assert m(lucid.ones(1, 2)).abs().sum().item() > 0


def test_train_eval_apply_requires_grad_zero_grad():
    class Recorder(nn.Module):
        calls = []

        def train(self, mode=True):
            Recorder.calls.append(mode)
            return super().train(mode)

        def forward(self, x):
            return x

    model = nn.Sequential(nn.Linear(2, 2), Recorder())
    assert model.eval() is model and not model.training and not model[0].training
    assert Recorder.calls == [False]
    model.train()
    assert model[0].training and Recorder.calls == [False, True]
    with pytest.raises(ValueError, match="boolean"):
        model.train("yes")
    visited = []
    model.apply(lambda m: visited.append(type(m).__name__))
    assert visited == ["Linear", "Recorder", "Sequential"]
    model.requires_grad_(False)
    assert not any(p.requires_grad for p in model.parameters())
    model.requires_grad_()
    model(lucid.ones(1, 2)).sum().backward()
    model.zero_grad(set_to_none=False)
    assert all(p.grad is not None and not np.asarray(p.grad).any() for p in model.parameters())
    model.zero_grad()
    assert all(p.grad is None for p in model.parameters())


def test_to_float_double_and_unsupported():
    m = nn.Linear(2, 3)
    m.register_buffer("count", lucid.tensor([1, 2]))
    weight = m.weight
    assert m.double() is m and m.weight is weight and m.weight.dtype == lucid.float64
    assert m.bias.dtype == lucid.float64 and m.count.dtype == lucid.int64
    assert m(lucid.ones(1, 2, dtype=lucid.float64)).dtype == lucid.float64
    assert m.to(lucid.float32).weight.dtype == lucid.float32 and m.to("cpu") is m
    assert m.to(device="cpu", dtype=lucid.float64).weight.dtype == lucid.float64
    assert m.float().weight.dtype == lucid.float32 and m.cpu() is m
    with pytest.raises(TypeError, match="only accepts floating point"):
        m.to(lucid.int64)
    with pytest.raises(TypeError, match="float16"):
        m.half()
    with pytest.raises(ValueError, match="CPU only"):
        m.to("cuda")


def test_linear_and_bilinear_init_and_factory_kwargs():
    lucid.manual_seed(0)
    layer = nn.Linear(400, 300, dtype=lucid.float64)
    bound = 1 / math.sqrt(400)
    w = layer.weight.numpy()
    assert layer.weight.dtype == lucid.float64 and np.abs(w).max() <= bound
    assert abs(w.std() - bound / math.sqrt(3)) < 0.02 * bound and abs(w.mean()) < 0.01 * bound
    assert np.abs(layer.bias.numpy()).max() <= bound and layer.bias.numpy().std() > 0.4 * bound
    assert nn.Linear(2, 2, bias=False).bias is None and "bias" in nn.Linear(2, 2, bias=False)._parameters
    b = nn.Bilinear(50, 3, 4)
    assert b.weight.shape == (4, 50, 3) and np.abs(b.weight.numpy()).max() <= 1 / math.sqrt(50)
    assert [n for n, _ in b.named_parameters()] == ["weight", "bias"]
    t = torch.nn.Bilinear(5, 3, 4)
    lb = nn.Bilinear(5, 3, 4)
    copy_weights(t, lb)
    x1, x2 = np.random.default_rng(0).standard_normal((2, 6, 5)), np.random.default_rng(1).standard_normal((6, 3))
    np.testing.assert_allclose(lb(lucid.tensor(x1[0], dtype=lucid.float32), lucid.tensor(x2, dtype=lucid.float32)).numpy(),
                               t(torch.tensor(x1[0], dtype=torch.float32), torch.tensor(x2, dtype=torch.float32)).detach().numpy(),
                               rtol=1e-5, atol=1e-6)
    assert error_of(lambda: lb(lucid.zeros(2, 4), lucid.zeros(2, 3))) == \
        error_of(lambda: t(torch.zeros(2, 4), torch.zeros(2, 3)))


def test_unflatten_errors():
    with pytest.raises(RuntimeError, match="don't multiply up"):
        nn.Unflatten(1, (4, 2))(lucid.zeros(2, 6))
    with pytest.raises(TypeError, match="tuple of ints"):
        nn.Unflatten(1, 6)
    assert nn.Flatten(0)(lucid.zeros(2, 3)).shape == (6,)


# ------------------------------------------------------------------ init
def test_calculate_gain_and_fans_match_torch():
    for args in [("linear",), ("conv2d",), ("sigmoid",), ("tanh",), ("relu",), ("leaky_relu",),
                 ("leaky_relu", 0.2), ("leaky_relu", 3), ("selu",)]:
        assert nn.init.calculate_gain(*args) == pytest.approx(torch.nn.init.calculate_gain(*args))
    for args in [("gelu",), ("leaky_relu", True), ("leaky_relu", "x")]:
        assert error_of(lambda: nn.init.calculate_gain(*args)) == \
            error_of(lambda: torch.nn.init.calculate_gain(*args))
    for shape in [(3, 4), (5, 2, 3, 3), (7, 1, 2)]:
        assert nn.init._calculate_fan_in_and_fan_out(lucid.zeros(*shape)) == \
            torch.nn.init._calculate_fan_in_and_fan_out(torch.zeros(*shape))
    assert error_of(lambda: nn.init._calculate_fan_in_and_fan_out(lucid.zeros(3))) == \
        error_of(lambda: torch.nn.init._calculate_fan_in_and_fan_out(torch.zeros(3)))
    assert error_of(lambda: nn.init.kaiming_uniform_(lucid.zeros(3, 3), mode="x")) == \
        error_of(lambda: torch.nn.init.kaiming_uniform_(torch.zeros(3, 3), mode="x"))
    for fn in ("eye_", "orthogonal_"):
        assert error_of(lambda: getattr(nn.init, fn)(lucid.zeros(3))) == \
            error_of(lambda: getattr(torch.nn.init, fn)(torch.zeros(3)))


@pytest.mark.parametrize("name, kwargs, std", [
    ("uniform_", dict(a=-2.0, b=4.0), 6 / math.sqrt(12)),
    ("normal_", dict(mean=1.5, std=0.3), 0.3),
    ("xavier_uniform_", dict(gain=2.0), 2.0 * math.sqrt(2 / (200 + 100))),
    ("xavier_normal_", dict(), math.sqrt(2 / (200 + 100))),
    ("kaiming_uniform_", dict(nonlinearity="relu"), math.sqrt(2 / 200)),
    ("kaiming_normal_", dict(mode="fan_out", nonlinearity="relu"), math.sqrt(2 / 100)),
    ("kaiming_uniform_", dict(a=math.sqrt(5)), 1 / math.sqrt(3 * 200)),
    ("trunc_normal_", dict(std=1.0, a=-1.0, b=2.0), None),
])
def test_init_statistics(name, kwargs, std):
    g = lucid.Generator().manual_seed(0)
    w = nn.Parameter(lucid.empty(100, 200, dtype=lucid.float64))
    out = getattr(nn.init, name)(w, **kwargs, generator=g)
    assert out is w and w.requires_grad
    data = w.numpy()
    if name == "trunc_normal_":
        ref = torch.nn.init.trunc_normal_(torch.empty(200, 500, dtype=torch.float64), **kwargs).numpy()
        assert data.min() >= -1.0 and data.max() <= 2.0
        assert abs(data.mean() - ref.mean()) < 0.02 and abs(data.std() - ref.std()) < 0.02
        return
    assert abs(data.std() - std) < 0.03 * std
    if "uniform" in name:
        bound = kwargs.get("b", math.sqrt(3) * std)
        assert data.max() <= bound and data.max() > 0.99 * bound
    again = getattr(nn.init, name)(lucid.empty(100, 200, dtype=lucid.float64), **kwargs,
                                   generator=lucid.Generator().manual_seed(0))
    np.testing.assert_array_equal(again.numpy(), data)  # the generator reproduces the draw


def test_deterministic_inits():
    w = lucid.empty(3, 4)
    assert nn.init.eye_(w).tolist() == np.eye(3, 4).tolist()
    assert nn.init.constant_(w, 2.5).tolist() == [[2.5] * 4] * 3
    assert nn.init.zeros_(w).sum().item() == 0 and nn.init.ones_(w).sum().item() == 12
    q = nn.init.orthogonal_(lucid.empty(4, 6, dtype=lucid.float64), gain=2.0).numpy()
    np.testing.assert_allclose(q @ q.T, 4 * np.eye(4), atol=1e-12)
    d = nn.init.dirac_(lucid.empty(2, 2, 3, 3)).numpy()
    expected = torch.nn.init.dirac_(torch.empty(2, 2, 3, 3)).numpy()
    np.testing.assert_array_equal(d, expected)
    with pytest.warns(UserWarning, match="zero-element"):
        nn.init.kaiming_uniform_(lucid.empty(0, 3))


def test_tensor_data_and_in_place_sampling():
    p = nn.Parameter(lucid.zeros(1000))
    view = p.data
    assert type(view) is lucid.Tensor and not view.requires_grad and view._data is p._data
    p.data.normal_(0.0, 2.0, generator=lucid.Generator().manual_seed(1))
    assert abs(p.numpy().std() - 2.0) < 0.15
    p.data.copy_(lucid.ones(1000))
    assert p.numpy().sum() == 1000
    p.data = lucid.zeros(3)
    assert p.shape == (3,) and p.requires_grad
    with pytest.raises(RuntimeError, match="leaf Variable"):
        p.uniform_()  # grad mode on, as torch
    with pytest.raises(RuntimeError, match="std >= 0"):
        lucid.zeros(2).normal_(0, -1)
    with pytest.raises(NotImplementedError, match="int64"):
        lucid.zeros(2, dtype=lucid.int64).uniform_()
    u = lucid.empty(10000).uniform_(-1.0, 1.0)
    assert u.numpy().min() >= -1.0 and u.numpy().max() < 1.0


def test_full_backward_hooks_match_torch():
    def run(lib):
        class Two(lib.nn.Module):
            def forward(self, a, scale, b):
                return a * b * scale, (a + b).sum()

        log = []
        m = Two()
        m.register_full_backward_pre_hook(
            lambda mod, go: log.append(("pre", [None if g is None else g.tolist() for g in go])) or (go[0] * 2, go[1]))
        handle = m.register_full_backward_hook(
            lambda mod, gi, go: log.append(("hook", [None if g is None else g.tolist() for g in gi])) or
            (gi[0] * 10, gi[1], gi[2]))
        a = lib.tensor([1.0, 2.0], requires_grad=True)
        b = lib.tensor([3.0, 4.0], requires_grad=True)
        out, total = m(a, 2.0, b)
        (out.sum() + 3 * total).backward()
        grads = np.asarray(a.grad).tolist(), np.asarray(b.grad).tolist()
        handle.remove()
        leaf = lib.nn.Linear(2, 1)
        seen = []
        leaf.register_full_backward_hook(lambda mod, gi, go: seen.append((gi, go[0].tolist())))
        leaf(lib.ones(3, 2)).sum().backward()  # no input requires grad: grad_input is (None,)
        return log, grads, seen

    assert run(lucid) == run(torch)
