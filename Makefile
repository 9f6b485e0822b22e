# DermGAN Turing Test — the two commands: `make demo` and `make test`.
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test lint bench clean

install: $(STAMP)

# Idempotent: rebuilds only when the requirements change.
$(STAMP): requirements.txt requirements-dev.txt
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.txt -r requirements-dev.txt
	touch $(STAMP)

demo: install
	DJANGO_DEBUG=1 $(BIN)/python manage.py migrate --noinput
	DJANGO_DEBUG=1 $(BIN)/python manage.py seed_demo
	DJANGO_DEBUG=1 $(BIN)/python manage.py runserver 127.0.0.1:8000

test: install
	DJANGO_DEBUG=1 $(BIN)/python -m pytest $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

# Benchmarks need PostgreSQL and Redis (they start their own gunicorn and Celery workers).
BENCH_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/dermgan_bench
BENCH_BROKER_URL ?= redis://127.0.0.1:6379/14

bench: install
	@for b in benchmarks/[!_]*.py; do echo "== $$b"; \
	  DJANGO_DEBUG=1 DATABASE_URL=$(BENCH_DATABASE_URL) CELERY_BROKER_URL=$(BENCH_BROKER_URL) \
	  $(BIN)/python $$b || exit 1; done

clean:
	rm -rf var/test .pytest_cache
