# The README's two commands: `make qa` (the main job) and `make test` (the tests). Both set up first.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
BASE_URL ?=
PYTEST_ARGS ?=

.PHONY: setup qa test serve lint format bench clean

setup: $(VENV)/.installed
	@$(PY) -m utilities.browser ensure

$(VENV)/.installed: pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	@touch $@

qa: setup
	$(VENV)/bin/batchqa qa $(if $(BASE_URL),--base-url $(BASE_URL))

test: setup
	$(PY) -m pytest $(PYTEST_ARGS)

serve: setup
	$(VENV)/bin/batchqa serve

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: setup
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

bench: setup
	$(VENV)/bin/batchqa bench

clean:
	rm -rf $(VENV) reports/*/ .pytest_cache
