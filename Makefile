# Every target sets up what it needs: a virtual environment in .venv with srcgrad installed (editable)
# and its test and dask extras. `make demo` and `make test` are the two commands a new user runs.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test test-full fuzz bench bench-quick lint setup clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test,dask]'
	touch $(STAMP)

demo: $(STAMP)
	$(PY) examples/quickstart.py
	$(PY) examples/compiled_loop.py

# The last line says what was skipped and why (tests/conftest.py): the PyTorch/JAX/HIPS-autograd oracle
# tests need the bench extra, which `make test-full` installs before running everything.
test: $(STAMP)
	$(PY) -m pytest -n 2 tests

# differential fuzzer: random programs through grad, jvp, the tape and finite differences (reproducers in /tmp)
fuzz: $(STAMP)
	$(PY) -m tests.srcgrad.fuzz --programs 10000 --workers 2 --out /tmp/srcgrad_fuzz

test-full: $(STAMP)
	$(PY) -m pip install -q -e '.[test,bench]'
	$(PY) -m pytest -n 2 tests

# The peers (PyTorch, HIPS autograd, JAX) come with the bench extra; without them only srcgrad runs.
PEERS := $(VENV)/.peers
$(PEERS): pyproject.toml $(STAMP)
	$(PY) -m pip install -q -e '.[bench]' || echo "peers not installed: benchmarking srcgrad engines only"
	touch $(PEERS)

bench: $(PEERS)
	$(PY) -m benchmarks.run
	$(PY) -m benchmarks.corpus_run
	$(PY) -m benchmarks.dask_bench
	$(PY) -m pip install -q -e '.[docs]' && $(PY) -m benchmarks.plots

bench-quick: $(PEERS)
	$(PY) -m benchmarks.run --quick

# the user guide in build/site (docs/contributing.md); --strict: a broken link or a warning fails the build
.PHONY: docs
docs: $(STAMP)
	$(PY) -m pip install -q -e '.[docs]'
	$(PY) docs/make_parity.py
	NO_MKDOCS_2_WARNING=1 $(PY) -m mkdocs build --strict

lint: $(STAMP)
	$(PY) -m pip install -q ruff
	$(PY) -m ruff check srcgrad runtime tests benchmarks examples

clean:
	rm -rf $(VENV) build *.egg-info
