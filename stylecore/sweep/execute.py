"""Execute one run of a sweep with papermill into a private folder, then publish it atomically.

Used in the same way by both backends: the local backend runs :func:`execute_run` in a worker
process (``python -m stylecore.sweep._worker``) that writes under ``OUT/.tmp`` and renames the
folder to ``OUT/runs/<key>``; the Ray backend runs it in a task on any node, packs the folder
into a tar archive and the driver unpacks and renames it. A run folder only ever appears
complete: a killed sweep loses the runs in flight and nothing else.
"""

from __future__ import annotations

import io
import json
import os
import platform
import re
import shutil
import tarfile
import tempfile
import time
import traceback
import uuid
from pathlib import Path
from typing import Any

import stylecore

__all__ = ["execute_run", "commit_run", "pack_run", "unpack_run", "write_json_atomic", "failure_record"]

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def write_json_atomic(path: Path, obj: Any) -> None:
    """Write JSON beside ``path`` under a temporary name, then rename onto it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}")
    tmp.write_text(json.dumps(obj, indent=2, default=str) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def failure_record(exc: BaseException) -> dict[str, Any]:
    """What failed, where: papermill's failing cell (execution count, first source line) or the exception."""
    from papermill.exceptions import PapermillExecutionError

    if isinstance(exc, PapermillExecutionError):
        source = (exc.source or "").strip().splitlines()
        return {
            "ename": exc.ename,
            "evalue": _ANSI.sub("", str(exc.evalue))[:2000],
            "cell": f"In [{exc.exec_count}]" if exc.exec_count is not None else f"cell {exc.cell_index}",
            "cell_index": exc.cell_index,  # index in notebook.ipynb as executed (parameters cell injected)
            "cell_source": "\n".join(source[:5]),
            "traceback": _ANSI.sub("", "\n".join(exc.traceback))[-4000:],
        }
    return {"ename": type(exc).__name__, "evalue": str(exc)[:2000], "cell": None, "cell_index": None, "cell_source": "",
            "traceback": "".join(traceback.format_exception(exc))[-4000:]}


def _render_html(executed: Path, html: Path) -> None:
    import nbformat
    from nbconvert import HTMLExporter

    body, _ = HTMLExporter().from_notebook_node(nbformat.read(executed, as_version=4))
    html.write_text(body, encoding="utf-8")


def execute_run(spec: dict[str, Any], notebook: Path, work_dir: Path) -> dict[str, Any]:
    """Run ``notebook`` with ``spec["parameters"]`` into ``work_dir``; return (and write) its ``run.json``.

    ``work_dir`` ends up holding ``notebook.ipynb`` (executed, also when it failed), ``notebook.html``,
    what the notebook wrote to its ``output_dir`` (figures, ``summary.json``) and ``run.json`` with
    ``status`` "ok" or "failed" and, for a failure, the failing cell and error. Never raises for a
    failing notebook: one run's failure must not stop the others.
    """
    import papermill as pm

    work_dir = Path(work_dir).resolve()  # the kernel runs in another folder: a relative output_dir would land there
    work_dir.mkdir(parents=True, exist_ok=True)
    record: dict[str, Any] = {
        "key": spec["key"], "label": spec["label"], "parameters": spec["parameters"], "notebook": spec["notebook_name"],
        "stylecore_version": stylecore.code_version(), "host": platform.node(), "pid": os.getpid(),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "status": "running",
    }
    executed = work_dir / "notebook.ipynb"
    cwd = spec.get("cwd")
    cwd = cwd if cwd and Path(cwd).is_dir() else str(work_dir)  # a cluster node may lack the driver's folders
    t0 = time.perf_counter()
    try:
        pm.execute_notebook(str(notebook), str(executed), parameters={**spec["parameters"], "output_dir": str(work_dir), "interactive": False},
                            kernel_name=spec.get("kernel", "python3"), cwd=cwd, progress_bar=False, log_output=False,
                            execution_timeout=spec.get("timeout"))
        record["status"] = "ok"
    except Exception as exc:  # noqa: BLE001 - every failure is recorded, none stops the sweep
        record.update(status="failed", error=failure_record(exc))
    record["seconds"] = round(time.perf_counter() - t0, 2)
    if executed.is_file():
        try:
            _render_html(executed, work_dir / "notebook.html")
        except Exception as exc:  # noqa: BLE001 - a rendering problem does not make the run fail
            record["html_error"] = f"{type(exc).__name__}: {exc}"
    write_json_atomic(work_dir / "run.json", record)
    return record


def commit_run(work_dir: Path, dest: Path, trash_dir: Path) -> None:
    """Publish ``work_dir`` as ``dest`` by renames only; an earlier folder of the same run is replaced."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    if dest.exists():
        trash_dir.mkdir(parents=True, exist_ok=True)
        old = trash_dir / f"old-{dest.name}-{uuid.uuid4().hex[:8]}"
        os.replace(dest, old)
        os.replace(work_dir, dest)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(work_dir, dest)


def pack_run(work_dir: Path) -> bytes:
    """The folder as an uncompressed tar archive (figures are PNGs, already compressed)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for path in sorted(work_dir.rglob("*")):
            tar.add(path, arcname=str(path.relative_to(work_dir)), recursive=False)
    return buf.getvalue()


def unpack_run(data: bytes, work_dir: Path) -> None:
    work_dir.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(data), mode="r") as tar:
        tar.extractall(work_dir, filter="data")


def execute_packed(spec: dict[str, Any], notebook_bytes: bytes) -> tuple[dict[str, Any], bytes]:
    """Run in a private temporary folder (on whatever machine this is) and return (run.json, tar of the folder)."""
    with tempfile.TemporaryDirectory(prefix=f"stylecore-sweep-{spec['key']}-") as tmp:
        notebook = Path(tmp) / spec["notebook_name"]
        notebook.write_bytes(notebook_bytes)
        work_dir = Path(tmp) / "run"
        record = execute_run(spec, notebook, work_dir)
        return record, pack_run(work_dir)
