# driftmon: `make demo` and `make test` work from a fresh clone; both build .venv themselves.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
SRC    := monitor tests bench migrations setup.py

.PHONY: venv lint format browser test demo bench clean

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

# The report's browser test needs Chromium. As root with apt-get, install Debian's package
# (refreshing the package lists only if the first try fails); otherwise the test is skipped.
# Never fails the build.
APT_CHROMIUM := DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium
browser:
	@command -v chromium >/dev/null || command -v chromium-browser >/dev/null || \
	  (command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ] && \
	   ($(APT_CHROMIUM) || (apt-get update -qq && $(APT_CHROMIUM))) >/dev/null 2>&1) || \
	  echo "chromium not installed: the browser test will be skipped"

test: lint browser
	$(BIN)/python -m pytest -q -ra

demo: venv
	$(BIN)/driftmon demo

bench: venv
	$(BIN)/python bench/replay.py

.PHONY: docs
docs: venv
	$(BIN)/python -m monitor.cli.reference > docs/cli.md

clean:
	rm -rf $(VENV) build *.egg-info .mypy_cache .pytest_cache .ruff_cache
