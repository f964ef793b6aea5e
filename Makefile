# Two commands set everything up on a fresh machine: `make demo` and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench clean lock

# constraints.txt pins the library versions of the figures measured from 2026-12-01 on: a
# model's figures can move with its libraries (a rebuilt environment moved the real-cohort AUROC by 0.003)
$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c constraints.txt -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(PY) experiments/demo.py

test: $(STAMP)
	$(VENV)/bin/ruff check src tests experiments
	$(VENV)/bin/ruff format --check src tests experiments
	$(VENV)/bin/lint-imports
	$(VENV)/bin/deptry src
	$(VENV)/bin/pytest -q -n 2 --dist loadfile

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests experiments
	$(VENV)/bin/ruff format --check src tests experiments
	$(VENV)/bin/lint-imports
	$(VENV)/bin/deptry src

bench: $(STAMP)
	$(PY) experiments/benchmarks/bench_validate.py
	$(PY) experiments/benchmarks/bench_simulate.py
	$(PY) experiments/benchmarks/bench_features.py
	$(PY) experiments/benchmarks/bench_train.py
	$(PY) experiments/benchmarks/bench_score.py
	$(PY) experiments/benchmarks/bench_import_omop.py

lock: $(STAMP)
	{ sed -n '1,2p' constraints.txt; $(PY) -m pip freeze --exclude-editable; } > constraints.tmp && mv constraints.tmp constraints.txt

clean:
	rm -rf $(VENV) build *.egg-info
