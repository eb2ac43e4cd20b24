# The two commands a user needs: `make train` and `make test`. Both set everything up on first use.
PYTHON3 ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
ARGS ?=
PYTEST_ARGS ?=
BENCH_ARGS ?=

.PHONY: help install train test test-fast test-oldest test-slurm lint format clean tensorboard bench

help:
	@echo "make train   train the default baseline (ARGS='model=mlp optimizer=rmsprop' to swap parts)"
	@echo "make test    run the test suite"
	@echo "make test-oldest  the test suite on the oldest releases pyproject.toml allows (.ci/oldest.txt)"
	@echo "make test-slurm   the tests marked slurm, on a single-node SLURM cluster it starts (Debian, root)"
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

test: install
	$(PY) -m pytest $(PYTEST_ARGS)

test-fast: install
	$(PY) -m pytest -m "not slow" $(PYTEST_ARGS)

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

test-oldest: $(OLDEST_STAMP)
	@$(OLDEST_PY) -m pip list --format=freeze 2>/dev/null \
		| grep -iE '^(lightning|pytorch-lightning|hydra-core|hydra-optuna-sweeper|torchmetrics|optuna|torch|torchvision)=='
	$(OLDEST_PY) -m pytest $(PYTEST_ARGS)

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

lint: install
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

format: install
	$(PY) -m ruff check --fix .
	$(PY) -m ruff format .

bench: install
	$(PY) benchmarks/run.py $(BENCH_ARGS)

tensorboard: install
	$(VENV)/bin/tensorboard --logdir logs

clean:
	rm -rf logs outputs multirun .pytest_cache .ruff_cache
	find . -name __pycache__ -type d -prune -not -path "./$(VENV)/*" -exec rm -rf {} +
