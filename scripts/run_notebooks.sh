#!/usr/bin/env bash
# Install everything, then execute every notebook in quick mode with papermill.
# Executed notebooks and their figures go to outputs/ (or $1).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
OUT=$(mkdir -p "${1:-outputs}" && cd "${1:-outputs}" && pwd)
if [ -z "${STYLECORE_DATA_DIR:-}" ] && [ -d ../shared/data ]; then export STYLECORE_DATA_DIR=$(cd ../shared/data && pwd); fi
export TQDM_MININTERVAL=${TQDM_MININTERVAL:-10}
for nb in notebooks/*.ipynb; do
  stem=$(basename "$nb" .ipynb)
  echo "==> $stem"
  .venv/bin/papermill "$nb" "$OUT/$stem.ipynb" --cwd notebooks --kernel python3 \
    -f "tests/notebooks/params/$stem.json" -p interactive False -p output_dir "$OUT/$stem" --no-progress-bar
done
echo
echo "Executed notebooks: $OUT/*.ipynb"
echo "Figures and summary.json of each: $OUT/<notebook>/"
