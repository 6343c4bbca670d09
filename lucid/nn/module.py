"""``Module``: the base of layers, as PyTorch's ``torch.nn.Module``.

Assigning a ``Parameter``, a ``Module`` or (to a registered buffer's name, or as an
``nn.Buffer``) a tensor as an attribute registers it, in order, so ``parameters()``,
``state_dict()`` and ``repr`` see it. Registered members are also plain instance
attributes, so reading ``self.weight`` costs what reading any attribute costs.

>>> import lucid.nn as nn
>>> model = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
>>> [name for name, _ in model.named_parameters()]
['0.weight', '0.bias', '2.weight', '2.bias']
>>> model
Sequential(
  (0): Linear(in_features=4, out_features=3, bias=True)
  (1): ReLU()
  (2): Linear(in_features=3, out_features=2, bias=True)
)
"""
from __future__ import annotations

from collections import OrderedDict

from ..tensor import Tensor
from .hooks import HookMixin, new_hook_dicts
from .module_convert import ConvertMixin
from .module_state import StateMixin
from .parameter import Buffer, Parameter


def typename(value) -> str:
    """The type's name as PyTorch's error messages print it (``lucid.Tensor``, ``int``)."""
    if isinstance(value, Tensor):
        return "lucid.nn.Parameter" if isinstance(value, Parameter) else "lucid.Tensor"
    cls = type(value)
    module = cls.__module__
    return cls.__qualname__ if module in (None, "builtins") else f"{module}.{cls.__qualname__}"


def _check_name(kind: str, name) -> None:
    if not isinstance(name, str):
        raise TypeError(f"{kind} name should be a string. Got {typename(name)}")
    if "." in name:
        raise KeyError(f"{kind} name can't contain \".\"" + (f", got: {name}" if kind == "module" else ""))
    if name == "":
        raise KeyError(f"{kind} name can't be empty string \"\"")


def _add_indent(text: str, spaces: int) -> str:
    lines = text.split("\n")
    if len(lines) == 1:
        return text
    return lines[0] + "\n" + "\n".join(" " * spaces + line for line in lines[1:])


