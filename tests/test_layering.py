"""Layering and cache stamps, read from the source with ``ast``.

* Dependencies point downwards only: ``lucid`` -> ``lucid_ir`` and ``lucid_codegen``;
  ``lucid_codegen`` -> ``lucid_ir``; ``lucid_ir`` imports neither. Every import counts,
  including those inside functions (a lazy import is still a dependency) and modules
  imported by name (``importlib.import_module("...")``, ``__import__``); a failure names
  the file and line of each upward import.
* Every kernel family keys its cache entries with ``cache.source_stamp`` of its
  generator's modules (``GENERATOR``), which must cover every ``lucid_codegen`` module
  it imports at module level; editing any of them changes the family's keys.
"""
from __future__ import annotations

import ast
import importlib.util
import os
import textwrap

import pytest

from lucid_codegen.jit import cache

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGES = ("lucid", "lucid_ir", "lucid_codegen")
#: package -> the packages it may not import
FORBIDDEN = {"lucid_ir": ("lucid", "lucid_codegen"), "lucid_codegen": ("lucid",)}


# ------------------------------------------------------------------ reading imports
def module_files(package: str) -> dict[str, str]:
    """Dotted module name -> file path, for every .py file of ``package``."""
    out = {}
    for folder, _dirs, files in os.walk(os.path.join(ROOT, package)):
        for f in files:
            if f.endswith(".py"):
                path = os.path.join(folder, f)
                parts = os.path.relpath(path, ROOT)[:-3].split(os.sep)
                if parts[-1] == "__init__":
                    parts.pop()
                out[".".join(parts)] = path
    return out


#: what ``imports_of`` gives for an import whose module name it cannot resolve (computed
#: at run time, or relative to a package it cannot name)
DYNAMIC = "<a module whose name the check cannot resolve>"
_IMPORT_CALLS = ("import_module", "__import__")


def imports_of(source: str, module: str, is_package: bool = False, top_level_only: bool = False):
    """(line, absolute dotted name) of every import in ``source`` (module ``module``).

    ``import X``, ``from X import a`` (which yields ``X.a``: ``a`` may be a submodule, so
    ``from . import loops`` and ``from .loops import I64`` both name ``<package>.loops``),
    relative forms, and, unless ``top_level_only``, imports inside functions and classes
    and calls of ``importlib.import_module`` / ``__import__`` (a string literal, relative
    to a literal package, ``__name__`` or ``__package__``; a name computed at run time
    gives ``DYNAMIC``, which no check can clear).

    >>> src = ("def f():\\n    from ..x import y\\nimport z\\n"
    ...        "importlib.import_module('.w', __package__)\\n__import__('v.u')")
    >>> sorted(n for _, n in imports_of(src, "p.q.m"))
    ['p.q.w', 'p.x.y', 'v.u', 'z']
    >>> imports_of("import_module(name)", "p.m")
    [(1, '<a module whose name the check cannot resolve>')]
    """
    tree = ast.parse(source)
    package = module if is_package else module.rpartition(".")[0]
    base = package.split(".")
    nodes = tree.body if top_level_only else ast.walk(tree)
    out = []
    for node in nodes:
        if isinstance(node, ast.Import):
            out += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parent = base[:len(base) - node.level + 1]
                origin = ".".join(parent + ([node.module] if node.module else []))
            else:
                origin = node.module
            out += [(node.lineno, f"{origin}.{alias.name}") for alias in node.names]
        elif isinstance(node, ast.Call) and _called_name(node.func) in _IMPORT_CALLS and node.args:
            out.append((node.lineno, _imported_by_call(node, module, package)))
    return out


def _called_name(func) -> str | None:
    return func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else None


def _imported_by_call(call: ast.Call, module: str, package: str) -> str:
    """The absolute name ``import_module(name, package)`` / ``__import__(name)`` imports."""
    name = call.args[0]
    if not (isinstance(name, ast.Constant) and isinstance(name.value, str)):
        return DYNAMIC
    if not name.value.startswith("."):
        return name.value
    anchor = call.args[1] if len(call.args) > 1 else next(
        (k.value for k in call.keywords if k.arg == "package"), None)
    if isinstance(anchor, ast.Constant) and isinstance(anchor.value, str):
        anchor = anchor.value
    elif isinstance(anchor, ast.Name) and anchor.id in ("__name__", "__package__"):
        anchor = module if anchor.id == "__name__" else package
    else:
        return DYNAMIC
    try:
        return importlib.util.resolve_name(name.value, anchor)
    except ImportError:  # more dots than the package has parents
        return DYNAMIC


def violations(package: str, files: dict[str, str]) -> list[str]:
    """``file:line imports name`` for each import of a package ``package`` may not use
    (a module named at run time counts: it cannot be shown to point downwards)."""
    bad = []
    for module, path in sorted(files.items()):
        with open(path, encoding="utf-8") as f:
            source = f.read()
        for line, name in sorted(imports_of(source, module, path.endswith("__init__.py"))):
            top = name.split(".")[0]
            if top in FORBIDDEN.get(package, ()) or (name == DYNAMIC and package in FORBIDDEN):
                bad.append(f"{os.path.relpath(path, ROOT)}:{line} imports {name}")
    return bad


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_lower_layers_do_not_import_upper_layers(package):
    files = module_files(package)
    assert len(files) > 5, f"found no modules of {package} under {ROOT}"
    bad = violations(package, files)
    assert not bad, (f"{package} may not import {' or '.join(FORBIDDEN[package])}:\n  "
                     + "\n  ".join(bad))


