"""The package version, in one place: modules import it from here, never from the package root."""

__version__ = "0.1.0"

DISTRIBUTION = "rlaif-toolkit"
"""The name on the package registry (`pip install rlaif-toolkit`); the import name and command are `rlaif`
(the registry's `rlaif` is an unrelated project)."""
