#!/usr/bin/env bash
# Fails when nbdev_export, nbdev_clean or the README renderer would change a file: the library must be generated from
# the notebooks, and the notebooks must be clean. Works on a dirty tree too (compares before/after).
set -euo pipefail
if ! git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  echo "sync check skipped: not a git checkout"; exit 0
fi
snapshot() { git status --porcelain --untracked-files=all; git diff; }
before=$(snapshot)
nbdev_export
nbdev_clean
python tools/render_readme.py
after=$(snapshot)
if [ "$before" != "$after" ]; then
  echo "ERROR: nbdev_export / nbdev_clean / tools/render_readme.py changed files: the library, README or notebooks were out of sync:"
  diff <(echo "$before") <(echo "$after") || true
  exit 1
fi
echo "sync check: nbdev_export, nbdev_clean and the README renderer leave no diff"
