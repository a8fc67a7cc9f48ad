"""Write copies of the notebooks with their quick-mode parameters injected (not executed).

    python scripts/nb_prepare.py OUT_DIR

nbval then executes these copies (``pytest --nbval-lax OUT_DIR``): the committed cells,
run with the quick-mode values in ``tests/notebooks/params/<stem>.json``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import papermill as pm

ROOT = Path(__file__).resolve().parents[1]


def main(out_dir: str, *stems: str) -> None:
    out = Path(out_dir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    for nb in sorted((ROOT / "notebooks").glob("*.ipynb")):
        if stems and nb.stem not in stems:
            continue
        params = json.loads((ROOT / "tests" / "notebooks" / "params" / f"{nb.stem}.json").read_text())
        params |= {"interactive": False, "output_dir": str(out / "outputs" / nb.stem)}
        pm.execute_notebook(str(nb), str(out / nb.name), parameters=params, prepare_only=True, kernel_name="python3")
        print(f"prepared {out / nb.name}")


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    main(*sys.argv[1:])
