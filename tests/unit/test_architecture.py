"""The house rules of the package layout, read from the source (see ARCHITECTURE.md).

No import cycles (function-level imports count, `if TYPE_CHECKING:` ones do not); imports run down
the pipeline, never back up; only the foundation is flat at the top of `rlaif/`.
"""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

import pytest

from tests.support.imports import PACKAGE, cycles, graph, modules

FOUNDATION = {
    "rlaif", "rlaif._version", "rlaif.callables", "rlaif.compat", "rlaif.config", "rlaif.errors",
    "rlaif.memory", "rlaif.progress", "rlaif.records", "rlaif.reports", "rlaif.store", "rlaif.templates",
    "rlaif.yamlfile",
}  # fmt: skip
# Each layer may import only the layers listed for it (and itself, and the foundation).
LAYERS = {
    "rlaif.cli": {"*"},
    "rlaif.rounds": {"rlaif.pipeline", "rlaif.evaluate", "rlaif.review", "rlaif.train", "rlaif.judging",
                     "rlaif.inputs", "rlaif.backends"},
    "rlaif.api": {"rlaif.pipeline", "rlaif.judging", "rlaif.inputs", "rlaif.backends"},
    "rlaif.pipeline": {"rlaif.review", "rlaif.train", "rlaif.evaluate", "rlaif.judging", "rlaif.inputs",
                       "rlaif.backends", "rlaif.tools"},
    "rlaif.evaluate": {"rlaif.train", "rlaif.judging", "rlaif.inputs", "rlaif.backends"},
    "rlaif.authoring": {"rlaif.pipeline", "rlaif.evaluate", "rlaif.review", "rlaif.train", "rlaif.judging",
                        "rlaif.inputs", "rlaif.backends"},
    "rlaif.bench": {"rlaif.pipeline", "rlaif.evaluate", "rlaif.train", "rlaif.judging", "rlaif.inputs",
                    "rlaif.backends"},
    "rlaif.review": {"rlaif.inputs"},
    "rlaif.train": {"rlaif.judging", "rlaif.inputs", "rlaif.backends"},
    "rlaif.judging": {"rlaif.inputs", "rlaif.backends"},
    "rlaif.inputs": set(),
    "rlaif.backends": set(),
    "rlaif.tools": set(),
}  # fmt: skip
UI = ("rlaif.progress", "rlaif.cli")


def layer(module: str) -> str:
    return next((name for name in LAYERS if module == name or module.startswith(name + ".")), "foundation")


def test_the_graph_reads_the_whole_package() -> None:
    edges = graph()
    assert "rlaif.pipeline.run" in edges and "rlaif.backends.serving" in edges["rlaif.pipeline.run"]
    assert len(edges) == len(modules()) > 40


def test_no_import_cycles() -> None:
    found = cycles(graph())
    assert not found, "import cycles: " + "; ".join(" <-> ".join(c) for c in found)


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert cycles({"a": {"b": 1}, "b": {"c": 1}, "c": {"a": 1}, "d": {"a": 1}}) == [["a", "b", "c"]]


def test_imports_run_down_the_pipeline() -> None:
    wrong = []
    for module, targets in graph().items():
        if module == "rlaif":
            continue  # the public API re-exports from everywhere; nothing imports it back
        allowed = LAYERS.get(layer(module), set())
        for target, line in targets.items():
            there = layer(target)
            downward = there in ("foundation", layer(module)) or "*" in allowed or there in allowed
            if downward and not (layer(module) == "foundation" and there != "foundation"):
                continue
            wrong.append(f"{module} (line {line}) imports {target}")
    assert not wrong, "imports that run back up:\n" + "\n".join(wrong)


@pytest.mark.parametrize("seam", ["rlaif.backends", "rlaif.train", "rlaif.inputs"])
def test_the_lower_layers_have_no_ui(seam: str) -> None:
    ui = [
        f"{module} imports {target}"
        for module, targets in graph().items()
        if layer(module) == seam
        for target in targets
        if target.startswith(UI)
    ]
    assert not ui, ui


def test_no_module_imports_the_package_root() -> None:
    """Modules import `__version__` from `rlaif._version`: importing the root from inside would run
    every re-export first (a hidden cycle)."""
    offenders = [m for m, targets in graph().items() if m != "rlaif" and "rlaif" in targets]
    assert not offenders, offenders


