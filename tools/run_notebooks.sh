#!/usr/bin/env bash
# Execute the library notebooks in place (so they carry their outputs and figures for readers and the docs), stamp
# each with the hash of the code it ran (tools/notebooks.py), then clean them and re-render the README.
# Usage: tools/run_notebooks.sh [NOTEBOOK ...]   (default: every notebook in nbs/, experiments excluded)
set -euo pipefail
cd "$(dirname "$0")/.."
python tools/notebooks.py run "$@"
nbdev_clean
python tools/render_readme.py
