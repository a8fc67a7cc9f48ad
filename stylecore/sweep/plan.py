"""A sweep's plan: the grid file, the runs it expands to, each run's key and state on disk.

Layout of a sweep's output folder ``OUT``::

    OUT/sweep.json              the plan of the last invocation (notebook, runs, gallery axes)
    OUT/runs/<key>/             one finished run: notebook.ipynb, notebook.html, figures,
                                summary.json, run.json (status "ok" or "failed")
    OUT/.tmp/                   runs in flight (deleted at the start of the next invocation)
    OUT/results.csv, OUT/index.html, OUT/contact_sheets/*.png

A run's key is a hash of (notebook content, parameters, stylecore version and a digest of its
sources, :func:`stylecore.code_version`): change any of
them and the run is a new one; rerun the same command and finished runs are skipped.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

import stylecore

__all__ = ["GridSpec", "Run", "SweepRun", "SweepError", "load_grid", "plan_runs", "run_key", "run_state", "load_sweep"]

SWEEP_OWNED = ("output_dir", "interactive")  # parameters the sweep sets for every run
GRID_KEYS = ("parameters", "axes", "points", "gallery")


class SweepError(ValueError):
    """A problem with a sweep's input that the user can fix (the message says how)."""


@dataclass(frozen=True)
class GridSpec:
    """What a grid YAML says: fixed parameters, axes (a product of lists), extra points."""

    parameters: dict[str, Any]
    axes: dict[str, list[Any]]
    points: list[dict[str, Any]]
    rows: str | None = None  # gallery / contact-sheet axes
    cols: str | None = None


@dataclass(frozen=True)
class Run:
    """One papermill execution: the full parameter set (without the sweep-owned ones) and its key."""

    key: str
    parameters: dict[str, Any]
    label: str  # the varying parameters, for humans


@dataclass
class SweepRun:
    """A run as found on disk by :func:`load_sweep`."""

    key: str
    parameters: dict[str, Any]
    label: str
    status: str  # "ok" | "failed" | "pending"
    folder: Path
    record: dict[str, Any] = field(default_factory=dict)  # run.json
    summary: dict[str, Any] = field(default_factory=dict)  # the notebook's summary.json


def _canonical(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)


def run_key(notebook_bytes: bytes, parameters: dict[str, Any], version: str | None = None) -> str:
    """sha256 of (notebook content, parameters, stylecore version with its source digest: :func:`stylecore.code_version`), first 16 hex digits."""
    h = hashlib.sha256()
    h.update(hashlib.sha256(notebook_bytes).digest())
    h.update(_canonical(parameters).encode())
    h.update((version or stylecore.code_version()).encode())
    return h.hexdigest()[:16]


def _mapping(obj: Any, where: str) -> dict[str, Any]:
    if obj is None:
        return {}
    if not isinstance(obj, dict) or not all(isinstance(k, str) for k in obj):
        raise SweepError(f"{where} must be a mapping of parameter names to values, got {type(obj).__name__}: {obj!r}")
    return dict(obj)


def load_grid(path: str | os.PathLike[str], overrides: dict[str, Any] | None = None, defaults: dict[str, Any] | None = None) -> GridSpec:
    """Read and check a grid YAML.

    Fixed parameters are ``defaults`` (``-f`` files, e.g. quick mode), then the file's
    ``parameters``, then ``overrides`` (``-p``); the axes and points vary on top of them.

    Format::

        parameters: {experiments: [ratio_grid]}     # fixed for every run
        axes: {grid_depths: [[1], [5]], grid_factors: [[0.1], [1.0]]}   # product of lists
        points: [{preset: authors_code}]             # extra runs: overrides of the fixed parameters
        gallery: {rows: grid_depths, cols: grid_factors}
    """
    path = Path(path)
    if not path.is_file():
        raise SweepError(f"grid file {path} not found; give a YAML file with 'parameters', 'axes' and/or 'points' (examples in sweeps/)")
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as e:
        raise SweepError(f"grid file {path} is not valid YAML: {e}") from None
    if not isinstance(doc, dict):
        raise SweepError(f"grid file {path} must be a mapping with keys {GRID_KEYS}, got {type(doc).__name__}")
    unknown = sorted(set(doc) - set(GRID_KEYS))
    if unknown:
        raise SweepError(f"grid file {path}: unknown key(s) {unknown}; allowed: {list(GRID_KEYS)}")
    fixed = {**(defaults or {}), **_mapping(doc.get("parameters"), f"{path}: 'parameters'"), **(overrides or {})}
    axes = _mapping(doc.get("axes"), f"{path}: 'axes'")
    for name, values in axes.items():
        if not isinstance(values, list) or not values:
            raise SweepError(f"{path}: axis {name!r} must be a non-empty list of values, got {values!r} (a list-valued parameter needs a list of lists)")
    points = doc.get("points") or []
    if not isinstance(points, list):
        raise SweepError(f"{path}: 'points' must be a list of mappings, got {type(points).__name__}")
    points = [_mapping(p, f"{path}: points[{i}]") for i, p in enumerate(points)]
    gallery = _mapping(doc.get("gallery"), f"{path}: 'gallery'")
    bad = sorted(set(gallery) - {"rows", "cols"})
    if bad:
        raise SweepError(f"{path}: 'gallery' takes 'rows' and 'cols' (axis names), not {bad}")
    if not axes and not points:
        raise SweepError(f"{path}: nothing to run; give 'axes' (a product of lists) and/or 'points' (explicit runs)")
    return GridSpec(fixed, axes, points, gallery.get("rows"), gallery.get("cols"))


