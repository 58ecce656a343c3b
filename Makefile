# `make demo` and `make test` work on a fresh machine: they create .venv/ here, install the
# pinned dependencies and the package, and run offline (no model downloads).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
PYTEST_ARGS ?=

.PHONY: demo test test-all install bench clean train-bundled browser docs-screenshot

$(STAMP): pyproject.toml requirements.lock
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.lock
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps -e .
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(PY) -m swinir.demo

# The browser test of `swinir serve` (tests/test_serve.py) drives Debian's chromium over the
# DevTools protocol: install it with apt-get when it is missing (root; a no-op when present).
browser:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || \
	  { command -v apt-get >/dev/null 2>&1 && apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null; } || \
	  echo "warning: could not install chromium; the browser test is skipped (and fails under CI=true)"

# The whole suite minus the tests marked slow (a representative full-size subset stays in).
test: $(STAMP) browser
	$(PY) -m pytest -q -m "not slow" $(PYTEST_ARGS)

test-all: $(STAMP) browser
	$(PY) -m pytest -q $(PYTEST_ARGS)

# Refresh docs/web_app.png (the README screenshot) from the browser test.
docs-screenshot: $(STAMP) browser
	SWINIR_WEB_SCREENSHOT=docs/web_app.png $(PY) -m pytest -q tests/test_serve.py -k chromium

bench: $(STAMP)
	$(PY) benchmarks/bench_inference.py

clean:
	rm -rf $(VENV) build *.egg-info demo_output .pytest_cache
