# Every target installs what it needs into .venv first, so a fresh clone needs only
# Python >= 3.11 and make.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 8000
WORKERS ?= 1

.PHONY: install lock clients demo test lint fmt serve worker beat bench bench-profile bench-instructions bench-cluster clean screenshots

install: $(STAMP)

# Installs are reproducible: every package, direct or not, comes at the version and with the
# hashes pinned in requirements/dev.txt (runtime + test tools; requirements/main.txt is the
# runtime subset the Dockerfile installs). pip refuses anything whose hash differs. The project
# itself goes in editable, without dependencies, so nothing floats past the lock.
$(STAMP): pyproject.toml requirements/dev.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python >= 3.11 is required")'
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet --require-hashes -r requirements/dev.txt
	$(PY) -m pip install --quiet --no-deps -e .
	touch $(STAMP)

# Re-resolve the lock after a change to pyproject.toml's dependencies: versions already pinned
# stay where they are unless the change needs otherwise. `make lock UPGRADE=1` moves every
# package to its newest release the bounds allow. uv (pinned in the lock itself) resolves for
# every platform at once, so one lock serves Linux, macOS and the Docker image.
UV_COMPILE = $(VENV)/bin/uv pip compile pyproject.toml --quiet --universal --python-version 3.11 \
	--custom-compile-command "make lock" \
	--generate-hashes $(if $(UPGRADE),--upgrade)

lock: install
	$(UV_COMPILE) --extra test -o requirements/dev.txt
	$(UV_COMPILE) -c requirements/dev.txt -o requirements/main.txt

# The demo runs with DEBUG on (generated development secrets, plain-HTTP cookies); DEBUG is
# off unless set.
demo: export DEBUG ?= 1
demo: install
	$(PY) manage.py migrate --noinput
	$(PY) manage.py demo_setup --host $(HOST) --port $(PORT)
	$(PY) manage.py serve --host $(HOST) --port $(PORT) --workers $(WORKERS)

# The CLIs of the client matrix (tests/clients), pinned in package.json / package-lock.json,
# into ./node_modules. Without npm, `make test` skips them (their tests say why; CI fails them).
NPM := $(shell command -v npm 2>/dev/null)
CLIENTS_STAMP := node_modules/.installed

clients: $(CLIENTS_STAMP)

$(CLIENTS_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund
	touch $(CLIENTS_STAMP)

test: install $(if $(NPM),clients)
	$(PY) -m pytest $(PYTEST_ARGS)

# The ops pages in headless Chromium (light, dark, phone) into docs/screenshots/, by the same
# browser test CI runs (it also runs axe-core from node_modules over each page).
screenshots: install $(if $(NPM),clients)
	OPS_SCREENSHOTS_DIR=docs/screenshots $(PY) -m pytest tests/reports/test_ops_browser.py -q

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy .
	$(VENV)/bin/lint-imports --no-cache

fmt: install
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

serve: install
	$(PY) manage.py serve --host $(HOST) --port $(PORT) --workers $(WORKERS)

clean:
	rm -rf $(VENV) var node_modules .pytest_cache .mypy_cache .ruff_cache

# Celery: run web (`make serve`), worker and beat side by side; all three share REDIS_URL and
# DATABASE_URL. Without REDIS_URL tasks run eagerly in process and no worker is needed.
worker: install
	$(PY) manage.py migrate --noinput
	$(VENV)/bin/celery -A gateway worker --loglevel=INFO

beat: install
	$(PY) manage.py migrate --noinput
	$(PY) manage.py setup_schedules
	$(VENV)/bin/celery -A gateway beat --loglevel=INFO --scheduler django_celery_beat.schedulers:DatabaseScheduler

# Load benchmark (not part of the tests): direct vs the Python floor (bench/floor.py; in
# production mode also the floor plus one Redis round trip per request) vs the gateway,
# production mode (needs DATABASE_URL=postgres://... and REDIS_URL on an empty Redis database)
# then embedded. wrk and nginx from Debian, installed here when missing and apt-get can (root);
# else it says what to install. BENCH_ARGS=--quick for the short run (~5 min instead of ~15),
# BENCH_ARGS=--help for options.
define BENCH_TOOLS
	@if ! command -v wrk >/dev/null && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "installing wrk and nginx-light (apt-get)"; \
		apt-get install -y -q wrk nginx-light >/dev/null 2>&1 || \
		{ apt-get update -q >/dev/null 2>&1 && apt-get install -y -q wrk nginx-light >/dev/null 2>&1; }; \
	fi
	@command -v wrk >/dev/null || { echo "wrk is missing: apt-get install wrk (nginx optional)"; exit 1; }
endef

bench: install
	$(BENCH_TOOLS)
	$(PY) bench/run.py $(BENCH_ARGS)

# A py-spy flame graph of one gateway worker under c=16, beside the README's figures.
bench-profile: install
	$(BENCH_TOOLS)
	@test -x $(VENV)/bin/py-spy || $(PY) -m pip install --quiet py-spy
	$(PY) bench/run.py --profile bench/profile.svg $(BENCH_ARGS)

# Instructions per proxied request, gateway against floor (and, in production mode, the floor plus
# one Redis round trip), counted by valgrind's callgrind: the figure that does not move with the
# machine's load (README "Performance"). ~2 minutes.
bench-instructions: install
	$(BENCH_TOOLS)
	@command -v valgrind >/dev/null || { echo "valgrind is missing: apt-get install valgrind"; exit 1; }
	$(PY) bench/instructions.py $(BENCH_ARGS)

# Scale-out on one machine (README "Scale-out"): three `serve --workers 1` processes and two
# Celery workers behind nginx; throughput 1 vs 3, shared rate limit and breaker, a web process
# SIGKILLed under load. Needs DATABASE_URL=postgres://... and an empty REDIS_URL database, like
# `make bench`. BENCH_ARGS=--quick for the short run.
bench-cluster: install
	$(BENCH_TOOLS)
	$(PY) bench/cluster.py $(BENCH_ARGS)
