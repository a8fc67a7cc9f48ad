"""stylecore sweep: grid expansion and keys, kill and resume, fault isolation, Ray = local, the gallery.

The sweeps run ``tests/sweep_fixture/sweep_fixture.ipynb`` (a few cells, a figure, a summary.json;
``fail=True`` makes it raise, ``sleep_unit`` makes runs take different times, ``ledger`` makes
every execution append a line to a file, so the tests count executions independently of the
sweep's own bookkeeping). One test runs a real notebook of the collection (01) through a sweep.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from html.parser import HTMLParser
from pathlib import Path

import pytest

from stylecore.sweep import SweepError, load_grid, load_sweep, plan_runs, run_key, run_sweep

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT / "tests" / "sweep_fixture" / "sweep_fixture.ipynb"
GRID4 = "parameters: {{sleep_unit: {sleep}, ledger: '{ledger}'}}\naxes:\n  x: [1.0, 2.0]\n  y: [2, 3]\ngallery: {{rows: x, cols: y}}\n"


def _env() -> dict[str, str]:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]), STYLECORE_OFFLINE="1")
    env.pop("STYLECORE_WEIGHTS", None)
    return env


def _sweep_cmd(*args: object) -> list[str]:
    return [sys.executable, "-m", "stylecore.sweep", *map(str, args), "--no-progress"]


def _ledger(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def _finished(out: Path) -> dict[str, dict]:
    found = {}
    for record in (out / "runs").glob("*/run.json"):
        data = json.loads(record.read_text())
        if data["status"] == "ok":
            found[data["key"]] = data
    return found


def _processes_with(marker: str) -> list[int]:
    """Live processes whose environment carries ``STYLECORE_TEST_MARKER=<marker>`` (the sweep's workers and kernels inherit it;
    kernels start in their own session, so a process group would not find them)."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if f"STYLECORE_TEST_MARKER={marker}".encode() in (proc / "environ").read_bytes().split(b"\0"):
                status = (proc / "status").read_text()
                if "\nState:\tZ" not in status:  # a zombie has exited; only its parent's wait is missing
                    found.append(int(proc.name))
        except OSError:
            continue
    return found


def _csv(path: Path) -> list[dict]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


# --- plan: grid file, keys, validation (no execution) -------------------------------------------

def test_grid_expands_to_product_plus_points_without_duplicates(tmp_path: Path) -> None:
    grid = tmp_path / "g.yaml"
    grid.write_text("parameters: {y: 2}\naxes:\n  x: [1.0, 2.0, 3.0]\n  fail: [false, true]\npoints:\n  - {x: 9.0}\n  - {x: 1.0, fail: false}\n")
    runs = plan_runs(FIXTURE, load_grid(grid))
    assert [(r.parameters["x"], r.parameters.get("fail")) for r in runs] == [
        (1.0, False), (1.0, True), (2.0, False), (2.0, True), (3.0, False), (3.0, True), (9.0, None)]  # the duplicate point is dropped
    assert all(r.parameters["y"] == 2 for r in runs)
    assert len({r.key for r in runs}) == 7
    assert runs[1].label == "x=1.0, fail=true"
    # -p / -f overrides replace fixed parameters, and so change every key
    assert {r.key for r in plan_runs(FIXTURE, load_grid(grid, {"y": 3}))}.isdisjoint(r.key for r in runs)


def test_run_key_depends_on_notebook_parameters_and_version_only() -> None:
    nb = FIXTURE.read_bytes()
    key = run_key(nb, {"x": 1.0, "y": 2}, "0.1.0")
    assert key == run_key(nb, {"y": 2, "x": 1.0}, "0.1.0")  # order of the mapping does not matter
    others = {run_key(nb + b" ", {"x": 1.0, "y": 2}, "0.1.0"), run_key(nb, {"x": 1.0, "y": 3}, "0.1.0"),
              run_key(nb, {"x": 1.0, "y": 2}, "0.2.0"), run_key(nb, {"x": 1, "y": 2}, "0.1.0")}
    assert key not in others and len(others) == 4


