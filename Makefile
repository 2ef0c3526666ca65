# Everything installs into ./.venv from uv.lock; only Python 3.11-3.13 and make are needed.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
UV     := $(VENV)/bin/uv
UV_VERSION := 0.13.9
export UV_PROJECT_ENVIRONMENT := $(VENV)
# The console's browser tests and bench drive Debian's chromium (Playwright's own
# browser download is not used).
CHROMIUM := /usr/bin/chromium

.PHONY: install dev test lint typecheck pytest chromium messages migrate api worker bench-inventory bench-registration bench-api bench-service bench-webhook bench-console bench-scale-out chaos clean-data

$(VENV)/.synced: pyproject.toml uv.lock
	@test -x $(PY) || $(PYTHON) -c 'import sys; sys.exit(0 if (3, 11) <= sys.version_info[:2] <= (3, 13) else "needs Python 3.11 to 3.13; run make PYTHON=python3.12 ...")'
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -m pip install --quiet --disable-pip-version-check "uv==$(UV_VERSION)"
	@$(UV) sync --frozen --quiet --python $(PY) --no-python-downloads
	@touch $@

install: $(VENV)/.synced

## Start the whole system on embedded defaults (PostgreSQL, Temporal + UI, migrations, worker, API).
dev: install
	$(PY) -m app dev

## Lint, type checks and the test suite.
test: install lint typecheck pytest

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: install
	$(VENV)/bin/mypy .

pytest: install chromium
	$(VENV)/bin/pytest $(PYTEST_ARGS)

## Debian's chromium (and a CJK font for readable screenshots), installed when missing if we are root.
chromium:
	@test -x $(CHROMIUM) || [ "$$(id -u)" != 0 ] || ! command -v apt-get >/dev/null || \
		{ echo "installing chromium (apt-get)"; apt-get update -qq && \
		  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-wqy-microhei >/dev/null; }
	@test -x $(CHROMIUM) || { echo "the browser tests need Debian's chromium: sudo apt-get install -y chromium"; exit 1; }

## Extract the console's messages and update both catalogues (web/locale/*/LC_MESSAGES/messages.po).
messages: install
	cd web && ../$(VENV)/bin/pybabel extract -F babel.cfg -k N_ --no-location --sort-output -o locale/messages.pot . \
		&& ../$(VENV)/bin/pybabel update -i locale/messages.pot -d locale --no-fuzzy-matching --width 100 \
		&& rm locale/messages.pot

## Production-shaped single parts, against DATABASE_URL / TEMPORAL_ADDRESS.
migrate: install
	$(PY) -m app migrate

api: install
	$(PY) -m app api

worker: install
	$(PY) -m app worker

bench-inventory: install
	$(PY) -m bench.inventory_bench

bench-registration: install
	$(PY) -m bench.registration_bench

bench-api: install
	$(PY) -m bench.api_bench

bench-service: install
	$(PY) -m bench.service_bench

bench-webhook: install
	$(PY) -m bench.webhook_bench

bench-console: install chromium
	$(PY) -m bench.console_bench

bench-scale-out: install
	$(PY) -m bench.scale_out

## Kill -9 the worker, the API, Temporal and PostgreSQL in turn under load; check the invariants.
chaos: install
	$(PY) -m bench.chaos

## Delete the embedded servers' data (./var).
clean-data:
	rm -rf var
