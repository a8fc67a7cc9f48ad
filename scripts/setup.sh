#!/usr/bin/env bash
# Create .venv (if missing) and install the project with everything the notebooks and tests need.
# Idempotent: a second run only checks that everything is installed.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "==> creating .venv with $($PYTHON --version)"
  "$PYTHON" -m venv .venv
fi
echo "==> installing stylecore and its dependencies into .venv (first time: a few minutes, ~5 GB for torch)"
.venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade "pip>=24"
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e ".[dev,cluster]" -c constraints.txt
# Register this environment's interpreter as the "python3" kernel that papermill and nbval ask for.
.venv/bin/python -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (stylecore)" >/dev/null
.venv/bin/python -c "import torch, torchvision, torchvision.ops; print(f'==> torch {torch.__version__}, torchvision {torchvision.__version__}: OK')"