def test_the_checker_finds_a_lazy_upward_import(tmp_path):
    """The check above could pass vacuously; here it must report both imports."""
    path = tmp_path / "m.py"
    path.write_text(textwrap.dedent("""
        import numpy
        from .graph import Graph

        def f():
            from lucid_codegen.jit.cache import cache_dir
            import lucid.nn as nn
    """))
    found = violations("lucid_ir", {"lucid_ir.m": str(path)})
    assert [v.split(" imports ")[1] for v in found] == ["lucid_codegen.jit.cache.cache_dir", "lucid.nn"]
    assert found[0].endswith("m.py:6 imports lucid_codegen.jit.cache.cache_dir")  # file and line
    assert violations("lucid", {"lucid.m": str(path)}) == []


def test_the_checker_finds_imports_by_name(tmp_path):
    """``importlib.import_module`` and ``__import__`` with literal names (absolute, or
    relative to ``__name__``, ``__package__`` or a literal package) are imports too, and
    one whose name is computed at run time cannot be cleared in a lower layer."""
    package = tmp_path / "lucid_codegen"
    package.mkdir()
    (package / "__init__.py").write_text(textwrap.dedent("""
        import importlib
        from importlib import import_module

        def late():
            return importlib.import_module("lucid.nn")

        def relative():
            return import_module(".cache", __package__), import_module(".spin", __name__)

        lower = __import__("lucid_ir.graph")
        also = importlib.import_module(".tensor", package="lucid")
        computed = importlib.import_module("lucid" + "_ir")
        upper = __import__("lucid")
    """))
    found = violations("lucid_codegen", {"lucid_codegen": str(package / "__init__.py")})
    assert [v.rsplit("__init__.py:", 1)[1] for v in found] == [
        "6 imports lucid.nn", "12 imports lucid.tensor", f"13 imports {DYNAMIC}", "14 imports lucid"]
    names = [n for _, n in imports_of((package / "__init__.py").read_text(), "lucid_codegen", True)]
    assert {"lucid_codegen.cache", "lucid_codegen.spin", "lucid_ir.graph"} <= set(names)
    assert violations("lucid", {"lucid": str(package / "__init__.py")}) == []


# ----------------------------------------------------------------- generator stamps
CODEGEN = module_files("lucid_codegen")
SHARED = set(cache.PIPELINE) | {"jit.cache"}  # in every full key (stamp, CACHE_FORMAT)


def parsed(name: str) -> ast.Module:
    with open(CODEGEN[f"lucid_codegen.{name}"], encoding="utf-8") as f:
        return ast.parse(f.read())


def codegen_module(dotted: str) -> str | None:
    """The lucid_codegen module (a file, not a package) that an imported name belongs
    to, relative to lucid_codegen: ``lucid_codegen.kernels.loops.Loop`` -> ``kernels.loops``."""
    parts = dotted.split(".")
    for end in range(len(parts), 1, -1):
        path = CODEGEN.get(".".join(parts[:end]))
        if path is not None and not path.endswith("__init__.py"):
            return ".".join(parts[1:end])
    return None


def codegen_imports(name: str) -> set[str]:
    """The lucid_codegen modules ``name`` (``"kernels.reduction"``) imports at module
    level, named relative to lucid_codegen."""
    with open(CODEGEN[f"lucid_codegen.{name}"], encoding="utf-8") as f:
        source = f.read()
    out = set()
    for _, dotted in imports_of(source, f"lucid_codegen.{name}", top_level_only=True):
        if dotted.startswith("lucid_codegen.") and codegen_module(dotted):
            out.add(codegen_module(dotted))
    return out


def generator_of(name: str):
    """The module's ``GENERATOR`` tuple of names, read from its source, or None."""
    for node in parsed(name).body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "GENERATOR" for t in node.targets):
            return tuple(ast.literal_eval(node.value))
    return None


def calls(name: str, function: str) -> list[ast.Call]:
    return [n for n in ast.walk(parsed(name)) if isinstance(n, ast.Call)
            and getattr(n.func, "id", getattr(n.func, "attr", None)) == function]


FAMILIES = sorted(m.partition(".")[2] for m in CODEGEN
                  if "." in m and not CODEGEN[m].endswith("__init__.py") and generator_of(m.partition(".")[2]))


def test_every_module_that_compiles_kernels_is_a_stamped_family():
    assert {"kernels.elementwise", "kernels.reduction", "gemm.kernel", "runtime.spin", "runtime.native_runner",
            "runtime.eager_call"} <= set(FAMILIES)
    for module in sorted(CODEGEN):
        name = module.partition(".")[2]
        if not name or name == "jit.cache" or not calls(name, "load_or_compile"):
            continue
        # its key comes from its own GENERATOR, or from a family it imports (gemm_call: GemmSpec.key)
        assert name in FAMILIES or codegen_imports(name) & set(FAMILIES), name


