# Tickwork — the two commands: `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAGE ?= dev
export AWS_DEFAULT_REGION ?= us-east-1

.PHONY: run reset test lint typecheck cfn-lint unit functional e2e requirements vendor deploy package policies routes admin-token clean \
	console chromium bench-deps

# The virtualenv is rebuilt when pyproject.toml changes.
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade "pip<26.3"  # chalice needs pip<26.3
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

# What only the benchmarks need (the `bench` extra, bench/README.md), on top of `dev`.
bench-deps: $(VENV)/.installed  ## Install the benchmarks' extra dependencies (Celery; Debian's redis-server)
	$(PY) -m pip install --quiet -e '.[dev,bench]'
	@command -v redis-server >/dev/null || { $(SUDO) apt-get update && $(SUDO) apt-get install -y redis-server; }

run: $(VENV)/.installed  ## Start the local stack on http://127.0.0.1:$${TICKWORK_PORT:-8000}
	$(PY) -m infra.local_stack

# Refused while a stack is using the state dir (it holds a lock there).
reset: $(VENV)/.installed  ## Delete the local stack's data ($${TICKWORK_STATE_DIR:-.tickwork}/) to start afresh
	$(PY) -m infra.state_dir reset

# pytest-xdist workers (docs/testing.md): e2e tests spend much of their time
# waiting on a stack's real-time runs, but the rest is CPU-bound: one worker per core.
TEST_WORKERS ?= 2
test: $(VENV)/.installed chromium lint typecheck cfn-lint  ## Lint, type-check and run every test
	$(PY) -m pytest -n $(TEST_WORKERS) --durations=25

# The console tests drive Debian's Chromium (never Playwright's download).
# Installed once; a machine that has it skips this in no time.
CHROMIUM := /usr/bin/chromium
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
chromium:
	@test -x $(CHROMIUM) || { $(SUDO) apt-get update && $(SUDO) apt-get install -y chromium; }

# The web console as a static site in build/console (make console CONSOLE_API=https://…
# for a console served apart from the API; `make run` builds and serves its own).
CONSOLE_API ?=
console: $(VENV)/.installed  ## Build the web console into build/console
	$(PY) -m infra.console_build build/console --api-base '$(CONSOLE_API)'

lint: $(VENV)/.installed
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

typecheck: $(VENV)/.installed
	$(PY) -m mypy

# cfn-lint (offline, SAM transform included) on both templates of the stage:
# what `make package` writes and what `make deploy` hands CloudFormation.
# Any error or warning fails; ignores are listed in docs/deploy.md.
cfn-lint: package
	mkdir -p build/infra
	$(PY) -m infra.resources $(STAGE) > build/infra/template-$(STAGE).json
	$(VENV)/bin/cfn-lint build/chalice/sam.json build/infra/template-$(STAGE).json

unit functional e2e: $(VENV)/.installed
	$(PY) -m pytest -n $(TEST_WORKERS) tests/$@

requirements: $(VENV)/.installed  ## Regenerate requirements.txt (Chalice's) from pyproject.toml
	$(PY) -m infra.requirements > requirements.txt

# Chalice copies chalicelib/ whole, bytecode caches too: this machine's, which Lambda
# never uses (the zip's timestamps do not match them), so they go first.
vendor: $(VENV)/.installed requirements.txt
	$(PY) -m infra.requirements --check requirements.txt
	rm -rf vendor && $(PY) -m infra.requirements --vendor vendor
	find chalicelib -name __pycache__ -type d -prune -exec rm -rf {} +

# One IAM policy file per (stage, function), from infra/iam.py and each stage's
# settings in .chalice/config.json; a test fails when the committed ones are stale.
policies: $(VENV)/.installed  ## Regenerate the per-function IAM policies in .chalice/
	$(PY) -m infra.iam

# Which module declares each API route (infra/routes.py): the app registers every route
# from it and imports a route's module on its first request; a test fails when it is stale.
routes: $(VENV)/.installed  ## Regenerate chalicelib/api/route_index.py after adding or moving a route
	$(PY) -m infra.routes

# Then bytecode for what the functions load (infra/package.py): Lambda cannot write it.
# `chalice package` imports the app to read its routes: without PYTHONDONTWRITEBYTECODE
# that import would leave timestamped bytecode in chalicelib/ for the zip to carry.
package: vendor  ## Build the Lambda deployment package into build/chalice
	PYTHONDONTWRITEBYTECODE=1 $(VENV)/bin/chalice package --stage $(STAGE) --merge-template infra/sam-merge.json build/chalice
	$(PY) -m infra.package build/chalice

deploy: vendor  ## Deploy tables/queues/console CDN (CloudFormation), the app (chalice deploy), the console files
	$(PY) -m infra.deploy $(STAGE)
	$(VENV)/bin/chalice deploy --stage $(STAGE)
	$(PY) -m infra.deploy $(STAGE) --batch-failures
	$(PY) -m infra.deploy $(STAGE) --console "$$($(VENV)/bin/chalice url --stage $(STAGE))"

admin-token: $(VENV)/.installed  ## Issue the first admin token of a deployed stage (prints it once)
	$(PY) -m infra.admin_token $(STAGE)

clean:
	rm -rf $(VENV) build .pytest_cache .mypy_cache .ruff_cache