def test_only_the_foundation_is_flat() -> None:
    flat = {p.stem for p in PACKAGE.glob("*.py")}
    assert len(flat) <= 12, sorted(flat)
    assert {f"rlaif.{name}" if name != "__init__" else "rlaif" for name in flat} <= FOUNDATION


@cache
def parsed(path: Path) -> ast.Module:
    return ast.parse(path.read_text(), str(path))


def report_classes() -> dict[str, dict[str, ast.ClassDef]]:
    """module -> {class name: its definition} for every `reports.py`: each class is a report (its
    bases are reports), the foundation's `Report` being the root."""
    found = {}
    for name, path in modules().items():
        if name == "rlaif.reports" or name.endswith(".reports"):
            tree = parsed(path)
            found[name] = {node.name: node for node in tree.body if isinstance(node, ast.ClassDef)}
    return found


def users(module: str) -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    """For the reports of `module`: name -> the modules that import it, and name -> the modules that build
    it (call it or its `model_validate`; in `module` itself, a report built by another one's method)."""
    imported_by: dict[str, set[str]] = {}
    built: dict[str, set[str]] = {}
    for name, path in modules().items():
        tree = parsed(path)
        imported = {
            alias.asname or alias.name: alias.name
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom) and node.module == module
            for alias in node.names
        }
        for real in imported.values():
            imported_by.setdefault(real, set()).add(name)
        if name == module:
            imported = {n.name: n.name for n in tree.body if isinstance(n, ast.ClassDef)}
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            if isinstance(func, ast.Attribute) and func.attr.startswith("model_"):
                func = func.value
            if isinstance(func, ast.Name) and func.id in imported:
                built.setdefault(imported[func.id], set()).add(name)
            for arg in node.args:  # a report class handed to the factory that builds it
                if isinstance(arg, ast.Name) and arg.id in imported:
                    built.setdefault(imported[arg.id], set()).add(name)
    return imported_by, built


def test_a_report_lives_in_the_folder_that_builds_it() -> None:
    """A feature folder's `reports.py` holds the reports that folder's modules build (a report nested
    in another is built with it); `rlaif/reports.py` holds only what crosses folders: the bases `Report`
    and `Rate`, each imported by modules of two folders or more."""
    wrong = []
    for module, classes in report_classes().items():
        imported_by, built = users(module)
        if module == "rlaif.reports":
            for cls in classes:
                folders = sorted({layer(m) for m in imported_by.get(cls, set())} - {"foundation"})
                if len(folders) < 2:
                    wrong.append(
                        f"{cls} (rlaif/reports.py) is used by {', '.join(folders) or 'no folder'} only: "
                        "move it to the reports.py of the folder that builds it"
                    )
            continue
        home = module.removesuffix(".reports")
        nested = {
            field.id
            for cls in classes.values()
            for field in ast.walk(cls)
            if isinstance(field, ast.Name) and field.id in classes and field.id != cls.name
        }
        for cls in classes:
            by = {m for m in built.get(cls, set()) if m != module}
            if cls in nested and not by:
                continue  # built with the report it is a field of
            outside = sorted(m for m in by if not m.startswith(home + "."))
            if not any(m.startswith(home + ".") for m in by):
                where = ", ".join(outside) or "no module"
                there = f"{layer(outside[0]).replace('.', '/')}/reports.py" if outside else "its users"
                wrong.append(f"{cls} ({module}) is built by {where}, not in {home}: move it to {there}")
    assert not wrong, "reports away from the folder that builds them:\n" + "\n".join(wrong)


def test_every_report_is_in_a_reports_module() -> None:
    """A report (a subclass of `Report`) is defined in a `reports.py`, where the docs and the pins find it."""
    report_names = {cls for classes in report_classes().values() for cls in classes}
    stray = []
    for name, path in modules().items():
        if name == "rlaif.reports" or name.endswith(".reports"):
            continue
        for node in parsed(path).body:
            if isinstance(node, ast.ClassDef) and any(
                isinstance(b, ast.Name) and b.id in report_names for b in node.bases
            ):
                stray.append(f"{node.name} ({name})")
    assert not stray, "reports defined outside a reports.py: " + ", ".join(stray)
