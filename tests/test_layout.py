"""The package's shape (DESIGN.md §1): imports point down the pipeline, never up or in a circle,
and no private name crosses a module boundary."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "minivision"

# Layers, lowest first: a module may import only from its own layer or lower ones.
LAYERS = [
    {"_backend", "_validate"},
    {"ops"},
    {"nn"},
    {"proposals", "data"},
    {"eval"},
    {"detection", "segmentation"},
    {"training"},
    {"viz", "tour", "cli", "bench", "checks", "__main__", "weights"},
]


def _rank(top: str) -> int:
    for i, layer in enumerate(LAYERS):
        if top in layer:
            return i
    raise AssertionError(f"minivision.{top} is in no layer of DESIGN.md §1: add it to LAYERS")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path):
    """(absolute module, imported names, line) of every minivision import in the file."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target == "minivision" or target.startswith("minivision."):
                yield target, [a.name for a in node.names], node.lineno
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.name.startswith("minivision."):
                    yield a.name, [], node.lineno


def _top(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


def test_imports_point_down_the_pipeline():
    wrong = []
    for path in sorted(PACKAGE.rglob("*.py")):
        here = _top(_module_name(path))
        if here is None:
            continue  # minivision/__init__.py re-exports everything
        for target, names, line in _imports(path):
            there = _top(target)
            if there is None:  # `from minivision import x` (or `from .. import x`)
                if any(n != "__version__" for n in names):
                    wrong.append(f"{path.relative_to(PACKAGE)}:{line} imports {names} from the top package")
                continue
            if _rank(there) > _rank(here):
                wrong.append(f"{path.relative_to(PACKAGE)}:{line}: {here} imports {target} (a higher layer)")
    assert not wrong, "\n".join(wrong)


def test_no_private_name_crosses_a_module():
    """``from .other import _helper`` means the helper lives in the wrong place: shared helpers
    live in a private module (``_conv_core``) under public names."""
    wrong = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for target, names, line in _imports(path):
            if any(n.startswith("_") and n != "__version__" and not _is_module(target, n) for n in names):
                wrong.append(f"{path.relative_to(PACKAGE)}:{line} imports private {names} from {target}")
    assert not wrong, "\n".join(sorted(set(wrong)))


def _is_module(package: str, name: str) -> bool:
    """``from . import _nms_host`` imports a private *module*, which is fine."""
    folder = PACKAGE.parent.joinpath(*package.split("."))
    return (folder / f"{name}.py").is_file() or (folder / name / "__init__.py").is_file()


def test_the_layers_exist():
    for top in ("ops", "nn", "proposals", "data", "eval", "detection"):
        assert (PACKAGE / top / "__init__.py").is_file(), top


def test_every_import_resolves_including_the_lazy_ones():
    """Imports inside functions (the CLI, the benchmarks, the tour) run only when called: check
    that each one names a module and names that exist, so a move cannot leave one behind."""
    import importlib

    wrong = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for target, names, line in _imports(path):
            try:
                module = importlib.import_module(target)
            except ImportError as err:
                wrong.append(f"{path.relative_to(PACKAGE)}:{line}: {err}")
                continue
            for n in names:
                if n != "*" and not hasattr(module, n) and not _is_module(target, n):
                    wrong.append(f"{path.relative_to(PACKAGE)}:{line}: {target} has no {n}")
    assert not wrong, "\n".join(wrong)