def notebook_parameters(notebook: Path) -> dict[str, Any]:
    """The notebook's ``parameters`` cell as papermill reads it: name -> {inferred_type_name, default, help}."""
    import papermill as pm

    return pm.inspect_notebook(str(notebook))


def plan_runs(notebook: str | os.PathLike[str], grid: GridSpec) -> list[Run]:
    """Expand the grid into runs (product of the axes, then the extra points), without duplicates.

    Every parameter name is checked against the notebook's ``parameters`` cell, so a typo fails
    before anything runs.
    """
    notebook = Path(notebook)
    if not notebook.is_file() or notebook.suffix != ".ipynb":
        raise SweepError(f"notebook {notebook} not found (give the path of a .ipynb file, e.g. notebooks/05_kwon_2022_clipstyler.ipynb)")
    known = notebook_parameters(notebook)
    if not known:
        raise SweepError(f"{notebook} has no cell tagged 'parameters'; papermill cannot inject values (see CONTRIBUTING.md)")
    for name in SWEEP_OWNED:
        if name not in known:
            raise SweepError(f"{notebook}'s parameters cell has no {name!r}; the sweep sets it for every run (see CONTRIBUTING.md)")
    used = set(grid.parameters) | set(grid.axes) | {k for p in grid.points for k in p}
    for name in sorted(used):
        if name in SWEEP_OWNED:
            raise SweepError(f"parameter {name!r} is set by the sweep for every run; remove it from the grid file")
        if name not in known:
            raise SweepError(f"parameter {name!r} is not in {notebook.name}'s parameters cell; known: {', '.join(known)}")
    for name in (grid.rows, grid.cols):
        if name is not None and name not in grid.axes:
            raise SweepError(f"gallery axis {name!r} is not one of the grid's axes {list(grid.axes)}")
    nb_bytes = notebook.read_bytes()
    names = list(grid.axes)
    combos = [dict(zip(names, values)) for values in itertools.product(*grid.axes.values())] if names else []
    combos += grid.points
    varying = list(dict.fromkeys([*names, *(k for c in combos for k in c)]))  # axes in file order, then the points' names
    runs, seen = [], set()
    for combo in combos:
        params = {**grid.parameters, **combo}
        key = run_key(nb_bytes, params)
        if key in seen:
            continue
        seen.add(key)
        label = ", ".join(f"{k}={_short(params[k])}" for k in varying if k in params)
        runs.append(Run(key, params, label))
    return runs


def _short(value: Any) -> str:
    return json.dumps(value, default=str) if not isinstance(value, str) else value


def run_state(out_dir: str | os.PathLike[str], key: str) -> str:
    """'ok', 'failed' or 'pending' (no finished folder: never ran, or was in flight when killed)."""
    record = Path(out_dir) / "runs" / key / "run.json"
    if not record.is_file():
        return "pending"
    try:
        return json.loads(record.read_text(encoding="utf-8")).get("status", "failed")
    except (OSError, json.JSONDecodeError):
        return "failed"


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return {}


def load_sweep(out_dir: str | os.PathLike[str], status: str | None = "ok") -> list[SweepRun]:
    """The runs of the sweep last planned in ``out_dir``, in plan order, with parameters and folders.

    ``status="ok"`` (default) keeps finished runs; ``None`` returns every planned run. Notebook 05
    passes ``[str(r.folder) for r in load_sweep(out)]`` as its ``sweep_dirs``.
    """
    out_dir = Path(out_dir)
    plan_file = out_dir / "sweep.json"
    if not plan_file.is_file():
        raise SweepError(f"{out_dir} holds no sweep (no sweep.json); run `stylecore sweep NOTEBOOK GRID.yaml --out {out_dir}` first")
    plan = json.loads(plan_file.read_text(encoding="utf-8"))
    runs = []
    for r in plan["runs"]:
        folder = out_dir / "runs" / r["key"]
        state = run_state(out_dir, r["key"])
        record, summary = _read_json(folder / "run.json"), _read_json(folder / "summary.json")
        runs.append(SweepRun(r["key"], r["parameters"], r["label"], state, folder, record, summary))
    return [r for r in runs if status is None or r.status == status]
