# driftmon: `make demo` and `make test` work from a fresh clone; both build .venv themselves.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
SRC    := monitor tests bench migrations setup.py

.PHONY: venv lint format test demo bench clean

$(STAMP): pyproject.toml setup.py
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

lint: venv
	$(BIN)/ruff check $(SRC)
	$(BIN)/ruff format --check $(SRC)
	$(BIN)/mypy monitor

format: venv
	$(BIN)/ruff check --fix $(SRC)
	$(BIN)/ruff format $(SRC)

test: lint
	$(BIN)/python -m pytest -q -ra

demo: venv
	$(BIN)/driftmon demo

bench: venv
	$(BIN)/python bench/replay.py

clean:
	rm -rf $(VENV) build *.egg-info .mypy_cache .pytest_cache .ruff_cache
