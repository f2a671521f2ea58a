# Two commands on a fresh machine: `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

# An accidental model-hub lookup fails at once instead of hanging.
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export HF_DATASETS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: venv sysdeps demo test test-fast lint bench clean

$(STAMP): requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	$(PY) -m pip install -q --no-deps --no-build-isolation -e .
	touch $@

venv: $(STAMP)

# System libraries some tests and features need: Chromium (the HTML report test renders the page
# headless) and PortAudio (live microphone inference). Installed with apt when run as root.
sysdeps:
	@missing=""; \
	command -v chromium >/dev/null || missing="$$missing chromium"; \
	/sbin/ldconfig -p 2>/dev/null | grep -q libportaudio.so.2 || missing="$$missing libportaudio2"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	  else echo "note: system packages missing:$$missing (sudo apt-get install$$missing)"; fi; \
	fi

demo: venv
	bash scripts/demo.sh

# Two workers (pytest-xdist), one test file each at a time, so module fixtures are built once; the
# slowest tests are listed at the end so that a growing suite is noticed.
PYTEST := $(PY) -m pytest -q -n 2 --dist loadfile --durations 15

test: venv sysdeps
	$(PYTEST)

test-fast: venv sysdeps
	$(PYTEST) -m "not slow"

lint: venv
	$(VENV)/bin/ruff check .

bench: venv
	for b in benchmarks/bench_*.py; do $(PY) $$b || exit 1; done

clean:
	rm -rf runs/demo runs/demo_tools runs/demo_tools.log data/demo data/demo_ravdess data/demo_xroom .pytest_cache
