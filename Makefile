# medground: two commands.
#   make test       create .venv if missing, run the test suite
#   make reproduce  create .venv if missing, execute the notebook batch (PROFILE=smoke by default)
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PROFILE ?= smoke
PYTEST_ARGS ?=
# glibc malloc: keep PyTorch's per-step CPU buffers in the heap instead of returning them to the OS
# at every step (training about 1.25x faster on a CPU, same numbers; see MALLOC_ENV in medlib/reproduce.py)
export MALLOC_MMAP_THRESHOLD_ ?= 33554432
export MALLOC_TRIM_THRESHOLD_ ?= 4294967296
export MALLOC_TOP_PAD_ ?= 1073741824

.PHONY: venv test test-fast reproduce lint sync clean-notebooks nbdime

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip setuptools wheel
	$(PY) -m pip install -e ".[dev]"
	touch $@

venv: $(VENV)/.installed

test: venv
	$(PY) -m pytest $(PYTEST_ARGS)

test-fast: venv
	$(PY) -m pytest -m "not slow" $(PYTEST_ARGS)

reproduce: venv
	$(PY) -m medlib reproduce --profile $(PROFILE)

lint: venv
	$(PY) -m ruff check medlib tests benchmarks notebooks

# notebooks/NN_name.ipynb and NN_name.py are a jupytext pair: bring the older one up to the newer
sync: venv
	$(VENV)/bin/jupytext --sync notebooks/*.ipynb

clean-notebooks: venv
	$(PY) -m medlib strip-notebooks notebooks

nbdime: venv
	$(VENV)/bin/nbdime config-git --enable
