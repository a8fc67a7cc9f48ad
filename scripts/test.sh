#!/usr/bin/env bash
# Install everything, then run the whole test suite: unit tests, every notebook executed by
# papermill in quick mode, and nbval over the notebooks (with the same quick-mode values).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# Sample images: a local folder if there is one (CI: ../shared/data), else the cache / pinned downloads.
if [ -z "${STYLECORE_DATA_DIR:-}" ] && [ -d ../shared/data ]; then export STYLECORE_DATA_DIR=$(cd ../shared/data && pwd); fi
export STYLECORE_WEIGHTS=${STYLECORE_WEIGHTS:-auto} STYLECORE_OFFLINE=${STYLECORE_OFFLINE:-1}
export TQDM_MININTERVAL=${TQDM_MININTERVAL:-30} MPLBACKEND=${MPLBACKEND:-Agg} PYTHONUNBUFFERED=1
rm -rf build/nbval && .venv/bin/python scripts/nb_prepare.py build/nbval
.venv/bin/python -m pytest tests build/nbval --nbval-lax --nbval-cell-timeout=600 -p no:cacheprovider "$@"
