# One entry point: `make demo` and `make test` both set up everything they
# need on a fresh machine (venv, pinned stack, package) and reuse it after.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.dpt_mm-installed
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export PYTHONHASHSEED := 0

.PHONY: install demo test bench clean

install: $(STAMP)

$(STAMP): requirements/runtime.txt requirements/tests.txt setup.cfg
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -r requirements/tests.txt
	$(PY) -m pip install -q --disable-pip-version-check --no-build-isolation --no-deps -e .
	touch $(STAMP)

demo: install
	$(PY) tools/demo.py --work-dir work_dirs/demo

test: install
	$(PY) -m pytest tests -q -ra

bench: install
	$(PY) tools/analysis_tools/benchmark.py

clean:
	rm -rf work_dirs build *.egg-info
