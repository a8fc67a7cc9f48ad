"""Drive a sweep: skip finished runs, execute the rest on a local process pool or a Ray cluster.

:func:`run_sweep` is what ``stylecore sweep`` calls. Both backends produce the same
``OUT/runs/<key>`` folders; only where the papermill kernels run differs.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import stylecore

from .execute import commit_run, execute_packed, unpack_run, write_json_atomic
from .plan import GridSpec, Run, SweepError, load_grid, plan_runs, run_state

__all__ = ["SweepResult", "run_sweep"]

BACKENDS = ("local", "ray")


@dataclass
class SweepResult:
    runs: list[Run]
    skipped: list[str] = field(default_factory=list)  # keys already finished before this invocation
    executed: list[str] = field(default_factory=list)  # keys executed now, in order of completion
    failed: dict[str, dict[str, Any]] = field(default_factory=dict)  # key -> run.json of runs that failed now
    states: dict[str, str] = field(default_factory=dict)  # key -> ok | failed | pending, as on disk

    @property
    def ok(self) -> bool:
        return not self.failed and all(s == "ok" for s in self.states.values())


@contextlib.contextmanager
def _exclusive(out_dir: Path) -> Iterator[None]:
    """One sweep at a time per output folder (two would race on the same run folders)."""
    try:
        import fcntl
    except ImportError:  # Windows: no advisory locks; the user keeps sweeps apart
        yield
        return
    with open(out_dir / ".lock", "w") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise SweepError(f"another sweep is writing to {out_dir}; wait for it or choose another --out") from None
        yield


def _failed_folder(out_dir: Path, run: Run, spec: dict[str, Any], error: dict[str, Any]) -> dict[str, Any]:
    """A run whose worker or Ray task died before writing its folder gets one recording why."""
    work = out_dir / ".tmp" / f"{run.key}-{uuid.uuid4().hex[:8]}"
    work.mkdir(parents=True)
    record = {"key": run.key, "label": run.label, "parameters": run.parameters, "notebook": spec["notebook_name"],
              "stylecore_version": stylecore.code_version(), "status": "failed", "error": error, "seconds": None}
    write_json_atomic(work / "run.json", record)
    commit_run(work, out_dir / "runs" / run.key, out_dir / ".tmp")
    return record


def _local(out_dir: Path, todo: list[Run], spec_of: Callable[[Run], dict], workers: int, on_start: Callable, on_done: Callable) -> None:
    """A pool of ``workers`` processes, one ``python -m stylecore.sweep._worker`` per run."""
    queue, running = deque(todo), {}
    env = dict(os.environ)
    # share the cores between the runs, as Ray does with its tasks' CPUs (a user's own setting wins)
    env.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // workers)))
    try:
        while queue or running:
            while queue and len(running) < workers:
                run = queue.popleft()
                spec = spec_of(run)
                spec.update(work_dir=str(out_dir / ".tmp" / f"{run.key}-{uuid.uuid4().hex[:8]}"), dest=str(out_dir / "runs" / run.key),
                            trash_dir=str(out_dir / ".tmp"), parent_pid=os.getpid())
                spec_file = out_dir / ".tmp" / f"spec-{run.key}.json"
                write_json_atomic(spec_file, spec)
                log = open(spec_file.with_suffix(".log"), "wb")
                proc = subprocess.Popen([sys.executable, "-m", "stylecore.sweep._worker", str(spec_file)], stdout=log, stderr=subprocess.STDOUT, env=env)
                running[run.key] = (proc, run, spec, log)
                on_start(run)
            time.sleep(0.2)
            for key, (proc, run, spec, log) in list(running.items()):
                if proc.poll() is None:
                    continue
                del running[key]
                log.close()
                record_file = out_dir / "runs" / key / "run.json"
                if proc.returncode == 0 and record_file.is_file():
                    record = json.loads(record_file.read_text(encoding="utf-8"))
                else:
                    tail = Path(log.name).read_text(encoding="utf-8", errors="replace")[-3000:]
                    record = _failed_folder(out_dir, run, spec, {"ename": "WorkerError", "evalue": f"worker process exited with code {proc.returncode}",
                                                                 "cell": None, "cell_index": None, "cell_source": "", "traceback": tail})
                on_done(run, record)
    finally:  # interrupted: stop the runs in flight (their kernels exit with their worker)
        for proc, _, _, log in running.values():
            proc.terminate()
        for proc, _, _, log in running.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=10)
            log.close()


def _ray(out_dir: Path, todo: list[Run], spec_of: Callable[[Run], dict], notebook_bytes: bytes, address: str | None, workers: int,
         cpus_per_run: float, gpus_per_run: float, on_start: Callable, on_done: Callable) -> None:
    """Each run a Ray task with declared resources; its folder comes back as a tar archive to ``out_dir``."""
    try:
        import ray
    except ImportError:
        raise SweepError('the ray backend needs Ray: pip install -e ".[cluster]" (or pip install ray)') from None
    started_here = not ray.is_initialized()
    if started_here:
        try:
            if address in (None, "local"):
                ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False)
            else:
                ray.init(address=address, log_to_driver=False)
        except Exception as exc:  # noqa: BLE001 - ConnectionError, a node that failed to start, a bad address
            if address in (None, "local"):
                raise SweepError(f"could not start a local Ray instance: {exc} (a busy machine can miss Ray's start-up time limit; retry, "
                                 "or use the default local backend)") from None
            raise SweepError(f"could not connect to the Ray cluster at {address!r}: {exc} (start one with `ray start --head`, "
                             "pass --address ray://HOST:10001, or --address local for a one-machine instance)") from None
    task = ray.remote(num_cpus=cpus_per_run, num_gpus=gpus_per_run, max_retries=0)(execute_packed)
    nb_ref = ray.put(notebook_bytes)
    pending: dict[Any, tuple[Run, dict]] = {}
    for run in todo:
        spec = spec_of(run)
        pending[task.remote(spec, nb_ref)] = (run, spec)
        on_start(run)
    try:
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1, timeout=1.0)
            for ref in ready:
                run, spec = pending.pop(ref)
                try:
                    record, data = ray.get(ref)
                except Exception as exc:  # noqa: BLE001 - a lost node or worker: record it, go on
                    record = _failed_folder(out_dir, run, spec, {"ename": type(exc).__name__, "evalue": str(exc)[:2000], "cell": None,
                                                                 "cell_index": None, "cell_source": "", "traceback": ""})
                else:
                    work = out_dir / ".tmp" / f"{run.key}-{uuid.uuid4().hex[:8]}"
                    unpack_run(data, work)
                    commit_run(work, out_dir / "runs" / run.key, out_dir / ".tmp")
                on_done(run, record)
    finally:
        for ref in pending:
            with contextlib.suppress(Exception):
                ray.cancel(ref, force=True)
        if started_here:
            ray.shutdown()


def run_sweep(notebook: str | os.PathLike[str], grid: GridSpec | str | os.PathLike[str], out_dir: str | os.PathLike[str], *,
              backend: str = "local", workers: int = 2, address: str | None = None, cpus_per_run: float = 1, gpus_per_run: float = 0,
              kernel: str = "python3", timeout: int | None = None, dry_run: bool = False, report: bool = True,
              progress: bool = True, echo: Callable[[str], None] | None = None) -> SweepResult:
    """Execute every unfinished run of ``grid`` over ``notebook`` into ``out_dir``; build results and gallery.

    Runs already finished (``OUT/runs/<key>/run.json`` with status "ok") are skipped; failed and
    interrupted ones run again. With ``dry_run`` nothing is written or executed.
    """
    from tqdm.auto import tqdm

    if backend not in BACKENDS:
        raise SweepError(f"backend must be one of {BACKENDS}, got {backend!r}")
    if workers < 1:
        raise SweepError(f"workers must be at least 1, got {workers}")
    notebook, out_dir = Path(notebook), Path(out_dir)
    spec_grid = grid if isinstance(grid, GridSpec) else load_grid(grid)
    runs = plan_runs(notebook, spec_grid)
    result = SweepResult(runs, states={r.key: run_state(out_dir, r.key) for r in runs})
    echo = echo or (lambda line: tqdm.write(line))
    if dry_run:
        return result
    nb_bytes = notebook.read_bytes()
    out_dir.mkdir(parents=True, exist_ok=True)
    with _exclusive(out_dir):
        shutil.rmtree(out_dir / ".tmp", ignore_errors=True)  # runs in flight when an earlier sweep was killed
        (out_dir / ".tmp").mkdir()
        snapshot = out_dir / ".tmp" / notebook.name  # the workers run this copy: editing the notebook mid-sweep changes nothing
        snapshot.write_bytes(nb_bytes)
        write_json_atomic(out_dir / "sweep.json", {
            "notebook": str(notebook.resolve()), "notebook_name": notebook.name, "notebook_sha256": hashlib.sha256(nb_bytes).hexdigest(),
            "stylecore_version": stylecore.code_version(), "axes": spec_grid.axes, "fixed": spec_grid.parameters,
            "rows": spec_grid.rows, "cols": spec_grid.cols,
            "runs": [{"key": r.key, "label": r.label, "parameters": r.parameters} for r in runs]})
        result.skipped = [r.key for r in runs if result.states[r.key] == "ok"]
        todo = [r for r in runs if result.states[r.key] != "ok"]

        def spec_of(run: Run) -> dict[str, Any]:
            return {"key": run.key, "label": run.label, "parameters": run.parameters, "notebook_name": notebook.name,
                    "notebook_path": str(snapshot), "cwd": str(notebook.resolve().parent), "kernel": kernel, "timeout": timeout}

        bar = tqdm(total=len(runs), initial=len(result.skipped), desc=f"sweep {notebook.stem}", unit="run", disable=not progress)
        in_flight: set[str] = set()

        def show() -> None:
            n_ok = sum(s == "ok" for s in result.states.values())
            bar.set_postfix_str(f"running {len(in_flight)} · ok {n_ok} · failed {len(result.failed)}", refresh=True)

        def on_start(run: Run) -> None:
            in_flight.add(run.key)
            echo(f"start   {run.key}  {run.label}")
            show()

        def on_done(run: Run, record: dict[str, Any]) -> None:
            in_flight.discard(run.key)
            result.executed.append(run.key)
            result.states[run.key] = record["status"]
            if record["status"] != "ok":
                result.failed[run.key] = record
            err = record.get("error") or {}
            detail = f"{err.get('cell') or ''} {err.get('ename', '')}: {err.get('evalue', '')}".strip() if err else ""
            echo(f"{record['status']:<7} {run.key}  {run.label}  ({record.get('seconds')} s) {detail}")
            bar.update(1)
            show()

        show()
        try:
            try:
                if backend == "local":
                    _local(out_dir, todo, spec_of, workers, on_start, on_done)
                else:
                    _ray(out_dir, todo, spec_of, nb_bytes, address, workers, cpus_per_run, gpus_per_run, on_start, on_done)
            finally:
                bar.close()
            if report:
                from .report import build_report

                build_report(out_dir)
        finally:  # also when interrupted: the runs in flight have been stopped, their unfinished folders go
            shutil.rmtree(out_dir / ".tmp", ignore_errors=True)
    return result
