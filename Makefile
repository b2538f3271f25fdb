# Two commands: `make demo` runs the product on this machine, `make test` runs the checks CI runs.
# Both create the virtualenv in .venv on first use; nothing else needs to be installed beforehand.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip --disable-pip-version-check --quiet --quiet
MANAGE := $(BIN)/python manage.py

.DEFAULT_GOAL := help
.PHONY: help demo test lint migrate seed install install-test clean distclean

help:
	@echo "make demo     install, migrate, load demo data, run web + worker + beat on http://127.0.0.1:$${PORT:-8000}"
	@echo "make test     install with test extras, then ruff check and pytest (PostgreSQL/Redis if DATABASE_URL/REDIS_URL)"
	@echo "make lint     ruff check"
	@echo "make migrate  apply migrations to the configured database (default var/helpdesk.sqlite3)"
	@echo "make seed     load the demo data (idempotent) and print a fresh API channel token"
	@echo "make clean    remove var/ (demo database, queued tasks, static files) and caches; distclean also .venv"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Installed once per change of pyproject.toml (the install is editable: code changes need none).
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(PIP) install -e .
	@touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(PIP) install -e '.[test]'
	@touch $@

install: $(VENV)/.installed

install-test: $(VENV)/.installed-test

demo: install
	$(BIN)/python scripts/run_demo.py

# axe-core for the accessibility tests, pinned by tests/e2e/package-lock.json (npm registry).
E2E_NODE_MODULES := tests/e2e/node_modules/.package-lock.json

$(E2E_NODE_MODULES): tests/e2e/package.json tests/e2e/package-lock.json
	npm ci --prefix tests/e2e --no-audit --no-fund
	@touch $@

test: install-test $(E2E_NODE_MODULES)
	$(BIN)/ruff check .
	$(BIN)/pytest

lint: install-test
	$(BIN)/ruff check .

migrate: install
	$(MANAGE) migrate --noinput

seed: migrate
	DEBUG=$${DEBUG:-true} $(MANAGE) seed_demo

clean:
	rm -rf var .pytest_cache .ruff_cache build *.egg-info
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -prune -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV) tests/e2e/node_modules