class Module(HookMixin, StateMixin, ConvertMixin):
    """The base class of every layer: subclasses call ``super().__init__()`` and
    define ``forward``; calling the module runs its hooks and ``forward``."""

    training: bool
    _version: int = 1

    def __init__(self, *args, **kwargs):
        if args or kwargs:
            raise TypeError(f"{type(self).__name__}.__init__() got unexpected arguments "
                            f"{args}, {kwargs}")
        d = self.__dict__
        d["training"] = True
        d["_parameters"] = OrderedDict()
        d["_buffers"] = OrderedDict()
        d["_non_persistent_buffers_set"] = set()
        d["_modules"] = OrderedDict()
        d.update(new_hook_dicts())

    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"Module [{type(self).__name__}] is missing the required "
                                  f"\"forward\" function")

    # -- registration ---------------------------------------------------------------
    def _initialised(self, what: str) -> None:
        if "_parameters" not in self.__dict__:
            raise AttributeError(f"cannot assign {what} before Module.__init__() call "
                                 f"({type(self).__name__}.__init__ must call super().__init__())")

    def register_parameter(self, name: str, param) -> None:
        """Add ``param`` (a ``Parameter`` or None) under ``name``."""
        self._initialised("parameter")
        _check_name("parameter", name)
        if name in self.__dict__ and name not in self._parameters or (
                name not in self.__dict__ and hasattr(type(self), name)):
            raise KeyError(f"attribute '{name}' already exists")
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(f"cannot assign '{typename(param)}' object to parameter '{name}' "
                            f"(lucid.nn.Parameter or None required)")
        if param is not None and not param.is_leaf:
            raise ValueError(f"Cannot assign non-leaf Tensor to parameter '{name}'. Model "
                             f"parameters must be created explicitly. To express '{name}' as a "
                             f"function of another Tensor, compute the value in the forward() method.")
        self._parameters[name] = param
        self.__dict__[name] = param

    def register_buffer(self, name: str, tensor, persistent: bool = True) -> None:
        """A tensor that is state but not a parameter (running statistics, class weights):
        in ``buffers()``, and in ``state_dict()`` unless ``persistent=False``."""
        self._initialised("buffer")
        _check_name("buffer", name)
        if name in self.__dict__ and name not in self._buffers or (
                name not in self.__dict__ and hasattr(type(self), name)):
            raise KeyError(f"attribute '{name}' already exists")
        if tensor is not None and not isinstance(tensor, Tensor):
            raise TypeError(f"cannot assign '{typename(tensor)}' object to buffer '{name}' "
                            f"(lucid Tensor or None required)")
        if isinstance(tensor, Buffer):
            tensor = tensor.as_tensor()
        self._buffers[name] = tensor
        (self._non_persistent_buffers_set.discard if persistent
         else self._non_persistent_buffers_set.add)(name)
        self.__dict__[name] = tensor

    def add_module(self, name: str, module) -> None:
        """Add the child ``module`` (or None) under ``name``."""
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"{typename(module)} is not a Module subclass")
        _check_name("module", name)
        if name in self.__dict__ and name not in self._modules or (
                name not in self.__dict__ and hasattr(type(self), name)):
            raise KeyError(f"attribute '{name}' already exists")
        self._modules[name] = module
        self.__dict__[name] = module

    register_module = add_module

    def _forget(self, name: str) -> None:
        """Drop ``name`` from every registry (before it is registered anew)."""
        d = self.__dict__
        d.pop(name, None)
        d["_parameters"].pop(name, None)
        d["_buffers"].pop(name, None)
        d["_modules"].pop(name, None)
        d["_non_persistent_buffers_set"].discard(name)

    def __setattr__(self, name: str, value) -> None:
        d = self.__dict__
        params = d.get("_parameters")
        if isinstance(value, Parameter):
            self._initialised("parameters")
            self._forget(name)
            self.register_parameter(name, value)
        elif params is not None and name in params:
            if value is not None:
                raise TypeError(f"cannot assign '{typename(value)}' as parameter '{name}' "
                                f"(lucid.nn.Parameter or None expected)")
            self.register_parameter(name, None)
        elif isinstance(value, Module):
            self._initialised("module")
            self._forget(name)
            self.add_module(name, value)
        elif params is not None and name in d["_modules"]:
            if value is not None:
                raise TypeError(f"cannot assign '{typename(value)}' as child module '{name}' "
                                f"(lucid.nn.Module or None expected)")
            self.add_module(name, None)
        elif isinstance(value, Buffer) or params is not None and name in d["_buffers"]:
            if value is not None and not isinstance(value, Tensor):
                raise TypeError(f"cannot assign '{typename(value)}' as buffer '{name}' "
                                f"(lucid.nn.Buffer, lucid.Tensor or None expected)")
            self._initialised("buffer")
            persistent = (value.persistent if isinstance(value, Buffer)
                          else name not in d["_non_persistent_buffers_set"])
            if name not in d["_buffers"]:
                self._forget(name)
            self.register_buffer(name, value, persistent)
        else:
            object.__setattr__(self, name, value)

    def __getattr__(self, name: str):
        # only reached when ``name`` is not an instance attribute: registered members are
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")

    def __delattr__(self, name: str) -> None:
        d = self.__dict__
        if name in d.get("_parameters", ()) or name in d.get("_buffers", ()) or name in d.get("_modules", ()):
            self._forget(name)
        else:
            object.__delattr__(self, name)

    def __dir__(self):
        keys = list(dir(type(self))) + list(self.__dict__) + list(self._parameters) \
            + list(self._modules) + list(self._buffers)
        return sorted({k for k in keys if not k[0].isdigit()})

    # -- lookup by dotted name ----------------------------------------------------------
    def get_submodule(self, target: str) -> "Module":
        """The module at the dotted path ``target`` (``""``: this module)."""
        if target == "":
            return self
        mod = self
        for item in target.split("."):
            if not hasattr(mod, item):
                raise AttributeError(f"{mod._get_name()} has no attribute `{item}`")
            mod = getattr(mod, item)
            if not isinstance(mod, Module):
                raise AttributeError(f"`{item}` is not an nn.Module")
        return mod

    def get_parameter(self, target: str) -> Parameter:
        """The parameter at the dotted path ``target`` (``"0.weight"``)."""
        module_path, _, name = target.rpartition(".")
        mod = self.get_submodule(module_path)
        if not hasattr(mod, name):
            raise AttributeError(f"{mod._get_name()} has no attribute `{name}`")
        param = getattr(mod, name)
        if not isinstance(param, Parameter):
            raise AttributeError(f"`{name}` is not an nn.Parameter")
        return param

    def get_buffer(self, target: str) -> Tensor:
        """The buffer at the dotted path ``target``."""
        module_path, _, name = target.rpartition(".")
        mod = self.get_submodule(module_path)
        if not hasattr(mod, name):
            raise AttributeError(f"{mod._get_name()} has no attribute `{name}`")
        if name not in mod._buffers:
            raise AttributeError(f"`{name}` is not a buffer")
        return getattr(mod, name)

    # -- traversal ------------------------------------------------------------------
    def named_modules(self, memo: set | None = None, prefix: str = "", remove_duplicate: bool = True):
        """``(dotted name, module)`` for this module and every descendant, depth first
        (a module reached twice is listed once unless ``remove_duplicate=False``)."""
        if memo is None:
            memo = set()
        if remove_duplicate:
            if id(self) in memo:
                return
            memo.add(id(self))
        yield prefix, self
        for name, module in self._modules.items():
            if module is None:
                continue
            yield from module.named_modules(memo, prefix + ("." if prefix else "") + name, remove_duplicate)

    def modules(self):
        for _, module in self.named_modules():
            yield module

    def named_children(self):
        """``(name, module)`` of the direct children."""
        seen = set()
        for name, module in self._modules.items():
            if module is not None and id(module) not in seen:
                seen.add(id(module))
                yield name, module

    def children(self):
        for _, module in self.named_children():
            yield module

    def _named_members(self, registry: str, prefix: str, recurse: bool, remove_duplicate: bool):
        seen = set()
        modules = self.named_modules(prefix=prefix, remove_duplicate=remove_duplicate) if recurse \
            else [(prefix, self)]
        for module_prefix, module in modules:
            for name, value in module.__dict__[registry].items():
                if value is None or (remove_duplicate and id(value) in seen):
                    continue
                if remove_duplicate:
                    seen.add(id(value))
                yield module_prefix + ("." if module_prefix else "") + name, value

    def named_parameters(self, prefix: str = "", recurse: bool = True, remove_duplicate: bool = True):
        """``(dotted name, parameter)`` pairs, each shared parameter once."""
        return self._named_members("_parameters", prefix, recurse, remove_duplicate)

    def parameters(self, recurse: bool = True):
        for _, param in self.named_parameters(recurse=recurse):
            yield param

    def named_buffers(self, prefix: str = "", recurse: bool = True, remove_duplicate: bool = True):
        """``(dotted name, buffer)`` pairs (persistent or not)."""
        return self._named_members("_buffers", prefix, recurse, remove_duplicate)

    def buffers(self, recurse: bool = True):
        for _, buf in self.named_buffers(recurse=recurse):
            yield buf

    # -- modes and bulk changes -----------------------------------------------------------
    def train(self, mode: bool = True) -> "Module":
        """Training mode (``mode=True``) or evaluation mode, for this module and its
        descendants (each child's own ``train`` is called)."""
        if not isinstance(mode, bool):
            raise ValueError("training mode is expected to be boolean")
        self.training = mode
        for module in self.children():
            module.train(mode)
        return self

    def eval(self) -> "Module":
        return self.train(False)

    def apply(self, fn) -> "Module":
        """``fn(module)`` for every descendant (children first) and then this module."""
        for module in self.children():
            module.apply(fn)
        fn(self)
        return self

    def requires_grad_(self, requires_grad: bool = True) -> "Module":
        for param in self.parameters():
            param.requires_grad_(requires_grad)
        return self

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Forget the parameters' gradients (``set_to_none=False``: set them to zero)."""
        for param in self.parameters():
            if param.grad is None:
                continue
            if set_to_none:
                param.grad = None
            elif hasattr(param.grad, "zero_"):
                param.grad.zero_()
            else:
                param.grad[...] = 0

    # -- printing -------------------------------------------------------------------
    def _get_name(self) -> str:
        return type(self).__name__

    def extra_repr(self) -> str:
        """The text inside this module's parentheses in ``repr`` (its hyper-parameters)."""
        return ""

    def __repr__(self) -> str:
        extra = self.extra_repr()
        extra_lines = extra.split("\n") if extra else []
        child_lines = [f"({name}): " + _add_indent(repr(module), 2) for name, module in self._modules.items()]
        lines = extra_lines + child_lines
        text = self._get_name() + "("
        if lines:
            if len(extra_lines) == 1 and not child_lines:
                text += extra_lines[0]
            else:
                text += "\n  " + "\n  ".join(lines) + "\n"
        return text + ")"
