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
