# The two commands a newcomer needs: `make demo` and `make test`. Everything else supports them.
SHELL := /bin/bash
PY_BOOT ?= python3
UV_VERSION := 0.13.9
TOOLS := .tools
UV := $(TOOLS)/bin/uv
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test infra lint typecheck schema bench services-up services-down clean

$(UV):
	$(PY_BOOT) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

# Installs provgraph (editable) with every extra and the dev group, exactly as pinned in uv.lock.
$(VENV)/.synced: $(UV) pyproject.toml uv.lock
	$(UV) sync --frozen --all-extras --quiet
	touch $@

demo: $(VENV)/.synced
	$(BIN)/provgraph demo

# The whole suite: lint, types, then pytest. Session fixtures start Kafka, Neo4j, the Kubernetes
# control plane and S3 and stop what they started; `infra` fetches and builds them first (cached
# under .infra/, a no-op when present) so no test waits on a 10-minute cold build.
test: $(VENV)/.synced lint typecheck infra
	$(BIN)/pytest

infra:
	scripts/infra/kafka.sh fetch
	scripts/infra/neo4j.sh fetch
	scripts/infra/k8s-build.sh build

lint: $(VENV)/.synced
	$(BIN)/ruff check .
	$(BIN)/ruff format --check sdk events graph api services tests bench

# mypy cannot follow setuptools' editable finder, so it checks an installed copy of the package.
typecheck: $(VENV)/.synced
	rm -rf .typecheck && $(UV) pip install --quiet --no-deps --target .typecheck . --python $(BIN)/python
	cd .typecheck && ../$(BIN)/mypy -p provgraph

schema: $(VENV)/.synced
	$(BIN)/python -m provgraph.events.schema export

bench: $(VENV)/.synced
	for b in bench/bench_*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

services-up:
	scripts/infra/services.sh up

services-down:
	scripts/infra/services.sh down

clean:
	rm -rf $(VENV) $(TOOLS) .typecheck .pytest_cache .mypy_cache .ruff_cache
