"""parasearch: Pareto-optimal parallel layouts for LLM serving, with the resource that binds.

The public API (everything else is internal):

    from parasearch import load_model, load_hardware, load_engine, Layout, Precision, Workload
    from parasearch import serve, decode_step, prefill_step, load_problem, run_search

Data flows one way: specs -> cost oracle -> placement space -> search -> report -> CLI.
"""

from .catalog.engines import load_engine
from .catalog.hardware import load_hardware
from .catalog.models import load_model
from .cost.layout import Layout
from .cost.precision import Precision
from .cost.serving import Workload, serve
from .cost.iteration import decode_step, prefill_step
from .errors import InfeasibleError, ParasearchError, SpecError
from .search import run_search
from .spec import load_problem

__version__ = "0.1.0"

__all__ = [
    "InfeasibleError", "Layout", "ParasearchError", "Precision", "SpecError", "Workload", "decode_step",
    "load_engine", "load_hardware", "load_model", "load_problem", "prefill_step", "run_search", "serve",
]
