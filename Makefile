# jand: the two commands of the README, and a few helpers.
#   make reproduce   prepare the environment, then regenerate every table and figure (jand reproduce --profile quick)
#   make test        prepare the environment, then run every test (sync check, lint, nbdev_test, pytest)
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.jand-installed

.PHONY: env reproduce test test-slow sync lint lab notebooks clean-env docs browser schemas

# The virtual environment is created once and reused; it is refreshed when the pins change.
$(STAMP): settings.ini setup.py
	@$(PYTHON) -c 'import sys; assert sys.version_info[:2] >= (3, 11), "jand needs Python >= 3.11, found " + sys.version' 
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 >/dev/null
	@touch $(STAMP)

env: $(STAMP)

reproduce: $(STAMP)
	$(BIN)/jand reproduce --profile quick

# Notebooks are the source: exporting and cleaning them must not change any file.
sync: $(STAMP)
	@PATH="$(abspath $(BIN)):$$PATH" bash tools/check_nbdev_sync.sh

# Lint: ruff on the library, and through nbqa on the notebooks (rules and exclusions in pyproject.toml).
lint: $(STAMP)
	$(BIN)/ruff check jand
	$(BIN)/nbqa ruff nbs

test: sync lint browser schemas
	$(BIN)/nbdev_test --n_workers 2
	$(BIN)/python -m pytest

test-slow: sync
	$(BIN)/nbdev_test --n_workers 2 --flags slow
	$(BIN)/python -m pytest -m slow

# JupyterLab refuses to start as root unless told to (the usual case in containers).
lab: $(STAMP)
	$(BIN)/jupyter lab nbs $$([ "$$(id -u)" = 0 ] && echo --allow-root)

# Re-execute the notebooks so that their committed outputs and figures are current.
notebooks: $(STAMP)
	PATH="$(abspath $(BIN)):$$PATH" bash tools/run_notebooks.sh

# The documentation site without Quarto (nbconvert, jand.docs): open _site/index.html. Where Quarto is installed,
# `nbdev_docs` builds the nbdev site instead (nbs/_quarto.yml; published from main by .github/workflows/deploy.yml).
docs: $(STAMP)
	$(BIN)/python -c "from jand.docs import build_site; build_site()"

# Headless Chromium for the docs browser test (tests/test_docs.py), installed when missing. Never fatal: where no
# browser can be installed (no apt-get, not root, no network) that one test is skipped and says why.
browser:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || \
	  { command -v apt-get >/dev/null 2>&1 && apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } || \
	  echo "no browser: the docs browser test (tests/test_docs.py) will be skipped"

# The published PAGE 2019 and ALTO 4.4 schemas, from pinned wheels, for the page tests (tools/schemas.py). Never fatal.
schemas: $(STAMP)
	@$(BIN)/python tools/schemas.py

clean-env:
	rm -rf $(VENV)
