"""Worker process of the local backend: ``python -m stylecore.sweep._worker SPEC.json``.

Executes one run into its private folder under ``OUT/.tmp`` and renames it into ``OUT/runs``.
A separate process per run: a crashing kernel or a leak cannot affect the other runs, and the
driver can stop a run by ending its process (the Jupyter kernel notices its parent is gone).
"""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path

from .execute import commit_run, execute_run


def _die_with_parent(parent: int) -> None:
    """Linux: end this process (and so its kernel) when the sweep that started it is killed."""
    if sys.platform.startswith("linux"):
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    if os.getppid() != parent:  # the parent died before the line above
        sys.exit(1)


def main(argv: list[str]) -> int:
    spec = json.loads(Path(argv[0]).read_text(encoding="utf-8"))
    _die_with_parent(spec["parent_pid"])
    work_dir = Path(spec["work_dir"])
    execute_run(spec, Path(spec["notebook_path"]), work_dir)
    commit_run(work_dir, Path(spec["dest"]), Path(spec["trash_dir"]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