def test_default_version_tracks_the_library_sources(tmp_path) -> None:
    """``stylecore.code_version``: the same version number with edited sources is another version (and run key)."""
    import stylecore

    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "a.py").write_text("x = 1\n")
    (pkg / "sub" / "b.py").write_text("y = 2\n")
    (pkg / "notes.txt").write_text("not code")
    v1 = stylecore.code_version(pkg)
    (pkg / "notes.txt").write_text("edited, still not code")
    assert stylecore.code_version(pkg) == v1 and v1.startswith(stylecore.__version__ + "+")
    (pkg / "sub" / "b.py").write_text("y = 3\n")
    v2 = stylecore.code_version(pkg)
    assert v2 != v1
    nb = FIXTURE.read_bytes()
    assert run_key(nb, {"x": 1.0}, v1) != run_key(nb, {"x": 1.0}, v2)
    assert run_key(nb, {"x": 1.0}) == run_key(nb, {"x": 1.0}, stylecore.code_version())


@pytest.mark.parametrize("text, message", [
    ("axes: {x: [1.0], alpha_bta: [1]}", "'alpha_bta' is not in sweep_fixture.ipynb's parameters cell; known: x, y, sleep_unit"),
    ("axes: {x: 1.0}", "axis 'x' must be a non-empty list"),
    ("axes: {x: [1.0]}\nparameters: {output_dir: /tmp/x}", "'output_dir' is set by the sweep"),
    ("axis: {x: [1.0]}", "unknown key(s) ['axis']"),
    ("parameters: {x: 1.0}", "nothing to run"),
    ("axes: {x: [1.0]}\ngallery: {rows: y}", "gallery axis 'y' is not one of the grid's axes"),
    ("axes: [x", "not valid YAML"),
])
def test_bad_grid_files_get_one_clear_error(tmp_path: Path, text: str, message: str) -> None:
    grid = tmp_path / "g.yaml"
    grid.write_text(text)
    with pytest.raises(SweepError) as info:
        plan_runs(FIXTURE, load_grid(grid))
    assert message in str(info.value)


def test_cli_reports_bad_input_without_traceback(tmp_path: Path) -> None:
    grid = tmp_path / "g.yaml"
    grid.write_text("axes: {z: [1]}\n")
    proc = subprocess.run(_sweep_cmd(FIXTURE, grid, "--out", tmp_path / "out"), capture_output=True, text=True, env=_env(), timeout=120)
    assert proc.returncode == 2
    assert "stylecore sweep: error: parameter 'z' is not in sweep_fixture.ipynb's parameters cell" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "out").exists()


def test_console_script_entry_point_is_the_cli() -> None:
    import importlib
    import tomllib

    target = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]["stylecore"]
    module, func = target.split(":")
    main = getattr(importlib.import_module(module), func)
    with pytest.raises(SystemExit) as info:
        main(["sweep", "--help"])
    assert info.value.code == 0
    assert main(["sweep", str(FIXTURE), str(ROOT / "sweeps" / "missing.yaml"), "--out", "unused"]) == 2  # a clear error, no traceback


# --- kill, resume, report (one real 4-run sweep, 2 workers) ---------------------------------------

