"""The one way rlaif loads a user's Python callable from a name written in a file.

Checks (`python: mychecks:is_polite`), review hooks (`review.hook`) and anything else a user names as
`package.module:function` go through `load_callable`, so they accept the same syntax and fail the same
way: a module that raises while it loads, a missing attribute, or something not callable is one
`ImportError` or `TypeError` whose message names the target; the caller adds where the name was written.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["load_callable"]


def load_callable(target: str, *, base_dir: Path | None = None, files: bool = True) -> Callable[..., Any]:
    """The callable `target` names: `package.module:function` (or `module:Class.method`), or, with
    `files`, `path/to/file.py:function` (relative paths from `base_dir`, then the working folder).

    This imports the module: it runs the user's code. `base_dir` is searched before the Python path for
    a module name (a constitution's own folder, a config's).

    Raises:
        ImportError: a malformed target, a module that does not import (whatever it raised), a missing
            file or attribute.
        TypeError: the attribute is not callable.
    """
    source, sep, attribute = target.rpartition(":")
    if not sep or not source or not attribute:
        shapes = "module:function or path/to/file.py:function" if files else "package.module:function"
        raise ImportError(f"{target!r} is not a target: write it as {shapes}")
    if files and (source.endswith(".py") or "/" in source):
        module = _from_file(source, base_dir)
    else:
        module = _from_module(source, base_dir)
    found: Any = module
    for part in attribute.split("."):
        if not hasattr(found, part):
            raise ImportError(f"module {source!r} has no attribute {part!r}")
        found = getattr(found, part)
    if not callable(found):
        raise TypeError(f"{target} is a {type(found).__name__}, not a function")
    return found  # type: ignore[no-any-return]


def _from_module(name: str, base_dir: Path | None) -> Any:
    added = str(base_dir.resolve()) if base_dir is not None else None
    if added:
        sys.path.insert(0, added)
    try:
        return importlib.import_module(name)
    except Exception as exc:  # the user's module may raise anything while it loads; reported, not lost
        detail = " ".join(str(exc).split())[:200]
        raise ImportError(f"cannot import {name!r} ({type(exc).__name__}: {detail})") from None
    finally:
        if added:
            sys.path.remove(added)


def _from_file(source: str, base_dir: Path | None) -> Any:
    given = Path(source)
    path = given if given.is_absolute() or base_dir is None else base_dir / given
    if not path.is_file() and given.is_file():
        path = given
    if not path.is_file():
        raise ImportError(f"no file {path}")
    spec = importlib.util.spec_from_file_location(f"rlaif_user_{path.stem}", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"{path} is not a Python file")
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception as exc:  # as for a module: the user's file may raise anything while it loads
        detail = " ".join(str(exc).split())[:200]
        raise ImportError(f"cannot load {str(path)!r} ({type(exc).__name__}: {detail})") from None
    return module
