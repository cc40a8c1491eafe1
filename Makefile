# pk2d: `make run` and `make test` are the only commands a new user needs.
# Both create .venv (with the machine's python3) when it is missing or stale.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
JOBS   ?= 2
AXE    := $(VENV)/node/node_modules/axe-core/axe.min.js

.DEFAULT_GOAL := help
.PHONY: help setup run test lab bench bench-scale coverage clean-outputs synth dictionary refresh-nbval reports

help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  make %-14s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (pk2d)" >/dev/null
	touch $(STAMP)

setup: $(STAMP) ## create .venv and install pk2d (editable) with its test extras

run: $(STAMP) ## the whole pipeline on data/raw: clean -> index -> compare -> reports (ends with reports/index.html)
	$(BIN)/pk2d run --jobs $(JOBS)

reports: $(STAMP) ## (re)render all village and district reports and reports/index.html
	$(BIN)/pk2d report --all --jobs $(JOBS)

$(AXE):
	@if command -v npm >/dev/null; then npm install --prefix $(VENV)/node axe-core@4.14.1 --no-audit --no-fund --silent; \
	else echo "npm not found: the accessibility audit in tests/test_browser.py will be skipped"; fi

test: $(STAMP) $(AXE) ## run every test: unit tests, doctests, the browser and accessibility checks, nbval
	$(BIN)/python -m pytest -q tests --doctest-modules pk2d
	$(BIN)/python -m pytest -q --nbval-lax notebooks -p no:cacheprovider

lab: $(STAMP) ## open JupyterLab on notebooks/ with a kernel where `import pk2d` works
	$(BIN)/jupyter lab --notebook-dir=notebooks

bench: $(STAMP) ## speed benchmarks (ratios against baselines measured in the same run; about 15 minutes)
	$(BIN)/python benchmarks/run.py
	$(BIN)/python benchmarks/reports.py

bench-scale: $(STAMP) ## national scale: clean + index of 1 M, 3 M, 10 M synthetic families on a local Dask cluster (about 30 minutes; 10 GB of disk)
	$(BIN)/python benchmarks/scale.py

coverage: $(STAMP) ## coverage of the 95 % intervals by simulation (500 replications, census and sample; about 6 minutes)
	$(BIN)/python benchmarks/coverage.py

synth: $(STAMP) ## regenerate the committed synthetic sample in data/raw
	$(BIN)/pk2d synth --out data/raw
	$(BIN)/pk2d dictionary

dictionary: $(STAMP) ## regenerate data/raw/README.md from pk2d/contract.yaml
	$(BIN)/pk2d dictionary

refresh-nbval: $(STAMP) ## after `make run`: store the outputs nbval checks (cells marked NBVAL_CHECK_OUTPUT)
	$(BIN)/python scripts/refresh_nbval.py

clean-outputs: ## delete build outputs (data/processed, reports), keep the raw data
	find data/processed -mindepth 1 ! -name .gitkeep ! -name README.md -exec rm -rf {} +
	find reports -mindepth 1 ! -name .gitkeep ! -name README.md -exec rm -rf {} +
