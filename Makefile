# Two commands set everything up on a fresh machine: `make demo` and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench clean

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(PY) experiments/demo.py

test: $(STAMP)
	$(VENV)/bin/ruff check src tests experiments
	$(VENV)/bin/pytest -q

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests experiments

bench: $(STAMP)
	$(PY) experiments/benchmarks/bench_validate.py
	$(PY) experiments/benchmarks/bench_simulate.py
	$(PY) experiments/benchmarks/bench_features.py
	$(PY) experiments/benchmarks/bench_train.py
	$(PY) experiments/benchmarks/bench_score.py

clean:
	rm -rf $(VENV) build *.egg-info
