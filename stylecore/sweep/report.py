"""A sweep's results: ``results.csv``, one contact sheet per figure name, and ``index.html``.

Everything is rebuilt from the run folders on disk (``OUT/runs/<key>``), so it is the same
whichever backend produced them and can be rebuilt at any time with :func:`build_report`.
The gallery is static HTML with relative links only: it opens from disk, without a server.
"""

from __future__ import annotations

import csv
import html
import io
import json
import os
import re
from pathlib import Path
from typing import Any
from urllib.parse import quote

from .plan import SweepRun, load_sweep

__all__ = ["build_report", "results_rows", "grid_layout"]

SKIP_SUMMARY = ("parameters", "environment", "files", "notebook")


def _flatten_numbers(obj: Any, prefix: str = "") -> dict[str, float]:
    """Numeric leaves of a summary.json as dotted names (lists and strings are left out)."""
    out: dict[str, float] = {}
    if isinstance(obj, dict):
        for k, v in obj.items():
            if not prefix and k in SKIP_SUMMARY:
                continue
            out.update(_flatten_numbers(v, f"{prefix}{k}."))
    elif isinstance(obj, (int, float)) and not isinstance(obj, bool):
        out[prefix[:-1]] = obj
    return out


def _cell(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, default=str)


def results_rows(runs: list[SweepRun]) -> tuple[list[str], list[dict[str, Any]]]:
    """One row per run: key, status, seconds, its parameters, error, then every number in summary.json."""
    params = list(dict.fromkeys(k for r in runs for k in r.parameters))
    numbers = list(dict.fromkeys(k for r in runs for k in _flatten_numbers(r.summary)))
    header = ["key", "status", "seconds", *params, "error", "failed_cell", *numbers]
    rows = []
    for r in runs:
        err = r.record.get("error") or {}
        row = {"key": r.key, "status": r.status, "seconds": r.record.get("seconds", ""),
               "error": f"{err.get('ename')}: {err.get('evalue')}" if err else "", "failed_cell": err.get("cell") or ""}
        row.update({k: _cell(r.parameters[k]) for k in params if k in r.parameters})
        row.update(_flatten_numbers(r.summary))
        rows.append(row)
    return header, rows


def grid_layout(runs: list[SweepRun], rows: str | None, cols: str | None) -> dict[str, tuple[list[str], list[str], dict[tuple[str, str], SweepRun]]]:
    """Slices of the grid: {slice label: (row labels, column labels, {(row, col): run})}.

    Rows and columns are the values of two axes; every other varying parameter (a third axis, an
    extra point's override) makes a slice of its own.
    """
    varying = [k for k in dict.fromkeys(k for r in runs for k in r.parameters)
               if len({json.dumps(r.parameters.get(k), sort_keys=True, default=str) for r in runs}) > 1]
    slices: dict[str, tuple[list[str], list[str], dict]] = {}
    for r in runs:
        rest = ", ".join(f"{k}={_cell(r.parameters.get(k, 'default'))}" for k in varying if k not in (rows, cols))
        row = _cell(r.parameters.get(rows, "default")) if rows else ""
        col = _cell(r.parameters.get(cols, "default")) if cols else ""
        row_labels, col_labels, cells = slices.setdefault(rest, ([], [], {}))
        if row not in row_labels:
            row_labels.append(row)
        if col not in col_labels:
            col_labels.append(col)
        cells[(row, col)] = r
    return slices


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._=-]+", "_", text).strip("_")[:80]


def _contact_sheet(name: str, title: str, rows: str | None, cols: str | None, layout: tuple, path: Path) -> None:
    from matplotlib.figure import Figure
    from matplotlib.image import imread

    row_labels, col_labels, cells = layout
    fig = Figure(figsize=(2.6 * len(col_labels) + 0.6, 2.6 * len(row_labels) + 0.8))
    axes = fig.subplots(len(row_labels), len(col_labels), squeeze=False)
    for i, rl in enumerate(row_labels):
        for j, cl in enumerate(col_labels):
            ax = axes[i][j]
            ax.set_xticks([]), ax.set_yticks([])
            run = cells.get((rl, cl))
            png = run.folder / f"{name}.png" if run else None
            if png is not None and png.is_file():
                ax.imshow(imread(png))
            else:
                ax.text(0.5, 0.5, run.status if run else "no run", ha="center", va="center", transform=ax.transAxes, color="crimson")
            if i == 0 and cols:
                ax.set_title(f"{cols}={cl}", fontsize=8)
            if j == 0 and rows:
                ax.set_ylabel(f"{rows}={rl}", fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=90)
    os.replace(tmp, path)


def _href(out_dir: Path, path: Path) -> str:
    return quote(path.relative_to(out_dir).as_posix())


def _run_link(out_dir: Path, run: SweepRun) -> Path | None:
    for name in ("notebook.html", "notebook.ipynb", "run.json"):
        if (run.folder / name).is_file():
            return run.folder / name
    return None


