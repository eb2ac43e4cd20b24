# The two commands a user needs: `make train` and `make test`. Both set everything up on first use.
PYTHON3 ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
ARGS ?=
PYTEST_ARGS ?=
BENCH_ARGS ?=

.PHONY: help install train test test-slow test-all test-oldest test-slurm coverage lint format clean tensorboard bench

help:
	@echo "make train   train the default baseline (ARGS='model=mlp optimizer=rmsprop' to swap parts)"
	@echo "make test    the fast layer of the tests: units, the command line in-process, a few real runs"
	@echo "make test-all     everything: make test, the slow layer (docs commands, long runs),"
	@echo "                  make test-oldest and make test-slurm (CI runs it)"
	@echo "make test-slow    the tests make test leaves out (marked slow), but the SLURM ones"
	@echo "make test-oldest  the fast layer on the oldest releases pyproject.toml allows (.ci/oldest.txt)"
	@echo "make test-slurm   the tests marked slurm, on a single-node SLURM cluster it starts (Debian, root)"
	@echo "make coverage     line coverage of src/ under make test and under all but SLURM"
	@echo "make bench   benchmark suite: fit vs a hand-written loop, start-up, sweeps, throughput, memory"
	@echo "             (BENCH_ARGS='--quick' or '--only fit,startup'; results in benchmarks/results/)"
	@echo "make lint    ruff lint + format check"
	@echo "make clean   remove logs and caches (keeps .venv)"

# (Re)install when pyproject.toml changes: a venv with the project in editable mode plus dev tools.
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON3) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

train: install
	$(PY) train.py $(ARGS)

# The layers of tests/ (markers in pyproject.toml). `make test` is the fast one, for every change;
# the slow layer holds what it leaves out; no target but test-slurm selects the SLURM tests.
FAST := -m "not slow and not slurm"
SLOW := -m "slow and not slurm"
# one pytest worker per core (pytest-xdist); the trained runs the tests share are trained once
WORKERS ?= auto

test: install
	$(PY) -m pytest $(FAST) -n $(WORKERS) $(PYTEST_ARGS)

test-slow: install
	$(PY) -m pytest $(SLOW) -n $(WORKERS) $(PYTEST_ARGS)

test-all: test test-slow test-oldest test-slurm

# The lower bounds in pyproject.toml are real only if tested: a second venv holds the oldest allowed
# lightning, hydra-core, hydra-optuna-sweeper, torchmetrics and optuna (pinned in .ci/oldest.txt).
OLDEST_VENV ?= .venv-oldest
OLDEST_PY := $(OLDEST_VENV)/bin/python
OLDEST_STAMP := $(OLDEST_VENV)/.installed
OLDEST_PINS := .ci/oldest.txt

$(OLDEST_STAMP): pyproject.toml $(OLDEST_PINS)
	test -x $(OLDEST_PY) || $(PYTHON3) -m venv $(OLDEST_VENV)
	$(OLDEST_PY) -m pip install --quiet --upgrade pip
	$(OLDEST_PY) -m pip install --quiet -e ".[dev]" -c $(OLDEST_PINS)
	touch $(OLDEST_STAMP)

# (install too: the pre-commit hooks a test runs call the main venv's ruff)
test-oldest: install $(OLDEST_STAMP)
	@$(OLDEST_PY) -m pip list --format=freeze 2>/dev/null \
		| grep -iE '^(lightning|pytorch-lightning|hydra-core|hydra-optuna-sweeper|torchmetrics|optuna|torch|torchvision)=='
	$(OLDEST_PY) -m pytest $(FAST) -n $(WORKERS) $(PYTEST_ARGS)

# Sweeps on a real SLURM cluster: on a machine that is already a SLURM node (sinfo answers) the
# tests use that cluster; else scripts/slurm_cluster.sh starts a single-node one (installing
# slurm-wlm, munge, slurmdbd and mariadb-server with apt-get) and stops it afterwards.
test-slurm: install
	@if sinfo >/dev/null 2>&1; then \
		$(PY) -m pytest -m slurm $(PYTEST_ARGS); \
	else \
		scripts/slurm_cluster.sh up || exit 1; \
		$(PY) -m pytest -m slurm $(PYTEST_ARGS); status=$$?; \
		scripts/slurm_cluster.sh down; exit $$status; \
	fi

# Line coverage of src/, the processes the tests start included ([tool.coverage] in pyproject.toml):
# coverage/fast/ for make test's layer, coverage/all/ for every layer but the SLURM one.
COVERAGE_ENV = COVERAGE_RCFILE=$(CURDIR)/pyproject.toml COVERAGE_FILE=$(CURDIR)/coverage/$(1)/.coverage

coverage: install
	rm -rf coverage && mkdir -p coverage/fast coverage/all
	$(call COVERAGE_ENV,fast) $(PY) -m coverage run -m pytest $(FAST) -n $(WORKERS) -q $(PYTEST_ARGS) || true
	$(call COVERAGE_ENV,fast) $(PY) -m coverage combine -q
	$(call COVERAGE_ENV,all) $(PY) -m coverage run -m pytest -m "not slurm" -n $(WORKERS) -q $(PYTEST_ARGS) || true
	$(call COVERAGE_ENV,all) $(PY) -m coverage combine -q
	@echo "make test:"; $(call COVERAGE_ENV,fast) $(PY) -m coverage report --format=total
	@echo "all but SLURM:"; $(call COVERAGE_ENV,all) $(PY) -m coverage report --format=total

lint: install
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(VENV)/bin/lint-imports

format: install
	$(PY) -m ruff check --fix .
	$(PY) -m ruff format .

bench: install
	$(PY) benchmarks/run.py $(BENCH_ARGS)

tensorboard: install
	$(VENV)/bin/tensorboard --logdir logs

clean:
	rm -rf logs outputs multirun coverage .pytest_cache .ruff_cache .import_linter_cache
	find . -name __pycache__ -type d -prune -not -path "./$(VENV)/*" -exec rm -rf {} +
