# `make run` serves the site at http://127.0.0.1:8000; `make test` runs the whole suite.
# Both set everything up first (virtualenv, dependencies, database).

VENV := .venv
PY := $(VENV)/bin/python
# What snippets of the server runtimes import: a venv of its own, same Python as $(VENV).
SANDBOX_VENV := .sandbox-venv
HOST ?= 127.0.0.1
PORT ?= 8000

# The first Python 3.12+ on the PATH, else the newest one pyenv has installed.
define find_python
for name in python3.14 python3.13 python3.12 python3 python; do \
  candidate=$$(command -v $$name 2>/dev/null) || continue; \
  "$$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 12))' 2>/dev/null \
    && { echo "$$candidate"; exit 0; }; \
done; \
root=$$(pyenv root 2>/dev/null) && for candidate in $$(ls -d "$$root"/versions/3.*/bin/python3 2>/dev/null | sort -rV); do \
  "$$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 12))' 2>/dev/null \
    && { echo "$$candidate"; exit 0; }; \
done; exit 1
endef

.PHONY: run stack test lint format migrations-check superuser bench diagram install sandbox migrate seed clean editor

$(VENV)/.installed: requirements/base.txt requirements/production.txt requirements/dev.txt
	@python=$$($(find_python)) || { \
	  echo "Python 3.12 or newer is required and none was found."; \
	  echo "Install one (e.g. 'pyenv install 3.13', 'apt install python3.13' or python.org) and retry."; \
	  exit 1; }; \
	echo "Using $$python"; \
	test -x $(PY) || "$$python" -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements/dev.txt
	@touch $@

install: $(VENV)/.installed

$(SANDBOX_VENV)/.installed: requirements/sandbox.txt $(VENV)/.installed
	test -x $(SANDBOX_VENV)/bin/python || \
	  "$$($(PY) -c 'import sys; print(sys._base_executable)')" -m venv $(SANDBOX_VENV)
	$(SANDBOX_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(SANDBOX_VENV)/bin/python -m pip install --quiet -r requirements/sandbox.txt
	@touch $@

sandbox: $(SANDBOX_VENV)/.installed

# The benchmarks' yardsticks (a Jupyter kernel): a venv of their own, not the site's.
BENCH_VENV := .bench-venv
$(BENCH_VENV)/.installed: requirements/bench.txt $(VENV)/.installed
	test -x $(BENCH_VENV)/bin/python || \
	  "$$($(PY) -c 'import sys; print(sys._base_executable)')" -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/python -m pip install --quiet -r requirements/bench.txt
	@touch $@

migrate: install
	$(PY) manage.py migrate --noinput

seed: migrate sandbox
	$(PY) manage.py loadseed
	@# Fixture loads skip history: give each loaded object its first version.
	$(PY) manage.py populate_history --auto > /dev/null
	@# Readers without JavaScript see each snippet's last verified output.
	-$(PY) manage.py verifysnippets --unverified

run: seed editor
	@echo "Serving the glossary at http://$(HOST):$(PORT)/ (Ctrl-C to stop)"
	$(VENV)/bin/daphne -b $(HOST) -p $(PORT) config.asgi:application

# The production stack on one port: nginx in front, granian for pages, Daphne for
# WebSockets (deploy/stack.py). Production settings over plain HTTP on this machine; the
# secret key is the checkout's own unless SECRET_KEY is set.
STACK_PORT ?= 8080
stack: seed
	export DJANGO_SETTINGS_MODULE=config.settings.production \
	  SECRET_KEY="$${SECRET_KEY:-$$(cat .secret_key)}" SECURE_SSL_REDIRECT="$${SECURE_SSL_REDIRECT:-false}" && \
	$(PY) manage.py collectstatic --noinput -v0 && \
	$(PY) deploy/stack.py --host $(HOST) --port $(STACK_PORT)

test: install sandbox editor
	$(PY) -m pytest

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: install
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

migrations-check: install
	$(PY) manage.py makemigrations --check --dry-run

# Without a terminal (CI, a container), DJANGO_SUPERUSER_USERNAME, _EMAIL and _PASSWORD
# say who to create; Django alone would skip the account and still succeed.
superuser: migrate
	@if [ -n "$$DJANGO_SUPERUSER_USERNAME" ] && [ -n "$$DJANGO_SUPERUSER_PASSWORD" ]; then \
	  $(PY) manage.py createsuperuser --noinput; \
	elif [ -t 0 ]; then \
	  $(PY) manage.py createsuperuser; \
	else \
	  echo "make superuser needs a terminal, or DJANGO_SUPERUSER_USERNAME, DJANGO_SUPERUSER_EMAIL and DJANGO_SUPERUSER_PASSWORD set." >&2; \
	  exit 1; \
	fi

bench: install sandbox $(BENCH_VENV)/.installed
	$(PY) bench/pages.py
	$(PY) bench/runs.py

# The code editor's bundle is committed with a checksum of what it was built from: a
# fresh clone (whose file times say nothing) needs no npm, and a changed input (its
# source or the pinned toolchain) rebuilds it with npm.
EDITOR_INPUTS := package.json package-lock.json $(sort $(wildcard static/editor/src/*.js))
EDITOR_SUM := static/editor/inputs.sha256
editor:
	@sha256sum $(EDITOR_INPUTS) | cmp -s - $(EDITOR_SUM) || { \
	  echo "Rebuilding the editor bundle (static/editor/editor.js) with npm"; \
	  npm ci --no-audit --no-fund && npm run build && sha256sum $(EDITOR_INPUTS) > $(EDITOR_SUM); }

# The ER diagram on the About page (needs graphviz's `dot`).
diagram: install
	$(PY) manage.py graph_models glossary examples --group-models --dot | dot -Tsvg -o static/img/models.svg

clean:
	rm -rf $(VENV) $(SANDBOX_VENV) $(BENCH_VENV) staticfiles .pytest_cache
