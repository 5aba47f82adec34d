# The two commands of the README:
#   make demo   - create .venv, install everything (CPU torch), run `masksem demo` (no GPU, no downloads)
#   make test   - the test suite (what .ci/run calls): ruff + pytest
#
# Which torch: $(TORCH) from TORCH_INDEX when that index answers within TORCH_PROBE_S seconds (PyTorch's
# CPU wheels by default: ~200 MB, no CUDA libraries), else $(TORCH) from pip's configured index (on public
# PyPI for Linux x86_64 that is the CUDA build, several GB; where a CPU wheel is on local disk, as in this
# project's CI, that one). `make torch-source` says which one a `make install` would use.
# GPU machines: `make install TORCH_INDEX=https://download.pytorch.org/whl/cu128` (the CUDA version
# that suits your driver, see pytorch.org/get-started); `TORCH_INDEX=` uses pip's default index.

PYTHON ?= python3
VENV ?= .venv
TORCH ?= torch==2.13.0
TORCH_INDEX ?= https://download.pytorch.org/whl/cpu
TORCH_PROBE_S ?= 5
EXTRAS ?= export,pose,test,fast
THREADS ?=   # make demo THREADS=1 on a CPU shared with other jobs (default: masksem's, see README)
BIN := $(VENV)/bin

# exit 0 when $(TORCH_INDEX) answers within $(TORCH_PROBE_S) s (DNS included: the wait is on a thread)
PROBE_TORCH_INDEX = [ -n "$(TORCH_INDEX)" ] && $(PYTHON) -c 'import sys, threading, urllib.request as u; \
ok = []; url, limit = sys.argv[1].rstrip("/") + "/torch/", float(sys.argv[2]); \
t = threading.Thread(target=lambda: ok.append(u.urlopen(url, timeout=limit).status == 200), daemon=True); \
t.start(); t.join(limit); sys.exit(0 if ok == [True] else 1)' "$(TORCH_INDEX)" "$(TORCH_PROBE_S)" 2>/dev/null
PROBE_FAILED = $(if $(TORCH_INDEX),$(TORCH_INDEX) not reachable in $(TORCH_PROBE_S) s,TORCH_INDEX is empty)

.PHONY: install demo test lint bench clean torch-source

install: $(VENV)/.installed

$(VENV)/.installed: setup.py package.xml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	@if $(PROBE_TORCH_INDEX); then \
	  echo "installing $(TORCH) from $(TORCH_INDEX)"; \
	  $(BIN)/python -m pip install -q "$(TORCH)" --index-url "$(TORCH_INDEX)"; \
	else \
	  echo "installing $(TORCH) from pip's configured index ($(PROBE_FAILED))"; \
	  $(BIN)/python -m pip install -q "$(TORCH)"; \
	fi
	$(BIN)/python -m pip install -q -e ".[$(EXTRAS)]"
	touch $@

demo: install
	$(BIN)/masksem demo --out demo_out $(if $(THREADS),--threads $(THREADS))

test: install
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

bench: install
	$(BIN)/python bench/bench_suite.py

torch-source:
	@if $(PROBE_TORCH_INDEX); then echo "$(TORCH) from $(TORCH_INDEX)"; \
	else echo "$(TORCH) from pip's configured index ($(PROBE_FAILED))"; fi

clean:
	rm -rf $(VENV) build *.egg-info demo_out
