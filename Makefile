# Everything installs into ./.venv from uv.lock; only Python 3.11-3.13 and make are needed.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
UV     := $(VENV)/bin/uv
UV_VERSION := 0.13.9
export UV_PROJECT_ENVIRONMENT := $(VENV)

.PHONY: install browser dev test lint typecheck pytest migrate api worker bench-inventory bench-registration bench-api bench-service clean-data

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

pytest: install browser
	$(VENV)/bin/pytest $(PYTEST_ARGS)

## Debian's chromium, which the browser tests drive with Playwright: installed when missing (as root).
browser:
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 \
		&& apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } \
		|| echo "note: the browser tests need chromium (apt-get install chromium); they are skipped without it"

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

## Delete the embedded servers' data (./var).
clean-data:
	rm -rf var
