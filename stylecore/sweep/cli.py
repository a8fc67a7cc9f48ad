"""``stylecore sweep``: the command line of :func:`stylecore.sweep.run_sweep`."""

from __future__ import annotations

import argparse
import json
import signal
import sys
from pathlib import Path
from typing import Any

import yaml

from .backends import BACKENDS, run_sweep
from .plan import SweepError, load_grid

__all__ = ["main"]

EPILOG = """examples:
  stylecore sweep notebooks/05_kwon_2022_clipstyler.ipynb sweeps/05_clipstyler_ablations.yaml --out runs/clipstyler
  stylecore sweep notebooks/01_gatys_2016_neural_style.ipynb sweeps/01_gatys_ratio_layers.yaml --out runs/gatys \\
      -f tests/notebooks/params/01_gatys_2016_neural_style.json --workers 2      # quick mode
  stylecore sweep NOTEBOOK GRID.yaml --out runs/x --backend ray --address auto --gpus-per-run 1
Rerun the same command to resume: finished runs are skipped, failed and interrupted ones run again."""


def _value(text: str) -> Any:
    """A -p value: JSON first (so 1e-3 is a number), then YAML (so [a, b] is a list), else the string."""
    for parse in (json.loads, yaml.safe_load):
        try:
            return parse(text)
        except (ValueError, yaml.YAMLError):
            continue
    return text


def _parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="stylecore", description="Tools of the style-transfer notebook collection.")
    sub = top.add_subparsers(dest="command", required=True)
    p = sub.add_parser("sweep", help="run a notebook over a grid of parameters (papermill), resumable, locally or on Ray",
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("notebook", type=Path, help="the notebook to execute (.ipynb with a cell tagged 'parameters')")
    p.add_argument("grid", type=Path, help="grid YAML: parameters (fixed), axes (product of lists), points (extra runs), gallery (rows, cols)")
    p.add_argument("--out", type=Path, required=True, help="output folder: runs/<key>/, results.csv, contact_sheets/, index.html")
    p.add_argument("--backend", choices=BACKENDS, default="local", help="local process pool (default) or a Ray cluster")
    p.add_argument("--workers", type=int, default=2, help="local backend: runs at a time (default 2); ray with --address local: CPUs")
    p.add_argument("--address", default="auto", help="ray backend: auto (a running cluster), ray://host:port, or local (start one here)")
    p.add_argument("--cpus-per-run", type=float, default=1, help="ray backend: CPUs each run declares (default 1)")
    p.add_argument("--gpus-per-run", type=float, default=0, help="ray backend: GPUs each run declares (default 0); pass -p device cuda too")
    p.add_argument("-p", "--parameter", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                   help="fixed parameter for every run (JSON or YAML value), overrides the grid file")
    p.add_argument("-f", "--parameters-file", type=Path, action="append", default=[],
                   help="JSON/YAML file of parameters under the grid file's (e.g. tests/notebooks/params/<notebook>.json for quick mode)")
    p.add_argument("--rows", help="axis shown as rows in contact sheets and gallery (default: the grid file's, else the first axis)")
    p.add_argument("--cols", help="axis shown as columns (default: the grid file's, else the second axis)")
    p.add_argument("--kernel", default="python3", help="Jupyter kernel name (default python3)")
    p.add_argument("--timeout", type=int, default=None, help="seconds one cell may run before the run fails (default: no limit)")
    p.add_argument("--dry-run", action="store_true", help="list the runs and which are done; execute nothing")
    p.add_argument("--no-progress", action="store_true", help="no progress bar (per-run lines are still printed)")
    return top


def _defaults(args: argparse.Namespace) -> dict[str, Any]:
    fixed: dict[str, Any] = {}
    for path in args.parameters_file:
        if not path.is_file():
            raise SweepError(f"parameters file {path} not found")
        doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        if not isinstance(doc, dict):
            raise SweepError(f"parameters file {path} must hold a mapping of parameter names to values")
        fixed.update(doc)
    return fixed


def _sweep(args: argparse.Namespace) -> int:
    grid = load_grid(args.grid, {name: _value(text) for name, text in args.parameter}, _defaults(args))
    for flag in ("rows", "cols"):
        axis = getattr(args, flag)
        if axis is not None and axis not in grid.axes:
            raise SweepError(f"--{flag} {axis}: not one of the grid's axes {list(grid.axes)}")
    if args.rows or args.cols:
        grid = type(grid)(grid.parameters, grid.axes, grid.points, args.rows or grid.rows, args.cols or grid.cols)
    result = run_sweep(args.notebook, grid, args.out, backend=args.backend, workers=args.workers, address=args.address,
                       cpus_per_run=args.cpus_per_run, gpus_per_run=args.gpus_per_run, kernel=args.kernel, timeout=args.timeout,
                       dry_run=args.dry_run, progress=not args.no_progress, echo=print if args.no_progress else None)
    states = result.states
    if args.dry_run:
        for run in result.runs:
            print(f"{states[run.key]:<8} {run.key}  {run.label}")
        todo = sum(s != "ok" for s in states.values())
        print(f"{len(result.runs)} runs: {len(result.runs) - todo} done, {sum(s == 'failed' for s in states.values())} failed, "
              f"{todo} to run -> {args.out}")
        return 0
    print(f"{len(result.runs)} runs: {len(result.skipped)} already done, {len(result.executed)} executed now, {len(result.failed)} failed")
    for key, record in result.failed.items():
        err = record.get("error") or {}
        print(f"  FAILED {key}  {record['label']}\n    at {err.get('cell') or '?'}: {err.get('ename')}: {err.get('evalue')}\n"
              f"    {err.get('cell_source', '').splitlines()[0] if err.get('cell_source') else ''}\n"
              f"    see {args.out / 'runs' / key / 'notebook.ipynb'}")
    print(f"results: {args.out / 'results.csv'}   gallery: {args.out / 'index.html'}")
    return 1 if result.failed else 0


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    previous = signal.signal(signal.SIGTERM, _interrupt)  # `kill` stops the runs in flight like Ctrl-C does
    try:
        return _sweep(args)
    except SweepError as e:
        print(f"stylecore sweep: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("stylecore sweep: interrupted; finished runs are kept, the runs in flight are lost. Rerun the same command to resume.",
              file=sys.stderr)
        return 130
    finally:
        signal.signal(signal.SIGTERM, previous)
