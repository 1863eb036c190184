# Two-command quick start: `make demo` and `make test` (each creates .venv and installs what it needs).
PYTHON ?= python3
VENV ?= .venv
# CPU build by default; override for GPUs, e.g. make setup TORCH_SPEC="torch==2.13.0 --index-url ..."
TORCH_SPEC ?= torch==2.13.0
BIN = $(VENV)/bin

.PHONY: setup demo test bench clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q $(TORCH_SPEC)
	$(BIN)/pip install -q -e ".[test,bench]"
	touch $@

demo: setup
	$(BIN)/lase-e2v demo --overwrite

test: setup
	$(BIN)/python -m pytest -q

bench: setup
	for b in benchmarks/[!_]*.py; do $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) build src/*.egg-info .pytest_cache
