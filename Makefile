# Tickwork — the two commands: `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAGE ?= dev
export AWS_DEFAULT_REGION ?= us-east-1

.PHONY: run test lint typecheck unit functional e2e requirements vendor deploy package clean

# The virtualenv is rebuilt when pyproject.toml changes.
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

run: $(VENV)/.installed  ## Start the local stack on http://127.0.0.1:$${TICKWORK_PORT:-8000}
	$(PY) -m infra.local_stack

test: $(VENV)/.installed lint typecheck  ## Lint, type-check and run every test
	$(PY) -m pytest

lint: $(VENV)/.installed
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

typecheck: $(VENV)/.installed
	$(PY) -m mypy

unit functional e2e: $(VENV)/.installed
	$(PY) -m pytest tests/$@

requirements: $(VENV)/.installed  ## Regenerate requirements.txt (Chalice's) from pyproject.toml
	$(PY) -m infra.requirements > requirements.txt

vendor: $(VENV)/.installed requirements.txt
	$(PY) -m infra.requirements --check requirements.txt
	rm -rf vendor && $(PY) -m infra.requirements --vendor vendor

package: vendor  ## Build the Lambda deployment package into build/chalice
	$(VENV)/bin/chalice package --stage $(STAGE) build/chalice

deploy: vendor  ## Deploy tables/queues (CloudFormation), then the app (chalice deploy)
	$(PY) -m infra.deploy $(STAGE)
	$(VENV)/bin/chalice deploy --stage $(STAGE)

clean:
	rm -rf $(VENV) build .pytest_cache .mypy_cache .ruff_cache
