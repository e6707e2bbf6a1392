# Two commands set up everything on a fresh machine with Python 3.11 and pip:
#   make run   - serve the demo tenants (embedded PostgreSQL + Redis unless DATABASE_URL/REDIS_URL)
#   make test  - lint (ruff, import layers, mypy), then the whole test suite
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
CHROMIUM ?= /usr/bin/chromium

.PHONY: run run-multi test test-citus coverage test-stress fuzz bench schema lint typecheck fmt clean

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "Python 3.11 is required ($(PYTHON) not found)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	@touch $(STAMP)

run: $(STAMP)
	$(PY) -m config.devserver run

# Production-like: PgBouncer (Debian's pgbouncer) in front of PostgreSQL, PROCESSES uvicorn
# processes on one port (2 by default), two Celery workers and beat, DEBUG off.
run-multi: $(STAMP)
	$(PY) -m config.devserver run --multi --processes $${PROCESSES:-2}

# Coverage's line tracer makes the suite about 1.6x slower on Python 3.11 (tests/schema: 149 s
# with it, 95 s without, measured together), which took the suite past 10 minutes: `make coverage`
# is the same run with the report.
test: lint
	@skip=""; \
	if [ ! -x "$(CHROMIUM)" ] || ! command -v chromedriver >/dev/null; then \
		echo "NOTE: $(CHROMIUM) or chromedriver not found: browser tests are LEFT OUT of this run (apt-get install chromium chromium-driver)."; \
		skip="not browser"; \
	fi; \
	if ! command -v pgbouncer >/dev/null && [ ! -x /usr/sbin/pgbouncer ]; then \
		echo "NOTE: pgbouncer not found: the pooled, multi-process tests are LEFT OUT of this run (apt-get install pgbouncer)."; \
		skip="$${skip:+$$skip and }not pooled"; \
	fi; \
	$(PY) -m config.devserver exec -- $(PY) -m pytest $${skip:+-m "$$skip"} $(COV_ARGS) $(ARGS)
	@if [ -n "$(CITUS_URL)" ]; then $(MAKE) --no-print-directory test-citus; fi

# The Citus run (docs/scale-out.md): tests/citus and the plain suite's tenant-facing modules on the
# coordinator of a Citus cluster at CITUS_URL, with CITUS=1. Citus does not propagate CREATE
# DATABASE: tests.citus.prepare makes the test database on every node first, and the run keeps it.
CITUS_TESTS = tests/citus tests/tenants/test_isolation.py tests/tenants/test_credential_binding.py \
	tests/schema/test_global_ids.py tests/apps/analytics/test_rollups.py \
	tests/apps/analytics/test_events.py tests/schema/test_exports.py tests/apps/exports/test_exports.py \
	tests/tenants/test_cloning.py tests/tenants/test_migrate_schemas.py
test-citus: $(STAMP)
	@if [ -z "$(CITUS_URL)" ]; then \
		echo "NOTE: CITUS_URL not given: the Citus tests are LEFT OUT (make test-citus CITUS_URL=postgres://user@coordinator:5432/db)."; \
		exit 0; \
	fi; \
	$(PY) -m tests.citus.prepare "$(CITUS_URL)" && \
	DATABASE_URL="$(CITUS_URL)" CITUS=1 $(PY) -m config.devserver exec -- \
		$(PY) -m pytest --reuse-db $(CITUS_TESTS) $(ARGS)

coverage:
	@$(MAKE) --no-print-directory test COV_ARGS="--cov --cov-report=term:skip-covered"

# The suite while two CPU-bound processes keep both cores busy, in a random order (modules shuffled,
# and the tests within each); the seed is printed first: `make test-stress SEED=<n>` replays it.
test-stress: $(STAMP)
	@seed=$${SEED:-$$(od -An -N2 -tu2 /dev/urandom | tr -d ' ')}; \
	echo "test-stress: random order seed $$seed, both cores kept busy (replay: make test-stress SEED=$$seed)"; \
	$(PYTHON) -c 'while True: pass' & hog1=$$!; $(PYTHON) -c 'while True: pass' & hog2=$$!; \
	trap 'kill $$hog1 $$hog2 2>/dev/null' EXIT; \
	start=$$(date +%s); \
	$(MAKE) --no-print-directory test ARGS="--random-order --random-order-bucket=module --random-order-seed=$$seed $(ARGS)"; \
	status=$$?; echo "test-stress: seed $$seed, exit $$status, $$(( $$(date +%s) - start )) s"; exit $$status

# The schema fuzzer at length: FUZZ_EXAMPLES operations per root field (make test runs a few),
# new examples each run; the summary line says how many operations ran and what came back.
fuzz: $(STAMP)
	FUZZ_EXAMPLES=$${FUZZ_EXAMPLES:-60} HYPOTHESIS_PROFILE=explore $(PY) -m config.devserver exec -- \
		$(PY) -m pytest tests/fuzz $(ARGS)

bench: $(STAMP)
	@test -n "$(NAME)" || { echo "usage: make bench NAME=provision_tenant"; exit 2; }
	$(PY) -m config.devserver exec -- $(PY) bench/$(NAME).py

schema: $(STAMP)
	DJANGO_SETTINGS_MODULE=config.settings_test $(PY) -c 'import django; django.setup(); from schema.export import sdl; print(sdl(), end="")' > schema.graphql

# ruff, and the layers of DESIGN §2 ([tool.importlinter] in pyproject.toml).
# Style, layers and types; `make test` (so CI) runs it first, so a change that bends a layer or a
# type fails the build, not a review.
lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(VENV)/bin/lint-imports
	@$(MAKE) --no-print-directory typecheck

# mypy's Django plugin loads config.settings_test (no database or Redis needed); the paths keep it
# from making temporary media and export folders at every run.
typecheck: $(STAMP)
	MEDIA_ROOT=$(CURDIR)/.data/media EXPORT_ROOT=$(CURDIR)/.data/exports $(VENV)/bin/mypy apps tenants config schema

fmt: $(STAMP)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

clean:
	rm -rf $(VENV) .data staticfiles .coverage
