# The two commands of the README: `make up` installs and starts the system, `make test` installs and
# runs the tests. Both work on a fresh clone: they create .venv and install the pinned dependencies
# (constraints.txt: the exact releases; pyproject.toml holds compatible ranges).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: up test test-production lint check install assets bench clean conformance conformance-sns fuzz

# The website's front-end packages (package-lock.json) and its stylesheet compiled from them; see docs/website.md.
NPM_STAMP := node_modules/.package-lock.json
WEB_CSS := build/web/site.css

PIP_INSTALL := $(BIN)/pip install --quiet -c constraints.txt

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(PIP_INSTALL) -e '.[dev]'
	touch $(STAMP)

$(NPM_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $(NPM_STAMP)

$(WEB_CSS): $(NPM_STAMP) $(wildcard src/scte/web/static/*.scss)
	mkdir -p $(dir $(WEB_CSS))
	node_modules/.bin/sass --load-path=node_modules --style=compressed --no-source-map --quiet-deps \
		src/scte/web/static/site.scss $(WEB_CSS)

assets: $(WEB_CSS)

install: $(STAMP) assets

up: $(STAMP) assets
	$(BIN)/scte up

# The browser tests run in a pytest of their own: Playwright's sync API keeps its event loop marked as
# running in the worker's thread for the rest of the session, so asyncio tests that share its worker fail.
test: $(STAMP) assets
	$(BIN)/pytest -n 2 --dist loadgroup --durations=15 --ignore=tests/browser
	$(BIN)/pytest -n 2 --dist loadgroup --durations=5 tests/browser

# The e2e flow suite again, on `scte up --replicas notifications=2,certification=2` (SCTE_E2E_REPLICAS,
# tests/harness/platform.py): the same assertions with two processes consuming each of those queues
# (notifications: a standard queue whose effect is mail; certification: a FIFO queue).
REPLICAS ?= notifications=2,certification=2
.PHONY: test-replicas
test-replicas: $(STAMP) assets
	SCTE_E2E_REPLICAS=$(REPLICAS) $(BIN)/pytest -n 2 --dist loadgroup --durations=5 \
		tests/e2e/test_flows_b.py tests/e2e/test_flows_c.py tests/e2e/test_member_standing_e2e.py \
		tests/e2e/test_replicas_e2e.py

# The end-to-end flow suite in production mode: `scte up --broker` a moto_server (the AWS stand-in, topology
# made by --provision, checked by every service) and `--database` PostgreSQL (a database per service, dropped
# after); the same tests as in `make test` (tests/harness/platform.py, SCTE_E2E_BROKER, SCTE_E2E_DATABASE).
PRODUCTION_FLOWS := tests/e2e/test_flows_b.py tests/e2e/test_flows_c.py tests/e2e/test_members_e2e.py
test-production: $(STAMP) assets
	SCTE_E2E_BROKER=moto SCTE_E2E_DATABASE=postgresql $(BIN)/pytest -n 2 --durations=5 $(PRODUCTION_FLOWS)

# The bus contract suite and the queue/bus integration tests with every speed path off (SCTE_SPEED_PATHS=off,
# src/scte/speed_paths.py): SQLAlchemy's own greenlet spawner, aiosqlite, uvicorn's ASGI request cycle, as an
# installation beside other releases of SQLAlchemy or uvicorn runs them. Tests of a speed path itself (marker
# `speed_path`: the pooled greenlets, the inline driver's direct statements, server/http.py) are deselected.
SLOW_PATH_TESTS := tests/unit/bus tests/integration/bus tests/integration/queue tests/integration/server tests/unit/test_speed_paths.py
.PHONY: test-slow-path
test-slow-path: $(STAMP)
	SCTE_SPEED_PATHS=off $(BIN)/pytest -n 2 --dist loadgroup --durations=5 -m "not speed_path" $(SLOW_PATH_TESTS)

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy

check: lint test

# moto's SQS test suite in server mode against `scte queue serve` (downloads the moto sdist; see
# docs/queue-server.md). Prints "N passed, N failed"; fails unless every selected test passes.
conformance: $(STAMP)
	$(PIP_INSTALL) -e '.[dev,conformance]'
	$(BIN)/python tests/conformance/moto_sqs.py

# moto's SNS test suite (tests/test_sns of the same sdist) in server mode against `scte queue serve`;
# deselections with reasons in tests/conformance/moto_sns_deselected.txt. Fails unless all selected pass.
conformance-sns: $(STAMP)
	$(PIP_INSTALL) -e '.[dev,conformance]'
	$(BIN)/python tests/conformance/moto_sns.py

# The fuzzing gate: schemathesis (pinned, extra `fuzz`) over every service's OpenAPI, each service
# served on loopback with a fresh database; no 5xx and every answer as documented. Prints
# "fuzz: N cases over M operations of 10 services"; a few minutes on two cores (tests/fuzz/fuzz_apis.py).
fuzz: $(STAMP)
	$(PIP_INSTALL) -e '.[dev,fuzz]'
	$(BIN)/python tests/fuzz/fuzz_apis.py

bench: $(STAMP)
	$(BIN)/python bench/queue_engine.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache node_modules build
