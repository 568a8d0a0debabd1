"""The tool runtime: the tools a model may call while it answers, run with timeouts and output limits."""

from rlaif.tools.calculator import CALCULATOR, calculate
from rlaif.tools.runtime import BUILTIN_SPECS, BUILTINS, ToolRuntime, import_tool

__all__ = ["BUILTINS", "BUILTIN_SPECS", "CALCULATOR", "ToolRuntime", "calculate", "import_tool"]
