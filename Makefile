# flowprior: `make run` runs the workflow, `make test` runs the tests.
# Both first set up .venv (once, and again when requirements.lock or pyproject.toml change)
# from python3.11 and the package registries only.

PYTHON ?= python3.11
VENV ?= .venv
CORES ?= all
CONFIG ?= config/config.yaml
PROFILE ?= workflow/profiles/default
# pytest-xdist workers of `make test`, test files distributed whole (--dist loadfile) in
# collection order (--no-loadscope-reorder): the end-to-end study (tests/test_workflow.py, which
# tests/conftest.py collects first) starts at once on one worker while the other takes the unit
# tests.
TEST_WORKERS ?= 2
PYTEST_XDIST = -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder

BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

# The venv's tools first on PATH for every recipe (Snakemake jobs inherit it).
export PATH := $(abspath $(BIN)):$(PATH)
# Idle OpenMP threads must not spin: small torch jobs in parallel are 15-50x slower otherwise.
export OMP_WAIT_POLICY := PASSIVE

.PHONY: run test test-fast test-slurm lint dry-run

## run: the workflow on the default study (config/config.yaml), all cores
run: $(STAMP)
	$(BIN)/snakemake --cores $(CORES) --configfile $(CONFIG) --workflow-profile $(PROFILE)

## test: every test, slow ones included (what CI runs)
test: $(STAMP)
	$(BIN)/pytest $(PYTEST_XDIST)

## test-fast: the tests not marked slow
test-fast: $(STAMP)
	$(BIN)/pytest $(PYTEST_XDIST) -m "not slow"

## test-slurm: the cluster profile on a real one-node Slurm (root on Debian: installs Slurm,
## munge and MariaDB packages, runs config/test.yaml through workflow/profiles/slurm and locally)
test-slurm: $(STAMP)
	tests/cluster/run_slurm_test.sh

## lint: snakemake --lint and snakefmt --check
lint: $(STAMP)
	$(BIN)/snakemake --lint
	$(BIN)/snakefmt --check Snakefile workflow/

## dry-run: show the jobs `make run` would run
dry-run: $(STAMP)
	$(BIN)/snakemake -n --cores $(CORES) --configfile $(CONFIG) --workflow-profile $(PROFILE)

# The lock is installed without pip's byte-compilation, which is serial (87 s), and compiled on
# every core instead (65 s). The .pyc files matter: with PYTHONDONTWRITEBYTECODE=1 (set on this
# project's machines) every import would otherwise compile from source (make test took 798 s
# instead of 554 s). A few files of some packages do not compile (Python 2 syntax in data
# files); pip skips them too, hence the `|| true`.
$(STAMP): requirements.lock pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --no-compile -r requirements.lock
	$(BIN)/python -m compileall -q -j 0 "$$($(BIN)/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')" > $(VENV)/compileall.log 2>&1 || true
	$(BIN)/python -m pip install --no-deps --no-build-isolation -e .
	touch $@
