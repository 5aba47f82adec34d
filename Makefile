# The two commands of the README:
#   make demo   - create .venv, install everything (CPU torch), run `masksem demo` (no GPU, no downloads)
#   make test   - the test suite (what .ci/run calls): ruff + pytest
# GPU machines: install the CUDA build of torch into the venv first, then `make install TORCH=torch`.

PYTHON ?= python3
VENV ?= .venv
TORCH ?= torch==2.13.0
EXTRAS ?= export,pose,test,fast
BIN := $(VENV)/bin

.PHONY: install demo test lint bench clean

install: $(VENV)/.installed

$(VENV)/.installed: setup.py
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q "$(TORCH)"
	$(BIN)/python -m pip install -q -e ".[$(EXTRAS)]"
	touch $@

demo: install
	$(BIN)/masksem demo --out demo_out

test: install
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

bench: install
	$(BIN)/python bench/bench_suite.py

clean:
	rm -rf $(VENV) build *.egg-info demo_out
