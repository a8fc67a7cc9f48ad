#!/usr/bin/env bash
# Install everything, then run the whole test suite: unit tests, every notebook executed by
# papermill in quick mode with assertions on what it wrote, and the widget notebooks in JupyterLab
# in a headless Chromium (tests/browser); nbval over the notebooks on request (STYLECORE_NBVAL=1).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# The browser tests drive the system's Chromium (Debian's package; Playwright's own browser download
# needs the internet). Installed here as root under CI=true or when asked with STYLECORE_INSTALL_BROWSER=1;
# without it the browser tests skip with one line (and fail under CI=true).
if [ ! -x /usr/bin/chromium ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null \
    && { [ "${CI:-}" = true ] || [ "${STYLECORE_INSTALL_BROWSER:-}" = 1 ]; }; then
  echo "==> installing Chromium from the Debian packages for the browser tests"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium fonts-liberation >/dev/null
fi
# Sample images: a local folder if there is one (CI: ../shared/data), else the cache / pinned downloads.
if [ -z "${STYLECORE_DATA_DIR:-}" ] && [ -d ../shared/data ]; then export STYLECORE_DATA_DIR=$(cd ../shared/data && pwd); fi
export STYLECORE_WEIGHTS=${STYLECORE_WEIGHTS:-auto} STYLECORE_OFFLINE=${STYLECORE_OFFLINE:-1}
export TQDM_MININTERVAL=${TQDM_MININTERVAL:-30} MPLBACKEND=${MPLBACKEND:-Agg} PYTHONUNBUFFERED=1
# Every notebook is executed once, by papermill in tests/notebooks, and its numbers asserted. nbval over
# the same quick-mode copies executes every cell a second time and adds no assertion, so it is opt-in:
# STYLECORE_NBVAL=1 bash scripts/test.sh.
targets=(tests)
if [ "${STYLECORE_NBVAL:-0}" = 1 ]; then
  rm -rf build/nbval && .venv/bin/python scripts/nb_prepare.py build/nbval
  targets+=(build/nbval --nbval-lax --nbval-cell-timeout=600)
fi
.venv/bin/python -m pytest "${targets[@]}" -p no:cacheprovider --durations=25 "$@"
