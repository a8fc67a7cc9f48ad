"""Every documented command and parameter file matches the notebook it runs.

Checked against each notebook's ``parameters`` cell, read with ``ast`` (annotated assignments
``name: type = value``), so a parameter added or renamed in a notebook is picked up here:

- parameter files: the quick-mode JSON (``tests/notebooks/params/<stem>.json``) and the paper-size
  YAML (``notebooks/params/<stem>.paper.yaml``): every name exists and every value has the annotated type;
- every ``papermill`` and ``stylecore sweep`` command in README.md and in each notebook's first cell:
  the notebook exists, every ``-p``/``-y``/``-f`` name exists with the right type, papermill commands run
  with ``--cwd notebooks`` (the ``../outputs`` defaults are relative to ``notebooks/``) and headless
  (``interactive`` False);
- the sweep grids under ``sweeps/``: names and types of ``parameters``, ``axes`` and ``points``;
- each paper file reproduces its preset's schedule (the values of ``stylecore``'s presets, which carry
  the sources), e.g. notebook 05's ``lr_step`` = 100 as ``StepLR(step_size=100)`` of the official code.

No notebook is executed: the whole module takes about a second.
"""

from __future__ import annotations

import ast
import json
import re
import shlex
from pathlib import Path
from typing import Any

import nbformat
import pytest
import yaml

