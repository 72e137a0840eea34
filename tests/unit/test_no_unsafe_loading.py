"""Nothing voxbench reads from disk or the network is turned into code: no pickle, marshal or
shelve, no eval/exec, no yaml.load, no numpy pickles. The library's source is parsed (AST, so
comments and docstrings do not count) and every such use fails this test unless it is listed in
ALLOWED with the reason it is safe."""

from __future__ import annotations

import ast
from pathlib import Path

import voxbench

SRC = Path(voxbench.__file__).parent
UNSAFE_MODULES = {"pickle", "cPickle", "dill", "cloudpickle", "jsonpickle", "marshal", "shelve"}
UNSAFE_CALLS = {"eval", "exec", "__import__"}
YAML_LOADERS = {"load", "load_all", "unsafe_load", "unsafe_load_all", "full_load"}

# (path under src/voxbench, source line stripped): why it is safe.
ALLOWED = {
    ("quality/scoring.py", "import pickle"): (
        "pickle.dumps only, to ask whether a metric can be sent to a worker; nothing is loaded"
    ),
    ("quality/scoring.py", "pickle.dumps(metric)"): "dumps, never loads",
}


def unsafe_uses(tree: ast.AST) -> list[tuple[int, str]]:
    """``(line, what)`` for every use of a loader that can run code."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if a.name in UNSAFE_MODULES]
        elif isinstance(node, ast.ImportFrom) and (node.module or "") in UNSAFE_MODULES:
            found.append((node.lineno, f"from {node.module}"))
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            owner, attr = node.value.id, node.attr
            if owner in UNSAFE_MODULES or (owner == "yaml" and attr in YAML_LOADERS):
                found.append((node.lineno, f"{owner}.{attr}"))
        elif isinstance(node, ast.Call):
            if isinstance(node.func, ast.Name) and node.func.id in UNSAFE_CALLS:
                found.append((node.lineno, f"{node.func.id}()"))
            for kw in node.keywords:
                if kw.arg == "allow_pickle" and not (
                    isinstance(kw.value, ast.Constant) and kw.value.value is False
                ):
                    found.append((node.lineno, "allow_pickle"))
                if kw.arg == "weights_only" and not (
                    isinstance(kw.value, ast.Constant) and kw.value.value is True
                ):
                    found.append((node.lineno, "weights_only"))
    return found


def test_the_checker_finds_each_kind_of_unsafe_loading() -> None:
    code = (
        "import pickle\nfrom marshal import loads\nimport yaml\nx = yaml.load(s)\n"
        "y = eval(s)\nexec(s)\nnp.load(f, allow_pickle=True)\ntorch.load(f, weights_only=False)\n"
        "z = shelve.open(p)\n"
        "yaml.safe_load(s)\nnp.load(f)\njson.loads(s)  # eval( in a comment\n'pickle.loads'\n"
    )
    assert sorted({line for line, _ in unsafe_uses(ast.parse(code))}) == [1, 2, 4, 5, 6, 7, 8, 9]


def test_no_source_file_loads_code_from_data() -> None:
    files = sorted(SRC.rglob("*.py"))
    assert len(files) > 50  # the whole package, not an empty folder
    offending: list[str] = []
    used_allowances: set[tuple[str, str]] = set()
    for path in files:
        rel = path.relative_to(SRC).as_posix()
        text = path.read_text(encoding="utf-8")
        lines = text.splitlines()
        for line, what in unsafe_uses(ast.parse(text, filename=rel)):
            key = (rel, lines[line - 1].strip())
            if key in ALLOWED:
                used_allowances.add(key)
            else:
                offending.append(f"{rel}:{line}: {what}: {key[1]}")
    assert offending == [], "unsafe loading (list it in ALLOWED with a reason if it is safe)"
    assert used_allowances == set(ALLOWED), "an allowance no longer matches: remove it"
