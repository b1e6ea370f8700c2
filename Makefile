# The two commands a newcomer needs: `make demo` and `make test`. Everything else supports them.
SHELL := /bin/bash
PY_BOOT ?= python3
UV_VERSION := 0.13.9
TOOLS := .tools
UV := $(TOOLS)/bin/uv
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test unit infra ui lint fmt typecheck schema bench services-up services-down clean FORCE

$(UV):
	$(PY_BOOT) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

# The package's files, listed: the strict editable install links each file, so adding or removing
# one must re-sync. This stamp changes only when the list does.
PKG_DIRS := sdk cli events graph api services
FILE_LIST := build/package-files
$(FILE_LIST): FORCE
	@mkdir -p build
	@{ find $(PKG_DIRS) -type f \( -name '*.py' -o -name '*.json' -o -name py.typed \) -not -path '*/__pycache__/*'; \
		find api/ui_dist -type f; } | sort > $@.new
	@if cmp -s $@.new $@; then rm $@.new; else mv $@.new $@; fi

# Installs provgraph (strict editable: see pyproject's [tool.uv]) with every extra and the dev group,
# exactly as pinned in uv.lock. Bytecode is compiled once here, as pip does on install (uv does not by
# default), provgraph's own modules too: where PYTHONDONTWRITEBYTECODE is set, every new interpreter
# (each CLI command, service and test subprocess) would otherwise compile every module it imports
# again (a service's imports: 3.3-3.7 s of CPU instead of 1.1-1.2 s).
$(VENV)/.synced: $(UV) pyproject.toml uv.lock $(FILE_LIST)
	$(UV) sync --frozen --all-extras --quiet --reinstall-package provgraph --compile-bytecode
	$(BIN)/python -m compileall -q -j 0 build/__editable__.provgraph-*
	touch $@

demo: $(VENV)/.synced
	$(BIN)/provgraph demo

# The whole suite: lint, types, then pytest. Session fixtures start Kafka, Neo4j, the Kubernetes
# control plane and S3 and stop what they started; `infra` fetches and builds them first (cached
# under .infra/, a no-op when present) so no test waits on a 10-minute cold build; it also builds
# the venvs with the real MLRun that tests/test_mlrun_real.py runs the MLRun handler suite in and with
# kfp for tests/test_pipeline_kfp.py, and
# installs the distribution's Chromium for the web UI's browser tests (marker `browser`).
test: $(VENV)/.synced lint typecheck infra
	$(BIN)/pytest

# The inner loop, about a minute on 2 cores: every test that needs no service (Kafka, Neo4j,
# Kubernetes, S3, a browser) and is not marked slow (those start servers or chains of CLI processes), in parallel.
unit: $(VENV)/.synced
	$(BIN)/pytest -q -n 2 -m "not kafka and not neo4j and not k8s and not s3 and not slow and not browser"

infra:
	scripts/infra/chromium.sh ensure
	scripts/infra/kafka.sh fetch
	scripts/infra/neo4j.sh fetch
	scripts/infra/k8s-build.sh build
	scripts/mlrun-venv.sh >/dev/null
	scripts/kfp-venv.sh >/dev/null
	scripts/ol-producers.sh venv dbt >/dev/null
	scripts/ol-producers.sh venv airflow >/dev/null

# The web UI (ui/, React + TypeScript) into api/ui_dist/, committed with a stamp of its sources' hash
# (tests/test_ui.py fails when ui/ changed without a rebuild). Needs Node.js 20+ and npm.
ui:
	scripts/ui.sh build

SOURCES := $(PKG_DIRS) tests bench

# Style, and the layer contract (pyproject's [tool.importlinter]): a wrong-way import fails here.
lint: $(VENV)/.synced
	$(BIN)/ruff check .
	$(BIN)/ruff format --check $(SOURCES)
	$(BIN)/lint-imports

fmt: $(VENV)/.synced
	$(BIN)/ruff check --fix-only --quiet .
	$(BIN)/ruff format $(SOURCES)

# The package and its tests, through the strict editable install (no copy).
typecheck: $(VENV)/.synced
	$(BIN)/mypy -p provgraph -p tests

schema: $(VENV)/.synced
	$(BIN)/python -m provgraph.events.schema_export export

bench: $(VENV)/.synced
	for b in bench/bench_*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

services-up:
	scripts/infra/services.sh up

services-down:
	scripts/infra/services.sh down

clean:
	rm -rf $(VENV) $(TOOLS) build .pytest_cache .mypy_cache .ruff_cache