@pytest.fixture(scope="module")
def resumed(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Start a 4-run sweep, SIGKILL it once the first run has finished, then run the same command again."""
    base = tmp_path_factory.mktemp("sweep")
    out, ledger, grid = base / "out", base / "ledger.jsonl", base / "grid.yaml"
    grid.write_text(GRID4.format(sleep=3.0, ledger=ledger))  # runs wait 0, 3, 3 and 6 s
    cmd = _sweep_cmd(FIXTURE, grid, "--out", out, "--workers", 2)
    marker = f"sigkill-{os.getpid()}-{time.time_ns()}"
    with open(base / "first.log", "w") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=_env() | {"STYLECORE_TEST_MARKER": marker})
        deadline = time.monotonic() + 240
        while not _finished(out) and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.1)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    time.sleep(3)  # a worker or kernel that outlived the sweep would finish its run now
    orphans = _processes_with(marker)
    finished = _finished(out)
    stamps = {k: (out / "runs" / k / "run.json").stat().st_mtime_ns for k in finished}
    executions_before = len(_ledger(ledger))
    dry = subprocess.run(cmd + ["--dry-run"], capture_output=True, text=True, env=_env(), timeout=120)
    executions_after_dry = len(_ledger(ledger))
    again = subprocess.run(cmd, capture_output=True, text=True, env=_env(), timeout=300)
    return {"out": out, "ledger": ledger, "grid": grid, "finished_at_kill": finished, "stamps": stamps, "dry": dry,
            "executions_before": executions_before, "executions_after_dry": executions_after_dry, "again": again,
            "first_log": (base / "first.log").read_text(), "orphans": orphans}


def test_killed_sweep_loses_only_runs_in_flight_and_resume_runs_exactly_the_rest(resumed: dict) -> None:
    out, finished = resumed["out"], resumed["finished_at_kill"]
    assert 1 <= len(finished) < 4, resumed["first_log"]
    planned = {r["key"]: r["parameters"] for r in json.loads((out / "sweep.json").read_text())["runs"]}
    assert len(planned) == 4
    # --dry-run lists the state and executes nothing
    dry = resumed["dry"].stdout
    assert f"4 runs: {len(finished)} done, 0 failed, {4 - len(finished)} to run" in dry
    assert all(f"ok       {k}" in dry for k in finished)
    assert resumed["executions_after_dry"] == resumed["executions_before"]
    # the resumed sweep executes exactly the runs that had not finished, each once
    again = resumed["again"]
    assert again.returncode == 0, again.stdout + again.stderr
    assert f"4 runs: {len(finished)} already done, {4 - len(finished)} executed now, 0 failed" in again.stdout
    new = _ledger(resumed["ledger"])[resumed["executions_before"]:]
    unfinished = {(p["x"], p["y"]) for k, p in planned.items() if k not in finished}
    assert sorted((e["x"], e["y"]) for e in new) == sorted(unfinished)
    # finished runs were not touched; every run is now complete, and nothing is left in flight
    assert all((out / "runs" / k / "run.json").stat().st_mtime_ns == t for k, t in resumed["stamps"].items())
    assert set(_finished(out)) == set(planned)
    assert not (out / ".tmp").exists()
    assert set(p.name for p in (out / "runs").iterdir()) == set(planned)
    assert not resumed["orphans"], "processes of the killed sweep (workers or kernels) outlived it"


def test_interrupted_sweep_stops_its_kernels_keeps_only_finished_runs_and_resumes(tmp_path: Path) -> None:
    """SIGINT (Ctrl-C) while runs are in flight: exit 130, no kernel or worker left, no half-written run folder, resume redoes the rest."""
    out, ledger, grid = tmp_path / "out", tmp_path / "ledger.jsonl", tmp_path / "grid.yaml"
    grid.write_text(GRID4.format(sleep=2.0, ledger=ledger))  # runs wait 0, 2, 2 and 4 s
    cmd = _sweep_cmd(FIXTURE, grid, "--out", out, "--workers", 2)
    marker = f"sigint-{os.getpid()}-{time.time_ns()}"
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=_env() | {"STYLECORE_TEST_MARKER": marker})
    deadline = time.monotonic() + 240
    while not _finished(out) and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.1)
    proc.send_signal(signal.SIGINT)
    log, _ = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "interrupted; finished runs are kept" in log, log
    deadline = time.monotonic() + 15
    while _processes_with(marker) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _processes_with(marker), "the interrupted sweep left processes running"
    finished = _finished(out)
    assert 1 <= len(finished) < 4, log
    assert {p.name for p in (out / "runs").iterdir()} == set(finished)  # nothing half-written under runs/
    assert not (out / ".tmp").exists()  # the runs in flight were stopped and their unfinished folders removed
    executed = len(_ledger(ledger))
    again = subprocess.run(cmd, capture_output=True, text=True, env=_env(), timeout=300)
    assert again.returncode == 0 and f"4 runs: {len(finished)} already done, {4 - len(finished)} executed now, 0 failed" in again.stdout
    assert len(_ledger(ledger)) - executed == 4 - len(finished)


def test_results_csv_has_one_row_per_run_with_parameters_and_summary_numbers(resumed: dict) -> None:
    rows = _csv(resumed["out"] / "results.csv")
    assert len(rows) == 4
    for row in rows:
        assert row["status"] == "ok"
        x, y = float(row["x"]), int(row["y"])
        assert float(row["experiments.line.value"]) == x * y  # the number the notebook computed
        assert int(row["experiments.line.points"]) == y
        assert float(row["seconds_total"]) >= 3.0 * (x + y - 3) - 0.01  # the notebook's own timing of its sleep
    assert "experiments.line.flags.failed" not in rows[0]  # booleans are not numbers


def test_load_sweep_gives_finished_runs_with_parameters_and_folders(resumed: dict) -> None:
    runs = load_sweep(resumed["out"])
    assert [(r.parameters["x"], r.parameters["y"]) for r in runs] == [(1.0, 2), (1.0, 3), (2.0, 2), (2.0, 3)]
    for r in runs:
        assert r.status == "ok" and (r.folder / "line.png").is_file()
        assert r.summary["experiments"]["line"]["value"] == r.parameters["x"] * r.parameters["y"]
    with pytest.raises(SweepError, match="holds no sweep"):
        load_sweep(resumed["out"] / "runs")


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.links: list[tuple[str, str]] = []

    def handle_starttag(self, tag: str, attrs: list) -> None:
        self.links += [(tag, v) for k, v in attrs if k in ("href", "src")]


def _assert_gallery_links_exist(out: Path) -> list[tuple[str, str]]:
    from urllib.parse import unquote, urlparse

    parser = _Links()
    parser.feed((out / "index.html").read_text())
    assert parser.links
    for tag, link in parser.links:
        assert not urlparse(link).scheme and not link.startswith("/"), f"{link} is not a relative link"
        assert (out / unquote(link)).is_file(), f"index.html refers to {link}, which does not exist"
    return parser.links


def test_gallery_refers_only_to_existing_files_and_links_each_cell_to_its_notebook(resumed: dict) -> None:
    out = resumed["out"]
    links = _assert_gallery_links_exist(out)
    images = [v for t, v in links if t == "img" and v.endswith("/line.png")]
    assert len(images) == 4  # the 2 x 2 grid of the figure "line"
    runs = {r.key: r for r in load_sweep(out)}
    for key in runs:
        assert f"runs/{key}/notebook.html" in [v for t, v in links if t == "a"]
        assert "x=" in (out / "runs" / key / "notebook.html").read_text()  # the executed notebook, rendered
    from matplotlib.image import imread

    sheet = imread(out / "contact_sheets" / "line.png")
    assert sheet.shape[0] > 300 and sheet.shape[1] > 300  # 2 x 2 cells of the figure


# --- fault isolation -------------------------------------------------------------------------------

def test_a_failing_run_is_reported_with_its_cell_and_the_others_complete(tmp_path: Path) -> None:
    ledger, grid, out = tmp_path / "ledger.jsonl", tmp_path / "grid.yaml", tmp_path / "out"
    grid.write_text(f"parameters: {{ledger: '{ledger}'}}\naxes: {{x: [1.0, 2.0]}}\npoints: [{{x: 3.0, fail: true}}]\n")
    cmd = _sweep_cmd(FIXTURE, grid, "--out", out, "--workers", 2)
    proc = subprocess.run(cmd, capture_output=True, text=True, env=_env(), timeout=300)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    runs = {r.parameters["x"]: r for r in load_sweep(out, status=None)}
    bad = runs[3.0]
    assert [runs[1.0].status, runs[2.0].status, bad.status] == ["ok", "ok", "failed"]
    err = bad.record["error"]
    assert (err["ename"], err["cell"]) == ("ValueError", "In [5]")  # parameters, injected parameters, imports, figure, then this
    assert err["cell_source"].startswith("if fail:") and "asked to fail (x=3.0, y=2)" in err["evalue"]
    assert f"FAILED {bad.key}" in proc.stdout and "at In [5]: ValueError: asked to fail" in proc.stdout
    # what the failed run made before the error is kept; it has no summary
    assert (bad.folder / "line.png").is_file() and (bad.folder / "notebook.html").is_file() and not (bad.folder / "summary.json").exists()
    row = {r["x"]: r for r in _csv(out / "results.csv")}["3.0"]
    assert (row["status"], row["failed_cell"], row["experiments.line.value"]) == ("failed", "In [5]", "")
    _assert_gallery_links_exist(out)
    # a rerun executes the failed run again, and only it
    before = len(_ledger(ledger))
    proc = subprocess.run(cmd, capture_output=True, text=True, env=_env(), timeout=300)
    assert proc.returncode == 1 and "3 runs: 2 already done, 1 executed now, 1 failed" in proc.stdout
    assert [e["x"] for e in _ledger(ledger)[before:]] == [3.0]


def test_a_relative_out_folder_receives_the_notebooks_outputs(tmp_path: Path) -> None:
    """The kernel runs in the notebook's folder: a relative --out must still collect figures and summary.json."""
    grid = tmp_path / "grid.yaml"
    grid.write_text("axes: {x: [1.0, 2.0]}\n")
    before = sorted(p.name for p in FIXTURE.parent.iterdir())
    proc = subprocess.run(_sweep_cmd(FIXTURE, "grid.yaml", "--out", "rel_out", "--workers", 1), capture_output=True, text=True,
                          env=_env(), timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    runs = load_sweep(tmp_path / "rel_out")
    assert len(runs) == 2
    for run in runs:
        assert (run.folder / "summary.json").is_file() and (run.folder / "line.png").is_file(), sorted(p.name for p in run.folder.iterdir())
        assert run.summary["experiments"]["line"]["value"] == pytest.approx(run.parameters["x"] * 2)  # x · y, y = 2 by default
    assert sorted(p.name for p in FIXTURE.parent.iterdir()) == before  # nothing written beside the notebook
    assert "experiments.line.value" in _csv(tmp_path / "rel_out" / "results.csv")[0]


# --- Ray backend -------------------------------------------------------------------------------------

def test_a_run_packed_on_a_node_and_unpacked_by_the_driver_matches_the_local_run(resumed: dict, tmp_path: Path) -> None:
    """What a Ray task does on its node (execute in a private folder, return a tar), and the driver's unpacking."""
    from stylecore.sweep.execute import commit_run, execute_packed, unpack_run

    run = load_sweep(resumed["out"])[0]
    spec = {"key": run.key, "label": run.label, "parameters": run.parameters, "notebook_name": FIXTURE.name, "cwd": "/nonexistent/on/this/node"}
    record, data = execute_packed(spec, FIXTURE.read_bytes())
    assert record["status"] == "ok" and record["key"] == run.key
    unpack_run(data, tmp_path / "work")
    commit_run(tmp_path / "work", tmp_path / "runs" / run.key, tmp_path / "trash")
    folder = tmp_path / "runs" / run.key
    assert sorted(p.name for p in folder.iterdir()) == sorted(p.name for p in run.folder.iterdir())
    assert json.loads((folder / "summary.json").read_text())["experiments"] == run.summary["experiments"]
    assert (folder / "line.png").read_bytes() == (run.folder / "line.png").read_bytes()
    assert not (tmp_path / "work").exists()


def test_ray_backend_gives_the_same_run_folders_and_results(resumed: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ray = pytest.importorskip("ray")
    out = tmp_path / "ray-out"
    monkeypatch.setenv("PYTHONPATH", _env()["PYTHONPATH"])  # Ray's workers (and their kernels) inherit this process's environment
    for attempt in range(2):  # Ray gives its processes a fixed 30 s to come up; a busy machine can miss that
        try:
            ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
            break
        except Exception as exc:  # noqa: BLE001
            ray.shutdown()
            if attempt == 1:
                pytest.skip(f"a local Ray instance did not start on this machine: {exc}")
    try:
        result = run_sweep(FIXTURE, resumed["grid"], out, backend="ray", cpus_per_run=1, progress=False, echo=lambda _: None)
    finally:
        ray.shutdown()
    local = resumed["out"]
    assert result.ok and len(result.executed) == 4
    keys = sorted(p.name for p in (local / "runs").iterdir())
    assert sorted(p.name for p in (out / "runs").iterdir()) == keys
    for key in keys:
        a, b = local / "runs" / key, out / "runs" / key
        assert sorted(p.name for p in a.iterdir()) == sorted(p.name for p in b.iterdir())
        sa, sb = json.loads((a / "summary.json").read_text()), json.loads((b / "summary.json").read_text())
        assert sa["experiments"] == sb["experiments"] and sa["parameters"] == sb["parameters"]
        assert (a / "line.png").read_bytes() == (b / "line.png").read_bytes()
        assert json.loads((b / "run.json").read_text())["status"] == "ok"
    timing = {"seconds", "seconds_total"}
    strip = lambda rows: [{k: v for k, v in r.items() if k not in timing} for r in rows]  # noqa: E731
    assert strip(_csv(out / "results.csv")) == strip(_csv(local / "results.csv"))
    _assert_gallery_links_exist(out)


# --- a notebook of the collection, and the example grids ----------------------------------------------

def test_example_sweeps_plan_the_papers_grids() -> None:
    gatys = plan_runs(ROOT / "notebooks" / "01_gatys_2016_neural_style.ipynb", load_grid(ROOT / "sweeps" / "01_gatys_ratio_layers.yaml"))
    cells = {(r.parameters["grid_depths"][0], r.parameters["grid_factors"][0]) for r in gatys}
    assert {(d, f) for d in range(1, 6) for f in (0.01, 0.1, 1.0, 10.0)} <= cells  # Fig. 4: conv1_1 … conv5_1 × α/β 1e-5 … 1e-2
    assert all(r.parameters["experiments"] == ["ratio_grid"] for r in gatys)
    kwon = plan_runs(ROOT / "notebooks" / "05_kwon_2022_clipstyler.ipynb", load_grid(ROOT / "sweeps" / "05_clipstyler_ablations.yaml"))
    assert {tuple(r.parameters["ablations"]) for r in kwon} == {(x,) for x in "abcdef"}  # Fig. 6 (a)–(f)
    assert all(r.parameters["experiments"] == ["ablation"] for r in kwon)


def test_sweep_of_notebook_01_in_quick_mode(tmp_path: Path) -> None:
    """One real run of a collection notebook through the sweep: its figure, summary numbers and gallery."""
    quick = json.loads((ROOT / "tests" / "notebooks" / "params" / "01_gatys_2016_neural_style.json").read_text())
    params = {**quick, "image_size": 64, "iterations": 5, "experiments": ["ratio_grid"], "show_progress": False}
    (tmp_path / "quick.json").write_text(json.dumps(params))
    grid = tmp_path / "g.yaml"
    # the extra point runs the notebook's inline Eq. 7 check with the authors' preset (mean content term) and a TV term
    grid.write_text("axes:\n  grid_depths: [[2]]\n  grid_factors: [[1.0]]\npoints:\n  - {grid_depths: [2], grid_factors: [1.0], preset: authors_code, tv_weight: 0.001}\n")
    proc = subprocess.run(_sweep_cmd(ROOT / "notebooks" / "01_gatys_2016_neural_style.ipynb", grid, "--out", tmp_path / "out", "-f", tmp_path / "quick.json"),
                          capture_output=True, text=True, env=_env(), timeout=400, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    runs = {r.parameters.get("preset", "paper"): r for r in load_sweep(tmp_path / "out")}
    assert set(runs) == {"paper", "authors_code"}
    run = runs["paper"]
    assert (run.folder / "fig4_ratio_layer_grid.png").is_file()
    (name, record), = ((k, v) for k, v in run.summary["experiments"].items() if k.startswith("fig4_"))
    assert name == "fig4_d2_r1e-06" and record["depth"] == 2  # random weights: base α/β 1e-6, times the factor 1.0
    row, = (r for r in _csv(tmp_path / "out" / "results.csv") if not r["preset"])
    assert row["grid_depths"] == "[2]" and float(row["seconds_total"]) > 0
    assert any(k.startswith("experiments.fig4_d2_r1e-06.") for k in row)
    _assert_gallery_links_exist(tmp_path / "out")
