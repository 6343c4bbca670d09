# `make demo` and `make test` set everything up on a fresh machine.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test bench fuzz clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(PY) examples/quickstart.py

test: $(STAMP)
	$(PY) -m pytest -q -n auto

bench: $(STAMP)
	$(PY) benchmarks/bench_linear.py

fuzz: $(STAMP)
	$(PY) tests/fuzz.py --seconds 300 --out fuzz-failures
	$(PY) tests/fuzz_api.py --seconds 120

clean:
	rm -rf $(VENV) build *.egg-info