def _gallery(out_dir: Path, plan: dict, runs: list[SweepRun], figures: list[str], sheets: list[Path], rows: str | None, cols: str | None) -> str:
    e = html.escape
    n_ok = sum(r.status == "ok" for r in runs)
    n_failed = sum(r.status == "failed" for r in runs)
    parts = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>sweep: {e(plan['notebook_name'])}</title><style>",
             "body{font-family:sans-serif;margin:1.5em} table{border-collapse:collapse} td,th{border:1px solid #ccc;padding:4px;"
             "vertical-align:top;font-size:12px} img{max-width:220px;max-height:220px} .failed{color:crimson} .pending{color:gray}</style></head><body>",
             f"<h1>Sweep of {e(plan['notebook_name'])}</h1>",
             f"<p>{len(runs)} runs: {n_ok} ok, {n_failed} failed, {len(runs) - n_ok - n_failed} pending. "
             f"Fixed parameters: <code>{e(json.dumps(plan.get('fixed', {}), default=str))}</code>. "
             f"Files: <a href='results.csv'>results.csv</a>, <a href='sweep.json'>sweep.json</a>.</p>"]
    if sheets:
        parts.append("<p>Contact sheets: " + ", ".join(f"<a href='{_href(out_dir, s)}'>{e(s.stem)}</a>" for s in sheets) + "</p>")
    layout = grid_layout(runs, rows, cols)
    for name in figures:  # figures made by more than one run: as a grid
        parts.append(f"<h2>{e(name)}</h2>")
        for rest, (row_labels, col_labels, cells) in layout.items():
            if rest:
                parts.append(f"<h3>{e(rest)}</h3>")
            parts.append("<table><tr><th></th>" + "".join(f"<th>{e(f'{cols}={c}' if cols else '')}</th>" for c in col_labels) + "</tr>")
            for rl in row_labels:
                parts.append(f"<tr><th>{e(f'{rows}={rl}' if rows else '')}</th>")
                for cl in col_labels:
                    run = cells.get((rl, cl))
                    link = _run_link(out_dir, run) if run else None
                    png = run.folder / f"{name}.png" if run else None
                    inner = (f"<img src='{_href(out_dir, png)}' alt='{e(run.label)}' loading='lazy'>" if png is not None and png.is_file()
                             else f"<span class='{e(run.status) if run else 'pending'}'>{e(run.status) if run else 'no run'}</span>")
                    parts.append(f"<td><a href='{_href(out_dir, link)}'>{inner}</a></td>" if link else f"<td>{inner}</td>")
                parts.append("</tr>")
            parts.append("</table>")
    parts.append("<h2>All runs</h2><table><tr><th>run</th><th>status</th><th>parameters</th><th>seconds</th><th>error</th></tr>")
    for run in runs:
        err = run.record.get("error") or {}
        files = [f for f in ("notebook.html", "notebook.ipynb", "summary.json", "run.json") if (run.folder / f).is_file()]
        files += sorted(p.name for p in run.folder.glob("*.png"))
        links = " ".join(f"<a href='{_href(out_dir, run.folder / f)}'>{e(f)}</a>" for f in files)
        error = f"{err.get('cell') or ''} {err.get('ename')}: {err.get('evalue')}" if err else ""
        parts.append(f"<tr><td><code>{e(run.key)}</code><br>{links}</td><td class='{e(run.status)}'>{e(run.status)}</td>"
                     f"<td>{e(run.label)}</td><td>{e(str(run.record.get('seconds', '')))}</td><td class='failed'>{e(error)}</td></tr>")
    parts.append("</table></body></html>\n")
    return "\n".join(parts)


def build_report(out_dir: str | os.PathLike[str], rows: str | None = None, cols: str | None = None) -> dict[str, Any]:
    """Write ``results.csv``, ``contact_sheets/<figure>.png`` and ``index.html`` for the sweep in ``out_dir``.

    ``rows``/``cols`` choose the two axes of the sheets and the gallery (default: the grid file's
    ``gallery`` entry, else the first two axes). Returns the paths written.
    """
    out_dir = Path(out_dir)
    plan = json.loads((out_dir / "sweep.json").read_text(encoding="utf-8"))
    runs = load_sweep(out_dir, status=None)
    axes = list(plan.get("axes", {}))
    rows = rows or plan.get("rows") or (axes[0] if len(axes) >= 2 else None)
    cols = cols or plan.get("cols") or next((a for a in axes if a != rows), None)

    header, table = results_rows(runs)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=header, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(table)
    tmp = out_dir / ".results.csv.tmp"
    tmp.write_text(buf.getvalue(), encoding="utf-8")
    os.replace(tmp, out_dir / "results.csv")

    ok = [r for r in runs if r.status == "ok"]
    counts: dict[str, int] = {}
    for r in ok:
        for png in r.folder.glob("*.png"):
            counts[png.stem] = counts.get(png.stem, 0) + 1
    figures = sorted(counts)
    sheet_dir = out_dir / "contact_sheets"
    sheet_dir.mkdir(exist_ok=True)
    sheets = []
    for name in (f for f in figures if counts[f] > 1):  # a figure only one run made has no grid to show
        for rest, layout in grid_layout(runs, rows, cols).items():
            path = sheet_dir / (f"{name}__{_slug(rest)}.png" if rest else f"{name}.png")
            _contact_sheet(name, f"{plan['notebook_name']}: {name}" + (f" ({rest})" if rest else ""), rows, cols, layout, path)
            sheets.append(path)

    page = _gallery(out_dir, plan, runs, [f for f in figures if counts[f] > 1], sheets, rows, cols)
    tmp = out_dir / ".index.html.tmp"
    tmp.write_text(page, encoding="utf-8")
    os.replace(tmp, out_dir / "index.html")
    return {"results": out_dir / "results.csv", "contact_sheets": sheets, "index": out_dir / "index.html"}
