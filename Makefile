# bank-clickstream: `make demo` runs the job on the local stack, `make test` runs every check.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)
# The native core (Rust, built by maturin through pip): rebuilt when its sources change.
NATIVE_SOURCES := native/Cargo.toml native/Cargo.lock native/pyproject.toml native/rust-toolchain.toml native/clickstream_native.pyi $(sort $(wildcard native/src/*.rs))
NATIVE_STAMP := $(VENV)/.native-$(shell cat $(NATIVE_SOURCES) | cksum | cut -d' ' -f1)
export PIP_CACHE_DIR := $(CURDIR)/.cache/pip
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: install demo test nightly lint helm-check stack-up stack-down stack-status bench dashboard-pictures clean

install: $(STAMP) $(NATIVE_STAMP)

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), "Python 3.11 is required, found " + sys.version' \
	  || { echo "error: Python 3.11 is required (set PYTHON=/path/to/python3.11)"; exit 1; }
	@command -v cargo >/dev/null || { echo "error: Rust (cargo, via rustup) is required to build native/"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]' ./native
	rm -f $(VENV)/.installed-* $(VENV)/.native-*
	touch $@ $(NATIVE_STAMP)

$(NATIVE_STAMP): $(NATIVE_SOURCES)
	$(BIN)/pip install -q --no-deps --force-reinstall ./native
	rm -f $(VENV)/.native-*
	touch $@

demo: install
	$(BIN)/clickstream demo

test: install
	bash scripts/test.sh

nightly: install
	bash scripts/nightly.sh

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy .

# The Helm chart: helm lint --strict, helm template with the default and ci/ values, kubeconform
# against offline schemas (helm and kubeconform built once by scripts/helm-tools.sh).
helm-check: install
	bash scripts/helm-check.sh

stack-up: install
	$(BIN)/python -m devstack up

stack-down: install
	$(BIN)/python -m devstack down

stack-status: install
	$(BIN)/python -m devstack status

bench: install
	bash scripts/bench.sh $(ARGS)

# Pictures of the Grafana dashboards for docs/dashboards.md, from a simulated day on the stack.
dashboard-pictures: install
	$(BIN)/python -m devstack up
	$(BIN)/python scripts/dashboard_pictures.py

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache native/target
