"""The public API is exactly `rlaif.__all__`: every name resolves, and nothing public is left out."""

import rlaif


def test_all_names_resolve() -> None:
    for name in rlaif.__all__:
        assert hasattr(rlaif, name), name


def test_all_is_unique() -> None:
    assert len(set(rlaif.__all__)) == len(rlaif.__all__)


def test_no_public_name_outside_all() -> None:
    public = {n for n in vars(rlaif) if not n.startswith("_")}
    modules = {n for n in public if type(getattr(rlaif, n)).__name__ == "module"}
    assert public - modules - set(rlaif.__all__) == set()


def test_no_public_name_shadows_a_module() -> None:
    """`import rlaif.X` must give the module X wherever one exists, never a function of that name."""
    import importlib.util

    shadowing = [name for name in rlaif.__all__ if importlib.util.find_spec(f"rlaif.{name}") is not None]
    assert shadowing == []


def test_py_typed_marker_ships() -> None:
    from importlib import resources

    assert resources.files("rlaif").joinpath("py.typed").is_file()
