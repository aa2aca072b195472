# The README's two commands: `make qa` (the main job) and `make test` (the tests). Both set up first.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
BASE_URL ?=
PYTEST_ARGS ?=

.PHONY: setup promtool system-packages qa report test serve lint format bench clean

setup: $(VENV)/.installed node_modules/.installed
	@$(PY) -m utilities.procs.browser ensure
	-@$(PY) -m utilities.procs.promtool ensure

# Prometheus's promtool checks and unit-tests deploy/alerts.yaml. Setup tries it and goes on without it
# (those tests then skip, or fail in CI); this target fails when promtool cannot be installed.
promtool: $(VENV)/.installed
	@$(PY) -m utilities.procs.promtool ensure

# The Allure 3 report generator, pinned in package.json/package-lock.json. Without Node the kit still runs;
# only `batchqa report` (and the HTML step of `make qa`) is skipped, with a note.
node_modules/.installed: package.json package-lock.json
	@if command -v npm >/dev/null 2>&1 && command -v node >/dev/null 2>&1; then \
		npm ci --no-audit --no-fund --loglevel=error && touch $@; \
	else \
		echo "note: Node.js/npm not found: the Allure HTML report is skipped (install Node 20+ and rerun make setup)"; \
	fi

# Everything this repository's tests and tools use: the load and distributed extras, the test extra, the
# lint tools (dependency group `dev`, needs pip >= 25.1), with faker and openpyxl at the releases the
# committed fixtures were generated with.
$(VENV)/.installed: pyproject.toml constraints/fixtures.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade 'pip>=25.1'
	$(PY) -m pip install --quiet -c constraints/fixtures.txt -e '.[load,distributed,test]' --group dev
	@touch $@

# What a bare CI runner lacks that the tests start themselves: redis-server (each test's own Redis) and
# Debian's prometheus package (promtool). Through sudo when not root, as on GitHub's runners.
SYSTEM_PACKAGES ?= redis-server prometheus
system-packages:
	$(if $(filter 0,$(shell id -u)),,sudo) env DEBIAN_FRONTEND=noninteractive sh -c \
		'apt-get update -q && apt-get install -y -q --no-install-recommends $(SYSTEM_PACKAGES)'

# Failure videos need Debian's ffmpeg linked where Playwright looks: installed here (once, about 20 s, as
# root), not in setup, so `make test` and CI do not pay for what only the qa run records.
qa: setup
	@$(PY) -m utilities.procs.video ensure
	$(VENV)/bin/batchqa qa $(if $(BASE_URL),--base-url $(BASE_URL))

report: setup
	$(VENV)/bin/batchqa report

test: setup
	$(PY) -m pytest $(PYTEST_ARGS)

serve: setup
	$(VENV)/bin/batchqa serve

# Style, the import layering contracts (pyproject.toml [tool.importlinter]) and imports against the
# declared dependencies ([tool.deptry]).
lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports
	$(VENV)/bin/deptry .

format: setup
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

bench: setup
	$(VENV)/bin/batchqa bench

clean:
	rm -rf $(VENV) reports/*/ .pytest_cache
