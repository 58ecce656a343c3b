# `make demo` and `make test` work on a fresh machine: they create .venv/ here, install the
# pinned dependencies and the package, and run offline (no model downloads).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
PYTEST_ARGS ?=

.PHONY: demo test test-all lint install bench clean train-bundled train-levels browser docs-screenshot fuzz

$(STAMP): pyproject.toml requirements.lock
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.lock
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps -e .
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(PY) -m swinir.cli.demo

# The browser test of `swinir serve` (tests/test_serve.py) drives Debian's chromium over the
# DevTools protocol: install it with apt-get when it is missing (root; a no-op when present).
browser:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || \
	  { command -v apt-get >/dev/null 2>&1 && apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null; } || \
	  echo "warning: could not install chromium; the browser test is skipped (and fails under CI=true)"

# Lint (ruff: errors, style, import order) and type-check (mypy) the package, tests and scripts.
lint: $(STAMP)
	$(VENV)/bin/ruff check swinir tests benchmarks tools
	$(VENV)/bin/mypy

# The linters, then the whole suite minus the tests marked slow (a representative full-size subset stays in).
test: lint browser
	$(PY) -m pytest -q -m "not slow" $(PYTEST_ARGS)

test-all: lint browser
	$(PY) -m pytest -q $(PYTEST_ARGS)

# The fuzzing suite at 20 times the cases of `make test` (tests/test_fuzz.py; SWINIR_FUZZ_SEED
# picks another corpus, SWINIR_FUZZ_SCALE another size).
fuzz: $(STAMP)
	SWINIR_FUZZ_SCALE=$${SWINIR_FUZZ_SCALE:-20} $(PY) -m pytest -q -s tests/test_fuzz.py $(PYTEST_ARGS)

# Refresh docs/web_app.png (the README screenshot) from the browser test.
docs-screenshot: $(STAMP) browser
	SWINIR_WEB_SCREENSHOT=docs/web_app.png $(PY) -m pytest -q tests/test_serve.py -k chromium

# Reproduce the two bundled models from scratch on the shared training images (hours on 2 CPU
# cores; resumable: rerun the same command after an interruption).
# One bundled model: train (resuming a stopped run), measure it and write swinir/assets/<run>.safetensors
# (tools/bundle_model.py), and keep its learning curve in docs/bundled/.
# $(1): config name, $(2): run name, $(3): bundle_model.py options.
define bundle
	$(PY) -m swinir train configs/bundled/$(1).yaml $(if $(wildcard runs/$(2)/checkpoints),--resume)
	$(PY) tools/bundle_model.py runs/$(2) $(3)
	$(PY) tools/plot_log.py runs/$(2)/log.jsonl -o docs/bundled/$(2:bundled_%=%).png
	cp runs/$(2)/log.jsonl docs/bundled/$(2:bundled_%=%)_log.jsonl
endef

# In dependency order: the x2 and real-world models start from the shipped x4 file, the blind ones
# from the sigma-25 file, which the first two steps rewrite; the gray ones from the blind colour ones.
train-bundled: $(STAMP)
	$(call bundle,classical_sr_x4,bundled_classicalSR_x4,--task classical_sr)
	$(call bundle,color_dn_25,bundled_colorDN_noise25,--task color_dn --noise 25)
	$(call bundle,classical_sr_x2,bundled_classicalSR_x2,--task classical_sr --weights model)
	$(call bundle,classical_sr_x2_stage2,bundled_classicalSR_x2_stage2,--task classical_sr --name bundled_classicalSR_x2)
	$(call bundle,color_dn_blind,bundled_colorDN_blind,--task color_dn --levels "sigma 0-55")
	$(call bundle,color_jpeg_blind,bundled_colorCAR_blind,--task color_jpeg --levels "quality 10-90")
	$(call bundle,real_sr_x4,bundled_realSR_x4,--task real_sr)
	$(PY) tools/gray_from_color.py swinir/assets/bundled_colorDN_blind.safetensors configs/init/bundled_colorDN_blind_gray.safetensors --task gray_dn
	$(PY) tools/gray_from_color.py swinir/assets/bundled_colorCAR_blind.safetensors configs/init/bundled_colorCAR_blind_gray.safetensors --task gray_jpeg
	$(call bundle,gray_dn_blind,bundled_grayDN_blind,--task gray_dn --levels "sigma 0-55")
	$(call bundle,gray_jpeg_blind,bundled_grayCAR_blind,--task gray_jpeg --levels "quality 10-90")
	$(PY) tools/realsr_figure.py -o docs/bundled/realSR_x4_RealSRSet.png

# The four per-level gray JPEG models that benchmarks/bench_blend.py blends (issue #18; not shipped).
train-levels: $(STAMP)
	$(PY) tools/gray_from_color.py swinir/assets/bundled_colorCAR_blind.safetensors configs/init/bundled_colorCAR_blind_gray.safetensors --task gray_jpeg
	for q in 10 20 30 40; do \
	  $(PY) -m swinir train configs/levels/gray_jpeg_q$$q.yaml && \
	  $(PY) tools/bundle_model.py runs/levels_grayCAR_q$$q --task gray_jpeg --jpeg $$q --output-dir benchmarks/models || exit 1; \
	done

bench: $(STAMP)
	$(PY) benchmarks/bench_inference.py

clean:
	rm -rf $(VENV) build *.egg-info demo_output .pytest_cache
