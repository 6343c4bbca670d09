"""Where code compares op names instead of asking the ops' traits (``lucid_ir.ops``).

A *name test* is a comparison of an op name (``node.op``, ``op``, ``red_op``) with a
string, a literal collection of strings, or a module constant (``ELEMENTWISE``,
``ROW_REDUCTIONS``): ``node.op == "add"``, ``op in ("mul", "div")``, ``n.op in RANDOM``.
A single name is a rewrite about that one op (``neg(neg(x))``); a collection is a group
that a trait should name. ``tests/test_op_traits.py`` keeps the passes free of the
latter; run this file to count both kinds:

    python tests/name_tests.py [--rev REV] lucid_ir/passes lucid_codegen
"""
from __future__ import annotations

import ast
import pathlib
import subprocess
import sys

OP_NAMES = ("op", "red_op")


def _is_op(node) -> bool:
    return (isinstance(node, ast.Attribute) and node.attr in OP_NAMES) or (
        isinstance(node, ast.Name) and node.id in OP_NAMES)


def _kind(node) -> str | None:
    """'name' for a string, 'collection' for a literal collection of strings or an
    upper-case module constant (or a sum of them), else None."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return "name"
    if isinstance(node, (ast.Tuple, ast.List, ast.Set)) and node.elts and all(
            isinstance(e, ast.Constant) and isinstance(e.value, str) for e in node.elts):
        return "collection"
    if isinstance(node, ast.Name) and node.id.isupper():
        return "collection"
    if isinstance(node, ast.BinOp) and _kind(node.left) == _kind(node.right) == "collection":
        return "collection"
    return None


def name_tests(source: str) -> list[tuple[int, str, str]]:
    """``(line, kind, function)`` of each name test in ``source``."""
    found = []

    def walk(node, func):
        for child in ast.iter_child_nodes(node):
            name = child.name if isinstance(child, (ast.FunctionDef, ast.ClassDef)) else func
            if isinstance(child, ast.Compare):
                sides = [child.left] + list(child.comparators)
                for a, b in zip(sides, sides[1:]):
                    for x, y in ((a, b), (b, a)):
                        kind = _kind(y)
                        if _is_op(x) and kind is not None:
                            found.append((child.lineno, kind, func))
            walk(child, name)

    walk(ast.parse(source), "")
    return found


def _sources(paths, rev=None):
    for path in paths:
        p = pathlib.Path(path)
        if rev is None:
            files = [p] if p.suffix == ".py" else sorted(p.rglob("*.py"))
            for f in files:
                yield str(f), f.read_text()
        else:
            listed = subprocess.run(["git", "ls-tree", "-r", "--name-only", f"{rev}:{path}"],
                                    capture_output=True, text=True, check=True).stdout.split()
            for name in listed:
                if name.endswith(".py"):
                    yield f"{path}/{name}", subprocess.run(
                        ["git", "show", f"{rev}:{path}/{name}"], capture_output=True, text=True,
                        check=True).stdout


def main(argv) -> None:
    rev = None
    if argv[:1] == ["--rev"]:
        rev, argv = argv[1], argv[2:]
    for root in argv or ["lucid_ir/passes", "lucid_codegen"]:
        names = collections = 0
        for path, text in _sources([root], rev):
            found = name_tests(text)
            names += sum(k == "name" for _, k, _ in found)
            collections += sum(k == "collection" for _, k, _ in found)
        print(f"{root}{'@' + rev if rev else ''}: {names + collections} name tests "
              f"({names} of one name, {collections} of a collection)")


if __name__ == "__main__":
    main(sys.argv[1:])
