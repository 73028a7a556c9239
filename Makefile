# Pintuan: `make run` serves a demo on http://127.0.0.1:8000, `make test` runs the suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: install fonts run serve migrate demo test lint format bench bench-workers soak soak-properties lock clean messages console-messages

$(STAMP): requirements.lock pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $(STAMP)

install: $(STAMP)

# A CJK font for the QR posters' Chinese text, from Debian's packages where this machine can
# install them (root with apt); otherwise posters still render and the log names the package.
fonts:
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		scripts/traffic-up.sh || echo "Could not install the poster fonts; posters render without CJK glyphs."; \
	else \
		echo "Tip: install fonts-wqy-microhei for Chinese text on posters."; \
	fi

migrate: install
	$(BIN)/pintuan migrate

demo: migrate
	$(BIN)/pintuan demo

run: demo fonts
	$(BIN)/pintuan serve --host $(HOST) --port $(PORT)

# The whole suite on SQLite and PostgreSQL, browser tests included: scripts/test-up.sh brings up
# PostgreSQL, Redis, Chromium and the poster tools where it can (root with apt) and says what it
# skips; it prints the PostgreSQL URL, then the Redis URL. The suite runs in one process per core
# (TEST_WORKERS=0 runs it in this one), a test module's tests together in one of them; then the
# races of tests/concurrency run on their own, as their timing needs a machine that is not busy
# with other tests. PYTEST_ARGS="tests/unit -k money" runs just that, in parallel.
TEST_WORKERS ?= auto
PARALLEL := $(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile
test: install
	@urls="$$(scripts/test-up.sh)" && \
		export PINTUAN_TEST_POSTGRES_URL="$$(echo "$$urls" | sed -n 1p)" && \
		export PINTUAN_TEST_REDIS_URL="$$(echo "$$urls" | sed -n 2p)" && \
		if [ -n "$(PYTEST_ARGS)" ]; then exec $(PARALLEL) $(PYTEST_ARGS); fi; \
		$(PARALLEL) --ignore=tests/concurrency; parallel=$$?; \
		$(BIN)/python -m pytest tests/concurrency; races=$$?; \
		exit $$(( parallel != 0 ? parallel : races ))

# Style, types, the layers as a contract (imports only point down; the domain stays pure), and
# the pinned dependencies against known vulnerabilities (a finding fails; no network only warns).
lint: install
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache
	$(BIN)/python scripts/audit-deps.py $(BIN)/pip-audit requirements.lock

format: install
	$(BIN)/ruff check --fix src tests bench
	$(BIN)/ruff format src tests bench

# Load figures (wrk from Debian's packages when present) and the engine's own figures; the hot
# deal with and without Redis admission (redis-server from Debian's packages when present).
bench: install
	$(BIN)/python -m bench.load $(BENCH_ARGS)
	$(BIN)/python -m bench.cpu $(if $(PINTUAN_BENCH_POSTGRES_URL),--postgres)
	$(BIN)/python -m bench.engine
	$(BIN)/python -m bench.webhooks
	$(BIN)/python -m bench.workers $(if $(PINTUAN_BENCH_POSTGRES_URL),--postgres)
	$(BIN)/python -m bench.hot_deal $(HOT_DEAL_ARGS)

# The sweep shared by 1, 2 and 4 worker processes (PostgreSQL when PINTUAN_BENCH_POSTGRES_URL is set).
bench-workers: install
	$(BIN)/python -m bench.workers $(if $(PINTUAN_BENCH_POSTGRES_URL),--postgres)

# Half an hour of mixed traffic on the whole cluster of scripts/cluster-up.sh (needs root), with
# the scaling curve over 1, 2 and 4 API processes first; not in CI (CI runs a minute of it).
# SOAK_ARGS="--minutes 10" and the like; see bench/soak/__main__.py.
soak: install
	$(BIN)/python -m bench.soak $(SOAK_ARGS)

# The stateful property tests (the money machines and their kin) drawing new walks, SOAK_SCALE
# (20) times as many as CI's, on SQLite and PostgreSQL; not in CI. A failure prints its walk.
SOAK_SCALE ?= 20
STATEFUL = tests/features/test_payment_properties.py tests/features/test_engine_stateful.py \
	tests/features/test_mechanics_properties.py tests/features/test_pickup_properties.py \
	tests/features/test_commission_properties.py tests/features/test_voucher_properties.py \
	tests/features/test_bargain_properties.py
soak-properties: install
	@urls="$$(scripts/test-up.sh)" && \
		export PINTUAN_TEST_POSTGRES_URL="$$(echo "$$urls" | sed -n 1p)" && \
		export PINTUAN_TEST_REDIS_URL="$$(echo "$$urls" | sed -n 2p)" && \
		env -u CI PINTUAN_PROPERTY_SCALE=$(SOAK_SCALE) $(PARALLEL) $(STATEFUL)

# Re-pin every dependency after changing pyproject.toml.
lock:
	$(BIN)/pip-compile --quiet --extra dev --strip-extras --no-emit-index-url --no-emit-find-links \
		--output-file requirements.lock pyproject.toml

# For maintainers: re-extract the pages' strings and merge them into each locale's messages.po
# (translate the new entries, then commit; pages read .po files directly, nothing to compile).
LOCALES_DIR := src/pintuan/web/locales
messages: install
	$(BIN)/pybabel extract --mapping-file babel.cfg --no-location --sort-output --width 100 \
		--project Pintuan --output-file $(LOCALES_DIR)/messages.pot src/pintuan/web
	$(BIN)/pybabel update --input-file $(LOCALES_DIR)/messages.pot --output-dir $(LOCALES_DIR) \
		--domain messages --no-fuzzy-matching --ignore-obsolete --width 100

# The same for the merchant and operator consoles, whose strings have their own console.po.
console-messages: install
	$(BIN)/pybabel extract --mapping-file babel-console.cfg --no-location --sort-output --width 100 \
		--project Pintuan --output-file $(LOCALES_DIR)/console.pot src/pintuan/web
	$(BIN)/pybabel update --input-file $(LOCALES_DIR)/console.pot --output-dir $(LOCALES_DIR) \
		--domain console --no-fuzzy-matching --ignore-obsolete --width 100

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
