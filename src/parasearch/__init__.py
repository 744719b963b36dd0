"""parasearch: Pareto-optimal parallel layouts for LLM serving, with the resource that binds.

The public API (everything else is internal):

    from parasearch import load_model, load_hardware, load_engine, Layout, Precision, Workload
    from parasearch import serve, decode_step, prefill_step, load_problem, run_search

Data flows one way: specs -> cost oracle -> placement space -> search -> report -> CLI.

Names are imported on first use, so that `import parasearch` (and the CLI's `--help`) stays fast.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

from .errors import InfeasibleError, ParasearchError, SpecError

_LAZY = {
    "load_engine": ".catalog.engines", "load_hardware": ".catalog.hardware", "load_model": ".catalog.models",
    "Layout": ".cost.layout", "Precision": ".cost.precision", "Workload": ".cost.serving", "serve": ".cost.serving",
    "decode_step": ".cost.iteration", "prefill_step": ".cost.iteration", "run_search": ".search", "load_problem": ".spec",
}

if TYPE_CHECKING:
    from .catalog.engines import load_engine
    from .catalog.hardware import load_hardware
    from .catalog.models import load_model
    from .cost.layout import Layout
    from .cost.precision import Precision
    from .cost.serving import Workload, serve
    from .cost.iteration import decode_step, prefill_step
    from .search import run_search
    from .spec import load_problem


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(import_module(_LAZY[name], __name__), name)
        globals()[name] = value
        return value
    if name == "__version__":
        from importlib.metadata import PackageNotFoundError, version
        try:
            return version("parasearch")
        except PackageNotFoundError:
            return "0+unknown"
    raise AttributeError(f"module 'parasearch' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY) | {"__version__"})


__all__ = [
    "InfeasibleError", "Layout", "ParasearchError", "Precision", "SpecError", "Workload", "decode_step",
    "load_engine", "load_hardware", "load_model", "load_problem", "prefill_step", "run_search", "serve",
]
