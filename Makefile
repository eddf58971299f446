# Development tasks. Everything runs inside .venv; `make venv` creates it on first use.

PYTHON ?= python3.13
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: venv test demo lint bench clean

# Create .venv and install the project with its dev extras; reinstall when pyproject.toml changes.
venv: $(STAMP)

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -e '.[dev]'
	touch $@

# Run the test suite on all cores against a throwaway PostgreSQL and Redis (tests/servers.py).
test: venv
	$(BIN)/pytest -n auto $(PYTEST_ARGS)

# Migrate the development database, add 200 sample posts the first time, and serve on :8000.
# The site as readers get it (DEBUG off: its own 404 and error pages), on plain HTTP; `make demo
# DEMO_DEBUG=1` serves with DEBUG on and the debug toolbar (collapsed) instead.
DEMO_DEBUG ?= 0
DEMO_ENV = DEBUG=$(DEMO_DEBUG) SECRET_KEY=demo-only-not-a-secret ALLOWED_HOSTS=127.0.0.1,localhost \
	SECURE_SSL_REDIRECT=0 SECURE_HSTS_SECONDS=0 SECURE_COOKIES=0
demo: venv
	$(DEMO_ENV) $(BIN)/python manage.py migrate --noinput
	$(DEMO_ENV) $(BIN)/python manage.py generate_posts --count 200 --seed 1 --if-empty
	$(DEMO_ENV) $(BIN)/python manage.py collectstatic --noinput -v0
	$(DEMO_ENV) $(BIN)/python manage.py runserver 127.0.0.1:8000

# Check the code with ruff.
lint: venv
	$(BIN)/ruff check .

# The site under load at 10,000 posts (bench/site_bench.py; BENCH_ARGS="--sizes 10000,1000000"
# for the million-post run). The other scripts in bench/ are run by hand (docs/performance.md).
BENCH_ARGS ?=
bench: venv
	$(BIN)/python -m pip install -q -e '.[dev,bench]'
	$(BIN)/python bench/site_bench.py $(BENCH_ARGS)

# Remove the virtualenv, the SQLite database and caches.
clean:
	rm -rf $(VENV) db.sqlite3 db.sqlite3-journal .pytest_cache .ruff_cache *.egg-info
	find . -path ./.git -prune -o -name __pycache__ -type d -prune -exec rm -rf {} +
