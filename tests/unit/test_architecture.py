"""The house rules of the package layout, read from the source (see ARCHITECTURE.md).

No import cycles (function-level imports count, `if TYPE_CHECKING:` ones do not); imports run down
the pipeline, never back up; only the foundation is flat at the top of `rlaif/`.
"""

from __future__ import annotations

import pytest

from tests.support.imports import PACKAGE, cycles, graph, modules

FOUNDATION = {
    "rlaif", "rlaif._version", "rlaif.compat", "rlaif.config", "rlaif.errors", "rlaif.monitor",
    "rlaif.progress", "rlaif.records", "rlaif.reports", "rlaif.store", "rlaif.templates", "rlaif.yamlfile",
}  # fmt: skip
# Each layer may import only the layers listed for it (and itself, and the foundation).
LAYERS = {
    "rlaif.cli": {"*"},
    "rlaif.api": {"rlaif.pipeline", "rlaif.judging", "rlaif.inputs", "rlaif.backends"},
    "rlaif.pipeline": {"rlaif.review", "rlaif.train", "rlaif.evaluate", "rlaif.judging", "rlaif.inputs",
                       "rlaif.backends"},
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
