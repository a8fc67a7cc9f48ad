"""Wall time of each notebook at its committed defaults (or in quick mode), executed headless.

    PYTHONPATH=. python benchmarks/bench_notebooks.py [STEM ...] [--quick] [--out build/notebook_times]

Runs every notebook (or the stems given) with papermill at the parameters committed in its
``parameters`` cell — only ``output_dir`` and ``interactive=False`` are set — in a fresh cache
folder, offline (random weights, as on this machine), with the sample images of
``$STYLECORE_DATA_DIR`` (``../shared/data`` when it exists). ``--quick`` adds the quick-mode
parameter file of the tests. Prints and writes ``times.md``: wall seconds per notebook, the kernel's CPU seconds
(user + system, from ``getrusage`` of the reaped kernel process) and the machine's load average
before and after. On a loaded machine the wall time over-estimates an idle one's; the CPU seconds
do not depend on the load, and divided by the number of cores they bound an idle run from below.

The collection's promise (CONTRIBUTING.md) is that committed defaults finish in ≤ 10 minutes
on a 2-core CPU; this is the script that checks it.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import tempfile
import time
from pathlib import Path

import papermill as pm

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
PARAMS = ROOT / "tests" / "notebooks" / "params"
BUDGET_S = 600.0


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_one(stem: str, quick: bool, out: Path) -> tuple[float, float]:
    """Execute ``notebooks/<stem>.ipynb`` in a fresh cache folder; returns (wall, kernel CPU) seconds."""
    params = json.loads((PARAMS / f"{stem}.json").read_text()) if quick else {}
    params.update(output_dir=str(out / stem), interactive=False)
    shutil.rmtree(out / stem, ignore_errors=True)  # no checkpoint or cache of an earlier run: a first run's time
    env = dict(os.environ)
    with tempfile.TemporaryDirectory(prefix="stylecore-bench-") as cache:
        os.environ.update(STYLECORE_CACHE=cache, TORCH_HOME=str(Path(cache) / "torch"), STYLECORE_OFFLINE="1")
        for var in ("STYLECORE_WEIGHTS", "STYLECORE_VGG19_WEIGHTS", "STYLECORE_CLIP_WEIGHTS"):
            os.environ.pop(var, None)
        try:
            t, cpu = time.perf_counter(), _children_cpu()
            pm.execute_notebook(str(NOTEBOOKS / f"{stem}.ipynb"), str(out / f"{stem}.ipynb"), parameters=params,
                                kernel_name="python3", cwd=str(NOTEBOOKS), progress_bar=False)
            return time.perf_counter() - t, _children_cpu() - cpu
        finally:
            os.environ.clear()
            os.environ.update(env)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("stems", nargs="*", help="notebook stems (default: all)")
    ap.add_argument("--quick", action="store_true", help="quick-mode parameters of the tests instead of the defaults")
    ap.add_argument("--out", type=Path, default=ROOT / "build" / "notebook_times")
    args = ap.parse_args()
    args.out = args.out.resolve()  # the kernel runs in notebooks/: a relative output_dir would land there
    stems = args.stems or sorted(p.stem for p in NOTEBOOKS.glob("*.ipynb"))
    if not os.environ.get("STYLECORE_DATA_DIR") and (ROOT.parent / "shared" / "data").is_dir():
        os.environ["STYLECORE_DATA_DIR"] = str(ROOT.parent / "shared" / "data")
    args.out.mkdir(parents=True, exist_ok=True)
    mode = "quick mode" if args.quick else "committed defaults"
    rows = [f"| notebook ({mode}, {os.cpu_count()} CPUs) | wall s | kernel CPU s | CPU s / {os.cpu_count()} | load before | load after | wall ≤ {BUDGET_S:.0f} s |",
            "|---|---|---|---|---|---|---|"]
    for stem in stems:
        load0 = os.getloadavg()[0]
        seconds, cpu = run_one(stem, args.quick, args.out)
        load1 = os.getloadavg()[0]
        rows.append(f"| {stem} | {seconds:.0f} | {cpu:.0f} | {cpu / os.cpu_count():.0f} | {load0:.1f} | {load1:.1f} | "
                    f"{'yes' if seconds <= BUDGET_S else '**no**'} |")
        print(rows[-1], flush=True)
    (args.out / "times.md").write_text("\n".join(rows) + "\n")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
