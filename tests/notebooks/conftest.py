"""Execute each notebook once per test session with papermill, in quick mode.

Quick-mode parameters for ``notebooks/<stem>.ipynb`` live in ``params/<stem>.json``
(the same values ``scripts/run_notebooks.sh`` and the nbval pass use). Tests ask for the
output folder of a run with ``executed_notebook("<stem>")``; a notebook runs at most once.

The run is hermetic and offline by design: the kernel gets an empty torch hub folder, no
weights overrides and ``STYLECORE_OFFLINE=1``, so on any machine quick mode uses random
weights and the tests can assert exactly that.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = ROOT / "notebooks"
PARAMS = Path(__file__).parent / "params"


def quick_parameters(stem: str) -> dict:
    path = PARAMS / f"{stem}.json"
    if not path.exists():
        raise FileNotFoundError(f"no quick-mode parameters for notebook {stem}: add {path}")
    return json.loads(path.read_text())


# Extra environment of a notebook's kernel. Notebook 05 runs with one thread, as each run of a 2-worker sweep does
# (issue 25: an inline check of it once failed there only); the others inherit the caller's setting.
KERNEL_ENV: dict[str, dict[str, str]] = {"05_kwon_2022_clipstyler": {"OMP_NUM_THREADS": "1"}}


@contextlib.contextmanager
def _offline_env(torch_home: Path, extra: dict[str, str] | None = None) -> Iterator[None]:
    saved = dict(os.environ)
    for var in ("STYLECORE_WEIGHTS", "STYLECORE_VGG19_WEIGHTS", "STYLECORE_CLIP_WEIGHTS"):
        os.environ.pop(var, None)
    os.environ.update(TORCH_HOME=str(torch_home), STYLECORE_OFFLINE="1", **(extra or {}))
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def execute_quick(stem: str, out: Path) -> Path:
    """Execute ``notebooks/<stem>.ipynb`` in quick mode into ``out`` (executed copy, outputs/, torch-home/); returns outputs/."""
    import papermill as pm

    out.mkdir(parents=True, exist_ok=True)
    params = {**quick_parameters(stem), "output_dir": str(out / "outputs"), "interactive": False}
    with _offline_env(out / "torch-home", KERNEL_ENV.get(stem)):
        pm.execute_notebook(
            str(NOTEBOOKS / f"{stem}.ipynb"),
            str(out / f"{stem}.ipynb"),
            parameters=params,
            kernel_name="python3",
            cwd=str(NOTEBOOKS),
            progress_bar=False,
        )
    return out / "outputs"


@pytest.fixture(scope="session")
def executed_notebook(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    done: dict[str, Path] = {}

    def run(stem: str) -> Path:
        if stem not in done:
            base = Path(os.environ.get("STYLECORE_NB_OUT", tmp_path_factory.mktemp("nb")))
            reuse = os.environ.get("STYLECORE_NB_REUSE") == "1" and (base / stem / "outputs" / "summary.json").is_file()
            # STYLECORE_NB_REUSE=1: assert on a finished run in STYLECORE_NB_OUT (e.g. a configuration of scripts/margins.py)
            done[stem] = base / stem / "outputs" if reuse else execute_quick(stem, base / stem)
        return done[stem]

    return run


@pytest.fixture(scope="module")
def out(request: pytest.FixtureRequest, executed_notebook: Callable[[str], Path]) -> Path:
    """Output folder of the quick run of the notebook named by the test module's ``STEM``."""
    return executed_notebook(request.module.STEM)


@pytest.fixture(scope="module")
def summary(out: Path) -> dict:
    """That run's summary.json (modules that need more than the dict define their own ``summary``)."""
    return json.loads((out / "summary.json").read_text())
