#!/usr/bin/env bash
# Execute the library notebooks in place (so they carry their outputs and figures for readers and the docs),
# then clean them and re-render the README. Usage: tools/run_notebooks.sh [NOTEBOOK ...]
set -euo pipefail
cd "$(dirname "$0")/.."
nbs=("$@"); [ ${#nbs[@]} -gt 0 ] || nbs=(nbs/index.ipynb nbs/[0-9]*.ipynb)
for nb in "${nbs[@]}"; do
  echo "executing $nb"
  (cd "$(dirname "$nb")" && jupyter nbconvert --to notebook --execute --inplace --log-level WARN \
     --ExecutePreprocessor.timeout=900 "$(basename "$nb")")
done
nbdev_clean
python tools/render_readme.py
