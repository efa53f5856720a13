# The two commands a new user runs: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PORT ?= 8000
STAMP := $(VENV)/.installed

.PHONY: demo test venv clean

$(STAMP): requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $(STAMP)

venv: $(STAMP)

# The demo runs on the offline defaults (SQLite, in-process tasks, local files) as a development
# server: DEBUG on (so the embedded secret key will do), plain HTTP.
DEMO_ENV := env -u DATABASE_URL -u REDIS_URL -u STORAGE_URL -u BEHIND_HTTPS_PROXY DEBUG=true

# Builds the `demo` study, renders its stimuli, then serves it on 127.0.0.1:$(PORT).
demo: $(STAMP)
	$(DEMO_ENV) $(PY) manage.py migrate --noinput
	$(DEMO_ENV) $(PY) manage.py setup_demo --port $(PORT)
	$(DEMO_ENV) $(PY) manage.py runserver 127.0.0.1:$(PORT) --noreload

# Static checks first (pyproject.toml configures both), then the tests; any failure fails the target.
test: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m mypy
	$(PY) -m pytest

clean:
	rm -rf var
