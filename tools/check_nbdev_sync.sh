#!/usr/bin/env bash
# Fails when nbdev_export or nbdev_clean would change a file: the library must be generated from
# the notebooks, and the notebooks must be clean. Works on a dirty tree too (compares before/after).
set -euo pipefail
if ! git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  echo "sync check skipped: not a git checkout"; exit 0
fi
snapshot() { git status --porcelain --untracked-files=all; git diff; }
before=$(snapshot)
nbdev_export
nbdev_clean
after=$(snapshot)
if [ "$before" != "$after" ]; then
  echo "ERROR: nbdev_export / nbdev_clean changed files. The library or the notebooks were out of sync:"
  diff <(echo "$before") <(echo "$after") || true
  exit 1
fi
echo "sync check: nbdev_export and nbdev_clean leave no diff"
