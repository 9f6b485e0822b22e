# DermGAN Turing Test — the two commands: `make demo` and `make test`.
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test lint bench clean

install: $(STAMP)

# Idempotent: rebuilds only when the requirements change.
$(STAMP): requirements.txt requirements-s3.txt requirements-dev.txt
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.txt -r requirements-s3.txt -r requirements-dev.txt
	touch $(STAMP)

# Where the demo listens: `make demo PORT=8080` or `make demo HOST=0.0.0.0 PORT=8080`. The links
# seed_demo prints use SITE_URL, which follows HOST/PORT unless you set it (e.g. behind a proxy).
# A HOST other than localhost is allowed as a host name too (DJANGO_ALLOWED_HOSTS overrides).
HOST ?= 127.0.0.1
PORT ?= 8000
DEMO_SITE_HOST := $(if $(filter 0.0.0.0 ::,$(HOST)),127.0.0.1,$(HOST))
SITE_URL ?= http://$(DEMO_SITE_HOST):$(PORT)
DJANGO_ALLOWED_HOSTS ?= 127.0.0.1,localhost,$(DEMO_SITE_HOST)
DEMO_ENV := DJANGO_DEBUG=1 SITE_URL=$(SITE_URL) DJANGO_ALLOWED_HOSTS=$(DJANGO_ALLOWED_HOSTS)

demo: install
	$(DEMO_ENV) $(BIN)/python manage.py migrate --noinput
	$(DEMO_ENV) $(BIN)/python manage.py seed_demo
	$(DEMO_ENV) $(BIN)/python manage.py runserver $(HOST):$(PORT)

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
