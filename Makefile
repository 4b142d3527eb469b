# The single entry point: make run | test | lint | bench | migrate | worker | scheduler | api
VENV ?= .venv
PY := $(VENV)/bin/python
BIN := $(VENV)/bin
export UNDERTOW_SHARED_DIR ?= $(abspath ../shared)

.PHONY: install run test lint audit bench migrate worker scheduler api services system-deps lock clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml constraints.txt
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip setuptools wheel
	$(PY) -m pip install -q -c constraints.txt -e '.[dev]'
	# The encoder's ONNX graph, exported from the packaged weights (no network); a first load
	# would build it too, but then inside someone's timing.
	$(PY) -m classify.onnx_backend
	# The traced bf16 module, where the CPU runs bf16 fast (`classify file` takes it there).
	$(PY) -m classify.torchscript
	touch $@

run: install
	$(BIN)/undertow run

migrate: install
	$(BIN)/undertow db upgrade

api: install
	$(BIN)/undertow api

worker: install
	$(BIN)/undertow worker

scheduler: install
	$(BIN)/undertow scheduler

system-deps:
	scripts/system-deps.sh

services:
	scripts/ensure-services.sh

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy .
	$(PY) -m pip check

# Known vulnerabilities in the locked versions. Needs a network (PyPI and the OSV database), so
# it is not part of lint or test: the build machines cannot reach a vulnerability database.
audit: install
	$(PY) -m pip install -q pip-audit
	$(BIN)/pip-audit --strict --no-deps --disable-pip -r constraints.txt

test: install system-deps services lint
	$(BIN)/pytest

bench: install services
	$(PY) -m bench.run

# Refresh the lock after changing dependencies in pyproject.toml.
lock:
	$(PY) -m pip freeze --exclude-editable | grep -v '^undertow' > constraints.txt

clean:
	rm -rf var .pytest_cache .mypy_cache .ruff_cache