from stylecore.sweep import cli as sweep_cli

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = ROOT / "notebooks"
QUICK = Path(__file__).parent / "params"
PAPER = NOTEBOOKS / "params"
SWEEPS = ROOT / "sweeps"
STEMS = sorted(p.stem for p in NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
TYPES: dict[str, type] = {"int": int, "float": float, "str": str, "bool": bool, "list": list, "dict": dict}


def parameters_cell(stem: str) -> dict[str, tuple[type, Any]]:
    """name -> (annotated type, default) of the cell tagged ``parameters``."""
    nb = nbformat.read(NOTEBOOKS / f"{stem}.ipynb", as_version=4)
    cells = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(cells) == 1, f"{stem}: expected one cell tagged 'parameters', found {len(cells)}"
    params: dict[str, tuple[type, Any]] = {}
    for node in ast.parse(cells[0].source).body:
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            ann = node.annotation.value if isinstance(node.annotation, ast.Subscript) else node.annotation  # list[str] -> list
            kind = ann.id if isinstance(ann, ast.Name) else ast.unparse(node.annotation)
            assert kind in TYPES, f"{stem}: parameter {node.target.id} is annotated {kind}; the parameters cell takes {list(TYPES)}"
            params[node.target.id] = (TYPES[kind], ast.literal_eval(node.value) if node.value is not None else None)
    assert params, f"{stem}: no annotated assignments in the parameters cell"
    return params


def type_errors(stem: str, values: dict[str, Any], where: str, from_cli: bool = False) -> list[str]:
    """One line per unknown name or wrong type, as the notebook's check_param would judge the value."""
    params = parameters_cell(stem)
    errors = []
    for name, value in values.items():
        if name not in params:
            errors.append(f"{where}: {stem} has no parameter {name!r}")
            continue
        kind = params[name][0]
        if from_cli and kind in (list, dict) and isinstance(value, str):  # -p passes strings; check_param parses JSON
            try:
                value = json.loads(value)
            except json.JSONDecodeError:
                pass
        ok = isinstance(value, kind) and not (kind in (int, float) and isinstance(value, bool))
        ok = ok or (kind is float and isinstance(value, int) and not isinstance(value, bool))  # check_param widens ints
        if not ok:
            errors.append(f"{where}: {name} = {value!r} is {type(value).__name__}, the notebook annotates {kind.__name__}")
    return errors


def load_file(path: Path) -> dict[str, Any]:
    doc = json.loads(path.read_text()) if path.suffix == ".json" else yaml.safe_load(path.read_text())
    assert isinstance(doc, dict), f"{path}: must be a mapping of parameter names to values"
    return doc


# ---------------------------------------------------------------- commands in README.md and cell 0


def code_spans(text: str) -> list[str]:
    """Inline code spans and lines of fenced blocks, with backslash-newline continuations joined."""
    text = re.sub(r"\\\n\s*", " ", text)
    spans, fenced = [], False
    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
            continue
        if fenced:
            spans.append(line)
        else:
            spans.extend(line.split("`")[1::2])
    return spans


def documented_commands() -> list[tuple[str, str]]:
    """(where, command) for every papermill / stylecore sweep command of README.md and the notebooks' cell 0."""
    sources = [("README.md", (ROOT / "README.md").read_text())]
    for stem in STEMS:
        sources.append((f"{stem} cell 0", nbformat.read(NOTEBOOKS / f"{stem}.ipynb", as_version=4).cells[0].source))
    found = []
    for where, text in sources:
        for span in code_spans(text):
            for m in re.finditer(r"(?:^|(?<=\s))(?:[\w./]*papermill|stylecore sweep|python -m stylecore\.sweep)\s+(?=[^\s-]).*", span):
                # a template line (notebooks/<stem>.ipynb) stands for every notebook
                found += [(where, m.group(0).replace("<stem>", stem)) for stem in STEMS] if "<stem>" in m.group(0) else [(where, m.group(0))]
    return found


def split(command: str) -> list[str]:
    return shlex.split(command, comments=True)


def parse_options(tokens: list[str], arity: dict[str, int], where: str) -> tuple[list[str], list[tuple[str, list[str]]]]:
    positional, options, i = [], [], 0
    while i < len(tokens):
        tok = tokens[i]
        if tok.startswith("-"):
            assert tok in arity, f"{where}: unknown option {tok} (add it to the test's option table if it is real)"
            n = arity[tok]
            assert i + n < len(tokens), f"{where}: option {tok} needs {n} value(s)"
            options.append((tok, tokens[i + 1 : i + 1 + n]))
            i += 1 + n
        else:
            positional.append(tok)
            i += 1
    return positional, options


PAPERMILL_OPTIONS = {"-p": 2, "--parameters": 2, "-r": 2, "--parameters_raw": 2, "-f": 1, "--parameters_file": 1, "-y": 1,
                     "--parameters_yaml": 1, "--cwd": 1, "-k": 1, "--kernel": 1, "--log-output": 0, "--no-progress-bar": 0,
                     "--progress-bar": 0, "--execution-timeout": 1, "--start-timeout": 1, "--language": 1}  # fmt: skip
SWEEP_OPTIONS = {"--out": 1, "--backend": 1, "--workers": 1, "--address": 1, "--cpus-per-run": 1, "--gpus-per-run": 1, "-p": 2,
                 "--parameter": 2, "-f": 1, "--parameters-file": 1, "--rows": 1, "--cols": 1, "--kernel": 1, "--timeout": 1,
                 "--dry-run": 0, "--no-progress": 0}  # fmt: skip


def papermill_value(text: str) -> Any:
    """papermill's -p conversion (papermill.cli._resolve_type)."""
    if text in ("True", "False", "None"):
        return {"True": True, "False": False, "None": None}[text]
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text


def sweep_value(text: str) -> Any:
    """stylecore sweep's own -p conversion (JSON first, then YAML), so the test reads a value as the command does."""
    return sweep_cli._value(text)


def notebook_of(path: str, where: str) -> str:
    stem = Path(path).stem
    assert path == f"notebooks/{stem}.ipynb" and stem in STEMS, f"{where}: {path!r} is not one of notebooks/<stem>.ipynb ({STEMS})"
    return stem


def check_papermill(where: str, command: str) -> list[str]:
    tokens = split(command)
    positional, options = parse_options(tokens[1:], PAPERMILL_OPTIONS, f"{where}: {command}")
    assert len(positional) == 2, f"{where}: papermill takes the notebook and an output path, got {positional} in {command}"
    stem = notebook_of(positional[0], where)
    values: dict[str, Any] = {}
    errors = []
    cwd = [v[0] for o, v in options if o == "--cwd"]
    if cwd != ["notebooks"]:
        errors.append(f"{where}: papermill without --cwd notebooks (the ../outputs defaults land outside the repository): {command}")
    for opt, args in options:
        if opt in ("-f", "--parameters_file"):
            path = ROOT / args[0]
            if not path.is_file():
                errors.append(f"{where}: parameters file {args[0]} does not exist: {command}")
                continue
            values.update(load_file(path))
        elif opt in ("-y", "--parameters_yaml"):
            doc = yaml.safe_load(args[0])
            assert isinstance(doc, dict), f"{where}: -y {args[0]!r} is not a mapping"
            values.update(doc)
        elif opt in ("-p", "--parameters"):
            values[args[0]] = papermill_value(args[1])
        elif opt in ("-r", "--parameters_raw"):
            values[args[0]] = args[1]
    if values.get("interactive", parameters_cell(stem)["interactive"][1]) is not False:
        errors.append(f"{where}: headless papermill run without interactive False (-p interactive False or a file that sets it): {command}")
    return errors + type_errors(stem, values, f"{where}: {command}", from_cli=True) + schedule_errors(stem, values, f"{where}: {command}")


def check_sweep(where: str, command: str) -> list[str]:
    tokens = split(command)
    start = 2 if tokens[0] == "stylecore" else 3  # stylecore sweep … | python -m stylecore.sweep …
    positional, options = parse_options(tokens[start:], SWEEP_OPTIONS, f"{where}: {command}")
    assert len(positional) == 2, f"{where}: stylecore sweep takes NOTEBOOK GRID, got {positional} in {command}"
    stem = notebook_of(positional[0], where)
    errors, values = [], {}
    grid = ROOT / positional[1]
    if not grid.is_file():
        return [f"{where}: grid file {positional[1]} does not exist: {command}"]
    for opt, args in options:
        if opt in ("-f", "--parameters-file"):
            path = ROOT / args[0]
            if not path.is_file():
                errors.append(f"{where}: parameters file {args[0]} does not exist: {command}")
                continue
            values.update(load_file(path))
        elif opt in ("-p", "--parameter"):
            values[args[0]] = sweep_value(args[1])
    doc = yaml.safe_load(grid.read_text())
    values.update(doc.get("parameters") or {})
    runs = [values] if not doc.get("axes") else [{**values, k: v[0]} for k, v in doc["axes"].items()]
    runs += [{**values, **p} for p in doc.get("points") or []]
    for run in runs:
        errors += schedule_errors(stem, run, f"{where}: {command}")
    return errors + type_errors(stem, values, f"{where}: {command}")


def check_command(where: str, command: str) -> list[str]:
    if "papermill" in split(command)[0]:
        return check_papermill(where, command)
    return check_sweep(where, command)


# ---------------------------------------------------------------- schedules


def schedule_errors(stem: str, values: dict[str, Any], where: str) -> list[str]:
    """Rules that hold for every run of a notebook, whatever its size."""
    if not stem.startswith("05_"):
        return []
    p = {name: default for name, (_, default) in parameters_cell(stem).items()} | values
    longest = max(int(p["iterations"]), int(p["ablation_iterations"]))
    # Kwon & Ye 2022 Sec. 4.1: 200 iterations, lr halved once at 100. Halving every lr_step of a longer run
    # leaves a fraction of the learning-rate budget (the issue: lr_step 6 over 60 iterations is lr × 1e-3).
    if longest // int(p["lr_step"]) > 2:
        return [f"{where}: {longest} iterations with lr_step {p['lr_step']} halve the lr {longest // int(p['lr_step'])} times "
                f"(paper: 200 iterations, lr halved at 100); set lr_step to about half the iterations"]
    return []


def preset_schedule(stem: str, p: dict[str, Any]) -> list[tuple[str, Any, Any]]:
    """(parameter, value in the paper file, value of the stylecore preset it must reproduce)."""
    n = stem[:2]
    if n == "01":
        from stylecore.gatys import PRESETS

        hp = PRESETS[p["preset"]]
        return [("iterations", p["iterations"], hp.iterations), ("image_size", p["image_size"], hp.image_size),
                ("recon_iterations", p["recon_iterations"], hp.iterations), ("weights", p["weights"], "pretrained")]  # fmt: skip
    if n == "02":
        from stylecore.deep_photo.loss import PRESETS

        hp = PRESETS[p["preset"]]
        return [("stage1_iterations", p["stage1_iterations"], hp.iterations), ("stage2_iterations", p["stage2_iterations"], hp.iterations),
                ("gamma", p["gamma"], hp.gamma), ("lam", p["lam"], hp.lam), ("weights", p["weights"], "pretrained")]  # fmt: skip
    if n == "03":
        from stylecore.cin.training import PAPER_TRAINING as hp

        return [("train_steps", p["train_steps"], hp.steps), ("batch_size", p["batch_size"], hp.batch_size),
                ("crop_size", p["crop_size"], hp.crop_size), ("lr", p["lr"], hp.lr), ("width", p["width"], 1.0),
                ("weights", p["weights"], "pretrained")]  # fmt: skip
    if n == "04":
        from stylecore.styleclip.global_directions import GLOBAL_DEFAULTS as gd
        from stylecore.styleclip.latent import MAPPER_DEFAULTS as md
        from stylecore.styleclip.latent import OPTIMIZATION_PRESETS

        op = OPTIMIZATION_PRESETS["script"]
        return [("opt_steps", p["opt_steps"], op["steps"][0]), ("opt_lr", p["opt_lr"], op["lr"][0]),
                ("l2_lambda", p["l2_lambda"], op["l2_lambda"][0]), ("id_lambda", p["id_lambda"], op["id_lambda"][0]),
                ("truncation", p["truncation"], op["truncation"][0]),
                ("mapper_steps", p["mapper_steps"], md["max_steps"][0]), ("mapper_train_size", p["mapper_train_size"], md["train_size"][0]),
                ("mapper_batch", p["mapper_batch"], md["batch_size"][0]), ("mapper_lr", p["mapper_lr"], md["lr"][0]),
                ("mapper_l2_lambda", p["mapper_l2_lambda"], md["l2_lambda"][0]), ("mapper_id_lambda", p["mapper_id_lambda"], md["id_lambda"][0]),
                ("stats_samples", p["stats_samples"], gd["stats_samples"][0]), ("relevance_images", p["relevance_images"], gd["relevance_images"][0]),
                ("relevance_max_layer", p["relevance_max_layer"], gd["relevance_max_layer"][0]),
                ("generator_config", p["generator_config"], "ffhq-1024"), ("weights", p["weights"], "pretrained")]  # fmt: skip
    if n == "05":
        from stylecore.clipstyler.training import PRESETS
        from stylecore.clipstyler.fast import FAST_PRESETS

        hp, fast = PRESETS[p["preset"]], FAST_PRESETS[p["fast_preset"]]
        return [("iterations", p["iterations"], hp.steps), ("lr_step", p["lr_step"], hp.lr_step), ("lr_step", p["lr_step"], 100),
                ("image_size", p["image_size"], hp.image_size), ("patch_size", p["patch_size"], hp.patch_size),
                ("n_patches", p["n_patches"], hp.n_patches), ("tau", p["tau"], hp.tau), ("ablation_iterations", p["ablation_iterations"], hp.steps),
                ("fast_iterations", p["fast_iterations"], fast.steps), ("fast_crop", p["fast_crop"], fast.crop_size),
                ("fast_batch", p["fast_batch"], fast.batch_size), ("fast_draws", p["fast_draws"], fast.n_draws),
                ("clip_model", p["clip_model"], "ViT-B-32"), ("weights", p["weights"], "pretrained")]  # fmt: skip
    if n == "06":
        from stylecore.styo.idl import SETTINGS as s

        return [("idl_steps", p["idl_steps"], s["steps"][0]), ("idl_lr", p["idl_lr"], s["lr"][0]), ("n_s", p["n_s"], s["n_s"][0]),
                ("n_c", p["n_c"], s["n_c"][0]), ("image_size", p["image_size"], s["image_size"][0]),
                ("sample_steps", p["sample_steps"], s["sample_steps"][0]), ("inject_fraction", p["inject_fraction"], s["inject_fraction"][0]),
                ("guidance", p["guidance"], s["guidance"][0]), ("weights", p["weights"], "pretrained")]  # fmt: skip
    raise AssertionError(f"no preset schedule known for notebook {stem}: add it to preset_schedule")


# ---------------------------------------------------------------- tests


@pytest.mark.parametrize("stem", STEMS)
def test_quick_parameters_match_the_notebook(stem: str) -> None:
    path = QUICK / f"{stem}.json"
    assert path.is_file(), f"no quick-mode parameters {path}"
    assert not type_errors(stem, load_file(path), str(path.relative_to(ROOT)))


@pytest.mark.parametrize("stem", STEMS)
def test_paper_file_matches_the_notebook_and_its_preset(stem: str) -> None:
    path = PAPER / f"{stem}.paper.yaml"
    assert path.is_file(), f"no paper-size parameter file {path} (CONTRIBUTING: notebooks/params/<stem>.paper.yaml)"
    values = load_file(path)
    rel = str(path.relative_to(ROOT))
    assert not type_errors(stem, values, rel), type_errors(stem, values, rel)
    assert values.get("interactive") is False and values.get("device") == "cuda", f"{rel}: a paper run is headless and on a GPU"
    merged = {name: default for name, (_, default) in parameters_cell(stem).items()} | values
    wrong = [f"{name}: {got!r}, preset {want!r}" for name, got, want in preset_schedule(stem, merged) if got != want]
    assert not wrong, f"{rel} does not reproduce its preset: {wrong}"
    assert not schedule_errors(stem, values, rel), schedule_errors(stem, values, rel)
    # every value says where it comes from: a comment on its line
    for line in path.read_text().splitlines():
        if re.match(r"^\w+:", line):
            assert "#" in line, f"{rel}: no source comment on {line!r}"


def test_paper_files_are_documented() -> None:
    readme = (ROOT / "README.md").read_text()
    for stem in STEMS:
        name = f"notebooks/params/{stem}.paper.yaml"
        assert name in readme, f"README.md does not point at {name}"
        assert name in nbformat.read(NOTEBOOKS / f"{stem}.ipynb", as_version=4).cells[0].source, f"{stem} cell 0 does not point at {name}"


def test_documented_commands_match_the_notebooks() -> None:
    commands = documented_commands()
    assert len(commands) >= 2 * len(STEMS), f"expected a quick and a paper-size command per notebook, found {len(commands)}"
    errors = [e for where, command in commands for e in check_command(where, command)]
    assert not errors, "\n".join(errors)


def test_option_fragments_in_cell_0_name_real_parameters() -> None:
    """Inline code such as `-p generator_config ffhq-1024` in a notebook's introduction names its own parameters."""
    errors = []
    for stem in STEMS:
        for span in code_spans(nbformat.read(NOTEBOOKS / f"{stem}.ipynb", as_version=4).cells[0].source):
            if "papermill" in span or "stylecore sweep" in span:
                continue
            for m in re.finditer(r"(?:^|\s)-p (\w+) (\S+)", span):
                errors += type_errors(stem, {m.group(1): papermill_value(m.group(2))}, f"{stem} cell 0: {span}", from_cli=True)
    assert not errors, "\n".join(errors)


@pytest.mark.parametrize("grid", sorted(SWEEPS.glob("*.yaml")), ids=lambda p: p.name)
def test_sweep_grid_names_notebook_parameters(grid: Path) -> None:
    stems = [s for s in STEMS if s[:2] == grid.name[:2]]
    assert len(stems) == 1, f"{grid.name}: name it <NN>_<figure>.yaml after its notebook"
    doc = yaml.safe_load(grid.read_text())
    errors = type_errors(stems[0], doc.get("parameters") or {}, grid.name)
    for axis, values in (doc.get("axes") or {}).items():
        for v in values:
            errors += type_errors(stems[0], {axis: v}, f"{grid.name} axis {axis}")
    for i, point in enumerate(doc.get("points") or []):
        errors += type_errors(stems[0], point, f"{grid.name} points[{i}]")
    assert not errors, "\n".join(errors)
    # the commands in the grid's header comment are runnable too
    for m in re.finditer(r"stylecore sweep [^\n]*(?:\\\n#[^\n]*)*", grid.read_text()):
        command = re.sub(r"\\\n#\s*", " ", m.group(0))
        assert not check_sweep(grid.name, command), check_sweep(grid.name, command)


def test_the_checks_catch_mistakes() -> None:
    """The checks above fail on a wrong name, a wrong type, a missing --cwd and notebook 05's old schedule."""
    nb05 = "notebooks/05_kwon_2022_clipstyler.ipynb"
    ok = f"papermill {nb05} out.ipynb --cwd notebooks -p interactive False -p image_size 512"
    assert not check_command("scratch", ok)
    assert any("no parameter 'image_sise'" in e for e in check_command("scratch", ok.replace("image_size", "image_sise")))
    assert any("annotates int" in e for e in check_command("scratch", ok.replace("512", "big")))
    assert any("--cwd notebooks" in e for e in check_command("scratch", ok.replace("--cwd notebooks ", "")))
    assert any("interactive False" in e for e in check_command("scratch", ok.replace("-p interactive False ", "")))
    assert any("lr_step" in e for e in check_command("scratch", ok + " -p iterations 200 -p ablation_iterations 200"))
    assert not check_command("scratch", ok + " -p iterations 200 -p ablation_iterations 200 -p lr_step 100")
    assert any("halve the lr" in e for e in check_sweep("scratch", f"stylecore sweep {nb05} sweeps/05_clipstyler_ablations.yaml --out x -p ablation_iterations 200"))
