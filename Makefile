# Two commands matter: `make run` and `make test`. Everything else is a step they call.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
DATA   ?= $(HOME)/.infiniscale

# Debian packages the server uses (PDF text for search, libvips for previews), the test suite drives (real clients) and the
# benchmark compares against.
RUN_DEBS   := poppler-utils libvips42
TEST_DEBS  := $(RUN_DEBS) litmus rclone cadaver curl owncloud-client-cmd nextcloud-desktop-cmd slapd ldap-utils chromium eatmydata
BENCH_DEBS := $(RUN_DEBS) apache2 apache2-utils rclone curl

.PHONY: run test bench lint setup bytecode debs-run debs-test debs-bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $(STAMP)

# The package is installed editable, so nothing compiles its bytecode ahead; where
# PYTHONDONTWRITEBYTECODE is set every process would compile all of it again (0.3 s per start of
# the server, of each worker and of each CLI command). Only changed files are compiled again.
bytecode: setup
	@$(PY) -m compileall -q src >/dev/null

debs-run:
	@bash scripts/ensure-debs.sh $(RUN_DEBS)

debs-test:
	@bash scripts/ensure-debs.sh $(TEST_DEBS)

debs-bench:
	@bash scripts/ensure-debs.sh $(BENCH_DEBS)

run: bytecode debs-run
	@test -f "$${OCIS_CONFIG_DIR:-$(DATA)/config}/infiniscale.yaml" || \
	  IDM_CREATE_DEMO_USERS=true $(VENV)/bin/infiniscale init
	@echo "demo setup: password logins over HTTP Basic are on (PROXY_ENABLE_BASIC_AUTH=true)"
	IDM_CREATE_DEMO_USERS=true PROXY_ENABLE_BASIC_AUTH=$${PROXY_ENABLE_BASIC_AUTH:-true} $(VENV)/bin/infiniscale server

test: bytecode debs-test
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/lint-imports
	$(PY) -m pytest -q -p no:cacheprovider $(PYTEST_ARGS)

bench: bytecode debs-bench
	$(PY) bench/run.py $(BENCH_ARGS)
	$(PY) bench/s3.py $(BENCH_S3_ARGS)
	$(PY) bench/shares.py
	$(PY) bench/history.py
	$(PY) bench/search.py
	$(PY) bench/previews.py

lint: setup
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/lint-imports

clean:
	rm -rf $(VENV) build src/*.egg-info
