# The first two commands of the README. Each does all set-up on a fresh machine with python3 >= 3.11.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO_DIR ?= demo-project

.PHONY: demo test lint format clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/mlwizard demo $(DEMO_DIR) --force

# Test files are shared out to as many processes as there are cores, a file to one process
# (module fixtures such as a trained project are built once); PYTEST_ARGS="-n 0" runs serially.
PYTEST_ARGS ?= --numprocesses auto --dist loadfile

test: lint
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# ruff, the import contracts (pyproject's [tool.importlinter]) and the type checker.
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	$(BIN)/mypy src/mlwizard

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean:
	rm -rf $(VENV) $(DEMO_DIR) .pytest_cache .ruff_cache
