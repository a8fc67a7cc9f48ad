"""Parameter sweeps: one command for a grid of papermill reruns of a notebook.

``stylecore sweep NOTEBOOK GRID.yaml --out DIR`` (or ``python -m stylecore.sweep``) expands the
grid (fixed parameters, a product of axes, extra points), runs each point once into
``DIR/runs/<key>`` (key = hash of notebook content, parameters and stylecore version), on a local
process pool or a Ray cluster, and writes ``results.csv``, contact sheets and ``index.html``.
Rerunning resumes. In a notebook, :func:`load_sweep` gives the finished runs with their
parameters and folders (notebook 05's ``sweep_dirs``).

Modules: ``plan`` (grid file, keys, state on disk), ``execute`` (one run, atomic publish),
``backends`` (local pool, Ray), ``report`` (CSV, contact sheets, gallery), ``cli``.
"""

from .backends import SweepResult, run_sweep
from .plan import GridSpec, Run, SweepError, SweepRun, load_grid, load_sweep, plan_runs, run_key
from .report import build_report

__all__ = ["GridSpec", "Run", "SweepError", "SweepResult", "SweepRun", "build_report", "load_grid", "load_sweep", "plan_runs",
           "run_key", "run_sweep"]
