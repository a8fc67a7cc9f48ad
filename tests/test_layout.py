"""The package's layout rules (CONTRIBUTING, "Layout"), read from the sources with ``ast``.

Shared modules at the top of ``stylecore`` import only shared modules; ``nets`` imports shared modules and
itself; a paper (``gatys``, ``deep_photo``, ``cin``, ``styleclip``, ``clipstyler``, ``styo``) imports shared
modules, ``nets`` and itself, never another paper. Notebooks import a paper through its package, never
through a file inside it.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "stylecore"
PAPERS = ("gatys", "deep_photo", "cin", "styleclip", "clipstyler", "styo")


def module_name(path: Path, root: Path = ROOT) -> str:
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path, root: Path = ROOT) -> set[str]:
    """Every ``stylecore`` module a file imports, at the top or inside a function, absolute or relative."""
    name = module_name(path, root)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] == "stylecore")
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != "stylecore":
                continue
            # ``from stylecore.nets import vgg`` imports the module stylecore.nets.vgg
            for alias in node.names:
                sub = (root / "stylecore").joinpath(*target.split(".")[1:], alias.name)
                found.add(f"{target}.{alias.name}" if sub.with_suffix(".py").exists() or sub.is_dir() else target)
    return found


def group(module: str) -> str:
    """'shared', 'nets' or the paper's name, for a module ``stylecore.…``."""
    parts = module.split(".")
    if len(parts) == 1:
        return "root"  # stylecore/__init__.py itself
    top = parts[1]
    if top in PAPERS:
        return top
    return "nets" if top == "nets" else "shared"


ALLOWED = {"shared": {"shared"}, "nets": {"shared", "nets"}}


def violations(files, root: Path = ROOT) -> list[str]:
    bad = []
    for path in files:
        src = group(module_name(path, root))
        if src == "root":
            continue
        allowed = ALLOWED.get(src, {"shared", "nets", src})
        for target in sorted(imported_modules(path, root)):
            if target != "stylecore" and group(target) not in allowed:
                bad.append(f"{module_name(path, root)} ({src}) imports {target} ({group(target)})")
    return bad


def test_no_module_imports_upward_or_across_papers():
    files = sorted(PACKAGE.rglob("*.py"))
    edges = sum(len(imported_modules(f)) for f in files)
    assert len(files) > 30 and edges > 50, (len(files), edges)  # the reader sees the imports it must judge
    assert violations(files) == []


def test_the_rule_catches_a_paper_importing_another_and_nets_importing_a_paper(tmp_path):
    # The checker itself must see a violation written in each import style it reads.
    fake = tmp_path / "stylecore"
    (fake / "styo").mkdir(parents=True)
    (fake / "nets").mkdir()
    for f in ("__init__.py", "styo/__init__.py", "nets/__init__.py", "images.py", "deep_photo.py"):
        (fake / f).write_text("")
    (fake / "styo" / "fcc.py").write_text("from ..deep_photo import loss\n")
    (fake / "nets" / "vgg.py").write_text("def f():\n    import stylecore.styo.fcc\n")
    (fake / "images.py").write_text("from stylecore.nets import vgg\nfrom . import data\n")
    assert violations(sorted(fake.rglob("*.py")), tmp_path) == [
        "stylecore.images (shared) imports stylecore.nets.vgg (nets)",
        "stylecore.nets.vgg (nets) imports stylecore.styo.fcc (styo)",
        "stylecore.styo.fcc (styo) imports stylecore.deep_photo (deep_photo)",
    ]


def notebook_imports(path: Path) -> list[str]:
    modules = []
    for cell in json.loads(path.read_text(encoding="utf-8"))["cells"]:
        if cell["cell_type"] != "code":
            continue
        src = "".join(cell["source"])
        lines = [ln for ln in src.splitlines() if not ln.lstrip().startswith(("%", "!"))]
        for node in ast.walk(ast.parse("\n".join(lines))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("stylecore"):
                modules.append(node.module)
            elif isinstance(node, ast.Import):
                modules += [a.name for a in node.names if a.name.startswith("stylecore")]
    return modules


@pytest.mark.parametrize("path", sorted((ROOT / "notebooks").glob("*.ipynb")), ids=lambda p: p.name[:2])
def test_notebooks_import_a_paper_through_its_package(path):
    modules = notebook_imports(path)
    assert modules, "the notebook imports nothing from stylecore"
    inside = [m for m in modules if len(m.split(".")) > 2 and m.split(".")[1] in PAPERS]
    assert inside == [], f"import these names from the paper's package (its __init__ re-exports them): {inside}"


def test_each_paper_package_exports_what_it_names():
    import importlib

    for paper in PAPERS[1:]:
        package = importlib.import_module(f"stylecore.{paper}")
        missing = [n for n in package.__all__ if not hasattr(package, n)]
        assert missing == [], (paper, missing)
        submodules = {p.stem for p in (PACKAGE / paper).glob("*.py") if p.stem != "__init__"}
        assert submodules <= set(package.__all__), (paper, submodules - set(package.__all__))
