"""How far each notebook test's thresholds sit from what the notebooks produce, across configurations.

Every number a notebook test asserts on an optimisation or training result is declared once, with its
threshold, in ``tests/notebooks/margins.py`` (the tests assert through that table). This script executes
the quick-mode notebooks (the tests' parameter files, offline, random weights, as the tests run them)
under several configurations and prints, per quantity, the observed range beside the threshold and the
ratio margin / spread, where margin is the distance from the nearest observed value to the threshold and
spread is max - min over the configurations. A ratio under 3 is flagged (CONTRIBUTING: a threshold on an
optimisation result sits at least 3x its observed spread away).

Configurations (``--configs``, comma-separated):
  t1     OMP_NUM_THREADS=1 (what ``scripts/test.sh`` runs under on a 2-core machine with one worker)
  t2     OMP_NUM_THREADS=2 (other reduction orders in oneDNN/BLAS: what another machine may give)
  det    OMP_NUM_THREADS=1, STYLECORE_DETERMINISTIC=1 (torch.use_deterministic_algorithms(True))
  seed1  OMP_NUM_THREADS=1, seed=1 (another draw of the random weights, noise, crops)

    python scripts/margins.py run --out outputs/margins --configs t1,t2 --notebooks 01,02
    python scripts/margins.py report --out outputs/margins

``run`` skips a (configuration, notebook) whose summary.json exists (rerun with --force) and then
reports; ``report`` only reads existing run folders (missing ones are listed). Each run's log is
``<out>/<config>/<stem>.log``. Runs are sequential: start two ``run`` processes with different
``--configs`` to use two cores.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.notebooks.margins import MARGINS, STEMS, Margin  # noqa: E402

CONFIGS: dict[str, tuple[dict[str, str], dict[str, object]]] = {
    "t1": ({"OMP_NUM_THREADS": "1"}, {}),
    "t2": ({"OMP_NUM_THREADS": "2"}, {}),
    "det": ({"OMP_NUM_THREADS": "1", "STYLECORE_DETERMINISTIC": "1"}, {}),
    "seed1": ({"OMP_NUM_THREADS": "1"}, {"seed": 1}),
}


def _select(arg: str | None, names: list[str], what: str) -> list[str]:
    if not arg:
        return names
    out = []
    for item in arg.split(","):
        hits = [n for n in names if n == item or n.startswith(item + "_") or n.startswith(item)]
        if not hits:
            raise SystemExit(f"--{what}: unknown {item!r}; choose from {', '.join(names)}")
        out += [h for h in hits if h not in out]
    return out


def run_one(out: Path, config: str, stem: str, force: bool = False) -> bool:
    folder = out / config / stem
    summary = folder / "outputs" / "summary.json"
    if summary.exists() and not force:
        return True
    folder.mkdir(parents=True, exist_ok=True)
    env_extra, params_extra = CONFIGS[config]
    env = dict(os.environ)
    for var in ("STYLECORE_WEIGHTS", "STYLECORE_VGG19_WEIGHTS", "STYLECORE_CLIP_WEIGHTS", "STYLECORE_DETERMINISTIC"):
        env.pop(var, None)
    env.update(env_extra, TORCH_HOME=str(folder / "torch-home"), STYLECORE_OFFLINE="1", MPLBACKEND="Agg",
               PYTHONPATH=os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep))
    params = {**json.loads((ROOT / "tests" / "notebooks" / "params" / f"{stem}.json").read_text()), **params_extra,
              "output_dir": str(folder / "outputs"), "interactive": False}
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(params, f)
    cmd = [sys.executable, "-m", "papermill", str(ROOT / "notebooks" / f"{stem}.ipynb"), str(folder / f"{stem}.ipynb"),
           "--cwd", str(ROOT / "notebooks"), "--kernel", "python3", "-f", f.name, "--no-progress-bar"]
    t0 = time.time()
    with open(out / config / f"{stem}.log", "w") as log:
        rc = subprocess.call(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
    os.unlink(f.name)
    print(f"[{config}] {stem}: {'ok' if rc == 0 else f'FAILED (rc {rc})'} in {time.time() - t0:.0f} s", flush=True)
    return rc == 0


def _fmt(x: float) -> str:
    return f"{x:.4g}"


MACHINE = ("t1", "t2", "det")  # same seed: only rounding differs, as between two CPUs


def _ratio(margin: float, spread: float) -> float:
    return float("inf") if spread == 0 else margin / spread


def _r(x: float) -> str:
    return "inf" if x == float("inf") else f"{x:.1f}"


def report(out: Path, configs: list[str], stems: list[str]) -> int:
    """Print the table; return the number of flagged rows.

    A row is flagged when a value crosses the threshold, when the machine spread (t1, t2, det) is more than a
    third of the margin, or, for a chosen (not structural) threshold, when the spread over all configurations is.
    """
    rows, missing, flagged = [], [], 0
    for m in MARGINS:
        if m.stem not in stems:
            continue
        values = {}
        for c in configs:
            path = out / c / m.stem / "outputs" / "summary.json"
            if not path.exists():
                missing.append(f"{c}/{m.stem}")
                continue
            try:
                values[c] = float(m.extract(json.loads(path.read_text())))
            except (KeyError, IndexError, StopIteration, TypeError, ZeroDivisionError) as exc:
                missing.append(f"{c}/{m.stem} ({m.name}: {type(exc).__name__} {exc})")
        if not values:
            continue
        lo, hi = min(values.values()), max(values.values())
        mach = [v for c, v in values.items() if c in MACHINE]
        r_all = _ratio(m.margin(lo, hi), hi - lo)
        r_mach = _ratio(m.margin(min(mach), max(mach)), max(mach) - min(mach)) if mach else float("nan")
        bad = m.margin(lo, hi) <= 0 or (mach and r_mach < 3) or (not m.structural and r_all < 3)
        flagged += bool(bad)
        rows.append((m.stem[:2], m.name, f"{m.op} {_fmt(m.threshold)}", "S" if m.structural else "", _fmt(lo), _fmt(hi),
                     _fmt(max(mach) - min(mach)) if mach else "-", _r(r_mach) if mach else "-", _fmt(hi - lo), _r(r_all),
                     "FLAG" if bad else "", "".join({"t1": "1", "t2": "2", "det": "d", "seed1": "s"}[c] for c in values)))
    head = ("nb", "quantity", "threshold", "kind", "min", "max", "spread(machine)", "ratio(machine)", "spread(all)", "ratio(all)", "", "configs")
    widths = [max(len(str(r[i])) for r in [head, *rows]) for i in range(len(head))]
    for r in [head, *rows]:
        print("  ".join(str(v).ljust(w) for v, w in zip(r, widths)).rstrip())
    if missing:
        print("missing runs:", ", ".join(sorted(set(missing))))
    print(f"configs: {', '.join(configs)} (last column: 1 = t1, 2 = t2, d = det, s = seed1); kind S: structural; "
          f"ratio = margin / spread; {flagged} row(s) flagged")
    return flagged


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("action", choices=("run", "report"))
    ap.add_argument("--out", type=Path, default=ROOT / "outputs" / "margins")
    ap.add_argument("--configs", help=f"comma-separated, from {', '.join(CONFIGS)} (default all)")
    ap.add_argument("--notebooks", help="comma-separated stems or prefixes, e.g. 01,02 (default all)")
    ap.add_argument("--force", action="store_true", help="rerun even where a summary.json exists")
    args = ap.parse_args(argv)
    configs = _select(args.configs, list(CONFIGS), "configs")
    stems = _select(args.notebooks, list(STEMS), "notebooks")
    out = args.out.resolve()
    if args.action == "run":
        for c in configs:
            for s in stems:
                run_one(out, c, s, args.force)
    return 1 if report(out, configs, stems) else 0


if __name__ == "__main__":
    raise SystemExit(main())