@pytest.mark.parametrize("family", FAMILIES)
def test_a_family_stamps_all_the_code_it_generates_with(family):
    generator = generator_of(family)
    assert generator[0] == family and len(set(generator)) == len(generator)
    closure, todo = set(), [family]
    while todo:
        for dep in codegen_imports(todo.pop()) - SHARED - closure:
            closure.add(dep)
            todo.append(dep)
    missing = closure - set(generator)
    assert not missing, f"{family}.GENERATOR lacks {sorted(missing)}, which {family} imports"
    stamped = [c for c in calls(family, "source_stamp")
               if any(isinstance(a, ast.Starred) and getattr(a.value, "id", None) == "GENERATOR"
                      for a in c.args)]
    assert stamped, f"{family} never calls source_stamp(*GENERATOR)"


def test_codegen_imports_reads_relative_and_absolute_forms():
    assert codegen_imports("kernels.reduction") >= {"kernels.accumulate", "kernels.elementwise", "kernels.loops",
                                                    "kernels.vector_math", "runtime.pyarray"}
    assert "runtime.native_plan" not in codegen_imports("kernels.elementwise")  # imported inside a function


# --------------------------------------------------------- an edit changes the keys
@pytest.fixture
def edited(monkeypatch):
    """``edited(name)``: from now on ``source_stamp`` sees module ``name`` with one more line."""
    real = cache._module_source
    names = set()

    def source(name):
        return real(name) + (b"\n# edited\n" if name in names else b"")
    monkeypatch.setattr(cache, "_module_source", source)
    cache.source_stamp.cache_clear()
    yield lambda name: (names.add(name), cache.source_stamp.cache_clear())
    cache.source_stamp.cache_clear()


class Captured(Exception):
    pass


def kernel_keys(monkeypatch) -> dict[str, str]:
    """The cache key each family would ask for now (nothing is compiled)."""
    from lucid_ir.builder import GraphBuilder
    from lucid_codegen.kernels import elementwise
    from lucid_codegen.kernels import reduction
    from lucid_codegen.gemm.kernel import GemmSpec
    from lucid_codegen.gemm.epilogue import Epilogue

    def capture(key, *args, **kwargs):
        raise Captured(key)
    keys = {"gemm": GemmSpec("float32", Epilogue.chain("float32", bias=True, activation="relu")).key()}
    for module in (elementwise, reduction):
        monkeypatch.setattr(module, "load_or_compile", capture)
    b = GraphBuilder()
    x = b.input((3, 4), "float32")
    ew = elementwise.ElementwiseKernel.for_graph(b.build([b.emit("exp", x)]))
    b = GraphBuilder()
    x = b.input((3, 4), "float32")
    red = reduction.ReductionKernel.for_graph(b.build([b.emit("sum", b.emit("exp", x), axes=(1,))]))
    for family, call in (("elementwise", lambda: elementwise.ElementwiseKernel(ew.structure).function("cc")),
                         ("reduction", lambda: type(red)(red.structure, red.red_op, red.axes, red.keepdims,
                                                         red.rank).function("row", "c"))):
        with pytest.raises(Captured) as info:
            call()
        keys[family] = info.value.args[0]
    return keys


def test_editing_a_generator_changes_exactly_its_families_keys(edited, monkeypatch):
    before = kernel_keys(monkeypatch)
    edited("runtime.threads")  # not part of any generator: no key changes
    assert kernel_keys(monkeypatch) == before
    edited("gemm.small")  # the gemm kernels' own code
    after = kernel_keys(monkeypatch)
    assert after["gemm"] != before["gemm"]
    assert after["elementwise"] == before["elementwise"] and after["reduction"] == before["reduction"]
    edited("kernels.lowering")  # every family emits its op lowering (gemm: in its epilogue)
    last = kernel_keys(monkeypatch)
    assert all(last[f] != after[f] for f in ("gemm", "elementwise", "reduction"))


def test_editing_the_pipeline_changes_every_full_key(edited):
    before = cache.full_key("some kernel")
    edited("jit.llvm")
    assert cache.full_key("some kernel") != before


def test_source_stamp_reads_the_named_files_in_order():
    import hashlib
    data = b"".join(b"%s\0%d\0%s" % (n.encode(), len(s), s)
                    for n, s in ((n, cache._module_source(n)) for n in ("runtime.spin", "runtime.pyarray")))
    assert cache.source_stamp("runtime.spin", "runtime.pyarray") == hashlib.sha256(data).hexdigest()[:16]
    assert cache.source_stamp("runtime.pyarray", "runtime.spin") != cache.source_stamp("runtime.spin", "runtime.pyarray")
    with open(CODEGEN["lucid_codegen.runtime.spin"], "rb") as f:
        assert cache._module_source("runtime.spin") == f.read()
    with pytest.raises(ValueError, match="no module 'spin.py'"):
        cache.source_stamp("spin.py")
    assert all(len(cache.source_stamp(*generator_of(f))) == 16 for f in FAMILIES)
