"""Pull a lesson's inline definitions out of its notebook, so tests can check them against the package.

A lesson builds its ideas in short code cells (`def top_p_filter(...)`, `class LoRALinear(...)`), then
switches to the validated copy in `slmcourse`. `notebook_definitions` parses the notebook's code cells
with `ast`, keeps every top-level import (and constant assignment, for names the definitions use), and
the requested function and class definitions, and executes only those in a fresh namespace: no model
is loaded and no other cell runs. A test then compares the notebook's version with the package's on
random inputs, so editing either side alone fails `make test`.

    defs = notebook_definitions("course/04_attention_gqa.ipynb", ["scaled_dot_product_attention"])
    torch.testing.assert_close(defs["scaled_dot_product_attention"](q, k, v), attention.sdpa(q, k, v))
"""
from __future__ import annotations

import ast
from pathlib import Path
from typing import Iterable

import nbformat

ROOT = Path(__file__).resolve().parent.parent


def _code_cells(path: Path) -> list[str]:
    nb = nbformat.read(path, as_version=4)
    sources = []
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        # IPython magics and shell escapes are not Python: drop those lines
        lines = [line for line in cell.source.splitlines() if not line.lstrip().startswith(("%", "!"))]
        sources.append("\n".join(lines))
    return sources


def _is_simple_constant(node: ast.stmt) -> bool:
    """`NAME = <literal or arithmetic of literals>`: safe and cheap to re-run."""
    if not isinstance(node, ast.Assign) or not all(isinstance(t, ast.Name) for t in node.targets):
        return False
    return all(isinstance(n, (ast.Constant, ast.BinOp, ast.UnaryOp, ast.Tuple, ast.List, ast.operator,
                              ast.unaryop, ast.Load)) for n in ast.walk(node.value))


def definition_names(path: str | Path) -> list[str]:
    """Names of every top-level function and class a notebook defines, in order."""
    names = []
    for source in _code_cells(ROOT / path):
        try:
            tree = ast.parse(source)
        except SyntaxError:
            continue
        names += [n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))]
    return names


def notebook_definitions(path: str | Path, names: Iterable[str]) -> dict:
    """Execute a notebook's imports, simple constants and the named definitions; return the namespace.

    Raises KeyError naming any requested definition the notebook does not contain, so renaming a
    function in the lesson fails its drift test loudly instead of silently testing nothing.
    """
    wanted = list(names)
    imports, constants, defs = [], [], {}
    for source in _code_cells(ROOT / path):
        try:
            tree = ast.parse(source)
        except SyntaxError:
            continue
        for node in tree.body:
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                imports.append(node)
            elif _is_simple_constant(node):
                constants.append(node)
            elif isinstance(node, (ast.FunctionDef, ast.ClassDef)) and node.name in wanted:
                defs[node.name] = node  # a later redefinition wins, as in the running notebook
    missing = [n for n in wanted if n not in defs]
    if missing:
        raise KeyError(f"{path} defines no {', '.join(missing)}")
    module = ast.Module(body=imports + constants + [defs[n] for n in wanted], type_ignores=[])
    namespace: dict = {"__name__": f"notebook:{Path(path).stem}"}
    exec(compile(module, str(path), "exec"), namespace)
    return namespace
